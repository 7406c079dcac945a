import { createHash, randomInt } from 'node:crypto';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { tenantDigest } from '#shared/secrets.ts';
import { notificationsOf } from '#shared/whatsapp/payload.ts';
import { getDb } from '#store/db.ts';
import { keys } from '#store/table.ts';
import { grantBody, phone, tenantWithKey } from '../helpers/factories.ts';
import { client, describeLocal, startServer } from '../helpers/http.ts';
import { change, envelope, preference, sign } from '../helpers/whatsapp.ts';

// What a copy of the table shows must not give a phone number back: the replay markers of the WhatsApp
// webhook and the idempotency records are keyed (HMAC with a per-tenant key), not plain SHA-256.
const SECRET = 'whatsapp-app-secret-keyed';
const [PNID_A, PNID_B] = [String(randomInt(3e14, 4e14)), String(randomInt(4e14, 5e14))];
const sha256 = (text: string) => createHash('sha256').update(text).digest();

let server: Awaited<ReturnType<typeof startServer>>;
let tenants: { tenant: string; key: string }[];

beforeAll(async () => {
  server = await startServer();
  tenants = [await tenantWithKey(['admin']), await tenantWithKey(['admin'])];
  process.env.WHATSAPP_APP_SECRET = SECRET;
  process.env.WHATSAPP_PHONE_NUMBER_TENANTS = `${PNID_A}:${tenants[0].tenant},${PNID_B}:${tenants[1].tenant}`;
});
afterAll(async () => {
  delete process.env.WHATSAPP_APP_SECRET;
  delete process.env.WHATSAPP_PHONE_NUMBER_TENANTS;
  await server.close();
});

const item = async (PK: string, SK: string) =>
  (await getDb().client.send(new GetCommand({ TableName: getDb().table, Key: { PK, SK }, ConsistentRead: true }))).Item;

describeLocal('keyed replay markers and idempotency records', () => {
  it('stores a WhatsApp replay marker keyed per tenant, never the plain hash, and still detects replays', async () => {
    const person = { phone: phone() };
    const at = new Date(Date.now() - 60_000).toISOString();
    const anonymous = client(server.url);
    const markers: string[] = [];
    for (const [i, pnid] of [PNID_A, PNID_B].entries()) {
      const raw = JSON.stringify(envelope([change(pnid, preference(person, 'stop', at))]));
      const headers = { 'content-type': 'application/json', 'x-hub-signature-256': sign(raw, SECRET) };
      const first = await anonymous.post('/v1/webhooks/whatsapp', undefined, { raw, headers });
      expect(first.body).toMatchObject({ recorded: 1, replayed: 0 });
      const again = await anonymous.post('/v1/webhooks/whatsapp', undefined, { raw, headers });
      expect(again.body).toMatchObject({ recorded: 0, replayed: 1 });

      const { tenant } = tenants[i];
      const [n] = notificationsOf(JSON.parse(raw), () => tenant).notifications;
      const keyed = await tenantDigest(tenant, 'replay', n.replayId);
      const plain = [n.replayId, sha256(n.replayId).toString('base64url')];
      expect(plain).not.toContain(keyed);
      expect(await item(`${keys.tenant(tenant)}#ONCE#${keyed}`, 'ONCE')).toBeDefined();
      for (const p of plain) expect(await item(`${keys.tenant(tenant)}#ONCE#${p}`, 'ONCE')).toBeUndefined();
      markers.push(keyed);
    }
    // The same notification (same person, same time) in two tenants: two unrelated markers.
    expect(markers[0]).not.toBe(markers[1]);
  });

  it('keys the idempotency record and its request hash per tenant; retries still replay, reuse still conflicts', async () => {
    const body = grantBody();
    const idempotencyKey = `grant-${body.subject.phone}`;
    const headers = { 'idempotency-key': idempotencyKey };
    const stored: { requestHash: string }[] = [];
    for (const { tenant, key } of tenants) {
      const api = client(server.url, key);
      const first = await api.post('/v1/consents', body, { headers });
      expect(first.status).toBe(201);
      const retry = await api.post('/v1/consents', body, { headers });
      expect(retry.status).toBe(201);
      expect(retry.headers.get('idempotent-replayed')).toBe('true');
      expect(retry.body.eventId).toBe(first.body.eventId);
      expect((await api.post('/v1/consents', grantBody(), { headers })).status).toBe(409);

      // Under a keyed digest of the key, not its SHA-256; the request hash is no plain hash of the request.
      const plainKey = sha256(idempotencyKey).toString('hex');
      expect(await item(keys.idempotency(tenant, plainKey), 'IDEM')).toBeUndefined();
      const keyHash = await tenantDigest(tenant, 'idempotency', `key\n${idempotencyKey}`);
      const record = (await item(keys.idempotency(tenant, keyHash), 'IDEM')) as { requestHash: string };
      expect(record.requestHash).toMatch(/^[A-Za-z0-9_-]{43}$/);
      const bodyHash = sha256(JSON.stringify(body)).toString('hex');
      const plainRequest = sha256(`POST /v1/consents\n/v1/consents\n${bodyHash}`);
      expect(record.requestHash).not.toBe(plainRequest.toString('hex'));
      expect(record.requestHash).not.toBe(plainRequest.toString('base64url'));
      stored.push(record);
    }
    // The same key and body in two tenants: unrelated records.
    expect(stored[0].requestHash).not.toBe(stored[1].requestHash);
  });
});
