import { Writable } from 'node:stream';
import { DeleteCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { beforeAll, describe, expect, it } from 'vitest';
import { hashEvent } from '#domain/ledger.ts';
import { grantConsent } from '#domain/subject-state.ts';
import { toProblem } from '#http/errors.ts';
import { auditPage, exportEvents } from '#shared/services/audit-export.ts';
import { verifyRange, verifySubjects } from '#shared/services/audit-verify.ts';
import { auditEvents, decodeCursor } from '#store/audit-index.ts';
import { summarise } from '#store/audit-summary.ts';
import type { Db } from '#store/db.ts';
import { getDb } from '#store/db.ts';
import { redactDetails } from '#store/retention.ts';
import { appendChange, auditShard, eventItem } from '#store/subjects.ts';
import { keys } from '#store/table.ts';
import { type Seeded, seedLedger, tamperEvent } from '../helpers/audit-seed.ts';
import { tenantId, testActor } from '../helpers/factories.ts';

const START = '2026-10-30T00:00:00.000Z';
const RANGE = { from: START, to: '2026-11-03T00:00:00.000Z' };
const SPAN = Date.parse(RANGE.to) - Date.parse(RANGE.from);

let db: Db;
let tenant: string;
let seeded: Seeded;

beforeAll(async () => {
  db = getDb();
  tenant = tenantId('audit');
  // 120 subjects × 6 events = 720 events over 4 days and all 8 shards of each day.
  seeded = await seedLedger(db, tenant, { subjects: 120, perSubject: 6, start: START, spanMs: SPAN });
  // Another tenant's events on the same days must never show.
  await seedLedger(db, tenantId('other'), { subjects: 10, perSubject: 3, start: START, spanMs: SPAN });
});

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

describe('audit export over the sharded day index', () => {
  it('spreads the seeded days over all 8 shards', () => {
    const shards = new Set([...seeded.subjects.keys()].map(auditShard));
    expect(shards.size).toBe(8);
  });

  it('returns every event of the tenant in [from, to) in time order, merged across shards and days', async () => {
    const events = await collect(auditEvents(db, tenant, RANGE, { pageSize: 7 }));
    expect(events.map((e) => e.eventId)).toEqual(seeded.timeline.map((e) => e.eventId));
    expect(events[0]).toMatchObject({ subjectKey: seeded.timeline[0].subjectKey, hash: seeded.timeline[0].hash });
  });

  it('excludes `to` and includes `from` exactly (half-open range)', async () => {
    const pivot = seeded.timeline[300];
    const before = await collect(auditEvents(db, tenant, { from: RANGE.from, to: pivot.at }));
    const after = await collect(auditEvents(db, tenant, { from: pivot.at, to: RANGE.to }));
    expect(before.every((e) => e.at < pivot.at)).toBe(true);
    expect(after[0].at).toBe(pivot.at);
    expect(before.length + after.length).toBe(seeded.timeline.length);
  });

  it('pages with cursors that resume exactly: no event repeated or skipped', async () => {
    const ids: string[] = [];
    let after: string | undefined;
    let pages = 0;
    for (;;) {
      const page = await auditPage(db, tenant, RANGE, { format: 'ndjson', limit: 97, after });
      pages++;
      ids.push(
        ...page.body
          .trim()
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l).eventId),
      );
      if (!page.nextCursor) break;
      expect(page.count).toBe(97);
      after = decodeCursor(page.nextCursor, RANGE);
    }
    expect(pages).toBe(Math.ceil(seeded.timeline.length / 97));
    expect(ids).toEqual(seeded.timeline.map((e) => e.eventId));
  });

  it('rejects a cursor from another range or a forged one', () => {
    const inside = Buffer.from(JSON.stringify({ v: 1, k: `2026-10-31T00:00:00.000Z#01ARZ3NDEKTSV4RRFFQ69G5FAV` }));
    expect(decodeCursor(inside.toString('base64url'), RANGE)).toMatch(/^2026-10-31/);
    expect(() =>
      decodeCursor(inside.toString('base64url'), { from: '2026-11-01T00:00:00.000Z', to: RANGE.to }),
    ).toThrow(/range/);
    expect(() => decodeCursor('not-a-cursor', RANGE)).toThrow(/cursor/);
  });

  it('streams with bounded memory: buffered items never exceed 2 pages per shard of 2 days, whatever the total', async () => {
    // Count items the store has handed over but the export has not yet written.
    let fetched = 0;
    let written = 0;
    let maxBuffered = 0;
    const send = db.client.send.bind(db.client);
    const spy: Db = {
      table: db.table,
      client: {
        send: async (command: Parameters<typeof send>[0]) => {
          const out = (await send(command)) as { Items?: unknown[] };
          fetched += out.Items?.length ?? 0;
          maxBuffered = Math.max(maxBuffered, fetched - written);
          return out;
        },
      } as unknown as Db['client'],
    };
    const lines: number[] = [];
    const sink = new Writable({
      highWaterMark: 1,
      write(chunk, _enc, done) {
        written++;
        lines.push(chunk.length);
        setImmediate(done);
      },
    });
    // Through the export (with a slow sink that pushes back), every event arrives once.
    const progress = await exportEvents(spy, tenant, RANGE, 'ndjson', sink, {});
    expect(progress.count).toBe(seeded.timeline.length);
    expect(written).toBe(seeded.timeline.length);
    // With small pages, the bound shows: at most 2 days (current + read ahead) × 8 shards × 2 pages
    // (current + prefetched) in memory, against 720 events in the range.
    const small = { ...spy };
    fetched = 0;
    written = 0;
    maxBuffered = 0;
    for await (const _ of auditEvents(small, tenant, RANGE, { pageSize: 5 })) {
      written++;
      maxBuffered = Math.max(maxBuffered, fetched - written);
    }
    expect(written).toBe(seeded.timeline.length);
    expect(maxBuffered).toBeLessThanOrEqual(2 * 8 * 2 * 5);
  });

  it('fails closed with a 503 when the index cannot be read, and an abandoned read-ahead does no harm', async () => {
    const send = db.client.send.bind(db.client);
    const failing = (day: string): Db => ({
      table: db.table,
      client: {
        send: async (command: Parameters<typeof send>[0]) => {
          const pk = (command.input as { ExpressionAttributeValues?: Record<string, string> })
            .ExpressionAttributeValues?.[':pk'];
          if (pk?.includes(`#D#${day}#`)) throw Object.assign(new Error('throttled'), { name: 'ThrottlingException' });
          return send(command);
        },
      } as unknown as Db['client'],
    });
    // The second day fails: a full walk surfaces it as 503 store_unavailable.
    const walk = collect(auditEvents(failing('2026-10-31'), tenant, RANGE)).catch((error) => {
      throw toProblem(error);
    });
    await expect(walk).rejects.toMatchObject({
      status: 503,
      code: 'store_unavailable',
    });
    // A page that ends on the first day never awaits the failed read-ahead of the second: no unhandled
    // rejection (vitest would fail the run), and the page is served.
    const page = await auditPage(failing('2026-10-31'), tenant, RANGE, { format: 'ndjson', limit: 3 });
    expect(page.count).toBe(3);
    expect(page.nextCursor).toBeDefined();
    await new Promise((resolve) => setTimeout(resolve, 50));
  });

  it('writes CSV with the fixed header and one row per event', async () => {
    const chunks: string[] = [];
    const sink = new Writable({
      write(chunk, _enc, done) {
        chunks.push(chunk.toString());
        done();
      },
    });
    await exportEvents(db, tenant, RANGE, 'csv', sink);
    const lines = chunks.join('').trimEnd().split('\r\n');
    expect(lines[0]).toBe(
      'at,eventId,subjectKey,type,channel,purpose,source,noticeVersion,prevHash,hash,recordedAt,actor',
    );
    expect(lines).toHaveLength(seeded.timeline.length + 1);
    const first = seeded.timeline[0];
    expect(lines[1].startsWith(`${first.at},${first.eventId},${first.subjectKey},${first.type},`)).toBe(true);
    expect(lines[1].endsWith(`,${first.prevHash},${first.hash},${first.recordedAt},system:test`)).toBe(true);
  });

  it('summarises counts per day, type and channel that add up to the events', async () => {
    const summary = await summarise(db, tenant, RANGE);
    expect(summary.total).toBe(seeded.timeline.length);
    expect(summary.days.map((d) => d.day)).toEqual(['2026-10-30', '2026-10-31', '2026-11-01', '2026-11-02']);
    const expected = new Map<string, number>();
    for (const e of seeded.timeline) {
      const k = `${e.at.slice(0, 10)}|${e.type}|${e.channel}`;
      expected.set(k, (expected.get(k) ?? 0) + 1);
    }
    expect(new Map(summary.counts.map((c) => [`${c.day}|${c.type}|${c.channel}`, c.count]))).toEqual(expected);
    expect(summary.contacts.total).toBe(120);
  });
});

describe('ledger verification finds tampering done directly in the table', () => {
  const pick = (n: number) => [...seeded.subjects.entries()][n];

  it('reports an intact ledger as valid', async () => {
    const report = await verifyRange(db, tenant, RANGE);
    expect(report).toMatchObject({ subjects: 120, events: 720, valid: true, broken: [] });
  });

  it('reports an edited event (UpdateItem of its data) with its subject and seq', async () => {
    const [subjectKey] = pick(1);
    await tamperEvent(db, tenant, subjectKey, 3, ['data', 'noticeVersion'], 'forged-notice');
    const report = await verifySubjects(db, tenant, [subjectKey]);
    expect(report.valid).toBe(false);
    expect(report.broken).toEqual([{ subjectKey, seq: 3, reason: 'hash_mismatch' }]);
  });

  it('reports an edited event whose hash was recomputed by the next event that no longer links', async () => {
    const [subjectKey, chain] = pick(2);
    const forged = { ...chain[1], data: { ...chain[1].data, noticeVersion: 'forged' } };
    forged.hash = hashEvent(forged);
    await db.client.send(new PutCommand({ TableName: db.table, Item: eventItem(tenant, subjectKey, forged) }));
    const report = await verifySubjects(db, tenant, [subjectKey]);
    expect(report.broken).toEqual([{ subjectKey, seq: 3, reason: 'prev_hash_mismatch' }]);
  });

  it('reports a deleted event (DeleteItem) at the missing seq', async () => {
    const [subjectKey] = pick(3);
    await db.client.send(
      new DeleteCommand({ TableName: db.table, Key: { PK: keys.subject(tenant, subjectKey), SK: keys.event(4) } }),
    );
    const report = await verifySubjects(db, tenant, [subjectKey]);
    expect(report.broken).toEqual([{ subjectKey, seq: 4, reason: 'event_missing' }]);
  });

  it('reports a deleted last event through the head the state records', async () => {
    const [subjectKey] = pick(4);
    await db.client.send(
      new DeleteCommand({ TableName: db.table, Key: { PK: keys.subject(tenant, subjectKey), SK: keys.event(6) } }),
    );
    const report = await verifySubjects(db, tenant, [subjectKey]);
    expect(report.broken).toEqual([{ subjectKey, seq: 6, reason: 'event_missing' }]);
  });

  it('reports an inserted event (PutItem), even one chained with correct hashes', async () => {
    const [subjectKey, chain] = pick(5);
    const last = chain.at(-1)!;
    const inserted = {
      ...last,
      seq: 7,
      eventId: '01KZZZZZZZZZZZZZZZZZZZZZZZ',
      at: '2026-11-02T23:00:00.000Z',
      type: 'consent.granted' as const,
      prevHash: last.hash,
      data: { noticeVersion: 'backdated', grantedAt: '2026-11-02T23:00:00.000Z', expiresAt: null },
    };
    inserted.hash = hashEvent(inserted);
    await db.client.send(new PutCommand({ TableName: db.table, Item: eventItem(tenant, subjectKey, inserted) }));
    const report = await verifySubjects(db, tenant, [subjectKey]);
    expect(report.broken).toEqual([{ subjectKey, seq: 7, reason: 'unexpected_event' }]);
  });

  it('finds every tampered subject when verifying the range, and only them', async () => {
    const report = await verifyRange(db, tenant, RANGE);
    expect(report.valid).toBe(false);
    expect(report.subjects).toBe(120);
    const tampered = new Set(report.broken.map((b) => b.subjectKey));
    expect(tampered).toEqual(new Set([1, 2, 3, 4, 5].map((n) => pick(n)[0])));
  });

  it('keeps the shard attribute of the index consistent with auditShard', () => {
    const [subjectKey, chain] = pick(0);
    const item = eventItem(tenant, subjectKey, chain[0]);
    expect(item.GSI1PK).toBe(keys.auditDay(tenant, chain[0].at.slice(0, 10), auditShard(subjectKey)));
  });
});

describe('tampering is still found in redacted events (details deleted by an erasure or retention)', () => {
  it('verifies a redacted chain, and reports an edited public part or forged details', async () => {
    const owner = tenantId();
    const subjectKey = 'redacted-subject-000000000000000000000000000';
    for (let i = 0; i < 3; i++) {
      await appendChange(
        db,
        owner,
        subjectKey,
        (c, n) =>
          grantConsent(
            c,
            {
              channel: 'whatsapp',
              purpose: `p${i}`,
              source: 'web_form',
              noticeVersion: 'v1',
              grantedAt: new Date().toISOString(),
              details: { evidence: { text: `agreed ${i}` } },
            },
            n,
            new Date().toISOString(),
          ),
        { actor: testActor },
      );
    }
    const eventKey = (seq: number) => ({ PK: keys.subject(owner, subjectKey), SK: keys.event(seq) });
    expect(await redactDetails(db, [1, 2, 3].map(eventKey))).toBe(3);
    expect((await verifySubjects(db, owner, [subjectKey])).valid).toBe(true);
    await tamperEvent(db, owner, subjectKey, 2, ['data', 'noticeVersion'], 'forged-notice');
    await tamperEvent(db, owner, subjectKey, 3, ['details'], { evidence: { text: 'forged evidence' } });
    await tamperEvent(db, owner, subjectKey, 3, ['detailsSalt'], '00'.repeat(16));
    const report = await verifySubjects(db, owner, [subjectKey]);
    expect(report.broken).toEqual([
      { subjectKey, seq: 2, reason: 'hash_mismatch' },
      { subjectKey, seq: 3, reason: 'details_mismatch' },
    ]);
  });
});
