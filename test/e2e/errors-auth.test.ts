import { QueryCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { AUTHORIZER_CACHE_TTL_SECONDS, revokeApiKey } from '#shared/auth/api-keys.ts';
import { getDb } from '#store/db.ts';
import { grantBody, phone, tenantWithKey } from '../helpers/factories.ts';
import { client, describeLocal, startServer } from '../helpers/http.ts';

let server: Awaited<ReturnType<typeof startServer>>;
/** The clock of the server's authorizer cache: moved past the TTL where a test revokes a key. */
let clock = Date.now();
let api: ReturnType<typeof client>;
let tenant: string;

beforeAll(async () => {
  server = await startServer({ clock: () => clock });
  const t = await tenantWithKey();
  tenant = t.tenant;
  api = client(server.url, t.key);
});
afterAll(() => server.close());

/** Every item the tenant has in subject partitions (through the audit index: one entry per event). */
async function eventCount(): Promise<number> {
  // Events carry GSI1PK = T#<tenant>#D#<day>#<shard>; count today's across shards.
  const day = new Date().toISOString().slice(0, 10);
  let total = 0;
  for (let shard = 0; shard < 8; shard++) {
    const out = await getDb().client.send(
      new QueryCommand({
        TableName: getDb().table,
        IndexName: 'GSI1',
        KeyConditionExpression: 'GSI1PK = :pk',
        ExpressionAttributeValues: { ':pk': `T#${tenant}#D#${day}#${shard}` },
        Select: 'COUNT',
      }),
    );
    total += out.Count ?? 0;
  }
  return total;
}

const expectProblem = (res: { status: number; headers: Headers; body: any }, status: number, code?: string) => {
  expect(res.status).toBe(status);
  expect(res.headers.get('content-type')).toBe('application/problem+json');
  expect(res.body).toMatchObject({
    status,
    title: expect.any(String),
    detail: expect.any(String),
    type: expect.any(String),
  });
  if (code) expect(res.body.code).toBe(code);
};

describeLocal('bad input is a 4xx problem and stores nothing', () => {
  it('rejects every kind of malformed body on a write route', async () => {
    const before = await eventCount();
    const cases: [string | Buffer, string, number, string][] = [
      ['{"subject":', 'application/json', 400, 'malformed_json'],
      ['[]', 'application/json', 400, 'validation_failed'],
      ['null', 'application/json', 400, 'validation_failed'],
      ['"text"', 'application/json', 400, 'validation_failed'],
      [JSON.stringify({ ...grantBody(), extra: 1 }), 'application/json', 400, 'validation_failed'],
      [JSON.stringify({ ...grantBody(), channel: 42 }), 'application/json', 400, 'validation_failed'],
      [JSON.stringify({ ...grantBody(), subject: null }), 'application/json', 400, 'validation_failed'],
      [
        JSON.stringify({ ...grantBody(), noticeVersion: 'x'.repeat(100_000) }),
        'application/json',
        400,
        'validation_failed',
      ],
      [JSON.stringify(grantBody()), 'text/plain', 415, 'unsupported_media_type'],
      [JSON.stringify(grantBody()), 'application/x-www-form-urlencoded', 415, 'unsupported_media_type'],
      [Buffer.from([0xff, 0xfe, 0x00]), 'application/json', 400, 'malformed_json'],
    ];
    for (const [raw, type, status, code] of cases) {
      const res = await api.post('/v1/consents', undefined, { raw, headers: { 'content-type': type } });
      expectProblem(res, status, code);
    }
    const big = JSON.stringify({ ...grantBody(), evidence: { text: 'x'.repeat(1024 * 1024) } });
    expectProblem(
      await api.post('/v1/consents', undefined, { raw: big, headers: { 'content-type': 'application/json' } }),
      413,
      'payload_too_large',
    );
    expect(await eventCount()).toBe(before);
  });

  it('lists field paths of every problem, unknown fields included', async () => {
    const res = await api.post('/v1/consents', {
      subject: { phone: 1, fax: '1' },
      channel: 'pigeon',
      source: 'web_form',
    });
    expectProblem(res, 400, 'validation_failed');
    const paths = res.body.errors.map((e: { path: string }) => e.path);
    expect(paths).toEqual(expect.arrayContaining(['subject.phone', 'subject.fax', 'channel', 'noticeVersion']));
  });

  it('answers 404 for an unknown path and 405 with Allow for a wrong method', async () => {
    expectProblem(await api.get('/v1/nothing-here'), 404, 'not_found');
    expectProblem(await api.get('/v1/%E0%A4%A'), 404, 'not_found');
    const res = await api.get('/v1/consents');
    expectProblem(res, 405, 'method_not_allowed');
    expect(res.headers.get('allow')).toBe('POST');
  });
});

describeLocal('authentication and scopes', () => {
  it('401 without a key, with an unknown key, and with a revoked key', async () => {
    const anonymous = client(server.url);
    expectProblem(
      await anonymous.post('/v1/gate/check', { subject: { phone: phone() }, channel: 'sms' }),
      401,
      'unauthorized',
    );
    expectProblem(await client(server.url, 'cg_unknown_key_123456').post('/v1/consents', grantBody()), 401);
    const t = await tenantWithKey(['gate:check']);
    const revocable = client(server.url, t.key);
    expect((await revocable.post('/v1/gate/check', { subject: { phone: phone() }, channel: 'sms' })).status).toBe(200);
    await revokeApiKey(getDb(), t.keyId);
    clock += AUTHORIZER_CACHE_TTL_SECONDS * 1000; // as API Gateway, the server reuses an answer that long
    expectProblem(await revocable.post('/v1/gate/check', { subject: { phone: phone() }, channel: 'sms' }), 401);
  });

  it('403 for a key without the route scope; admin implies all', async () => {
    const gateOnly = client(server.url, (await tenantWithKey(['gate:check'])).key);
    const res = await gateOnly.post('/v1/consents', grantBody());
    expectProblem(res, 403, 'forbidden');
    expect(res.body.detail).toContain('consents:write');
    const reader = client(server.url, (await tenantWithKey(['consents:read'])).key);
    expectProblem(await reader.post('/v1/consents/withdraw', { subject: { phone: phone() } }), 403);
    expectProblem(
      await reader.post('/v1/erasure-requests', { subjects: [{ phone: phone() }], requestedVia: 'web' }),
      403,
    );
  });

  it('health needs no key', async () => {
    const res = await client(server.url).get('/v1/health');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: 'ok' });
  });

  it("never shows one tenant's data to another", async () => {
    const subject = { phone: phone() };
    const mine = await api.post('/v1/consents', grantBody({ subject }));
    const other = client(server.url, (await tenantWithKey()).key);
    expect((await other.post('/v1/gate/check', { subject, channel: 'whatsapp' })).body.reasons[0].code).toBe(
      'no_consent',
    );
    expect((await other.post('/v1/subjects/lookup', { subject })).status).toBe(404);
    expect((await other.get(`/v1/subjects/${mine.body.subjectKey}/events`)).status).toBe(404);
    // The other tenant's subjectKey for the same number differs: keys are per tenant.
    const theirs = await other.post('/v1/consents', grantBody({ subject }));
    expect(theirs.body.subjectKey).not.toBe(mine.body.subjectKey);
    expect((await api.post('/v1/subjects/lookup', { subject })).body.consents).toHaveLength(1);
  });
});

describeLocal('Idempotency-Key', () => {
  it('replays the first response and records nothing new; another body is a 409', async () => {
    const body = grantBody();
    const headers = { 'idempotency-key': `k-${phone()}` };
    const first = await api.post('/v1/consents', body, { headers });
    expect(first.status).toBe(201);
    const again = await api.post('/v1/consents', body, { headers });
    expect(again.status).toBe(201);
    expect(again.body).toEqual(first.body);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    const events = await api.get(`/v1/subjects/${first.body.subjectKey}/events`);
    expect(events.body.events).toHaveLength(1);
    const reused = await api.post('/v1/consents', { ...body, noticeVersion: 'other' }, { headers });
    expectProblem(reused, 409, 'idempotency_key_reused');
  });

  it('keys are per tenant, and a failed request frees its key', async () => {
    const headers = { 'idempotency-key': `shared-${phone()}` };
    const other = client(server.url, (await tenantWithKey()).key);
    expect((await api.post('/v1/consents', grantBody(), { headers })).status).toBe(201);
    expect((await other.post('/v1/consents', grantBody(), { headers })).status).toBe(201);
    const subject = { phone: phone() };
    await api.post('/v1/consents/withdraw', { subject });
    const retryHeaders = { 'idempotency-key': `retry-${phone()}` };
    expect(
      (await api.post('/v1/consents', grantBody({ subject, source: 'import' }), { headers: retryHeaders })).status,
    ).toBe(409);
    // The same key now carries the corrected request.
    expect(
      (await api.post('/v1/consents', grantBody({ subject, source: 'web_form' }), { headers: retryHeaders })).status,
    ).toBe(201);
  });
});
