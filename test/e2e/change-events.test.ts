import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { grantConsent } from '#domain/subject-state.ts';
import { ensureTable } from '#infra/local/bootstrap.ts';
import { deliver } from '#shared/services/change-delivery.ts';
import type { DeliveryMessage, DeliveryQueue } from '#shared/services/change-delivery.ts';
import { dispatchChanges } from '#shared/services/change-dispatch.ts';
import { LocalDeliveryQueue } from '#shared/services/local-delivery-queue.ts';
import { type LocalChangeEvents, localStreamsClient, startLocalChangeEvents } from '#shared/services/local-events.ts';
import { runRetention } from '#shared/services/retention.ts';
import { memoryCheckpoint, StreamPoller } from '#shared/services/stream-poller.ts';
import { createDocumentClient } from '#store/client.ts';
import type { Db } from '#store/db.ts';
import { listDeliveries, putEndpoint } from '#store/event-endpoints.ts';
import { appendChange } from '#store/subjects.ts';
import { grantBody, phone, tenantWithKey, testActor } from '../helpers/factories.ts';
import { client, describeLocal, startServerOnTable } from '../helpers/http.ts';
import { type Received, startReceiver, until } from '../helpers/receiver.ts';

// A table of this file's own (its stream is read from its start), the real local server in front of it, the
// local pipeline (stream poller → dispatcher → in-process queue → signed deliveries) with a backoff of
// milliseconds instead of seconds, and a real receiver verifying our signatures with `standardwebhooks`.
const SCHEDULE = { baseMs: 40, capMs: 160, windowMs: 60_000 };
const tableName = `events-${randomBytes(4).toString('hex')}`;
const db: Db = { client: createDocumentClient({ tableName, endpoint: process.env.DYNAMODB_ENDPOINT }), table: tableName };

let server: Awaited<ReturnType<typeof startServerOnTable>>;
let events: LocalChangeEvents;
let receiver: Awaited<ReturnType<typeof startReceiver>>;
let secrets: string[] = [];
let tenant: string;
let admin: ReturnType<typeof client>;

beforeAll(async () => {
  process.env.ALLOW_INSECURE_ENDPOINTS = 'true';
  process.env.CHANGES_SETTLE_MS = '0';
  server = await startServerOnTable(db);
  events = await startLocalChangeEvents(db, {
    endpoint: process.env.DYNAMODB_ENDPOINT as string,
    everyMs: 50,
    deliver: { schedule: SCHEDULE, policy: { allowInsecure: true }, timeoutMs: 300 },
  });
  receiver = await startReceiver(() => secrets);
  const owner = await tenantWithKey(['admin']);
  tenant = owner.tenant;
  admin = client(server.url, owner.key);
});
afterAll(async () => {
  await events?.stop();
  await receiver?.close();
  await server?.close();
  delete process.env.ALLOW_INSECURE_ENDPOINTS;
  delete process.env.CHANGES_SETTLE_MS;
});

/** Registers an endpoint at the receiver and keeps its secret for the receiver's checks. */
async function register(types?: string[]) {
  const res = await admin.post('/v1/event-endpoints', { url: receiver.url, ...(types ? { types } : {}), description: 'crm' });
  expect(res.status).toBe(201);
  secrets.push(res.body.secret);
  return res.body as { id: string; secret: string };
}

const ofSubject = (subjectKey: string) => (r: Received) => r.json.data.subjectKey === subjectKey;

describeLocal('change events out', () => {
  let endpoint: { id: string; secret: string };

  it('delivers a withdrawal as a signed Standard Webhooks call, with no identifier in it', async () => {
    endpoint = await register();
    expect(endpoint.secret).toMatch(/^whsec_[A-Za-z0-9+/]+=*$/);
    const number = phone();
    const granted = await admin.post('/v1/consents', grantBody({ subject: { phone: number } }));
    expect(granted.status).toBe(201);
    const subjectKey = granted.body.subjectKey;
    const withdrawn = await admin.post('/v1/consents/withdraw', { subject: { phone: number }, channel: 'whatsapp', source: 'api' });
    expect(withdrawn.status).toBe(200);
    await until(() => receiver.received.filter(ofSubject(subjectKey)).length >= 2, 30_000, 'two deliveries');
    const [grant, withdrawal] = receiver.received.filter(ofSubject(subjectKey));
    expect(grant.json.type).toBe('consent.granted');
    expect(withdrawal.json).toMatchObject({
      type: 'consent.withdrawn',
      data: {
        subjectKey,
        channel: 'whatsapp',
        purpose: null,
        source: 'api',
        // The scope it closed, and the pattern (every purpose on WhatsApp, now and later).
        scopes: [
          { channel: 'whatsapp', purpose: 'marketing' },
          { channel: 'whatsapp', purpose: '*' },
        ],
      },
    });
    const ledger = await admin.events(subjectKey);
    expect(withdrawal.id).toBe(`msg_${ledger[1].eventId}`);
    expect(withdrawal.json.data.eventId).toBe(ledger[1].eventId);
    expect(withdrawal.verifiedWith).toEqual([endpoint.secret]);
    expect(withdrawal.signature).toMatch(/^v1,[A-Za-z0-9+/]+=*$/);
    expect(withdrawal.body).not.toContain(number.slice(1));
  });

  it('loses nothing, keeps each subject’s order and records no ledger event twice while the receiver is down, failing, then slow', async () => {
    const numbers = [phone(), phone()];
    await receiver.setMode('down');
    const keys: string[] = [];
    for (const number of numbers) {
      const res = await admin.post('/v1/consents', grantBody({ subject: { phone: number }, channel: 'sms' }));
      keys.push(res.body.subjectKey);
      await admin.post('/v1/consents/withdraw', { subject: { phone: number }, channel: 'sms', source: 'keyword' });
      await admin.post('/v1/consents', grantBody({ subject: { phone: number }, channel: 'sms', source: 'double_opt_in' }));
    }
    const log = async (status: 'pending' | 'delivered') =>
      (await listDeliveries(db, tenant, endpoint.id, { status, limit: 100 })).deliveries.filter((d) => keys.includes(d.subjectKey));
    // Down: attempts fail with a connection error and are retried.
    await until(async () => (await log('pending')).some((d) => d.attempts.length >= 2), 30_000, 'retries while down');
    await receiver.setMode('error');
    await until(() => receiver.received.some((r) => keys.includes(r.json.data.subjectKey) && r.answered === 500), 30_000, 'a 500');
    await receiver.setMode('hang');
    await until(() => receiver.received.some((r) => keys.includes(r.json.data.subjectKey) && r.answered === null), 30_000, 'a hang');
    await until(async () => (await log('pending')).some((d) => d.attempts.some((a) => a.error?.startsWith('timed out'))), 30_000, 'a timeout');
    await receiver.setMode('ok');
    await until(async () => (await log('delivered')).length === 6, 30_000, 'every delivery made');

    for (const subjectKey of keys) {
      const ledger = await admin.events(subjectKey);
      expect(ledger.map((e: { type: string }) => e.type)).toEqual(['consent.granted', 'consent.withdrawn', 'consent.granted']);
      // In order: the first time each change arrived follows the ledger's order.
      const firstSeen = [...new Set(receiver.received.filter(ofSubject(subjectKey)).map((r) => r.id))];
      expect(firstSeen).toEqual(ledger.map((e: { eventId: string }) => `msg_${e.eventId}`));
      // Accepted once each (a 200), every one signed.
      const accepted = receiver.received.filter((r) => ofSubject(subjectKey)(r) && r.answered === 200);
      expect(accepted.map((r) => r.id)).toEqual(firstSeen);
      for (const r of receiver.received.filter(ofSubject(subjectKey))) expect(r.verifiedWith).toEqual([endpoint.secret]);
    }
    const attempts = (await log('delivered')).flatMap((d) => d.attempts);
    expect(attempts.some((a) => a.httpStatus === 500)).toBe(true);
    expect(attempts.some((a) => a.httpStatus === null && a.error !== null)).toBe(true);
  });

  it('loses nothing when the dispatcher dies in the middle of a batch', async () => {
    // A second table and dispatcher of the test's own, so the crash is the only reader of its stream.
    const crashDb: Db = { ...db, table: `${tableName}-crash` };
    await ensureTable(crashDb);
    const crashTenant = `crash-${randomBytes(4).toString('hex')}`;
    await putEndpoint(crashDb, crashTenant, { id: `ep_01JZ${'0'.repeat(22)}`, url: receiver.url, types: ['consent.granted'], createdAt: new Date().toISOString(), secrets: [] });
    const grants = Array.from({ length: 12 }, (_, i) => `k${i}`);
    for (const subjectKey of grants) {
      await appendChange(
        crashDb,
        crashTenant,
        subjectKey,
        (current, next) =>
          grantConsent(current, { channel: 'sms', purpose: 'marketing', source: 'web_form', noticeVersion: 'v1', grantedAt: new Date().toISOString() }, next, new Date().toISOString()),
        { actor: testActor },
      );
    }
    const queued: DeliveryMessage[] = [];
    const crashing: DeliveryQueue = {
      send: async (messages) => {
        queued.push(...messages.slice(0, 5));
        throw new Error('the process died here');
      },
    };
    const checkpoint = memoryCheckpoint();
    const streams = localStreamsClient(process.env.DYNAMODB_ENDPOINT as string);
    const first = new StreamPoller(crashDb, streams, checkpoint, async (items) => {
      await dispatchChanges(crashDb, items, crashing);
    });
    await expect(first.pollOnce()).rejects.toThrow('the process died here');
    expect(queued).toHaveLength(5);
    // A new process: a new poller from the same saved positions, and a queue that works.
    const delivered: string[] = [];
    const queue = new LocalDeliveryQueue(async (message) => {
      const outcome = await deliver(crashDb, message, { schedule: SCHEDULE, policy: { allowInsecure: true } });
      if (outcome.kind === 'skipped') delivered.push(`skipped:${message.key}`);
      else delivered.push(message.key);
      return outcome;
    });
    const second = new StreamPoller(crashDb, streams, checkpoint, async (items) => {
      await dispatchChanges(crashDb, items, queue);
    });
    expect(await second.pollOnce()).toBeGreaterThanOrEqual(12);
    await queue.idle();
    await queue.stop();
    // Each of the 12 changes was recorded once and delivered (the endpoint has no secret: unsigned is fine here).
    const log = await listDeliveries(crashDb, crashTenant, `ep_01JZ${'0'.repeat(22)}`, { limit: 100 });
    expect(log.deliveries).toHaveLength(12);
    expect(new Set(delivered.filter((k) => !k.startsWith('skipped'))).size).toBe(12);
    expect(log.deliveries.every((d) => d.status === 'delivered')).toBe(true);
  });
});
