import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import { recordSignal } from '#domain/likelihood.ts';
import type { PersonRef } from '#domain/links.ts';
import { grantConsent, type SubjectState, withdrawConsent } from '#domain/subject-state.ts';
import { getDb } from '#store/db.ts';
import { itemSize, readUnits } from '#store/item-size.ts';
import { appendChange, getState, getStates, stateItem } from '#store/subjects.ts';
import { keys } from '#store/table.ts';
import { tenantId, testActor } from '../helpers/factories.ts';
import { worstPolicy, worstState } from '../helpers/worst-state.ts';

const db = getDb();

/** The state item as stored, and what a strongly consistent GetItem of it costs. */
async function readItem(tenant: string, subjectKey: string) {
  const out = await db.client.send(
    new GetCommand({
      TableName: db.table,
      Key: { PK: keys.subject(tenant, subjectKey), SK: keys.state },
      ConsistentRead: true,
      ReturnConsumedCapacity: 'TOTAL',
    }),
  );
  return { item: out.Item as Record<string, unknown>, units: out.ConsumedCapacity?.CapacityUnits };
}

/** A tenant id of the longest accepted length (63): it is part of the item's partition key. */
const longTenant = () => tenantId('t').padEnd(63, '0');
const subjectKeyOf = (tenant: string) => `${tenant.slice(0, 12)}`.padEnd(43, 'k');

/**
 * The person link being added to the state (a 43-character personKey and a small propagated cooldown): what
 * the 400 bytes kept free in the item are for. Passed through by the codec as its own attribute.
 */
/**
 * The largest link part a state can hold: a person key, and a merged likely-block window on every channel
 * (shared/domain/links.ts keeps one per channel however many identifiers the person has).
 */
const window = { from: '2026-11-28T10:00:00.000Z', until: '2027-11-28T10:00:00.000Z' };
const person: PersonRef = {
  key: `per_${'0'.repeat(26)}`,
  cooldowns: { whatsapp: window, sms: window, voice: window, email: window, push: window },
};

/**
 * Puts a state as the store writes it, then appends one more change through the real write path (it
 * re-encodes the state): a stop of everything dated before the one recorded, which changes no entry.
 */
async function storeWorst(tenant: string, subjectKey: string, state: SubjectState) {
  await db.client.send(new PutCommand({ TableName: db.table, Item: stateItem(tenant, subjectKey, state) }));
  const { state: after } = await appendChange(
    db,
    tenant,
    subjectKey,
    (current, next) =>
      withdrawConsent(current, { source: 'api', at: '2020-01-01T00:00:00.000Z' }, next, '2026-06-01T00:00:00.000Z'),
    { actor: testActor },
  );
  expect(after.scopes).toEqual(state.scopes);
}

describe('the state item on the table', () => {
  it('counts item sizes as DynamoDB does: 4,096 bytes cost one read unit, 4,097 two', async () => {
    const tenant = tenantId();
    for (const [bytes, units] of [
      [4096, 1],
      [4097, 2],
      [8192, 2],
      [8193, 3],
    ] as const) {
      const subjectKey = `size-${bytes}`;
      const key = { PK: keys.subject(tenant, subjectKey), SK: keys.state };
      const padding = bytes - itemSize({ ...key, pad: '' });
      await db.client.send(new PutCommand({ TableName: db.table, Item: { ...key, pad: 'x'.repeat(padding) } }));
      const { item, units: read } = await readItem(tenant, subjectKey);
      expect(itemSize(item)).toBe(bytes);
      expect([read, readUnits(bytes)]).toEqual([units, units]);
    }
  });

  it('keeps a subject at every bound within one read unit, with room for the person link, at realistic lengths', async () => {
    // 10 grants each withdrawn, 10 objections and more folded, every pattern stopped, 31 sends kept per
    // granted scope, every channel flooded with signals, an erasure pending; purposes and notice versions of
    // 16 characters (docs/limits.md, "State item layout").
    const tenant = longTenant();
    const subjectKey = subjectKeyOf(tenant);
    const state = worstState(subjectKey, { purposeLength: 16, noticeLength: 16 });
    await storeWorst(tenant, subjectKey, { ...state, person } as SubjectState);
    const { item, units } = await readItem(tenant, subjectKey);
    const bytes = itemSize(item);
    const withoutPerson = bytes - itemSize({ person: item.person });
    process.stdout.write(`state item, every bound, 16-character strings: ${withoutPerson} bytes + person\n`);
    expect(withoutPerson).toBeLessThanOrEqual(3700);
    expect(bytes).toBeLessThanOrEqual(4096);
    expect(units).toBe(1);
    expect(item.person).toEqual(person);
  });

  it('keeps a subject at every bound with the longest accepted values within two read units', async () => {
    // The same with 64-character purposes, 128-character notice versions and sends a day apart (longer deltas):
    // past one read unit (docs/limits.md says why), bounded.
    const tenant = longTenant();
    const subjectKey = subjectKeyOf(tenant);
    const state = worstState(subjectKey, { purposeLength: 64, noticeLength: 128, spread: 86_400 });
    await storeWorst(tenant, subjectKey, { ...state, person } as SubjectState);
    const { item, units } = await readItem(tenant, subjectKey);
    const bytes = itemSize(item);
    process.stdout.write(`state item, every bound, longest values: ${bytes} bytes with person\n`);
    expect(bytes).toBeLessThanOrEqual(7500);
    expect(units).toBe(readUnits(bytes));
    expect(units).toBe(2);
  });

  it('reads an item written by an earlier release and re-encodes it on the next write', async () => {
    const tenant = tenantId();
    const subjectKey = 'legacy-subject';
    const granted = grantConsent(
      { subjectKey, kind: 'phone', version: 1, seq: 1, head: 'a'.repeat(64), scopes: {} },
      {
        channel: 'sms',
        purpose: 'news',
        source: 'web_form',
        noticeVersion: 'v1',
        grantedAt: '2026-01-01T00:00:00Z',
        data: {},
      },
      { seq: 1, eventId: '01JGZ0000000000000000000AB' },
      '2026-01-01T00:00:00Z',
    ).state;
    const legacy = { ...granted, lastOwnActionAt: '2026-01-01T00:00:00Z' };
    // The layout of earlier releases: every field of the state an attribute, `tenant` beside the keys.
    await db.client.send(
      new PutCommand({
        TableName: db.table,
        Item: { PK: keys.subject(tenant, subjectKey), SK: keys.state, tenant, ...legacy },
      }),
    );
    expect(await getState(db, tenant, subjectKey)).toEqual(legacy);
    expect((await getStates(db, tenant, [subjectKey])).get(subjectKey)).toEqual(legacy);
    const observedAt = '2026-02-01T00:00:00.000Z';
    const { state } = await appendChange(
      db,
      tenant,
      subjectKey,
      (current) =>
        recordSignal(
          current,
          { channel: 'sms', type: 'message_sent', observedAt, messageId: 'm1', source: 'api' },
          worstPolicy(4),
          observedAt,
        ),
      { actor: testActor },
    );
    const { item } = await readItem(tenant, subjectKey);
    expect(Object.keys(item).sort()).toEqual(['PK', 'SK', 'b', 'n']);
    expect(item.n).toBe(2);
    expect(await getState(db, tenant, subjectKey)).toEqual(state);
    expect(state.scopes).toEqual(legacy.scopes);
  });
});
