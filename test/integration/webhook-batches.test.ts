import { describe, expect, it } from 'vitest';
import { verifyChain } from '#domain/ledger.ts';
import { grantConsent, withdrawConsent } from '#domain/subject-state.ts';
import { mapLimit } from '#shared/concurrency.ts';
import { resolveSubject } from '#shared/identity/resolve.ts';
import { applyInWaves, applyNotificationGroups, type NotificationGroup } from '#shared/services/webhook-batches.ts';
import { processWebhook } from '#shared/services/whatsapp-webhook.ts';
import { isInFuture } from '#shared/time.ts';
import { type Notification, notificationsOf } from '#shared/whatsapp/payload.ts';
import { type Db, getDb } from '#store/db.ts';
import { appendChange, getState, listEvents } from '#store/subjects.ts';
import { phone, tenantId, testActor } from '../helpers/factories.ts';
import { watchedDb } from '../helpers/watched-db.ts';
import { change, envelope, inbound, preference, status } from '../helpers/whatsapp.ts';

const PNID = '106540352240999';
const minutesAgo = (m: number) => new Date(Date.now() - m * 60_000).toISOString();
const eventName = (n: Notification) => `${n.action.kind}`;

/**
 * What `processNotifications` (shared/services/whatsapp-webhook.ts) does with the group commit: the
 * notifications resolved and grouped by tenant and subject in the order they came, then
 * {@link applyNotificationGroups}.
 */
async function processBatched(db: Db, payload: unknown, tenant: string) {
  const { notifications } = notificationsOf(payload, () => tenant);
  const report = { recorded: 0, replayed: 0, unchanged: 0, invalid: 0 };
  const bySubject = new Map<string, NotificationGroup>();
  for (const delivered of notifications) {
    const now = new Date().toISOString();
    const n = isInFuture(delivered.observedAt, now) ? { ...delivered, observedAt: now } : delivered;
    const resolved = await resolveSubject(n.tenant, n.subject, 'whatsapp');
    const key = `${n.tenant}\n${resolved.subjectKey}`;
    const group = bySubject.get(key) ?? { resolved, items: [] };
    group.items.push({ n, now });
    bySubject.set(key, group);
  }
  await applyNotificationGroups(db, [...bySubject.values()], report, eventName);
  return report;
}

/** A subject's ledger and state, without what differs between two recordings of the same facts. */
async function recorded(tenant: string, subject: { phone: string }) {
  const { subjectKey } = await resolveSubject(tenant, subject);
  const events = await listEvents(getDb(), tenant, subjectKey);
  expect(verifyChain(events).valid).toBe(true);
  const state = await getState(getDb(), tenant, subjectKey);
  expect(state?.head).toBe(events.at(-1)?.hash);
  const ids = new Set(events.map((e) => e.eventId));
  const { scopes, signals, lastOwnActionAt } = state ?? {};
  const facts = JSON.stringify({ scopes, signals, lastOwnActionAt }, (_, v) => (ids.has(v) ? 'event' : v));
  return { events: events.map((e) => [e.seq, e.type, e.source, e.channel, e.purpose, e.at]), facts };
}

describe('a WhatsApp delivery through the group commit (applyNotificationGroups)', () => {
  it('records what the one-by-one path records, in a handful of transactions, each subject in order', async () => {
    const [oneByOne, batched] = [tenantId('wa1'), tenantId('wa2')];
    const person = { phone: phone() };
    const others = Array.from({ length: 100 }, () => ({ phone: phone() }));
    // The person and a few others consented first, in both tenants.
    const granted = minutesAgo(60);
    await mapLimit([person, ...others.slice(0, 10)], 4, async (subject) => {
      for (const tenant of [oneByOne, batched]) {
        const { subjectKey } = await resolveSubject(tenant, subject);
        await appendChange(
          getDb(),
          tenant,
          subjectKey,
          (c, n) =>
            grantConsent(
              c,
              {
                channel: 'whatsapp',
                purpose: 'marketing',
                source: 'web_form',
                noticeVersion: 'v1',
                grantedAt: granted,
                data: {},
              },
              n,
              granted,
            ),
          { actor: testActor, kind: 'phone' },
        );
      }
    });
    // One delivery: a status for each of 100 people, and the person's STOP, START, a read and a stop, in that order.
    const payload = envelope([
      change(PNID, { statuses: others.map((o, i) => status(o, i % 7 ? 'delivered' : 'read', minutesAgo(6))) }),
      change(PNID, inbound(person, minutesAgo(5), { type: 'text', body: 'STOP' })),
      change(PNID, inbound(person, minutesAgo(4), { type: 'text', body: 'START' })),
      change(PNID, { statuses: [status(person, 'read', minutesAgo(3))] }),
      change(PNID, preference(person, 'stop', minutesAgo(2))),
    ]);

    const before = await processWebhook(getDb(), payload, () => oneByOne);
    const { db, seen } = watchedDb();
    const report = await processBatched(db, payload, batched);
    expect(report).toEqual({ recorded: 104, replayed: 0, unchanged: 0, invalid: 0 });
    expect(report).toEqual({ recorded: before.recorded, replayed: 0, unchanged: before.unchanged, invalid: 0 });
    // Wave 1: 101 subjects × 4 items in 5 transactions; waves 2-4: the person's next three, one each.
    expect(seen.transactions).toBe(8);

    const person1 = await recorded(oneByOne, person);
    const person2 = await recorded(batched, person);
    expect(person2.events.map(([, type, source]) => `${type}:${source}`)).toEqual([
      'consent.granted:web_form',
      'consent.withdrawn:keyword',
      'consent.granted:whatsapp_optin',
      'signal.recorded:whatsapp_webhook',
      'consent.withdrawn:whatsapp_stop_promotions',
    ]);
    expect(person2).toEqual(person1);
    for (const other of others) expect(await recorded(batched, other)).toEqual(await recorded(oneByOne, other));

    // Meta redelivers: every notification is a replay, told from the markers without a transaction.
    const again = await processBatched(db, payload, batched);
    expect(again).toEqual({ recorded: 0, replayed: 104, unchanged: 0, invalid: 0 });
    expect(seen.transactions).toBe(8);
    expect(await recorded(batched, person)).toEqual(person2);
  });
});

describe('applyInWaves', () => {
  it('applies each subject’s changes in order and keeps tenants apart (same subjectKey, two tenants)', async () => {
    const [a, b] = [tenantId(), tenantId()];
    const sk = 'waves-subject-000000000000000000000000000';
    const step = (purpose: string, grant: boolean) => ({
      apply: (c: Parameters<typeof grantConsent>[0], n: Parameters<typeof grantConsent>[2]) =>
        grant
          ? grantConsent(
              c,
              {
                channel: 'email',
                purpose,
                source: 'web_form',
                noticeVersion: 'v1',
                grantedAt: new Date().toISOString(),
                data: { purpose },
              },
              n,
              new Date().toISOString(),
            )
          : withdrawConsent(
              c,
              { channel: 'email', purpose, source: 'api', data: { purpose } },
              n,
              new Date().toISOString(),
            ),
      options: { actor: testActor },
    });
    const results = await applyInWaves(getDb(), [
      { tenant: a, subjectKey: sk, changes: [step('p1', true), step('p1', false), step('p2', true)] },
      { tenant: b, subjectKey: sk, changes: [step('p9', false)] },
    ]);
    expect(results.map((r) => r.map((x) => x.outcome))).toEqual([['recorded', 'recorded', 'recorded'], ['recorded']]);
    expect((await listEvents(getDb(), a, sk)).map((e) => `${e.seq}:${e.type}:${e.data.purpose}`)).toEqual([
      '1:consent.granted:p1',
      '2:consent.withdrawn:p1',
      '3:consent.granted:p2',
    ]);
    expect((await listEvents(getDb(), b, sk)).map((e) => e.data.purpose)).toEqual(['p9']);
  });
});
