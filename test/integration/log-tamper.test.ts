import { generateKeyPairSync } from 'node:crypto';
import {
  BatchWriteCommand,
  DeleteCommand,
  GetCommand,
  PutCommand,
  QueryCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { beforeAll, describe, expect, it } from 'vitest';
import type { LogBreak } from '#domain/audit-verify.ts';
import { emptyState, grantConsent, type SubjectState, withdrawConsent } from '#domain/subject-state.ts';
import { MemoryAnchor } from '#shared/log/anchor.ts';
import { LOG_KEY_NAME, type LogSigner, logSignerFromPem, verifierKey } from '#shared/log/note.ts';
import { verifyRange } from '#shared/services/audit-verify.ts';
import { type LogVerifyOptions, verifyLog } from '#shared/services/log-verify.ts';
import { sealTenant } from '#shared/services/sealer.ts';
import { type Db, getDb, queryAll } from '#store/db.ts';
import { eraseSubject, purgeProof } from '#store/erasure.ts';
import { getHead, leafOf } from '#store/log.ts';
import { appendChange, chainEvent, eventItem, getState, listEvents, stateItem } from '#store/subjects.ts';
import { keys } from '#store/table.ts';
import { randomSubjectKey } from '../helpers/audit-seed.ts';
import { tenantId, testActor } from '../helpers/factories.ts';

/*
 * The insider of issue 12: write access to the table, none to the signing key or to the anchored checkpoints.
 * Each case tampers directly in DynamoDB Local, as such an insider would, and requires the log verification
 * (CLI `log verify` = verifyLog; `/v1/audit/verify` = verifyRange) to name it: leaf index, subjectKey, reason.
 */

let db: Db;
let signer: LogSigner;

beforeAll(() => {
  db = getDb();
  signer = logSignerFromPem(
    generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }) as string,
  );
});

const now = () => new Date().toISOString();
const RANGE = () => ({
  from: new Date(Date.now() - 3_600_000).toISOString(),
  to: new Date(Date.now() + 3_600_000).toISOString(),
});

const grant = (channel: 'whatsapp' | 'sms' | 'email', purpose = 'marketing') => ({
  channel,
  purpose,
  source: 'web_form',
  noticeVersion: 'v1',
  grantedAt: now(),
  details: { evidenceText: 'I agree' },
});

async function grantTo(tenant: string, subjectKey: string, channel: 'whatsapp' | 'sms' | 'email' = 'whatsapp') {
  return (
    await appendChange(db, tenant, subjectKey, (current, next) => grantConsent(current, grant(channel), next, now()), {
      actor: testActor,
    })
  ).event;
}

async function withdrawFrom(tenant: string, subjectKey: string, channel: 'whatsapp' | 'sms' | 'email' = 'whatsapp') {
  return (
    await appendChange(
      db,
      tenant,
      subjectKey,
      (current, next) => withdrawConsent(current, { channel, purpose: 'marketing', source: 'api' }, next, now()),
      { actor: testActor },
    )
  ).event;
}

/** A tenant with a few bystander subjects, and the log context of its test: anchor, keys, seal, verify. */
async function setup() {
  const tenant = tenantId('tamper');
  const anchor = new MemoryAnchor();
  const options: LogVerifyOptions = { keys: [verifierKey(LOG_KEY_NAME, signer.publicKey)], anchor };
  for (let i = 0; i < 3; i++) await grantTo(tenant, randomSubjectKey());
  // A moment first: an event recorded in the very millisecond of the seal's cutoff waits for the next one.
  const seal = async () => {
    await new Promise((resolve) => setTimeout(resolve, 5));
    return sealTenant(db, tenant, {
      signer,
      anchor,
      lagMs: 0,
      since: new Date(Date.now() - 3_600_000).toISOString(),
    });
  };
  const full = () => verifyLog(db, tenant, options);
  const range = () => verifyRange(db, tenant, RANGE(), options);
  return { tenant, anchor, options, seal, full, range };
}

const leafIndexOf = async (tenant: string, eventId: string) => (await leafOf(db, tenant, eventId))?.leafIndex;

/** The log breaks of a report (chain breaks have a seq, log breaks a leafIndex). */
const logBreaks = (broken: readonly object[]) => broken.filter((b): b is LogBreak => 'leafIndex' in b);

const partition = (tenant: string, subjectKey: string) =>
  queryAll(db, {
    KeyConditionExpression: 'PK = :pk',
    ExpressionAttributeValues: { ':pk': keys.subject(tenant, subjectKey) },
    ConsistentRead: true,
  });

async function deleteItems(items: Record<string, unknown>[]) {
  for (let i = 0; i < items.length; i += 25) {
    const chunk = items.slice(i, i + 25);
    await db.client.send(
      new BatchWriteCommand({
        RequestItems: { [db.table]: chunk.map((item) => ({ DeleteRequest: { Key: { PK: item.PK, SK: item.SK } } })) },
      }),
    );
  }
}

const deleteEvent = (tenant: string, subjectKey: string, seq: number) =>
  db.client.send(
    new DeleteCommand({ TableName: db.table, Key: { PK: keys.subject(tenant, subjectKey), SK: keys.event(seq) } }),
  );

/** Puts a state item as the ledger append leaves it. */
const putState = (tenant: string, state: SubjectState) =>
  db.client.send(
    new PutCommand({
      TableName: db.table,
      Item: stateItem(tenant, state.subjectKey, state),
    }),
  );

describe('log verification catches the insider', () => {
  it('finds nothing wrong in an untouched log, with redaction and a purge by erasure and retention', async () => {
    const t = await setup();
    const redacted = randomSubjectKey();
    await grantTo(t.tenant, redacted);
    const purged = randomSubjectKey();
    await grantTo(t.tenant, purged);
    await t.seal();
    // Erasure redacts (details gone, public part kept as proof); a proof of 0 days purges the events.
    await eraseSubject(db, t.tenant, redacted, { reason: 'request', now: now(), actor: testActor, proofDays: 30 });
    await eraseSubject(db, t.tenant, purged, { reason: 'retention', now: now(), actor: testActor, proofDays: 30 });
    await t.seal();
    expect(await purgeProof(db, t.tenant, purged, now())).toBe(true);
    expect((await listEvents(db, t.tenant, redacted)).every((e) => e.details === undefined)).toBe(true);
    expect(await listEvents(db, t.tenant, purged)).toEqual([]);

    const full = await t.full();
    expect(full.broken).toEqual([]);
    expect(full).toMatchObject({ valid: true, treeSize: 7, leaves: 7, events: 5, anchored: 2 });
    expect(full.checkpoint).toMatchObject({ treeSize: 7, anchored: true });
    const range = await t.range();
    expect(range.broken).toEqual([]);
    expect(range.valid).toBe(true);
    expect(range.log).toMatchObject({ treeSize: 7, leaves: 7 });
  });

  it('(1) a chain rewritten without its withdrawal, every hash recomputed and the head updated: rewritten / edited', async () => {
    const t = await setup();
    const subjectKey = randomSubjectKey();
    const e1 = await grantTo(t.tenant, subjectKey, 'whatsapp');
    const e2 = await withdrawFrom(t.tenant, subjectKey, 'whatsapp');
    const e3 = await grantTo(t.tenant, subjectKey, 'sms');
    await t.seal();
    expect((await t.full()).valid).toBe(true);

    // The insider replays the chain after the grant without the withdrawal: the later grant keeps its id and
    // times, takes the withdrawal's seq, and its hash is recomputed; the head follows.
    const afterE1 = grantConsent(
      emptyState(subjectKey, 'phone'),
      { ...grant('whatsapp'), grantedAt: e1.at },
      e1,
      e1.at,
    );
    let state: SubjectState = { ...afterE1.state, version: 1, seq: 1, head: e1.hash };
    const next = { seq: 2, eventId: e3.eventId };
    const change = grantConsent(state, { ...grant('sms'), grantedAt: e3.at }, next, e3.at);
    const rewritten = chainEvent(state, next, change.event, testActor, e3.recordedAt as string);
    state = { ...change.state, version: 2, seq: 2, head: rewritten.hash };
    await deleteEvent(t.tenant, subjectKey, 3);
    await db.client.send(new PutCommand({ TableName: db.table, Item: eventItem(t.tenant, subjectKey, rewritten) }));
    await putState(t.tenant, { ...state, version: 10 });
    // The chain alone is fine now: only the log can tell.
    expect((await getState(db, t.tenant, subjectKey))?.scopes['whatsapp|marketing']?.withdrawnAt).toBeUndefined();

    const [i2, i3] = [await leafIndexOf(t.tenant, e2.eventId), await leafIndexOf(t.tenant, e3.eventId)];
    for (const report of [await t.full(), await t.range()]) {
      expect(report.valid).toBe(false);
      expect(logBreaks(report.broken)).toEqual([
        expect.objectContaining({ leafIndex: i2, subjectKey, eventId: e2.eventId, reason: 'rewritten' }),
        expect.objectContaining({ leafIndex: i3, subjectKey, eventId: e3.eventId, reason: 'edited' }),
      ]);
    }
    const [rewrittenBreak, editedBreak] = logBreaks((await t.full()).broken);
    expect(rewrittenBreak.detail).toContain('seq 2 now holds another event');
    expect(editedBreak.detail).toContain('moved from seq 3 to seq 2');
  });

  it('(2) a subject deleted entirely (state and events): missing, for each of its leaves', async () => {
    const t = await setup();
    const subjectKey = randomSubjectKey();
    const e1 = await grantTo(t.tenant, subjectKey, 'whatsapp');
    const e2 = await withdrawFrom(t.tenant, subjectKey, 'whatsapp');
    await t.seal();
    await deleteItems(await partition(t.tenant, subjectKey));

    for (const report of [await t.full(), await t.range()]) {
      expect(logBreaks(report.broken)).toEqual([
        expect.objectContaining({ leafIndex: await leafIndexOf(t.tenant, e1.eventId), subjectKey, reason: 'missing' }),
        expect.objectContaining({ leafIndex: await leafIndexOf(t.tenant, e2.eventId), subjectKey, reason: 'missing' }),
      ]);
    }
    expect(logBreaks((await t.full()).broken)[0].detail).toContain('subject was deleted');
  });

  it("(3) an erased person's tombstone deleted: the leaves of its events point to a subject without state: missing", async () => {
    const t = await setup();
    const subjectKey = randomSubjectKey();
    await grantTo(t.tenant, subjectKey);
    await withdrawFrom(t.tenant, subjectKey);
    await t.seal();
    // Erased with a proof of 0 days: its events go at once (not a break), only the tombstone stays.
    await eraseSubject(db, t.tenant, subjectKey, { reason: 'request', now: now(), actor: testActor, proofDays: 0 });
    await t.seal();
    expect(await listEvents(db, t.tenant, subjectKey)).toEqual([]);
    expect((await t.full()).valid).toBe(true);
    await db.client.send(
      new DeleteCommand({ TableName: db.table, Key: { PK: keys.subject(t.tenant, subjectKey), SK: keys.state } }),
    );

    for (const report of [await t.full(), await t.range()]) {
      const breaks = logBreaks(report.broken);
      expect(breaks).toHaveLength(2);
      for (const b of breaks) expect(b).toMatchObject({ subjectKey, reason: 'missing' });
      expect(breaks[0].detail).toContain('the subject was deleted');
    }
  });

  it('(3b) a tombstone deleted while its proof is kept: missing, the events remaining', async () => {
    const t = await setup();
    const subjectKey = randomSubjectKey();
    await grantTo(t.tenant, subjectKey);
    await eraseSubject(db, t.tenant, subjectKey, { reason: 'request', now: now(), actor: testActor, proofDays: 30 });
    await t.seal();
    await db.client.send(
      new DeleteCommand({ TableName: db.table, Key: { PK: keys.subject(t.tenant, subjectKey), SK: keys.state } }),
    );
    const breaks = logBreaks((await t.full()).broken);
    expect(breaks.length).toBeGreaterThanOrEqual(2);
    for (const b of breaks) expect(b).toMatchObject({ subjectKey, reason: 'missing' });
    expect(breaks[0].detail).toContain('state item');
  });

  it("(4) a subject's last event deleted and the head moved back to the one before: missing", async () => {
    const t = await setup();
    const subjectKey = randomSubjectKey();
    const e1 = await grantTo(t.tenant, subjectKey);
    const e2 = await withdrawFrom(t.tenant, subjectKey);
    await t.seal();
    const state = (await getState(db, t.tenant, subjectKey)) as SubjectState;
    await deleteEvent(t.tenant, subjectKey, 2);
    await putState(t.tenant, { ...state, seq: 1, head: e1.hash, version: state.version + 1 });

    const expected = {
      leafIndex: await leafIndexOf(t.tenant, e2.eventId),
      subjectKey,
      eventId: e2.eventId,
      reason: 'missing',
    };
    const full = await t.full();
    expect(logBreaks(full.broken)).toEqual([expect.objectContaining(expected)]);
    expect(logBreaks(full.broken)[0].detail).toBe('the event (seq 2) was deleted');
    const range = await t.range();
    // The chain itself is intact now (the head was moved back): only the log tells.
    expect(range.broken).toEqual([expect.objectContaining(expected)]);
  });

  it('(5) the only in-range event of a subject deleted: missing', async () => {
    const t = await setup();
    const subjectKey = randomSubjectKey();
    const e1 = await grantTo(t.tenant, subjectKey);
    await t.seal();
    await deleteEvent(t.tenant, subjectKey, 1);
    const expected = {
      leafIndex: await leafIndexOf(t.tenant, e1.eventId),
      subjectKey,
      eventId: e1.eventId,
      reason: 'missing',
    };
    expect(logBreaks((await t.full()).broken)).toEqual([expect.objectContaining(expected)]);
    expect(logBreaks((await t.range()).broken)).toEqual([expect.objectContaining(expected)]);
  });

  it("(5b) an event's audit-index attributes stripped (GSI1PK, GSI1SK): index_missing", async () => {
    const t = await setup();
    const subjectKey = randomSubjectKey();
    await grantTo(t.tenant, subjectKey, 'whatsapp');
    const e2 = await grantTo(t.tenant, subjectKey, 'sms');
    await t.seal();
    await db.client.send(
      new UpdateCommand({
        TableName: db.table,
        Key: { PK: keys.subject(t.tenant, subjectKey), SK: keys.event(2) },
        UpdateExpression: 'REMOVE GSI1PK, GSI1SK',
      }),
    );
    const expected = {
      leafIndex: await leafIndexOf(t.tenant, e2.eventId),
      subjectKey,
      eventId: e2.eventId,
      reason: 'index_missing',
    };
    for (const report of [await t.full(), await t.range()]) {
      expect(logBreaks(report.broken)).toEqual([expect.objectContaining(expected)]);
    }
  });

  it('an event edited in place: edited; an event inserted behind the sealer: inserted', async () => {
    const t = await setup();
    const subjectKey = randomSubjectKey();
    const e1 = await grantTo(t.tenant, subjectKey, 'whatsapp');
    await t.seal();
    await db.client.send(
      new UpdateCommand({
        TableName: db.table,
        Key: { PK: keys.subject(t.tenant, subjectKey), SK: keys.event(1) },
        UpdateExpression: 'SET purpose = :p',
        ExpressionAttributeValues: { ':p': 'newsletter' },
      }),
    );
    // A forged grant, backdated into what the log has already sealed, chained properly.
    const state = (await getState(db, t.tenant, subjectKey)) as SubjectState;
    const at = new Date(Date.parse(e1.recordedAt as string) + 1).toISOString();
    const next = { seq: state.seq + 1, eventId: e1.eventId.replace(/.$/, (c) => (c === 'Z' ? 'Y' : 'Z')) };
    const change = grantConsent(state, { ...grant('email'), grantedAt: at }, next, at);
    const forged = chainEvent(state, next, change.event, testActor, at);
    await db.client.send(new PutCommand({ TableName: db.table, Item: eventItem(t.tenant, subjectKey, forged) }));
    await putState(t.tenant, { ...change.state, version: state.version + 1, seq: next.seq, head: forged.hash });
    expect((await getHead(db, t.tenant))?.size).toBe(4);

    for (const report of [await t.full(), await t.range()]) {
      expect(logBreaks(report.broken)).toEqual([
        expect.objectContaining({ leafIndex: await leafIndexOf(t.tenant, e1.eventId), subjectKey, reason: 'edited' }),
        expect.objectContaining({ leafIndex: null, subjectKey, eventId: forged.eventId, reason: 'inserted' }),
      ]);
    }
  });

  it('a tree rolled back (HEAD, nodes, leaves and checkpoints replaced by an older state): rolled_back against the anchored checkpoints', async () => {
    const t = await setup();
    await t.seal();
    const snapshot = await logPartition(t.tenant);
    const older = (await getHead(db, t.tenant))?.size;
    for (let i = 0; i < 3; i++) await grantTo(t.tenant, randomSubjectKey());
    await t.seal();
    expect((await t.full()).valid).toBe(true);

    await deleteItems(await logPartition(t.tenant));
    for (const item of snapshot) await db.client.send(new PutCommand({ TableName: db.table, Item: item }));
    expect((await getHead(db, t.tenant))?.size).toBe(older);

    for (const report of [await t.full(), await t.range()]) {
      expect(logBreaks(report.broken)).toEqual([
        expect.objectContaining({ leafIndex: older, subjectKey: null, reason: 'rolled_back' }),
      ]);
      expect(logBreaks(report.broken)[0].detail).toContain('anchored checkpoint of size 6');
    }
    // Without the anchor (only the table, rolled back with it) the rollback would go unseen: the anchor is the point.
    expect((await verifyLog(db, t.tenant, { keys: t.options.keys })).valid).toBe(true);
  });

  it("a leaf rewritten in the tree's tile: edited, and the tree no longer gives the checkpoints' root: rewritten", async () => {
    const t = await setup();
    await t.seal();
    const key = { PK: keys.log(t.tenant), SK: 'TILE#00#000000000000' };
    const tile = (await db.client.send(new GetCommand({ TableName: db.table, Key: key, ConsistentRead: true }))).Item;
    const leaves = [...((tile?.leaves as string[] | undefined) ?? [])];
    leaves[1] = leaves[1].replace(/[0-9a-f]{64}$/, 'f'.repeat(64));
    await db.client.send(new PutCommand({ TableName: db.table, Item: { ...tile, leaves } }));

    const full = logBreaks((await t.full()).broken);
    expect(full).toContainEqual(expect.objectContaining({ leafIndex: 1, reason: 'edited' }));
    expect(full).toContainEqual(
      expect.objectContaining({
        leafIndex: 0,
        reason: 'rewritten',
        detail: expect.stringContaining('no longer give the root of the anchored checkpoint of size 3'),
      }),
    );
    const range = logBreaks((await t.range()).broken);
    expect(range).toContainEqual(
      expect.objectContaining({
        leafIndex: 1,
        reason: 'edited',
        detail: expect.stringContaining('does not match the tree'),
      }),
    );
    expect(range.map((b) => b.reason)).toContain('rewritten');
  });
});

async function logPartition(tenant: string) {
  const out = await db.client.send(
    new QueryCommand({
      TableName: db.table,
      KeyConditionExpression: 'PK = :pk',
      ExpressionAttributeValues: { ':pk': keys.log(tenant) },
      ConsistentRead: true,
    }),
  );
  return out.Items ?? [];
}
