import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { BatchWriteCommand, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { beforeAll, describe, expect, it } from 'vitest';
import { hashEvent, type LedgerEvent } from '#domain/ledger.ts';
import { grantConsent } from '#domain/subject-state.ts';
import { ensureTable } from '#infra/local/bootstrap.ts';
import { scheduleSealer } from '#infra/local/runtime.ts';
import { mapLimit } from '#shared/concurrency.ts';
import { type Anchor, MemoryAnchor } from '#shared/log/anchor.ts';
import { appendNodes, leafHash, rootHash } from '#shared/log/merkle.ts';
import { type LogSigner, logSignerFromPem, openCheckpoint, verifierKey } from '#shared/log/note.ts';
import { sealAll, sealTenant } from '#shared/services/sealer.ts';
import { auditEvents } from '#store/audit-index.ts';
import { type Db, getDb, queryAll } from '#store/db.ts';
import {
  getCheckpoint,
  getHead,
  leafOf,
  listCheckpoints,
  listLeaves,
  listLogTenants,
  registerLog,
} from '#store/log.ts';
import { appendChange, eventItem } from '#store/subjects.ts';
import { keys } from '#store/table.ts';
import { tenantId, testActor } from '../helpers/factories.ts';

let db: Db;
let signer: LogSigner;

beforeAll(() => {
  db = getDb();
  const pem = generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;
  signer = logSignerFromPem(pem);
});

const grant = (i: number) => ({
  channel: 'whatsapp' as const,
  purpose: `p${i}`,
  source: 'web_form',
  noticeVersion: `v${i}`,
  grantedAt: new Date().toISOString(),
});

/** `subjects × perSubject` events written through the real ledger append, 16 writers at a time. */
async function writeEvents(tenant: string, subjects: number, perSubject: number, into = db): Promise<void> {
  const jobs = Array.from({ length: subjects }, (_, s) => `subject-${s}`);
  await mapLimit(jobs, 16, async (subjectKey) => {
    for (let i = 0; i < perSubject; i++) {
      await appendChange(
        into,
        tenant,
        subjectKey,
        (current, next) => grantConsent(current, grant(i), next, new Date().toISOString()),
        { actor: testActor },
      );
    }
  });
}

/** Every event of the tenant in audit-index order (the order the sealer appends them). */
async function indexOrder(tenant: string) {
  const events = [];
  const range = {
    from: new Date(Date.now() - 3_600_000).toISOString(),
    to: new Date(Date.now() + 60_000).toISOString(),
  };
  for await (const e of auditEvents(db, tenant, range)) {
    events.push(e);
  }
  return events;
}

/** The root of a tree over these event hashes, computed from scratch. */
function expectedRoot(eventHashes: string[]): Buffer {
  const leaves = eventHashes.map((h) => leafHash(Buffer.from(h, 'hex')));
  const nodes = appendNodes(0, leaves, () => {
    throw new Error('an empty tree has no nodes');
  });
  return rootHash(leaves.length, (id) => nodes.get(`${id.level}:${id.index}`) as Buffer);
}

/** Seals with no lag (every event written so far) from the start of the test's tenant. */
const options = (anchor: Anchor, extra: Partial<Parameters<typeof sealTenant>[2]> = {}) => ({
  signer,
  anchor,
  lagMs: 0,
  now: new Date(Date.now() + 1_000),
  since: new Date(Date.now() - 3_600_000).toISOString(),
  ...extra,
});

async function evtItems(tenant: string) {
  return queryAll(db, {
    KeyConditionExpression: 'PK = :pk AND begins_with(SK, :evt)',
    ExpressionAttributeValues: { ':pk': keys.log(tenant), ':evt': 'EVT#' },
  });
}

/** Checks the whole stored log of a tenant against its events: leaves, EVT items, root, checkpoint. */
async function expectConsistentLog(tenant: string, anchor: MemoryAnchor) {
  const events = await indexOrder(tenant);
  const head = await getHead(db, tenant);
  expect(head?.pending).toBeUndefined();
  expect(head?.size).toBe(events.length);
  const leaves = await listLeaves(db, tenant, 0, events.length);
  // Every event exactly once, in the order of the audit index.
  expect(leaves.map((l) => l.eventId)).toEqual(events.map((e) => e.eventId));
  expect(leaves.map((l) => l.eventHash)).toEqual(events.map((e) => e.hash));
  expect(leaves.map((l) => l.index)).toEqual(events.map((_, i) => i));
  const evts = await evtItems(tenant);
  expect(evts).toHaveLength(events.length);
  const byEvent = new Map(evts.map((item) => [(item.SK as string).slice(4), Number(item.leafIndex)]));
  events.forEach((e, i) => {
    expect(byEvent.get(e.eventId)).toBe(i);
  });
  const root = expectedRoot(events.map((e) => e.hash));
  expect(head?.rootHash).toBe(root.toString('base64'));
  const cp = await getCheckpoint(db, tenant);
  expect(cp?.treeSize).toBe(events.length);
  const opened = openCheckpoint(cp?.note as string, [verifierKey(signer.name, signer.publicKey)]);
  expect(opened).toMatchObject({ checkpoint: { origin: `consent-gate/${tenant}`, treeSize: events.length } });
  expect('checkpoint' in opened && opened.checkpoint.rootHash.equals(root)).toBe(true);
  // Every stored checkpoint is anchored, with the very same note.
  const stored = await listCheckpoints(db, tenant);
  expect(await anchor.list(tenant)).toEqual(stored.map((c) => ({ treeSize: c.treeSize, note: c.note })));
  return { events, head, stored };
}

// Each test writes hundreds of events through the real ledger append: minutes on a busy 2-core machine.
describe('the sealer', { timeout: 180_000 }, () => {
  it('seals 1,000 events written through the ledger append into the tree of their leaf hashes, in index order', async () => {
    const tenant = tenantId('seal');
    await writeEvents(tenant, 250, 4);
    const anchor = new MemoryAnchor();
    const report = await sealTenant(db, tenant, options(anchor, { batchSize: 300 }));
    expect(report).toMatchObject({ tenant, sealed: 1000, batches: 4, treeSize: 1000, anchored: 4, more: false });
    const { stored } = await expectConsistentLog(tenant, anchor);
    expect(stored.map((c) => c.treeSize)).toEqual([300, 600, 900, 1000]);
    // Nothing new: a second run changes nothing and signs nothing.
    const again = await sealTenant(db, tenant, options(anchor, { batchSize: 300 }));
    expect(again).toMatchObject({ sealed: 0, batches: 0, treeSize: 1000, anchored: 0 });
    // New events are appended to the same tree.
    await writeEvents(tenant, 5, 1);
    const more = await sealTenant(db, tenant, options(anchor));
    expect(more).toMatchObject({ sealed: 5, treeSize: 1005, anchored: 1 });
    await expectConsistentLog(tenant, anchor);
  });

  it('leaves events recorded within the lag for the next run', async () => {
    const tenant = tenantId('seal-lag');
    await writeEvents(tenant, 3, 1);
    const anchor = new MemoryAnchor();
    const since = new Date(Date.now() - 60_000).toISOString();
    expect(await sealTenant(db, tenant, { signer, anchor, since, lagMs: 60_000 })).toMatchObject({ sealed: 0 });
    expect(await sealTenant(db, tenant, { signer, anchor, since, lagMs: 0 })).toMatchObject({ sealed: 3 });
  });

  it('never forks under concurrent sealers: every event exactly once, one valid tree', async () => {
    const tenant = tenantId('seal-race');
    await writeEvents(tenant, 200, 5);
    const anchor = new MemoryAnchor();
    const reports = await Promise.all(
      Array.from({ length: 4 }, () => sealTenant(db, tenant, options(anchor, { batchSize: 100 }))),
    );
    expect(reports.every((r) => r.treeSize === 1000)).toBe(true);
    // Claims are exclusive: the events claimed by the four runs add up to the tree, none twice.
    expect(reports.reduce((n, r) => n + r.sealed, 0)).toBe(1000);
    await expectConsistentLog(tenant, anchor);
  });

  it('redoes a batch a crash left half-written (leaves without HEAD), identically', async () => {
    const tenant = tenantId('seal-crash');
    await writeEvents(tenant, 100, 3);
    const anchor = new MemoryAnchor();
    let batches = 0;
    const crash = options(anchor, {
      batchSize: 120,
      afterItems: () => {
        if (++batches === 2) throw new Error('killed between the leaves and HEAD');
      },
    });
    await expect(sealTenant(db, tenant, crash)).rejects.toThrow('killed');
    const half = await getHead(db, tenant);
    expect(half).toMatchObject({ size: 120, pending: { size: 120, count: 120 } });
    // The leaves of the pending batch are written but not part of the tree yet.
    expect(await listLeaves(db, tenant, 120, 240)).toHaveLength(120);
    // Meanwhile more events arrive; the next run first finishes the claimed batch, then goes on.
    await writeEvents(tenant, 10, 1);
    const report = await sealTenant(db, tenant, options(anchor, { batchSize: 120 }));
    expect(report.treeSize).toBe(310);
    await expectConsistentLog(tenant, anchor);
  });

  it('anchors a checkpoint a crash left unanchored on the next run, and each checkpoint once', async () => {
    const tenant = tenantId('seal-anchor');
    await writeEvents(tenant, 40, 1);
    const memory = new MemoryAnchor();
    const puts: number[] = [];
    let failing = true;
    const flaky: Anchor = {
      put: async (t, size, note) => {
        if (failing) throw new Error('anchor unreachable');
        puts.push(size);
        await memory.put(t, size, note);
      },
      list: (t) => memory.list(t),
      get: (t, size) => memory.get(t, size),
      putKey: (key) => memory.putKey(key),
      keys: () => memory.keys(),
    };
    await expect(sealTenant(db, tenant, options(flaky, { batchSize: 15 }))).rejects.toThrow('anchor unreachable');
    expect(await getHead(db, tenant)).toMatchObject({ size: 40, anchored: 0 });
    failing = false;
    expect(await sealTenant(db, tenant, options(flaky))).toMatchObject({ sealed: 0, anchored: 3 });
    expect(await sealTenant(db, tenant, options(flaky))).toMatchObject({ anchored: 0 });
    expect(puts).toEqual([15, 30, 40]);
    expect(await getHead(db, tenant)).toMatchObject({ anchored: 40 });
    await expectConsistentLog(tenant, memory);
  });

  it('sweeps late events: one that shows up behind the watermark is appended once', async () => {
    const tenant = tenantId('seal-late');
    await writeEvents(tenant, 5, 2);
    const anchor = new MemoryAnchor();
    await sealTenant(db, tenant, options(anchor));
    const head = await getHead(db, tenant);
    // An event whose transaction committed long after its recordedAt: behind what the sealer has read.
    const recordedAt = new Date(Date.parse(head?.watermark?.slice(0, 24) as string) - 500).toISOString();
    const unhashed = {
      v: 2 as const,
      eventId: '01LATE0000000000000000000A',
      seq: 1,
      type: 'consent.granted' as const,
      at: recordedAt,
      recordedAt,
      actor: testActor,
      channel: 'sms',
      purpose: 'marketing',
      source: 'web_form',
      data: { noticeVersion: 'v1' },
      detailsDigest: null,
      prevHash: '0'.repeat(64),
    };
    const late: LedgerEvent = { ...unhashed, hash: hashEvent(unhashed) };
    await db.client.send(new PutCommand({ TableName: db.table, Item: eventItem(tenant, 'late-subject', late) }));
    expect(await sealTenant(db, tenant, options(anchor))).toMatchObject({ sealed: 0 });
    const swept = await Promise.all([
      sealTenant(db, tenant, options(anchor, { sweepMs: 60_000 })),
      sealTenant(db, tenant, options(anchor, { sweepMs: 60_000 })),
    ]);
    expect(swept.reduce((n, r) => n + r.late, 0)).toBe(1);
    expect(await getHead(db, tenant)).toMatchObject({ size: 11 });
    const leaves = await listLeaves(db, tenant, 0, 11);
    expect(leaves[10]).toMatchObject({ eventId: late.eventId, subjectKey: 'late-subject', eventHash: late.hash });
    expect(new Set(leaves.map((l) => l.eventId)).size).toBe(11);
    expect(await sealTenant(db, tenant, options(anchor, { sweepMs: 60_000 }))).toMatchObject({ sealed: 0 });
  });

  it('reads an idle tenant from its last day, moving its position at most once a day', async () => {
    const tenant = tenantId('seal-idle');
    const anchor = new MemoryAnchor();
    const since = '2026-01-01T00:00:00.000Z';
    const day = (d: string) => options(anchor, { since, now: new Date(d) });
    await sealTenant(db, tenant, day('2026-01-04T12:00:00.000Z'));
    const first = await getHead(db, tenant);
    expect(first).toMatchObject({ size: 0, scannedTo: '2026-01-04T12:00:00.000Z' });
    await sealTenant(db, tenant, day('2026-01-04T18:00:00.000Z'));
    expect((await getHead(db, tenant))?.version).toBe(first?.version);
    await sealTenant(db, tenant, day('2026-01-05T00:10:00.000Z'));
    expect(await getHead(db, tenant)).toMatchObject({ scannedTo: '2026-01-05T00:10:00.000Z' });
  });

  it('sealAll seals every tenant with a log, found through the sparse head index', async () => {
    // A table of its own: sealAll seals every tenant with a log, and must not touch the other tests' tenants.
    const own: Db = { client: db.client, table: `sealer-${randomBytes(4).toString('hex')}` };
    await ensureTable(own);
    const [a, b, c] = [tenantId('seal-all'), tenantId('seal-all'), tenantId('seal-all')];
    const since = new Date(Date.now() - 60_000).toISOString();
    await registerLog(own, a, since);
    await registerLog(own, b, since);
    await writeEvents(a, 3, 1, own);
    await writeEvents(b, 2, 1, own);
    await writeEvents(c, 2, 1, own); // no log: not a tenant of the sealer
    expect((await listLogTenants(own)).sort()).toEqual([a, b].sort());
    const anchor = new MemoryAnchor();
    const { reports, failed } = await sealAll(own, { signer, anchor, lagMs: 0, now: new Date(Date.now() + 1000) });
    expect(failed).toEqual([]);
    expect(reports.map((r) => [r.tenant, r.sealed]).sort()).toEqual(
      [
        [a, 3],
        [b, 2],
      ].sort(),
    );
  });
});

describe("the local runtime's sealer loop", { timeout: 120_000 }, () => {
  it('seals each write within a couple of seconds while it runs, and nothing once stopped', async () => {
    // A table of its own: the loop seals every tenant with a log, and must not touch the other tests' tenants.
    const own: Db = { client: db.client, table: `sealer-${randomBytes(4).toString('hex')}` };
    await ensureTable(own);
    const tenant = tenantId('seal-loop');
    await registerLog(own, tenant, new Date(Date.now() - 60_000).toISOString());
    const stop = scheduleSealer(own);
    const latencies: number[] = [];
    try {
      for (let i = 0; i < 20; i++) {
        const { event } = await appendChange(
          own,
          tenant,
          `subject-${i % 5}`,
          (current, next) => grantConsent(current, grant(i), next, new Date().toISOString()),
          { actor: testActor },
        );
        const written = performance.now();
        for (;;) {
          const [leaf, head] = await Promise.all([leafOf(own, tenant, event.eventId), getHead(own, tenant)]);
          if (leaf && head && leaf.leafIndex < head.size) break;
          if (performance.now() - written > 20_000) throw new Error(`event ${i} not sealed after 20 s`);
          await new Promise((r) => setTimeout(r, 25));
        }
        latencies.push(performance.now() - written);
      }
    } finally {
      await stop();
    }
    latencies.sort((a, b) => a - b);
    const at = (q: number) => Math.round(latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]);
    console.log(
      `write → sealed (receipt available): p50 ${at(0.5)} ms, max ${at(1)} ms over ${latencies.length} writes`,
    );
    // Stopped: the timer is gone, nothing is sealed any more.
    const before = await getHead(own, tenant);
    await appendChange(own, tenant, 'late', (c, n) => grantConsent(c, grant(0), n, new Date().toISOString()), {
      actor: testActor,
    });
    await new Promise((r) => setTimeout(r, 2_000));
    expect((await getHead(own, tenant))?.version).toBe(before?.version);
  });
});

describe('sealer throughput (reported, never asserted)', { timeout: 180_000 }, () => {
  it('seals events written straight into the table', async () => {
    const tenant = tenantId('seal-speed');
    const count = Number(process.env.SEAL_BENCH_EVENTS ?? 5_000);
    const base = Date.now() - 30_000;
    const items = Array.from({ length: count }, (_, i) => {
      const recordedAt = new Date(base + Math.floor(i / 4)).toISOString();
      const unhashed = {
        v: 2 as const,
        eventId: `01SPEED${String(i).padStart(19, '0')}`,
        seq: 1,
        type: 'consent.granted' as const,
        at: recordedAt,
        recordedAt,
        actor: testActor,
        channel: 'sms',
        purpose: 'marketing',
        source: 'web_form',
        data: { noticeVersion: 'v1' },
        detailsDigest: null,
        prevHash: '0'.repeat(64),
      };
      return eventItem(tenant, `s${i}`, { ...unhashed, hash: hashEvent(unhashed) });
    });
    const chunks = [];
    for (let i = 0; i < items.length; i += 25) chunks.push(items.slice(i, i + 25));
    await mapLimit(chunks, 8, (chunk) =>
      db.client.send(
        new BatchWriteCommand({ RequestItems: { [db.table]: chunk.map((Item) => ({ PutRequest: { Item } })) } }),
      ),
    );
    const anchor = new MemoryAnchor();
    const started = performance.now();
    const report = await sealTenant(db, tenant, options(anchor, { since: new Date(base - 1000).toISOString() }));
    const seconds = (performance.now() - started) / 1000;
    expect(report.treeSize).toBe(count);
    console.log(
      `sealer: ${count} events in ${seconds.toFixed(2)} s = ${Math.round(count / seconds)} events/s (${report.batches} batches)`,
    );
    const out = await db.client.send(
      new QueryCommand({
        TableName: db.table,
        KeyConditionExpression: 'PK = :pk AND begins_with(SK, :b)',
        ExpressionAttributeValues: { ':pk': keys.log(tenant), ':b': 'BATCH#' },
      }),
    );
    expect(out.Items).toEqual([]);
  });
});
