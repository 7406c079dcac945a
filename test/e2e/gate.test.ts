import { afterAll, beforeAll, expect, it } from 'vitest';
import { defaultPolicy } from '#domain/policy.ts';
import { getDb } from '#store/db.ts';
import { clearPolicyCache, putPolicy } from '#store/policy.ts';
import { email, grantBody, phone, tenantWithKey } from '../helpers/factories.ts';
import { client, describeLocal, startServer } from '../helpers/http.ts';

let server: Awaited<ReturnType<typeof startServer>>;
let api: ReturnType<typeof client>;
let tenant: string;

beforeAll(async () => {
  server = await startServer();
  const t = await tenantWithKey(['gate:check', 'consents:write', 'subjects:manage']);
  tenant = t.tenant;
  api = client(server.url, t.key);
});
afterAll(() => server.close());

describeLocal('POST /v1/gate/check', () => {
  it('answers 200 block no_consent for an unknown subject, with the contract fields', async () => {
    const res = await api.gateCheck({ phone: phone() });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      decision: 'block',
      reasons: [{ code: 'no_consent' }],
      warnings: [],
      consent: null,
      blockLikelihood: 0,
      retryAfter: null,
    });
    expect(res.body.decisionId).toBeTruthy();
    expect(res.body.subjectKey).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(typeof res.body.reasons[0].message).toBe('string');
  });

  it('blocks a consent past its expiresAt with consent_expired', async () => {
    const subject = { phone: phone() };
    await api.post(
      '/v1/consents',
      grantBody({ subject, grantedAt: '2025-01-01T00:00:00Z', expiresAt: '2025-06-01T00:00:00Z' }),
    );
    expect((await api.gateCheck(subject)).body.reasons[0].code).toBe('consent_expired');
    // Evaluated at a time before expiry, it allows.
    expect((await api.gateCheck(subject, 'whatsapp', { at: '2025-05-01T00:00:00Z' })).body.decision).toBe('allow');
  });

  it("applies the policy's consentMaxAgeDays", async () => {
    const subject = { phone: phone() };
    await api.post('/v1/consents', grantBody({ subject, grantedAt: '2023-01-01T00:00:00Z' }));
    expect((await api.gateCheck(subject)).body.reasons[0].code).toBe('consent_expired');
    await putPolicy(getDb(), tenant, { ...defaultPolicy(), consentMaxAgeDays: 3650 });
    clearPolicyCache();
    expect((await api.gateCheck(subject)).body.decision).toBe('allow');
    await putPolicy(getDb(), tenant, defaultPolicy());
    clearPolicyCache();
  });

  it('checks the purpose asked for', async () => {
    const subject = { phone: phone() };
    await api.post('/v1/consents', grantBody({ subject, purpose: 'newsletter' }));
    expect((await api.gateCheck(subject)).body.reasons[0].code).toBe('no_consent');
    expect((await api.gateCheck(subject, 'whatsapp', { purpose: 'newsletter' })).body.decision).toBe('allow');
  });
});

describeLocal('POST /v1/gate/check-batch', () => {
  it('answers 1000 items in order with per-item errors and a summary', async () => {
    const granted = Array.from({ length: 10 }, () => ({ phone: phone() }));
    for (const subject of granted) await api.post('/v1/consents', grantBody({ subject }));
    const items: { subject: unknown }[] = Array.from({ length: 1000 }, (_, i) => ({
      subject: i < 10 ? granted[i] : { phone: phone() },
    }));
    items[500] = { subject: { phone: 'nonsense' } };
    items[501] = { subject: { email: email() } };
    items[502] = { subject: { phone: phone(), bogus: true } };
    const res = await api.post('/v1/gate/check-batch', { channel: 'whatsapp', items });
    expect(res.status).toBe(200);
    expect(res.body.results).toHaveLength(1000);
    expect(res.body.results.map((r: { index: number }) => r.index)).toEqual(items.map((_, i) => i));
    expect(res.body.results.slice(0, 10).every((r: { decision: string }) => r.decision === 'allow')).toBe(true);
    expect(res.body.results[500].error.code).toBe('invalid_identifier');
    expect(res.body.results[501].error.code).toBe('identifier_channel_mismatch');
    expect(res.body.results[502].error).toMatchObject({ code: 'validation_failed' });
    expect(res.body.results[502].error.errors[0].path).toBe('items.502.subject.bogus');
    expect(res.body.results[10]).toMatchObject({ decision: 'block', reasons: [{ code: 'no_consent' }] });
    expect(res.body.summary).toEqual({ allow: 10, block: 987, defer: 0, error: 3 });
  });

  it('refuses an empty batch and one over 1000 items', async () => {
    expect((await api.post('/v1/gate/check-batch', { channel: 'sms', items: [] })).status).toBe(400);
    const items = Array.from({ length: 1001 }, () => ({ subject: { phone: '+33612345678' } }));
    const res = await api.post('/v1/gate/check-batch', { channel: 'sms', items });
    expect(res.status).toBe(400);
    expect(res.body.errors[0].path).toBe('items');
  });
});

describeLocal('erasure requests', () => {
  it('blocks from receipt, is due in a month, and completes to subject_erased', async () => {
    const subject = { phone: phone() };
    const g = await api.post('/v1/consents', grantBody({ subject }));
    const res = await api.post('/v1/erasure-requests', {
      subjects: [subject, { email: email() }],
      requestedVia: 'email',
      reference: 'ticket-991',
    });
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({ status: 'received', reference: 'ticket-991', completedAt: null });
    expect(res.body.subjectKeys).toHaveLength(2);
    expect(res.body.subjectKeys[0]).toBe(g.body.subjectKey);
    const received = new Date(res.body.receivedAt);
    const due = new Date(res.body.dueBy);
    expect(due.getUTCMonth()).toBe((received.getUTCMonth() + 1) % 12);
    expect((await api.gateCheck(subject)).body.reasons[0].code).toBe('erasure_pending');
    // No grant, not even an import, is recorded while the erasure is pending.
    expect((await api.post('/v1/consents', grantBody({ subject, source: 'import' }))).body.code).toBe(
      'erasure_pending',
    );

    const listed = await api.get('/v1/erasure-requests?status=received');
    expect(listed.body.requests.map((r: { requestId: string }) => r.requestId)).toContain(res.body.requestId);

    const done = await api.post(`/v1/erasure-requests/${res.body.requestId}/complete`);
    expect(done.status).toBe(200);
    expect(done.body.status).toBe('completed');
    expect(done.body.completedAt).toBeTruthy();
    expect((await api.gateCheck(subject)).body.reasons[0].code).toBe('subject_erased');
    const one = await api.get(`/v1/erasure-requests/${res.body.requestId}`);
    expect(one.body).toMatchObject({ status: 'completed', dueBy: res.body.dueBy });
    expect((await api.get('/v1/erasure-requests?status=completed')).body.requests[0].requestId).toBe(
      res.body.requestId,
    );
    // The ledger holds only the erasure.
    const ledger = await api.get(`/v1/subjects/${g.body.subjectKey}/events`);
    expect(ledger.status).toBe(403); // this key cannot read consents
    // A later import is still refused; the person's own fresh consent is accepted.
    expect((await api.post('/v1/consents', grantBody({ subject, source: 'import' }))).status).toBe(409);
    expect((await api.post('/v1/consents', grantBody({ subject, source: 'web_form' }))).status).toBe(201);
    expect((await api.gateCheck(subject)).body.decision).toBe('allow');
  });

  it('erases at once with immediate: true', async () => {
    const subject = { phone: phone() };
    await api.post('/v1/consents', grantBody({ subject }));
    const res = await api.post('/v1/erasure-requests', { subjects: [subject], requestedVia: 'web', immediate: true });
    expect(res.status).toBe(202);
    expect(res.body.status).toBe('completed');
    expect((await api.gateCheck(subject)).body.reasons[0].code).toBe('subject_erased');
  });

  it('404 for an unknown request; 400 for a bad status filter', async () => {
    expect((await api.get('/v1/erasure-requests/er_01JD3Z6Q5V9XGZ3E1M1C4V7N2B')).body.code).toBe(
      'erasure_request_not_found',
    );
    expect((await api.get('/v1/erasure-requests?status=lost')).status).toBe(400);
  });
});
