import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BatchGetCommand, DeleteCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashEvent, type LedgerEvent } from '#domain/ledger.ts';
import { createApiKey } from '#shared/auth/api-keys.ts';
import { mapLimit } from '#shared/concurrency.ts';
import { LocalAnchor, MemoryAnchor } from '#shared/log/anchor.ts';
import {
  consistencyNodes,
  consistencyProof,
  inclusionNodes,
  inclusionProof,
  leafHash,
  nodeKey,
  rootNodes,
  verifyConsistency,
  verifyInclusion,
} from '#shared/log/merkle.ts';
import { type LogSigner, logSignerFromPem } from '#shared/log/note.ts';
import { sealTenant } from '#shared/services/sealer.ts';
import { type Db, getDb } from '#store/db.ts';
import {
  claimBatch,
  finalizeBatch,
  getCheckpoint,
  getHead,
  getNodes,
  LogConflict,
  LogCorrupted,
  leafOf,
  listCheckpoints,
  listLeaves,
  listLogTenants,
  logKeys,
  registerLog,
} from '#store/log.ts';
import { eventItem } from '#store/subjects.ts';
import { keys } from '#store/table.ts';
import { tenantId, testActor } from '../helpers/factories.ts';

let db: Db;
let signer: LogSigner;
let tenant: string;
const SIZE = 300;
/** The events of the sealed tenant, in leaf order. */
let events: { eventId: string; subjectKey: string; hash: string }[] = [];

/** `count` events of one second, written straight into the table (the sealer reads them from the audit index). */
async function seedEvents(t: string, count: number, base: number) {
  const written: { eventId: string; subjectKey: string; hash: string }[] = [];
  const items = Array.from({ length: count }, (_, i) => {
    const recordedAt = new Date(base + i).toISOString();
    const unhashed = {
      v: 2 as const,
      eventId: `01STORE${String(i).padStart(19, '0')}`,
      seq: 1,
      type: 'consent.granted' as const,
      at: recordedAt,
      recordedAt,
      actor: testActor,
      channel: 'email',
      purpose: 'news',
      source: 'web_form',
      data: { noticeVersion: 'v1', n: i },
      detailsDigest: null,
      prevHash: '0'.repeat(64),
    };
    const event: LedgerEvent = { ...unhashed, hash: hashEvent(unhashed) };
    written.push({ eventId: event.eventId, subjectKey: `subject-${i}`, hash: event.hash });
    return eventItem(t, `subject-${i}`, event);
  });
  await mapLimit(items, 16, (Item) => db.client.send(new PutCommand({ TableName: db.table, Item })));
  return written;
}

const sealOptions = (base: number) => ({
  signer,
  anchor: new MemoryAnchor(),
  lagMs: 0,
  now: new Date(base + 60_000),
  since: new Date(base - 1000).toISOString(),
});

beforeAll(async () => {
  db = getDb();
  signer = logSignerFromPem(
    generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }) as string,
  );
  tenant = tenantId('logstore');
  const base = Date.now() - 120_000;
  events = await seedEvents(tenant, SIZE, base);
  // Batches of 7: checkpoints at 7, 14, …, 294, 300 (43 of them), and nodes completed across batch borders.
  await sealTenant(db, tenant, { ...sealOptions(base), batchSize: 7 });
}, 120_000);

/** Reads the nodes a proof needs, counting the stored items read. */
async function readNodes(ids: ReturnType<typeof inclusionNodes>) {
  const nodes = await getNodes(db, tenant, ids);
  return (id: { level: number; index: number }) => {
    const hash = nodes.get(nodeKey(id));
    if (!hash) throw new Error(`missing ${nodeKey(id)}`);
    return hash;
  };
}

const rootOf = async (size: number) =>
  Buffer.from((await getCheckpoint(db, tenant, size))?.rootHash as string, 'base64');

describe('the log store', () => {
  it('keeps the head, the leaves in order and the eventId → leaf mapping', async () => {
    expect(await getHead(db, tenant)).toMatchObject({
      tenant,
      size: SIZE,
      version: expect.any(Number),
      anchored: SIZE,
    });
    const leaves = await listLeaves(db, tenant, 0, SIZE);
    expect(leaves.map((l) => l.eventId)).toEqual(events.map((e) => e.eventId));
    expect(leaves[5]).toEqual({
      index: 5,
      eventId: events[5].eventId,
      subjectKey: 'subject-5',
      seq: 1,
      eventHash: events[5].hash,
    });
    expect(await listLeaves(db, tenant, 290, 295)).toHaveLength(5);
    expect(await listLeaves(db, tenant, 10, 10)).toEqual([]);
    expect(await leafOf(db, tenant, events[123].eventId)).toEqual({
      leafIndex: 123,
      subjectKey: 'subject-123',
      seq: 1,
    });
    expect(await leafOf(db, tenant, '01NOSUCHEVENT0000000000000')).toBeUndefined();
  });

  it('stores every perfect subtree, level 0 being the leaf hashes', async () => {
    const nodes = await getNodes(db, tenant, [
      { level: 0, index: 17 },
      { level: 8, index: 0 },
      { level: 3, index: 36 },
      { level: 3, index: 37 }, // leaves 296..303: not complete in a tree of 300
    ]);
    expect(nodes.get('0:17')).toEqual(leafHash(Buffer.from(events[17].hash, 'hex')));
    expect(nodes.has('8:0')).toBe(true);
    expect(nodes.has('3:36')).toBe(true);
    expect(nodes.has('3:37')).toBe(false);
  });

  it('gives inclusion proofs from O(log n) node reads that verify against every checkpoint', async () => {
    const checkpoints = await listCheckpoints(db, tenant);
    expect(checkpoints.map((c) => c.treeSize)).toEqual([...Array.from({ length: 42 }, (_, i) => 7 * (i + 1)), 300]);
    for (const size of [7, 14, 147, 294, 300]) {
      const root = await rootOf(size);
      for (const index of [0, 1, size - 1, Math.floor(size / 2)]) {
        const ids = inclusionNodes(index, size);
        expect(ids.length).toBeLessThanOrEqual(2 * Math.ceil(Math.log2(size)) + 1);
        const proof = inclusionProof(index, size, await readNodes(ids));
        const leaf = leafHash(Buffer.from(events[index].hash, 'hex'));
        expect(verifyInclusion(leaf, index, size, proof, root), `${index} in ${size}`).toBe(true);
        expect(verifyInclusion(leafHash(randomBytes(32)), index, size, proof, root)).toBe(false);
      }
    }
  });

  it('gives consistency proofs between any two checkpoints', async () => {
    const sizes = [7, 21, 63, 147, 294, 300];
    for (const from of sizes) {
      for (const to of sizes.filter((s) => s > from)) {
        const proof = consistencyProof(from, to, await readNodes(consistencyNodes(from, to)));
        expect(verifyConsistency(from, to, proof, await rootOf(from), await rootOf(to)), `${from}→${to}`).toBe(true);
      }
    }
    // The root of the latest tree is the stored nodes of its right edge, folded.
    const edge = await getNodes(db, tenant, rootNodes(SIZE));
    expect(edge.size).toBe(rootNodes(SIZE).length);
  });

  it('returns the latest checkpoint, one by size, and none for a size never signed', async () => {
    const latest = await getCheckpoint(db, tenant);
    expect(latest).toMatchObject({ origin: `consent-gate/${tenant}`, treeSize: SIZE, keyId: signer.keyId });
    expect(latest?.note.startsWith(`consent-gate/${tenant}\n300\n${latest.rootHash}\n\n— consent-gate `)).toBe(true);
    expect(Date.parse(latest?.timestamp as string)).not.toBeNaN();
    expect(await getCheckpoint(db, tenant, 14)).toMatchObject({ treeSize: 14 });
    expect(await getCheckpoint(db, tenant, 15)).toBeUndefined();
    expect((await listCheckpoints(db, tenant, { from: 280, to: 300 })).map((c) => c.treeSize)).toEqual([
      280, 287, 294, 300,
    ]);
  });

  it('leaves no batch item behind', async () => {
    const out = await db.client.send(
      new BatchGetCommand({
        RequestItems: { [db.table]: { Keys: [{ PK: keys.log(tenant), SK: logKeys.batch(SIZE) }] } },
      }),
    );
    expect(out.Responses?.[db.table]).toEqual([]);
  });
});

describe('one writer per tenant', () => {
  it('refuses a claim made from a stale head, and a second finalize', async () => {
    const t = tenantId('logstore-cas');
    const head = await registerLog(db, t, '2026-01-01T00:00:00.000Z');
    if (!head) throw new Error('no head');
    const leaf = { eventId: '01A', subjectKey: 's', seq: 1, eventHash: 'ab'.repeat(32) };
    const claimed = await claimBatch(db, head, [leaf], { watermark: 'w1' });
    await expect(claimBatch(db, head, [leaf], { watermark: 'w2' })).rejects.toBeInstanceOf(LogConflict);
    expect(await getHead(db, t)).toMatchObject({ version: 1, pending: { size: 0, count: 1 }, watermark: 'w1' });
    const cp = { origin: `consent-gate/${t}`, treeSize: 1, rootHash: 'x', timestamp: 'now', keyId: 'k', note: 'n' };
    await finalizeBatch(db, claimed, cp);
    await expect(finalizeBatch(db, claimed, cp)).rejects.toBeInstanceOf(LogConflict);
    expect(await getHead(db, t)).toMatchObject({ size: 1, version: 2, rootHash: 'x' });
    expect((await getHead(db, t))?.pending).toBeUndefined();
  });

  it('refuses to finalize over a checkpoint that already exists (a rolled-back head)', async () => {
    const t = tenantId('logstore-rollback');
    const head = await registerLog(db, t, '2026-01-01T00:00:00.000Z');
    if (!head) throw new Error('no head');
    await db.client.send(
      new PutCommand({ TableName: db.table, Item: { PK: keys.log(t), SK: logKeys.checkpoint(1), note: 'old' } }),
    );
    const claimed = await claimBatch(
      db,
      head,
      [{ eventId: '01A', subjectKey: 's', seq: 1, eventHash: 'ab'.repeat(32) }],
      {},
    );
    const cp = { origin: `consent-gate/${t}`, treeSize: 1, rootHash: 'x', timestamp: 'now', keyId: 'k', note: 'n' };
    await expect(finalizeBatch(db, claimed, cp)).rejects.toBeInstanceOf(LogCorrupted);
    await db.client.send(
      new DeleteCommand({ TableName: db.table, Key: { PK: keys.log(t), SK: logKeys.checkpoint(1) } }),
    );
  });

  it('registers a log once, lists it in the head index, and starts it with the first API key', async () => {
    const t = tenantId('logstore-reg');
    expect(await getHead(db, t)).toBeUndefined();
    expect(await registerLog(db, t)).toBeUndefined(); // no key, no `since`: nothing to start from
    const key = await createApiKey(db, { tenant: t, scopes: ['audit:read'] });
    const head = await getHead(db, t);
    expect(head).toMatchObject({ size: 0, version: 0, scannedTo: `${key.createdAt.slice(0, 10)}T00:00:00.000Z` });
    await registerLog(db, t, '2020-01-01T00:00:00.000Z');
    expect((await getHead(db, t))?.scannedTo).toBe(head?.scannedTo);
    expect(await listLogTenants(db)).toContain(t);
  });
});

describe('the local anchor, written by the sealer', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'anchor-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('the sealer anchors into the local folder: each checkpoint once, the same note as the table', async () => {
    const anchor = new LocalAnchor(dir);
    const t = tenantId('logstore-local');
    const base = Date.now() - 120_000;
    await seedEvents(t, 20, base);
    await sealTenant(db, t, { ...sealOptions(base), anchor, batchSize: 8 });
    const files = readdirSync(join(dir, 'checkpoints', t)).sort();
    expect(files).toEqual(['16.note', '20.note', '8.note']);
    const table = await listCheckpoints(db, t);
    for (const cp of table)
      expect(readFileSync(join(dir, 'checkpoints', t, `${cp.treeSize}.note`), 'utf8')).toBe(cp.note);
    // A tampered anchor file makes the next anchoring of that size fail loudly.
    writeFileSync(join(dir, 'checkpoints', t, '20.note.bak'), 'ignored');
    expect((await anchor.list(t)).map((c) => c.treeSize)).toEqual([8, 16, 20]);
  });
});
