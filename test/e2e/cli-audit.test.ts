import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { auditSortKey, encodeCursor } from '#store/audit-index.ts';
import { getDb } from '#store/db.ts';
import { createErasureRequest } from '#store/erasure.ts';
import { type Seeded, seedLedger, tamperEvent } from '../helpers/audit-seed.ts';
import { cli, spawnCli } from '../helpers/cli.ts';
import { tenantId } from '../helpers/factories.ts';
import { describeLocal } from '../helpers/http.ts';

const FROM = '2026-10-01';
const TO = '2026-11-01';
const dir = mkdtempSync(join(tmpdir(), 'cli-audit-'));
let tenant: string;
let seeded: Seeded;

beforeAll(async () => {
  tenant = tenantId('cli');
  // 400 subjects × 5 events over October: 2000 events on 31 days × 8 shards.
  seeded = await seedLedger(getDb(), tenant, {
    subjects: 400,
    perSubject: 5,
    start: `${FROM}T00:00:00.000Z`,
    spanMs: Date.parse(TO) - Date.parse(FROM),
  });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const lines = (file: string, sep = '\n') => readFileSync(file, 'utf8').split(sep).filter(Boolean);

describeLocal('consent-gate export', () => {
  it('exports a month as NDJSON to a file, in time order, and reports the count on stderr', async () => {
    const out = join(dir, 'october.ndjson');
    const run = await cli('export', '--tenant', tenant, '--from', FROM, '--to', TO, '--out', out);
    expect(run.code).toBe(0);
    expect(run.stderr).toContain('exported 2000 events');
    const ids = lines(out).map((l) => JSON.parse(l).eventId);
    expect(ids).toEqual(seeded.timeline.map((e) => e.eventId));
    expect(existsSync(`${out}.cursor`)).toBe(false);
  });

  it('exports CSV with the contract header', async () => {
    const out = join(dir, 'october.csv');
    const run = await cli('export', '--tenant', tenant, '--from', FROM, '--to', TO, '--format', 'csv', '--out', out);
    expect(run.code).toBe(0);
    const rows = lines(out, '\r\n');
    expect(rows[0]).toBe(
      'at,eventId,subjectKey,type,channel,purpose,source,noticeVersion,prevHash,hash,recordedAt,actor',
    );
    expect(rows).toHaveLength(2001);
    expect(rows[2000].split(',')[1]).toBe(seeded.timeline[1999].eventId);
  });

  it('resumes an interrupted export from the cursor kept next to the file, without repeating or skipping', async () => {
    const out = join(dir, 'resumed.csv');
    const full = readFileSync(join(dir, 'october.csv'), 'utf8').split('\r\n');
    // As an interrupted run leaves it: the header and the first 777 rows, and the cursor of the last one.
    writeFileSync(out, `${full.slice(0, 778).join('\r\n')}\r\n`);
    writeFileSync(`${out}.cursor`, encodeCursor(auditSortKey(seeded.timeline[776])));
    const run = await cli(
      'export',
      '--tenant',
      tenant,
      '--from',
      FROM,
      '--to',
      TO,
      '--format',
      'csv',
      '--out',
      out,
      '--resume',
    );
    expect(run.code).toBe(0);
    expect(run.stderr).toContain('exported 1223 events');
    expect(readFileSync(out, 'utf8')).toBe(readFileSync(join(dir, 'october.csv'), 'utf8'));
    expect(existsSync(`${out}.cursor`)).toBe(false);
  });

  it('writes to stdout with --cursor and refuses a bad range with exit code 2', async () => {
    const cursor = encodeCursor(auditSortKey(seeded.timeline[1995]));
    const run = await cli('export', '--tenant', tenant, '--from', FROM, '--to', TO, '--cursor', cursor);
    expect(run.code).toBe(0);
    expect(
      run.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).eventId),
    ).toEqual(seeded.timeline.slice(1996).map((e) => e.eventId));
    const bad = await cli('export', '--tenant', tenant, '--from', TO, '--to', FROM);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--to: must be after from/);
  });

  it('stops on Ctrl-C with the cursor to resume from, and resuming completes the export exactly', async () => {
    const child = spawnCli('export', '--tenant', tenant, '--from', FROM, '--to', TO);
    let stderr = '';
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    // Not reading stdout yet: once the pipe is full the export waits on it, so the interrupt lands mid-way.
    await new Promise((resolve) => child.stdout.once('readable', resolve));
    child.kill('SIGINT');
    const chunks: Buffer[] = [];
    child.stdout.on('data', (d) => chunks.push(d));
    const code = await new Promise((resolve) => child.on('close', resolve));
    expect(code).toBe(130);
    const first = Buffer.concat(chunks).toString().split('\n').filter(Boolean);
    expect(first.length).toBeGreaterThan(0);
    expect(first.length).toBeLessThan(2000);
    const match = /interrupted after (\d+) events; resume with --cursor (\S+)/.exec(stderr);
    expect(match?.[1]).toBe(String(first.length));
    const rest = await cli('export', '--tenant', tenant, '--from', FROM, '--to', TO, '--cursor', match![2]);
    expect(rest.code).toBe(0);
    const ids = [...first, ...rest.stdout.split('\n').filter(Boolean)].map((l) => JSON.parse(l).eventId);
    expect(ids).toEqual(seeded.timeline.map((e) => e.eventId));
  });
});

describeLocal('consent-gate verify', () => {
  it('exits 0 on an intact ledger and 1 with the subject and seq once an event is edited in the table', async () => {
    const intact = await cli('verify', '--tenant', tenant, '--from', FROM, '--to', TO);
    expect(intact.code).toBe(0);
    expect(intact.stdout).toContain('ledger intact — 400 subjects, 2000 events verified');

    const subjectKey = [...seeded.subjects.keys()][17];
    const db = getDb();
    await tamperEvent(db, tenant, subjectKey, 3, ['source'], 'double_opt_in');
    const broken = await cli('verify', '--tenant', tenant, '--from', FROM, '--to', TO);
    expect(broken.code).toBe(1);
    expect(broken.stdout).toContain(`BROKEN  ${subjectKey}  seq 3  hash_mismatch`);
    // Without a range every subject of the tenant is verified (from the state items).
    const all = await cli('verify', '--tenant', tenant, '--json');
    expect(all.code).toBe(1);
    expect(JSON.parse(all.stdout)).toMatchObject({
      subjects: 400,
      events: 2000,
      valid: false,
      broken: [{ subjectKey, seq: 3, reason: 'hash_mismatch' }],
    });
  }, 180_000);
});

describeLocal('consent-gate erasures', () => {
  it('reports the requests due within N days, overdue first, and exits 3 when one is overdue', async () => {
    const db = getDb();
    const t = tenantId('cli-er');
    const day = 86_400_000;
    const at = (daysAgo: number) => new Date(Date.now() - daysAgo * day).toISOString();
    const overdue = await createErasureRequest(db, t, { subjectKeys: ['a'], requestedVia: 'email' }, at(40));
    const soon = await createErasureRequest(db, t, { subjectKeys: ['b'], requestedVia: 'letter' }, at(27));
    await createErasureRequest(db, t, { subjectKeys: ['c'], requestedVia: 'web' }, at(2));

    const run = await cli('erasures', 'due', '--tenant', t, '--within', '7', '--json');
    expect(run.code).toBe(3);
    const { requests } = JSON.parse(run.stdout);
    expect(requests.map((r: { requestId: string; status: string }) => [r.requestId, r.status])).toEqual([
      [overdue.requestId, 'overdue'],
      [soon.requestId, 'received'],
    ]);
    expect(requests[1].daysLeft).toBeGreaterThanOrEqual(1);
    expect(requests[1].daysLeft).toBeLessThanOrEqual(4);

    const text = await cli('erasures', 'list', '--tenant', t, '--status', 'pending');
    expect(text.code).toBe(0);
    expect(text.stdout.trim().split('\n')).toHaveLength(3);
    expect(text.stdout).toMatch(new RegExp(`OVERDUE\\s+${overdue.requestId}.*days late`));
    expect((await cli('erasures', 'due', '--tenant', t, '--within', 'soon')).code).toBe(2);
  });
});
