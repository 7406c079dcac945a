import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { email, grantBody, phone, tenantWithKey } from '../helpers/factories.ts';
import { client, startServer } from '../helpers/http.ts';

let server: Awaited<ReturnType<typeof startServer>>;
let api: ReturnType<typeof client>;

beforeAll(async () => {
  server = await startServer();
  api = client(server.url, (await tenantWithKey()).key);
});
afterAll(() => server.close());

describe('POST /v1/consents', () => {
  it('records a consent with a national number and answers the contract fields', async () => {
    const res = await api.post(
      '/v1/consents',
      grantBody({
        subject: { phone: '06 12 34 56 78', country: 'FR' },
        grantedAt: '2026-11-20T09:12:00+01:00',
        expiresAt: '2029-11-20T09:12:00Z',
        evidence: { formId: 'newsletter-footer', text: 'I agree', ipAddress: '203.0.113.7', userAgent: 'Mozilla/5.0' },
      }),
    );
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({
      channel: 'whatsapp',
      purpose: 'marketing',
      status: 'granted',
      grantedAt: '2026-11-20T08:12:00.000Z',
      expiresAt: '2029-11-20T09:12:00.000Z',
    });
    expect(res.body.eventId).toBeTruthy();
    expect(res.body.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(res.body.subjectKey).toMatch(/^[A-Za-z0-9_-]{43}$/);
    // The same number in E.164 is the same subject.
    const check = await api.gateCheck({ phone: '+33612345678' });
    expect(check.body.subjectKey).toBe(res.body.subjectKey);
    expect(check.body.decision).toBe('allow');
    // The evidence keeps a keyed hash of the IP, never the IP.
    const ledger = await api.get(`/v1/subjects/${res.body.subjectKey}/events`);
    const evidence = ledger.body.events.at(-1).details.evidence;
    expect(evidence.ipAddressHash).toMatch(/^hmac-sha256:/);
    expect(JSON.stringify(ledger.body)).not.toContain('203.0.113.7');
  });

  it('refuses a grant in the future and an expiry before the grant', async () => {
    const future = new Date(Date.now() + 3_600_000).toISOString();
    const a = await api.post('/v1/consents', grantBody({ grantedAt: future }));
    expect(a.status).toBe(400);
    expect(a.body.errors[0].path).toBe('grantedAt');
    const b = await api.post(
      '/v1/consents',
      grantBody({ grantedAt: '2026-01-02T00:00:00Z', expiresAt: '2026-01-01T00:00:00Z' }),
    );
    expect(b.status).toBe(400);
    expect(b.body.errors[0].path).toBe('expiresAt');
  });

  it('requires noticeVersion and a known source', async () => {
    const { noticeVersion: _, ...body } = grantBody();
    const res = await api.post('/v1/consents', body);
    expect(res.status).toBe(400);
    expect(res.body.errors.map((e: { path: string }) => e.path)).toContain('noticeVersion');
    const bad = await api.post('/v1/consents', grantBody({ source: 'telepathy' }));
    expect(bad.body.errors[0].path).toBe('source');
  });

  it('refuses an identifier the channel cannot reach', async () => {
    const res = await api.post('/v1/consents', grantBody({ subject: { email: email() }, channel: 'whatsapp' }));
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('identifier_channel_mismatch');
  });

  it('refuses an invalid phone number with invalid_identifier', async () => {
    const res = await api.post('/v1/consents', grantBody({ subject: { phone: '+33 12' } }));
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ code: 'invalid_identifier', errors: [{ path: 'subject.phone' }] });
  });
});

describe('withdrawal and fresh consent', () => {
  it('a withdrawal blocks the very next check, and an import cannot undo it', async () => {
    const subject = { phone: phone() };
    await api.post('/v1/consents', grantBody({ subject }));
    const w = await api.post('/v1/consents/withdraw', {
      subject,
      channel: 'whatsapp',
      purpose: 'marketing',
      reason: 'asked by phone',
    });
    expect(w.status).toBe(200);
    expect(w.body.withdrawn).toEqual([{ channel: 'whatsapp', purpose: 'marketing' }]);
    expect(w.body.withdrawnAt).toBeTruthy();
    expect((await api.gateCheck(subject)).body).toMatchObject({
      decision: 'block',
      reasons: [{ code: 'consent_withdrawn' }],
    });
    const imp = await api.post('/v1/consents', grantBody({ subject, source: 'import' }));
    expect(imp.status).toBe(409);
    expect(imp.body.code).toBe('fresh_consent_required');
    // Nothing stored by the refused import.
    const ledger = await api.get(`/v1/subjects/${w.body.subjectKey}/events`);
    expect(ledger.body.events.map((e: { type: string }) => e.type)).toEqual(['consent.granted', 'consent.withdrawn']);
    // The person's own fresh consent is accepted.
    const fresh = await api.post('/v1/consents', grantBody({ subject, source: 'double_opt_in' }));
    expect(fresh.status).toBe(201);
    expect((await api.gateCheck(subject)).body.decision).toBe('allow');
  });

  it('an objection without any consent blocks future imports on every channel', async () => {
    const subject = { phone: phone() };
    const w = await api.post('/v1/consents/withdraw', { subject });
    expect(w.status).toBe(200);
    expect(w.body.withdrawn).toEqual([{ channel: '*', purpose: '*' }]);
    for (const channel of ['whatsapp', 'sms', 'voice']) {
      const imp = await api.post('/v1/consents', grantBody({ subject, channel, source: 'import' }));
      expect(imp.status).toBe(409);
    }
    const lookup = await api.post('/v1/subjects/lookup', { subject });
    expect(lookup.body.consents).toEqual([
      expect.objectContaining({ channel: '*', purpose: '*', status: 'withdrawn', objection: true }),
    ]);
  });

  it('omitting the channel withdraws every channel of that purpose', async () => {
    const subject = { externalId: `crm-${phone()}` };
    await api.post('/v1/consents', grantBody({ subject, channel: 'sms' }));
    await api.post('/v1/consents', grantBody({ subject, channel: 'email' }));
    await api.post('/v1/consents', grantBody({ subject, channel: 'email', purpose: 'newsletter' }));
    const w = await api.post('/v1/consents/withdraw', { subject, purpose: 'marketing' });
    expect(w.body.withdrawn).toEqual(
      expect.arrayContaining([
        { channel: 'sms', purpose: 'marketing' },
        { channel: 'email', purpose: 'marketing' },
      ]),
    );
    expect((await api.gateCheck(subject, 'sms')).body.decision).toBe('block');
    expect((await api.gateCheck(subject, 'email', { purpose: 'newsletter' })).body.decision).toBe('allow');
  });
});

describe('POST /v1/subjects/lookup and the ledger', () => {
  it('shows each scope with its state, and 404 for an unknown subject', async () => {
    const subject = { email: email() };
    await api.post('/v1/consents', grantBody({ subject, channel: 'email', noticeVersion: 'n-1' }));
    await api.post('/v1/consents', grantBody({ subject, channel: 'email', purpose: 'newsletter' }));
    await api.post('/v1/consents/withdraw', { subject, channel: 'email', purpose: 'newsletter' });
    const res = await api.post('/v1/subjects/lookup', { subject: { email: subject.email.toUpperCase() } });
    expect(res.status).toBe(200);
    expect(res.body.erasure).toBeNull();
    // A channel with consent and no signal shows its likelihood as none.
    expect(res.body.signals.email).toMatchObject({ blockLikelihood: 0, level: 'none' });
    const byPurpose = Object.fromEntries(res.body.consents.map((c: { purpose: string }) => [c.purpose, c]));
    expect(byPurpose.marketing).toMatchObject({
      channel: 'email',
      status: 'granted',
      source: 'web_form',
      noticeVersion: 'n-1',
    });
    expect(byPurpose.newsletter).toMatchObject({ status: 'withdrawn', source: 'api' });
    expect(byPurpose.newsletter.withdrawnAt).toBeTruthy();
    expect(byPurpose.newsletter.grantedAt).toBeTruthy();
    const unknown = await api.post('/v1/subjects/lookup', { subject: { email: email() } });
    expect(unknown.status).toBe(404);
    expect(unknown.body.code).toBe('subject_not_found');
  });

  it('returns the events in seq order with a valid chain', async () => {
    const subject = { phone: phone() };
    const g = await api.post('/v1/consents', grantBody({ subject }));
    await api.post('/v1/consents/withdraw', { subject, channel: 'whatsapp' });
    const res = await api.get(`/v1/subjects/${g.body.subjectKey}/events`);
    expect(res.status).toBe(200);
    const [first, second] = res.body.events;
    expect(first).toMatchObject({ seq: 1, type: 'consent.granted', prevHash: '0'.repeat(64), hash: g.body.hash });
    expect(second).toMatchObject({ seq: 2, type: 'consent.withdrawn', prevHash: first.hash });
    expect(res.body.chain).toEqual({ valid: true, length: 2, head: second.hash });
    expect((await api.get('/v1/subjects/not-a-key/events')).status).toBe(400);
    expect((await api.get(`/v1/subjects/${'A'.repeat(43)}/events`)).status).toBe(404);
  });
});
