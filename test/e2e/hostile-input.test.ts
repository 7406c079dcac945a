import { afterAll, beforeAll, expect, it } from 'vitest';
import { grantBody, phone, tenantWithKey } from '../helpers/factories.ts';
import { client, describeLocal, startServer } from '../helpers/http.ts';
import { change, envelope, inbound, sign, status } from '../helpers/whatsapp.ts';

let server: Awaited<ReturnType<typeof startServer>>;
let api: ReturnType<typeof client>;
let tenant: string;
const SECRET = 'hostile-input-app-secret';
const PHONE_NUMBER_ID = '106540352240015';

beforeAll(async () => {
  server = await startServer();
  const t = await tenantWithKey();
  tenant = t.tenant;
  api = client(server.url, t.key);
  process.env.WHATSAPP_APP_SECRET = SECRET;
  process.env.WHATSAPP_PHONE_NUMBER_TENANTS = `${PHONE_NUMBER_ID}:${tenant}`;
});
afterAll(async () => {
  await server.close();
  delete process.env.WHATSAPP_APP_SECRET;
  delete process.env.WHATSAPP_PHONE_NUMBER_TENANTS;
});

const expectProblem = (res: { status: number; headers: Headers; body: any }, status: number, code?: string) => {
  expect(res.status).toBe(status);
  expect(res.headers.get('content-type')).toBe('application/problem+json');
  if (code) expect(res.body.code).toBe(code);
};

/** A JSON text with a lone UTF-16 surrogate where `marker` stands (JSON.stringify escapes it as `\ud800`). */
const withLoneSurrogate = (value: unknown, marker = 'LONE') => JSON.stringify(value).replace(marker, '\\ud800');

describeLocal('hostile input: ill-formed Unicode', () => {
  it('answers 400 invalid_unicode for a lone surrogate in any string field, and stores nothing', async () => {
    const subject = { phone: phone() };
    const bodies: [string, string][] = [
      ['/v1/consents', withLoneSurrogate(grantBody({ subject, noticeVersion: 'v-LONE' }))],
      ['/v1/consents', withLoneSurrogate(grantBody({ subject, evidence: { text: 'LONE' } }))],
      ['/v1/gate/check', withLoneSurrogate({ subject: { externalId: 'crm-LONE' }, channel: 'sms' })],
      ['/v1/erasure-requests', withLoneSurrogate({ subjects: [subject], requestedVia: 'email', reference: 'LONE' })],
    ];
    for (const [path, raw] of bodies) {
      const res = await api.post(path, undefined, { raw, headers: { 'content-type': 'application/json' } });
      expectProblem(res, 400, 'invalid_unicode');
      expect(res.body.errors[0].path).toMatch(/noticeVersion|evidence\.text|subject\.externalId|reference/);
    }
    // An object key is a string too.
    const key = await api.call('PUT', '/v1/policy', undefined, {
      raw: '{"\\udfff": 1}',
      headers: { 'content-type': 'application/json' },
    });
    expectProblem(key, 400, 'invalid_unicode');
    expect((await api.lookup(subject)).body.consents ?? []).toEqual([]);
  });

  it('rejects a lone surrogate in the policy, so it never reaches the WhatsApp webhook', async () => {
    const res = await api.call('PUT', '/v1/policy', undefined, {
      raw: withLoneSurrogate({ noticeVersion: 'LONE' }),
      headers: { 'content-type': 'application/json' },
    });
    expectProblem(res, 400, 'invalid_unicode');
    expect(res.body.errors[0].path).toBe('noticeVersion');
  });

  it('rejects ill-formed Unicode in query strings and path parameters', async () => {
    // Percent-encoded UTF-8 cannot carry a lone surrogate (its bytes are invalid UTF-8): the query
    // parameter decodes to U+FFFD and fails the route's own schema, the path parameter names nothing.
    const query = await api.get('/v1/erasure-requests?status=%ED%A0%80');
    expectProblem(query, 400);
    const path = await api.get('/v1/notices/%ED%A0%80');
    expect([400, 404]).toContain(path.status);
    expect(path.headers.get('content-type')).toBe('application/problem+json');
  });

  it('keeps a WhatsApp delivery with a lone surrogate from poisoning it: the STOP in it is recorded', async () => {
    const person = phone();
    const grantedAt = new Date(Date.now() - 3_600_000).toISOString();
    expect((await api.post('/v1/consents', grantBody({ subject: { phone: person }, grantedAt }))).status).toBe(201);
    const at = new Date(Date.now() - 60_000).toISOString();
    // A status whose message id holds a lone surrogate (the id is hashed and kept), then the person's STOP.
    const poisoned = status({ phone: person }, 'failed', at, { id: 'wamid.LONE', errorCode: 131026 });
    const stop = inbound({ phone: person }, at, { type: 'text', body: 'STOP' });
    const raw = JSON.stringify(
      envelope([change(PHONE_NUMBER_ID, { statuses: [poisoned] }), change(PHONE_NUMBER_ID, stop)]),
    ).replace('LONE', '\\udc00');
    expect(raw).toContain('\\udc00');
    const res = await api.post('/v1/webhooks/whatsapp', undefined, {
      raw,
      headers: { 'content-type': 'application/json', 'x-hub-signature-256': sign(raw, SECRET) },
    });
    expect(res.status).toBe(200);
    const gate = await api.gateCheck({ phone: person }, 'whatsapp');
    expect(gate.body.decision).toBe('block');
    // A later delivery for the same person goes through as usual.
    const later = JSON.stringify(
      envelope([change(PHONE_NUMBER_ID, { statuses: [status({ phone: person }, 'delivered', at)] })]),
    );
    const next = await api.post('/v1/webhooks/whatsapp', undefined, {
      raw: later,
      headers: { 'content-type': 'application/json', 'x-hub-signature-256': sign(later, SECRET) },
    });
    expect(next.status).toBe(200);
  });
});

describeLocal('hostile input: sizes and numbers are refused by validation, never by the store', () => {
  it('answers 400 for a 2 KB erasure requestId (not 503)', async () => {
    const long = `er_${'A'.repeat(2100)}`;
    for (const res of [
      await api.get(`/v1/erasure-requests/${long}`),
      await api.post(`/v1/erasure-requests/${long}/complete`, {}),
      await api.post(`/v1/erasure-requests/${long}/cancel`, {}),
    ]) {
      expectProblem(res, 400, 'validation_failed');
      expect(res.body.errors[0].path).toBe('requestId');
    }
  });

  it('answers 400 for a path parameter over 512 bytes on any route (not 503)', async () => {
    expectProblem(await api.get(`/v1/receipts/${'e'.repeat(3000)}`), 400, 'validation_failed');
    expectProblem(await api.get(`/v1/subjects/${'s'.repeat(3000)}/events`), 400, 'validation_failed');
  });

  it('answers 400 for a policy number DynamoDB cannot store, like 5e-324 (not 503)', async () => {
    for (const raw of [
      '{"suspectedThreshold": 5e-324}',
      '{"signalWeights": {"message_undelivered": 5e-324}}',
      '{"signalHalfLifeDays": 1e-200}',
    ]) {
      const res = await api.call('PUT', '/v1/policy', undefined, {
        raw,
        headers: { 'content-type': 'application/json' },
      });
      expectProblem(res, 400, 'validation_failed');
    }
  });
});

describeLocal('hostile input: encodings', () => {
  it('answers 400, not 500, for valid JSON nested 100,000 levels deep', async () => {
    const raw = `${'['.repeat(100_000)}${']'.repeat(100_000)}`;
    const res = await api.post('/v1/consents', undefined, { raw, headers: { 'content-type': 'application/json' } });
    expect(res.status).toBe(400);
  });

  it('accepts a JSON body that starts with a UTF-8 byte-order mark', async () => {
    const raw = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(JSON.stringify(grantBody()))]);
    const res = await api.post('/v1/consents', undefined, { raw, headers: { 'content-type': 'application/json' } });
    expect(res.status).toBe(201);
  });
});

describeLocal('hostile input: retries', () => {
  it('a retried record:true gate check with the same Idempotency-Key counts the send once', async () => {
    const subject = { phone: phone() };
    expect((await api.post('/v1/consents', grantBody({ subject }))).status).toBe(201);
    const headers = { 'idempotency-key': `gate-${Date.now()}` };
    const body = { subject, channel: 'whatsapp', record: true };
    const first = await api.post('/v1/gate/check', body, { headers });
    const retry = await api.post('/v1/gate/check', body, { headers });
    expect(first.body).toMatchObject({ decision: 'allow', recorded: true });
    expect(retry.status).toBe(200);
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    expect(retry.body.decisionId).toBe(first.body.decisionId);
    const sends = (await api.events(first.body.subjectKey)).filter((e) => e.type === 'send.recorded');
    expect(sends).toHaveLength(1);
    // A read-only check ignores the key: it always answers from the state as it is now.
    const readOnly = await api.post('/v1/gate/check', { subject, channel: 'whatsapp' }, { headers });
    expect(readOnly.headers.get('idempotent-replayed')).toBeNull();
    expect(readOnly.body.decisionId).not.toBe(first.body.decisionId);
  });
});
