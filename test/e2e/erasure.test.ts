import { afterAll, beforeAll, expect, it } from 'vitest';
import { DAY_MS } from '#shared/time.ts';
import { getDb } from '#store/db.ts';
import { createErasureRequest } from '#store/erasure.ts';
import { grantBody, phone, tenantWithKey } from '../helpers/factories.ts';
import { client, describeLocal, startServer } from '../helpers/http.ts';

let server: Awaited<ReturnType<typeof startServer>>;
let api: ReturnType<typeof client>;
let tenant: string;
let keyId: string;

beforeAll(async () => {
  server = await startServer();
  const t = await tenantWithKey(['admin']);
  ({ tenant, keyId } = t);
  api = client(server.url, t.key);
});
afterAll(() => server.close());

type Event = { type: string; data: Record<string, unknown>; details?: Record<string, unknown>; actor?: unknown };

/** A subject with a WhatsApp consent and a received erasure request for it. */
async function pendingErasure(subject = { phone: phone() }) {
  const granted = await api.post('/v1/consents', grantBody({ subject }));
  expect(granted.status).toBe(201);
  const request = await api.post('/v1/erasure-requests', { subjects: [subject], requestedVia: 'email' });
  expect(request.status).toBe(202);
  return { subject, subjectKey: granted.body.subjectKey as string, request: request.body };
}

describeLocal('POST /v1/erasure-requests/{requestId}/cancel', () => {
  it('cancels a received request: the gate no longer answers erasure_pending, the reason stays out of data', async () => {
    const { subject, subjectKey, request } = await pendingErasure();
    expect((await api.gateCheck(subject)).body.reasons[0].code).toBe('erasure_pending');

    const res = await api.post(`/v1/erasure-requests/${request.requestId}/cancel`, { reason: 'asked by phone' });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ requestId: request.requestId, status: 'cancelled', kept: null });
    expect(res.body.cancelledAt).toBeTruthy();
    const gate = await api.gateCheck(subject);
    expect(gate.body.decision).toBe('allow');

    const events = await api.events<Event>(subjectKey);
    const cancelled = events.find((e) => e.type === 'erasure.cancelled');
    expect(cancelled).toMatchObject({ data: { requestId: request.requestId }, actor: { type: 'api_key', keyId } });
    expect(JSON.stringify(cancelled?.data)).not.toContain('asked by phone');
    expect(cancelled?.details).toEqual({ reason: 'asked by phone' });

    const listed = await api.get('/v1/erasure-requests?status=cancelled');
    expect(listed.body.requests.map((r: { requestId: string }) => r.requestId)).toContain(request.requestId);
    expect((await api.get(`/v1/erasure-requests/${request.requestId}`)).body.status).toBe('cancelled');
    expect((await api.get('/v1/audit/erasures?status=cancelled')).body.requests[0]).toMatchObject({
      requestId: request.requestId,
      daysLeft: null,
    });

    // A repeat answers the request as it is and records nothing more.
    expect((await api.post(`/v1/erasure-requests/${request.requestId}/cancel`, {})).status).toBe(200);
    expect((await api.events<Event>(subjectKey)).filter((e) => e.type === 'erasure.cancelled')).toHaveLength(1);
    // A cancelled request is not carried out, nor extended.
    const complete = await api.post(`/v1/erasure-requests/${request.requestId}/complete`);
    expect([complete.status, complete.body.code]).toEqual([409, 'erasure_cancelled']);
    const extend = await api.post(`/v1/erasure-requests/${request.requestId}/extend`, { reason: 'x', months: 1 });
    expect([extend.status, extend.body.code]).toEqual([409, 'erasure_cancelled']);
  });

  it('keeps a subject pending while another received request covers it', async () => {
    const first = await pendingErasure();
    const second = await api.post('/v1/erasure-requests', { subjects: [first.subject], requestedVia: 'web' });
    expect((await api.post(`/v1/erasure-requests/${second.body.requestId}/cancel`, {})).status).toBe(200);
    const gate = await api.gateCheck(first.subject);
    expect(gate.body.reasons[0]).toMatchObject({ code: 'erasure_pending' });
    expect(gate.body.reasons[0].message).toContain(first.request.requestId);
  });

  it('409 erasure_completed for a completed request, 404 for an unknown one, 400 for a bad body', async () => {
    const { request } = await pendingErasure();
    const bad = await api.post(`/v1/erasure-requests/${request.requestId}/cancel`, { reason: 'x'.repeat(501) });
    expect(bad.status).toBe(400);
    expect(bad.body.errors[0].path).toBe('reason');
    expect((await api.post(`/v1/erasure-requests/${request.requestId}/cancel`, { why: 'x' })).status).toBe(400);
    expect((await api.get(`/v1/erasure-requests/${request.requestId}`)).body.status).toBe('received');

    expect((await api.post(`/v1/erasure-requests/${request.requestId}/complete`)).status).toBe(200);
    const res = await api.post(`/v1/erasure-requests/${request.requestId}/cancel`, {});
    expect([res.status, res.body.code]).toEqual([409, 'erasure_completed']);
    const unknown = await api.post('/v1/erasure-requests/er_01JD3Z6Q5V9XGZ3E1M1C4V7N2B/cancel', {});
    expect([unknown.status, unknown.body.code]).toEqual([404, 'erasure_request_not_found']);
    const malformed = await api.post('/v1/erasure-requests/er_nope/cancel', {});
    expect([malformed.status, malformed.body.code]).toEqual([400, 'validation_failed']);
  });
});

describeLocal('POST /v1/erasure-requests/{requestId}/extend', () => {
  it('extends once from the first due date; a second time → 409 already_extended', async () => {
    const { request } = await pendingErasure();
    const res = await api.post(`/v1/erasure-requests/${request.requestId}/extend`, {
      reason: 'identity check under way',
      months: 2,
    });
    expect(res.status).toBe(200);
    const due = new Date(request.dueBy);
    expect(new Date(res.body.dueBy).getUTCMonth()).toBe((due.getUTCMonth() + 2) % 12);
    expect(res.body).toMatchObject({
      status: 'received',
      extensionMonths: 2,
      extensionReason: 'identity check under way',
    });
    expect(res.body.extendedAt).toBeTruthy();
    const again = await api.post(`/v1/erasure-requests/${request.requestId}/extend`, { reason: 'more', months: 1 });
    expect([again.status, again.body.code]).toEqual([409, 'already_extended']);
    // Deadline listings follow the new due date.
    const shown = (await api.get('/v1/audit/erasures?status=pending')).body.requests.find(
      (r: { requestId: string }) => r.requestId === request.requestId,
    );
    expect(shown).toMatchObject({ dueBy: res.body.dueBy, status: 'received' });
    expect(shown.daysLeft).toBeGreaterThan(40);
  });

  it('lets only one of two concurrent extensions win', async () => {
    const { request } = await pendingErasure();
    const path = `/v1/erasure-requests/${request.requestId}/extend`;
    const answers = await Promise.all([
      api.post(path, { reason: 'a', months: 1 }),
      api.post(path, { reason: 'b', months: 2 }),
    ]);
    expect(answers.map((a) => a.status).sort()).toEqual([200, 409]);
    expect(answers.find((a) => a.status === 409)?.body.code).toBe('already_extended');
  });

  it('409 extension_too_late after the first month, 409 erasure_completed, 400 for a bad body', async () => {
    const old = new Date(Date.now() - 40 * DAY_MS).toISOString();
    const late = await createErasureRequest(getDb(), tenant, { subjectKeys: ['nobody'], requestedVia: 'letter' }, old);
    const res = await api.post(`/v1/erasure-requests/${late.requestId}/extend`, { reason: 'busy', months: 1 });
    expect([res.status, res.body.code]).toEqual([409, 'extension_too_late']);

    const { request } = await pendingErasure();
    const path = `/v1/erasure-requests/${request.requestId}/extend`;
    for (const body of [{ reason: 'x', months: 3 }, { months: 1 }, { reason: '', months: 1 }]) {
      expect((await api.post(path, body)).status).toBe(400);
    }
    const stored = (await api.get(`/v1/erasure-requests/${request.requestId}`)).body;
    expect(stored.dueBy).toBe(request.dueBy);
    expect(stored).not.toHaveProperty('extendedAt');
    await api.post(`/v1/erasure-requests/${request.requestId}/complete`);
    const done = await api.post(path, { reason: 'x', months: 1 });
    expect([done.status, done.body.code]).toEqual([409, 'erasure_completed']);
  });
});

describeLocal('POST /v1/subjects/access (Art. 15)', () => {
  it('records access.provided with the actor, and answers purposes, retention, sources, rights, the inference', async () => {
    const subject = { phone: phone() };
    const granted = await api.post('/v1/consents', grantBody({ subject, source: 'double_opt_in' }));
    const res = await api.post('/v1/subjects/access', { subject, lang: 'fr' });
    expect(res.status).toBe(200);
    expect(res.body.purposes).toEqual([{ slug: 'marketing', kind: 'marketing', labels: {}, label: 'marketing' }]);
    expect(res.body.retention).toMatchObject({ inactiveSubjectDays: 1095, signalDays: 180, proofDays: 1825 });
    expect(res.body.sources).toEqual({ consents: ['double_opt_in'], withdrawals: [], providers: [] });
    expect(res.body.rights.lang).toBe('fr');
    expect(res.body.rights.rights).toHaveLength(8);
    expect(res.body.rights.supervisoryAuthority.url).toBe('https://www.cnil.fr/fr/plaintes');
    expect(res.body.automatedInference).toMatchObject({ lang: 'fr', thresholds: { likely: 0.7 } });
    expect(res.body.kept).toBeNull();

    const events = await api.events<Event>(granted.body.subjectKey);
    const access = events.filter((e) => e.type === 'access.provided');
    expect(access).toHaveLength(1);
    expect(access[0]).toMatchObject({ data: {}, actor: { type: 'api_key', keyId } });
    expect(access[0]).not.toHaveProperty('details');
  });

  it('says, for an erased subject, what is kept, why and until when; the DPO views say the same', async () => {
    const subject = { phone: phone() };
    await api.post('/v1/consents', grantBody({ subject }));
    const erased = await api.post('/v1/erasure-requests', {
      subjects: [subject],
      requestedVia: 'web',
      immediate: true,
    });
    expect(erased.body.status).toBe('completed');
    const until = new Date(Date.parse(erased.body.completedAt) + 1825 * DAY_MS).toISOString();
    const kept = {
      proofUntil: until,
      why: [{ basis: 'GDPR Art. 17(3)(e)' }, { basis: 'GDPR Art. 17(3)(b), Art. 21(3)' }],
    };

    const copy = await api.post('/v1/subjects/access', { subject });
    expect(copy.status).toBe(200);
    expect(copy.body.rights.lang).toBe('en');
    expect(copy.body.kept).toMatchObject(kept);
    expect((await api.get(`/v1/erasure-requests/${erased.body.requestId}`)).body.kept).toMatchObject(kept);
    const audit = (await api.get('/v1/audit/erasures?status=completed')).body.requests.find(
      (r: { requestId: string }) => r.requestId === erased.body.requestId,
    );
    expect(audit.kept).toMatchObject(kept);
  });

  it('400 for a bad language, and nothing is recorded', async () => {
    const subject = { phone: phone() };
    const granted = await api.post('/v1/consents', grantBody({ subject }));
    const res = await api.post('/v1/subjects/access', { subject, lang: 'de' });
    expect(res.status).toBe(400);
    expect(res.body.errors[0].path).toBe('lang');
    expect((await api.events<Event>(granted.body.subjectKey)).map((e) => e.type)).toEqual(['consent.granted']);
  });
});
