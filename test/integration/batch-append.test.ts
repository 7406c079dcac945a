import { InternalServerError, TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import { TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import { GENESIS_HASH, verifyChain } from '#domain/ledger.ts';
import { grantConsent, withdrawConsent } from '#domain/subject-state.ts';
import { mapLimit } from '#shared/concurrency.ts';
import { appendChanges, type BatchChange, MAX_TRANSACT_ITEMS } from '#store/batch-append.ts';
import { type Db, getDb } from '#store/db.ts';
import { StoreUnavailable } from '#store/errors.ts';
import { appendChange, getState, listEvents } from '#store/subjects.ts';
import { tenantId, testActor } from '../helpers/factories.ts';
import { watchedDb } from '../helpers/watched-db.ts';

const subjectKeys = (prefix: string, n: number) =>
  Array.from({ length: n }, (_, i) => `${prefix}-${String(i).padStart(40 - prefix.length, '0')}`);

const grant = (purpose = 'marketing') => ({
  channel: 'whatsapp' as const,
  purpose,
  source: 'web_form',
  noticeVersion: 'v1',
  grantedAt: new Date().toISOString(),
  data: {},
});

/** A withdrawal of WhatsApp marketing for `subjectKey`, applied once under `once` when given. */
const withdrawal = (subjectKey: string, once?: string, data: Record<string, unknown> = {}): BatchChange => ({
  subjectKey,
  apply: (current, next) =>
    withdrawConsent(
      current,
      { channel: 'whatsapp', purpose: 'marketing', source: 'api', data },
      next,
      new Date().toISOString(),
    ),
  options: { actor: testActor, kind: 'phone', ...(once ? { once } : {}) },
});

/** Every subject's chain verifies from genesis and its state item points at its head. */
async function expectIntact(db: Db, tenant: string, keys: string[]) {
  for (const sk of keys) {
    const events = await listEvents(db, tenant, sk);
    const chain = verifyChain(events);
    expect(chain.valid, sk).toBe(true);
    const state = await getState(db, tenant, sk);
    if (events.length === 0) expect(state, sk).toBeUndefined();
    else expect(state, sk).toMatchObject({ seq: events.length, version: events.length, head: chain.head });
  }
}

describe('appendChanges: a group commit of one change per subject, against DynamoDB Local', () => {
  it('records 130 subjects (new and with a history) in transactions of 100 items, each chain intact', async () => {
    const tenant = tenantId();
    const keys = subjectKeys('group', 130);
    // Half of them have a grant already: their new event chains onto it.
    await mapLimit(
      keys.filter((_, i) => i % 2 === 0),
      8,
      (sk) =>
        appendChange(getDb(), tenant, sk, (c, n) => grantConsent(c, grant(), n, new Date().toISOString()), {
          actor: testActor,
        }),
    );
    const { db, seen } = watchedDb();
    const results = await appendChanges(
      db,
      tenant,
      keys.map((sk, i) => withdrawal(sk, `group-once-${tenant}-${i}`, { i })),
    );
    // 4 items per subject (event, state, marker, its ref), 25 subjects to a transaction, by slices of 100
    // subjects: 4 transactions, then 2 (25 + 5 subjects).
    expect(MAX_TRANSACT_ITEMS / 4).toBe(25);
    expect(seen.transactions).toBe(6);
    expect(results.map((r) => r.outcome)).toEqual(keys.map(() => 'recorded'));
    for (const [i, sk] of keys.entries()) {
      const events = await listEvents(db, tenant, sk);
      const prior = i % 2 === 0 ? 1 : 0;
      expect(events).toHaveLength(prior + 1);
      const last = events[prior];
      expect(last).toMatchObject({ seq: prior + 1, type: 'consent.withdrawn', data: { i } });
      expect(last.prevHash).toBe(prior ? events[0].hash : GENESIS_HASH);
      const result = results[i];
      if (result.outcome !== 'recorded') throw new Error(result.outcome);
      // The result is what appendChange returns: the event as stored and the new state.
      expect(result.appended.event).toEqual(last);
      expect(result.appended.state).toEqual(await getState(db, tenant, sk));
      expect(result.appended.state.scopes['whatsapp|marketing']?.withdrawnEventId).toBe(last.eventId);
    }
    await expectIntact(db, tenant, keys);
  });

  it('a concurrent appendChange on one subject: both events land, in one chain, the rest goes in again', async () => {
    const tenant = tenantId();
    const keys = subjectKeys('race', 30);
    const raced = keys[7];
    // Just before the first transaction, another writer appends to a subject the batch has already read.
    const { db, seen } = watchedDb(async (command, transactions) => {
      if (command instanceof TransactWriteCommand && transactions === 1) {
        await appendChange(
          getDb(),
          tenant,
          raced,
          (c, n) => grantConsent(c, grant('news'), n, new Date().toISOString()),
          {
            actor: testActor,
          },
        );
      }
    });
    const results = await appendChanges(
      db,
      tenant,
      keys.map((sk) => withdrawal(sk)),
    );
    expect(results.map((r) => r.outcome)).toEqual(keys.map(() => 'recorded'));
    const events = await listEvents(db, tenant, raced);
    expect(events.map((e) => e.type)).toEqual(['consent.granted', 'consent.withdrawn']);
    const result = results[7];
    if (result.outcome !== 'recorded') throw new Error(result.outcome);
    expect(result.appended.event).toEqual(events[1]);
    // The batch's change was made again on the state the other writer left: its grant is still there.
    const scopes = (await getState(db, tenant, raced))?.scopes;
    expect(scopes?.['whatsapp|news']?.grantEventId).toBe(events[0].eventId);
    expect(scopes?.['whatsapp|marketing']?.withdrawnEventId).toBe(events[1].eventId);
    // One transaction for 30 subjects (2 items each), cancelled by the raced subject's state condition;
    // the 29 others sent again in a second; the raced subject resolved by appendChange in a third.
    expect(seen.transactions).toBe(3);
    await expectIntact(db, tenant, keys);
  });

  it('tells replays: a marker already stored, one appearing meanwhile, the same once twice in a call', async () => {
    const tenant = tenantId();
    const keys = subjectKeys('replay', 6);
    const once = (i: number) => `replay-${tenant}-${i}`;
    // Subject 0's notification was applied before (a redelivery).
    await appendChange(getDb(), tenant, keys[0], withdrawal(keys[0]).apply, { actor: testActor, once: once(0) });
    // Subject 1's marker appears after the batch read the markers, before its transaction (a concurrent redelivery).
    const { db } = watchedDb(async (command, transactions) => {
      if (command instanceof TransactWriteCommand && transactions === 1) {
        await appendChange(getDb(), tenant, 'elsewhere-0000000000000000000000000000000', withdrawal('x').apply, {
          actor: testActor,
          once: once(1),
        });
      }
    });
    const changes = [
      withdrawal(keys[0], once(0)),
      withdrawal(keys[1], once(1)),
      withdrawal(keys[2], once(2)),
      withdrawal(keys[3], once(3)),
      // The same notification for two subjects in one call: the first applies it, the second is a replay.
      withdrawal(keys[4], once(4)),
      withdrawal(keys[5], once(4)),
    ];
    const results = await appendChanges(db, tenant, changes);
    expect(results.map((r) => r.outcome)).toEqual([
      'replayed',
      'replayed',
      'recorded',
      'recorded',
      'recorded',
      'replayed',
    ]);
    expect(await listEvents(db, tenant, keys[0])).toHaveLength(1);
    expect(await listEvents(db, tenant, keys[1])).toHaveLength(0);
    expect(await listEvents(db, tenant, keys[5])).toHaveLength(0);
    await expectIntact(db, tenant, keys.slice(2, 5));
  });

  it('refuses only the item the consent rules refuse; an item with nothing to write is unchanged', async () => {
    const tenant = tenantId();
    const keys = subjectKeys('refuse', 5);
    // Subject 0 withdrew: an imported grant (not the person's own fresh act) is refused.
    await appendChange(getDb(), tenant, keys[0], withdrawal(keys[0]).apply, { actor: testActor });
    const { db } = watchedDb();
    const results = await appendChanges(db, tenant, [
      {
        subjectKey: keys[0],
        apply: (c, n) => grantConsent(c, { ...grant(), source: 'import' }, n, new Date().toISOString()),
        options: { actor: testActor, once: `refuse-${tenant}-0` },
      },
      { subjectKey: keys[1], apply: () => null, options: { actor: testActor, once: `refuse-${tenant}-1` } },
      ...keys.slice(2).map((sk) => withdrawal(sk)),
    ]);
    expect(results[0]).toMatchObject({ outcome: 'refused', error: { code: 'fresh_consent_required' } });
    expect(results[1]).toMatchObject({ outcome: 'unchanged', appended: { result: null, event: undefined } });
    expect(results.slice(2).map((r) => r.outcome)).toEqual(['recorded', 'recorded', 'recorded']);
    expect(await listEvents(db, tenant, keys[0])).toHaveLength(1);
    expect(await listEvents(db, tenant, keys[1])).toHaveLength(0);
    // A refused or unchanged item leaves no marker: the same notification can still apply later.
    const again = await appendChanges(getDb(), tenant, [withdrawal(keys[1], `refuse-${tenant}-1`)]);
    expect(again[0].outcome).toBe('recorded');
    await expectIntact(db, tenant, keys);
  });

  /** A TransactionCanceledException with one reason per item of the command, the first two as given. */
  const cancelled = (command: TransactWriteCommand, ...first: string[]) =>
    new TransactionCanceledException({
      message: 'cancelled',
      CancellationReasons: (command.input.TransactItems ?? []).map((_, i) => ({ Code: first[i] ?? 'None' })),
      $metadata: {},
    });

  it.each([
    ['a 5xx on the second transaction', () => new InternalServerError({ message: 'internal', $metadata: {} })],
    [
      'a transaction cancelled by throttling (a failed condition beside it changes nothing)',
      (command: TransactWriteCommand) => cancelled(command, 'ConditionalCheckFailed', 'ThrottlingError'),
    ],
  ])('%s: the error propagates, nothing half-written, and the redelivery completes it', async (_name, fault) => {
    const tenant = tenantId();
    const keys = subjectKeys('fault', 60);
    const changes = keys.map((sk, i) => withdrawal(sk, `fault-${tenant}-${i}`, { i }));
    const { db } = watchedDb((command, transactions) => {
      if (command instanceof TransactWriteCommand && transactions === 2) throw fault(command);
    });
    await expect(appendChanges(db, tenant, changes)).rejects.toBeInstanceOf(StoreUnavailable);
    const written = await Promise.all(keys.map(async (sk) => (await listEvents(getDb(), tenant, sk)).length));
    // 4 items a subject: transactions of subjects 0-24, 25-49 (the one that failed) and 50-59, each whole or not at all.
    const groups = [written.slice(0, 25), written.slice(25, 50), written.slice(50)];
    for (const group of groups) expect(new Set(group).size).toBe(1);
    expect(groups[1][0]).toBe(0);
    expect(written.every((n) => n <= 1)).toBe(true);
    await expectIntact(getDb(), tenant, keys);

    // The provider retries the delivery: what was written is a replay, the rest is recorded, once each.
    const results = await appendChanges(getDb(), tenant, changes);
    expect(results.map((r) => r.outcome)).toEqual(written.map((n) => (n === 1 ? 'replayed' : 'recorded')));
    for (const [i, sk] of keys.entries()) {
      expect((await listEvents(getDb(), tenant, sk)).map((e) => e.data.i)).toEqual([i]);
    }
    await expectIntact(getDb(), tenant, keys);
  });

  it('takes one change per subject (a subject’s next change waits for a later wave)', async () => {
    const sk = subjectKeys('twice', 1)[0];
    await expect(appendChanges(getDb(), tenantId(), [withdrawal(sk), withdrawal(sk)])).rejects.toThrow(/one change/);
  });
});
