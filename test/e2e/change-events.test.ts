import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { grantConsent } from '#domain/subject-state.ts';
import { ensureTable } from '#infra/local/bootstrap.ts';
import type { DeliveryMessage, DeliveryQueue } from '#shared/services/change-delivery.ts';
import { deliver } from '#shared/services/change-delivery.ts';
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
const db: Db = {
  client: createDocumentClient({ tableName, endpoint: process.env.DYNAMODB_ENDPOINT }),
  table: tableName,
};

let server: Awaited<ReturnType<typeof startServerOnTable>>;
let events: LocalChangeEvents;
let receiver: Awaited<ReturnType<typeof startReceiver>>;
const secrets: string[] = [];
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
  const res = await admin.post('/v1/event-endpoints', {
    url: receiver.url,
    ...(types ? { types } : {}),
    description: 'crm',
  });
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
    const withdrawn = await admin.post('/v1/consents/withdraw', {
      subject: { phone: number },
      channel: 'whatsapp',
      source: 'api',
    });
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
      await admin.post(
        '/v1/consents',
        grantBody({ subject: { phone: number }, channel: 'sms', source: 'double_opt_in' }),
      );
    }
    const log = async (status: 'pending' | 'delivered') =>
      (await listDeliveries(db, tenant, endpoint.id, { status, limit: 100 })).deliveries.filter((d) =>
        keys.includes(d.subjectKey),
      );
    // Down: attempts fail with a connection error and are retried.
    await until(async () => (await log('pending')).some((d) => d.attempts.length >= 2), 30_000, 'retries while down');
    await receiver.setMode('error');
    await until(
      () => receiver.received.some((r) => keys.includes(r.json.data.subjectKey) && r.answered === 500),
      30_000,
      'a 500',
    );
    await receiver.setMode('hang');
    await until(
      () => receiver.received.some((r) => keys.includes(r.json.data.subjectKey) && r.answered === null),
      30_000,
      'a hang',
    );
    await until(
      async () => (await log('pending')).some((d) => d.attempts.some((a) => a.error?.startsWith('timed out'))),
      30_000,
      'a timeout',
    );
    await receiver.setMode('ok');
    await until(async () => (await log('delivered')).length === 6, 30_000, 'every delivery made');

    for (const subjectKey of keys) {
      const ledger = await admin.events(subjectKey);
      expect(ledger.map((e: { type: string }) => e.type)).toEqual([
        'consent.granted',
        'consent.withdrawn',
        'consent.granted',
      ]);
      // In order: the first time each change arrived follows the ledger's order.
      const firstSeen = [...new Set(receiver.received.filter(ofSubject(subjectKey)).map((r) => r.id))];
      expect(firstSeen).toEqual(ledger.map((e: { eventId: string }) => `msg_${e.eventId}`));
      // Each accepted (a 200) — at least once: a 200 that comes after the sender's timeout is sent again, with
      // the same webhook-id, which is how a receiver recognises it — and every one signed.
      const accepted = receiver.received.filter((r) => ofSubject(subjectKey)(r) && r.answered === 200);
      expect([...new Set(accepted.map((r) => r.id))]).toEqual(firstSeen);
      for (const r of receiver.received.filter(ofSubject(subjectKey)))
        expect(r.verifiedWith).toEqual([endpoint.secret]);
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
    await putEndpoint(crashDb, crashTenant, {
      id: `ep_01JZ${'0'.repeat(22)}`,
      url: receiver.url,
      types: ['consent.granted'],
      createdAt: new Date().toISOString(),
      secrets: [],
    });
    const grants = Array.from({ length: 12 }, (_, i) => `k${i}`);
    for (const subjectKey of grants) {
      await appendChange(
        crashDb,
        crashTenant,
        subjectKey,
        (current, next) =>
          grantConsent(
            current,
            {
              channel: 'sms',
              purpose: 'marketing',
              source: 'web_form',
              noticeVersion: 'v1',
              grantedAt: new Date().toISOString(),
            },
            next,
            new Date().toISOString(),
          ),
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

  it('signs with the old and the new secret during a rotation’s overlap, and with the new one only after', async () => {
    const old = endpoint.secret;
    const rotated = await admin.post(`/v1/event-endpoints/${endpoint.id}/rotate-secret`);
    expect(rotated.status).toBe(200);
    expect(rotated.body.secret).toMatch(/^whsec_/);
    expect(rotated.body.secret).not.toBe(old);
    expect(Date.parse(rotated.body.previousSecretRetiresAt) - Date.now()).toBeGreaterThan(23 * 3_600_000);
    secrets.push(rotated.body.secret);
    const res = await admin.post(
      '/v1/consents',
      grantBody({ subject: { email: `r-${randomBytes(3).toString('hex')}@example.org` }, channel: 'email' }),
    );
    expect(res.status).toBe(201);
    await until(() => receiver.received.some(ofSubject(res.body.subjectKey)), 30_000, 'a delivery after the rotation');
    const during = receiver.received.find(ofSubject(res.body.subjectKey)) as Received;
    expect(during.signature.split(' ')).toHaveLength(2);
    expect(during.verifiedWith.sort()).toEqual([old, rotated.body.secret].sort());
    // A rotation without overlap: only the newest secret signs.
    const now = await admin.post(`/v1/event-endpoints/${endpoint.id}/rotate-secret?overlapHours=0`);
    expect(now.status).toBe(200);
    secrets.push(now.body.secret);
    endpoint = { ...endpoint, secret: now.body.secret };
    const test = await admin.post(`/v1/event-endpoints/${endpoint.id}/test`);
    expect(test.status).toBe(200);
    expect(test.body).toMatchObject({ status: 'delivered', attempt: { httpStatus: 200, error: null } });
    const sent = receiver.received.find((r) => r.id === test.body.webhookId) as Received;
    expect(sent.json.type).toBe('endpoint.test');
    expect(sent.verifiedWith).toEqual([now.body.secret]);
    expect((await admin.get(`/v1/event-endpoints/${endpoint.id}`)).body).not.toHaveProperty('secret');
  });

  it('replays every change since a time, with the same webhook-id', async () => {
    const since = new Date().toISOString();
    const number = phone();
    const granted = await admin.post('/v1/consents', grantBody({ subject: { phone: number }, channel: 'voice' }));
    await until(() => receiver.received.some(ofSubject(granted.body.subjectKey)), 30_000, 'the first delivery');
    const replayed = await admin.post(`/v1/event-endpoints/${endpoint.id}/replay`, { since });
    expect(replayed.status).toBe(202);
    expect(replayed.body.replayed).toBeGreaterThanOrEqual(1);
    await until(() => receiver.received.filter(ofSubject(granted.body.subjectKey)).length >= 2, 30_000, 'the replay');
    const [first, again] = receiver.received.filter(ofSubject(granted.body.subjectKey));
    expect(again.id).toBe(first.id);
    expect(again.body).toBe(first.body);
    expect(again.verifiedWith).toContain(endpoint.secret);
  });

  it('records a consent that expired once, and sends it as consent.expired', async () => {
    const expiresAt = new Date(Date.now() + 3_600_000).toISOString();
    const granted = await admin.post('/v1/consents', grantBody({ subject: { phone: phone() }, expiresAt }));
    expect(granted.status).toBe(201);
    const later = new Date(Date.now() + 2 * 3_600_000).toISOString();
    const [first] = await runRetention(db, { tenant, dryRun: false, now: later });
    expect(first.expiredConsents).toBe(1);
    const [second] = await runRetention(db, { tenant, dryRun: false, now: later });
    expect(second.expiredConsents).toBe(0);
    await until(
      () => receiver.received.some((r) => ofSubject(granted.body.subjectKey)(r) && r.json.type === 'consent.expired'),
      30_000,
      'consent.expired',
    );
    const ledger = await admin.events(granted.body.subjectKey);
    expect(ledger).toHaveLength(1);
    const expired = receiver.received.filter(
      (r) => ofSubject(granted.body.subjectKey)(r) && r.json.type === 'consent.expired',
    );
    expect(expired).toHaveLength(1);
    expect(expired[0].json.data).toMatchObject({
      eventId: ledger[0].eventId,
      channel: 'whatsapp',
      purpose: 'marketing',
      expiresAt,
      at: expiresAt,
    });
  });

  it('pages the change feed in recording order, with a next cursor always', async () => {
    const reader = client(server.url, (await tenantWithKey(['consents:read'], tenant)).key);
    const all: { data: { eventId: string; recordedAt: string } }[] = [];
    let next: string | undefined;
    for (let page = 0; page < 50; page++) {
      const res = await reader.get(`/v1/changes?limit=2${next ? `&after=${next}` : ''}`);
      expect(res.status).toBe(200);
      expect(typeof res.body.next).toBe('string');
      expect(res.body.changes.length).toBeLessThanOrEqual(2);
      all.push(...res.body.changes);
      if (res.body.changes.length === 0 && next === res.body.next) break;
      next = res.body.next;
    }
    const times = all.map((c) => c.data.recordedAt);
    expect(times).toEqual([...times].sort());
    expect(new Set(all.map((c) => c.data.eventId)).size).toBe(all.length);
    // Every ledger change of the tenant delivered so far is in the feed.
    const delivered = new Set(
      receiver.received
        .filter((r) => r.json.type === 'consent.granted' || r.json.type === 'consent.withdrawn')
        // (not the other table's, of the dispatcher crash)
        .filter((r) => !/^k\d+$/.test(r.json.data.subjectKey))
        .map((r) => r.json.data.eventId),
    );
    const fed = new Set(all.map((c) => c.data.eventId));
    for (const id of delivered) expect(fed.has(id), id).toBe(true);
    // Polling again from the last cursor gives nothing new, and the same cursor.
    const again = await reader.get(`/v1/changes?after=${next}`);
    expect(again.body).toEqual({ changes: [], next });
    expect((await reader.get('/v1/changes?after=not-a-cursor')).status).toBe(400);
    expect((await reader.get('/v1/event-endpoints')).status).toBe(403);
  });

  it('refuses bad input with 400 or 404 and stores nothing', async () => {
    const before = (await admin.get('/v1/event-endpoints')).body.endpoints.length;
    const bad = [
      { url: 'ftp://example.org/x' },
      { url: 'https://10.0.0.7/hook' },
      { url: 'https://169.254.169.254/latest' },
      { url: 'https://[::ffff:10.0.0.1]/x' },
      { url: 'https://[fd00:ec2::254]/latest' },
      { url: 'https://user:pw@example.org/x' },
      { url: 'https://crm.example.org/x', types: ['consent.sent'] },
      { url: 'https://crm.example.org/x', types: [] },
      { url: 'https://crm.example.org/x', colour: 'blue' },
      { types: ['consent.granted'] },
    ];
    for (const body of bad) {
      const res = await admin.post('/v1/event-endpoints', body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.headers.get('content-type')).toContain('application/problem+json');
      expect(res.body.detail).toBeTruthy();
    }
    expect((await admin.post('/v1/event-endpoints', { url: 'https://10.0.0.7/hook' })).body.code).toBe('unsafe_url');
    expect((await admin.get('/v1/event-endpoints')).body.endpoints).toHaveLength(before);
    const unknown = `ep_01JZ${'Z'.repeat(22)}`;
    expect((await admin.get(`/v1/event-endpoints/${unknown}`)).status).toBe(404);
    expect((await admin.get(`/v1/event-endpoints/${unknown}`)).body.code).toBe('endpoint_not_found');
    expect((await admin.call('DELETE', `/v1/event-endpoints/${unknown}`)).status).toBe(404);
    expect((await admin.get('/v1/event-endpoints/nope')).status).toBe(400);
    expect((await admin.post(`/v1/event-endpoints/${endpoint.id}/replay`, { since: 'yesterday' })).status).toBe(400);
    expect((await admin.post(`/v1/event-endpoints/${endpoint.id}/replay`, {})).status).toBe(400);
    expect((await admin.post(`/v1/event-endpoints/${endpoint.id}/rotate-secret?overlapHours=999`)).status).toBe(400);
    expect((await admin.get(`/v1/event-endpoints/${endpoint.id}/deliveries?status=lost`)).status).toBe(400);
    expect((await admin.get(`/v1/event-endpoints/${endpoint.id}/deliveries?cursor=xyz`)).status).toBe(400);
  });

  it('refuses to call a name that resolves to loopback when insecure endpoints are off, at send time', async () => {
    process.env.ALLOW_INSECURE_ENDPOINTS = 'false';
    try {
      // Registration would refuse it; stored as if its name had resolved to a public address then (DNS rebinding).
      const id = `ep_01JZ${randomBytes(11)
        .toString('hex')
        .toUpperCase()
        .replace(/[ILOU]/g, '0')
        .slice(0, 22)}`;
      await putEndpoint(db, tenant, {
        id,
        url: `https://localhost:${receiver.port}/hooks/consent`,
        types: ['consent.granted'],
        createdAt: new Date().toISOString(),
        secrets: [],
      });
      const count = receiver.received.length;
      const res = await admin.post(`/v1/event-endpoints/${id}/test`);
      expect(res.status).toBe(200);
      expect(res.body.status).toBe('failed');
      expect(res.body.attempt.error).toMatch(/^refused: the name resolves to a loopback address/);
      expect(receiver.received.length).toBe(count);
      expect((await admin.post('/v1/event-endpoints', { url: receiver.url })).status).toBe(400);
      const log = await admin.get(`/v1/event-endpoints/${id}/deliveries?status=failed`);
      expect(log.body.deliveries).toHaveLength(1);
      expect(log.body.deliveries[0]).toMatchObject({
        type: 'endpoint.test',
        status: 'failed',
        attempts: [{ httpStatus: null }],
      });
    } finally {
      process.env.ALLOW_INSECURE_ENDPOINTS = 'true';
    }
  });

  it('lists, shows and deletes endpoints; a deleted endpoint is sent nothing more', async () => {
    const extra = await register(['erasure.requested']);
    const listed = await admin.get('/v1/event-endpoints');
    expect(listed.body.endpoints.map((e: { id: string }) => e.id)).toContain(extra.id);
    expect(JSON.stringify(listed.body)).not.toContain('whsec_');
    expect((await admin.call('DELETE', `/v1/event-endpoints/${extra.id}`)).status).toBe(204);
    expect((await admin.get(`/v1/event-endpoints/${extra.id}`)).status).toBe(404);
    const log = await admin.get(`/v1/event-endpoints/${endpoint.id}/deliveries?limit=3`);
    expect(log.status).toBe(200);
    expect(log.body.deliveries).toHaveLength(3);
    expect(log.headers.get('x-next-cursor')).toBeTruthy();
    const page2 = await admin.get(
      `/v1/event-endpoints/${endpoint.id}/deliveries?limit=3&cursor=${log.headers.get('x-next-cursor')}`,
    );
    expect(page2.body.deliveries[0].webhookId).not.toBe(log.body.deliveries[2].webhookId);
  });
});
