import { createHash, randomBytes, randomInt } from 'node:crypto';
import canonicalize from 'canonicalize';
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { grantBody, phone, tenantWithKey } from '../helpers/factories.ts';
import { client, describeLocal, startServer } from '../helpers/http.ts';
import { change, envelope, preference, sign, status } from '../helpers/whatsapp.ts';

let server: Awaited<ReturnType<typeof startServer>>;
let admin: ReturnType<typeof client>;
let reader: ReturnType<typeof client>;

const SECRET = 'whatsapp-app-secret-notices';
const PNID = String(randomInt(3e14, 4e14));

beforeAll(async () => {
  server = await startServer();
  const tenant = await tenantWithKey(['admin']);
  admin = client(server.url, tenant.key);
  reader = client(server.url, (await tenantWithKey(['consents:read'], tenant.tenant)).key);
});
afterAll(() => server.close());

const version = (name: string) => `${name}-${randomBytes(3).toString('hex')}`;
const notice = (overrides: Record<string, unknown> = {}) => ({
  version: version('privacy'),
  texts: { fr: 'Nous vous enverrons nos offres sur WhatsApp.', en: 'We will send you our offers on WhatsApp.' },
  url: 'https://acme.example/privacy',
  purposes: ['marketing'],
  effectiveAt: '2026-09-01T00:00:00Z',
  ...overrides,
});
const register = async (body: Record<string, unknown>) => {
  const res = await admin.post('/v1/notices', body);
  expect(res.status).toBe(201);
  return res.body;
};
const minutesFromNow = (m: number) => new Date(Date.now() + m * 60_000).toISOString();

describeLocal('POST/GET /v1/notices', () => {
  it('registers a notice: 201 with the SHA-256 of its canonical form, then lists and reads it', async () => {
    const body = notice({ purposes: ['newsletter', 'marketing'] });
    const res = await admin.post('/v1/notices', body);
    expect(res.status).toBe(201);
    const canonical = {
      version: body.version,
      texts: body.texts,
      url: body.url,
      purposes: ['marketing', 'newsletter'],
      effectiveAt: '2026-09-01T00:00:00.000Z',
      reconsentRequired: false,
    };
    expect(res.body).toEqual({
      ...canonical,
      hash: createHash('sha256')
        .update(canonicalize(canonical) as string)
        .digest('hex'),
      registeredAt: expect.any(String),
    });

    const one = await reader.get(`/v1/notices/${body.version}`);
    expect(one.status).toBe(200);
    expect(one.body).toEqual(res.body);
    const list = await reader.get('/v1/notices');
    expect(list.status).toBe(200);
    const { texts: _texts, ...summary } = res.body;
    expect(list.body.notices).toContainEqual(summary);
    expect((await reader.get('/v1/notices/never-registered')).body.code).toBe('notice_not_found');
    expect((await reader.get('/v1/notices/not%20a%20version')).status).toBe(400);
  });

  it('is immutable: the same content again → 200 with the first registration, other content → 409', async () => {
    const body = notice();
    const first = await register(body);
    const again = await admin.post('/v1/notices', { ...body, purposes: ['marketing', 'marketing'] });
    expect(again.status).toBe(200);
    expect(again.body).toEqual(first);
    const changed = await admin.post('/v1/notices', { ...body, texts: { ...body.texts, en: 'Other words.' } });
    expect(changed.status).toBe(409);
    expect(changed.body.code).toBe('notice_immutable');
    expect((await reader.get(`/v1/notices/${body.version}`)).body).toEqual(first);
  });

  it('validates with paths, and only admin keys register', async () => {
    const res = await admin.post('/v1/notices', { ...notice(), texts: {}, effectiveAt: 'soon', purposes: [] });
    expect(res.status).toBe(400);
    expect(res.body.errors.map((e: { path: string }) => e.path)).toEqual(
      expect.arrayContaining(['texts', 'effectiveAt', 'purposes']),
    );
    expect((await reader.post('/v1/notices', notice())).status).toBe(403);
  });
});

describeLocal('consents record the noticeHash; the access copy carries the notice', () => {
  it('a consent under a registered version records its hash in the event, the lookup and the access export', async () => {
    const registered = await register(notice());
    const body = grantBody({ noticeVersion: registered.version });
    expect((await admin.post('/v1/consents', body)).status).toBe(201);
    const lookup = await admin.lookup(body.subject);
    expect(lookup.body.consents[0]).toMatchObject({
      noticeVersion: registered.version,
      noticeHash: registered.hash,
    });
    const [event] = await admin.events(lookup.body.subjectKey);
    expect(event.data).toMatchObject({ noticeVersion: registered.version, noticeHash: registered.hash });

    const copy = await admin.post('/v1/subjects/access', { subject: body.subject });
    expect(copy.status).toBe(200);
    expect(copy.body.notices).toEqual([registered]);
    expect(copy.body.receipts[0].notice).toEqual({
      noticeVersion: registered.version,
      noticeHash: registered.hash,
      hashRecorded: true,
      effectiveAt: registered.effectiveAt,
      url: registered.url,
      texts: registered.texts,
    });
  });

  it('an unregistered version records no hash (the policy does not require registered notices by default)', async () => {
    const body = grantBody({ noticeVersion: version('paper-form') });
    expect((await admin.post('/v1/consents', body)).status).toBe(201);
    const copy = await admin.post('/v1/subjects/access', { subject: body.subject });
    expect(copy.body.notices).toEqual([]);
    expect(copy.body.receipts[0].notice).toEqual({
      noticeVersion: body.noticeVersion,
      noticeHash: null,
      hashRecorded: false,
    });
  });
});

describeLocal('requireRegisteredNotice', () => {
  let api: ReturnType<typeof client>;
  let registered: { version: string; hash: string };
  beforeAll(async () => {
    api = client(server.url, (await tenantWithKey(['admin'])).key);
    const res = await api.post('/v1/notices', notice());
    expect(res.status).toBe(201);
    registered = res.body;
  });

  it("the policy's own notice version must be registered: 422 unknown_notice, nothing changed", async () => {
    const res = await api.put('/v1/policy', { requireRegisteredNotice: true, noticeVersion: 'not-registered' });
    expect(res.status).toBe(422);
    expect(res.body).toMatchObject({ code: 'unknown_notice', errors: [{ path: 'noticeVersion' }] });
    expect((await api.get('/v1/policy')).body.requireRegisteredNotice).toBe(false);
    const ok = await api.put('/v1/policy', { requireRegisteredNotice: true, noticeVersion: registered.version });
    expect(ok.status).toBe(200);
  });

  it('a consent under an unregistered version → 422 unknown_notice and nothing stored; a registered one → 201', async () => {
    const body = grantBody({ noticeVersion: 'never-registered' });
    const refused = await api.post('/v1/consents', body);
    expect(refused.status).toBe(422);
    expect(refused.body).toMatchObject({ code: 'unknown_notice', errors: [{ path: 'noticeVersion' }] });
    expect((await api.lookup(body.subject)).status).toBe(404);
    const accepted = await api.post('/v1/consents', { ...body, noticeVersion: registered.version });
    expect(accepted.status).toBe(201);
  });

  it('a notice registered after the policy was set is accepted at once', async () => {
    const late = await api.post('/v1/notices', notice({ version: version('late') }));
    expect(late.status).toBe(201);
    const res = await api.post('/v1/consents', grantBody({ noticeVersion: late.body.version }));
    expect(res.status).toBe(201);
  });
});

describeLocal('reconsentRequired → consent_outdated', () => {
  it('blocks consents under earlier notices for its purposes from its effectiveAt; a new consent under it allows', async () => {
    const api = client(server.url, (await tenantWithKey(['admin'])).key);
    const v1 = await (await api.post('/v1/notices', notice({ purposes: ['marketing', 'order-updates'] }))).body;
    const subject = { phone: phone() };
    for (const purpose of ['marketing', 'order-updates']) {
      const res = await api.post('/v1/consents', grantBody({ subject, purpose, noticeVersion: v1.version }));
      expect(res.status).toBe(201);
    }
    const effectiveAt = minutesFromNow(60 * 24);
    const v2 = await api.post(
      '/v1/notices',
      notice({ version: version('privacy-v2'), effectiveAt, reconsentRequired: true }),
    );
    expect(v2.status).toBe(201);

    expect((await api.gateCheck(subject)).body.decision).toBe('allow');
    const later = await api.gateCheck(subject, 'whatsapp', { at: minutesFromNow(60 * 25) });
    expect(later.body.decision).toBe('block');
    expect(later.body.reasons).toEqual([
      expect.objectContaining({ code: 'consent_outdated', noticeVersion: v2.body.version, effectiveAt }),
    ]);
    const other = await api.gateCheck(subject, 'whatsapp', { purpose: 'order-updates', at: minutesFromNow(60 * 25) });
    expect(other.body.decision).toBe('allow');

    const again = await api.post('/v1/consents', grantBody({ subject, noticeVersion: v2.body.version }));
    expect(again.status).toBe(201);
    expect((await api.gateCheck(subject, 'whatsapp', { at: minutesFromNow(60 * 25) })).body.decision).toBe('allow');
  });
});

describeLocal("WhatsApp's marketing stop leaves service purposes", () => {
  let api: ReturnType<typeof client>;
  let registered: { version: string; hash: string };
  const anonymous = () => client(server.url);
  const deliver = (payload: unknown) => {
    const raw = JSON.stringify(payload);
    return anonymous().post('/v1/webhooks/whatsapp', undefined, {
      raw,
      headers: { 'content-type': 'application/json', 'x-hub-signature-256': sign(raw, SECRET) },
    });
  };

  beforeAll(async () => {
    const created = await tenantWithKey(['admin']);
    api = client(server.url, created.key);
    process.env.WHATSAPP_PHONE_NUMBER_TENANTS = `${PNID}:${created.tenant}`;
    registered = (await api.post('/v1/notices', notice({ purposes: ['marketing', 'order-updates'] }))).body;
    const policy = await api.put('/v1/policy', {
      noticeVersion: registered.version,
      purposes: {
        marketing: { kind: 'marketing', labels: { fr: 'Offres', en: 'Offers' } },
        'order-updates': { kind: 'service', labels: { fr: 'Suivi de commande', en: 'Order tracking' } },
      },
    });
    expect(policy.status).toBe(200);
  });
  beforeEach(() => {
    process.env.WHATSAPP_APP_SECRET = SECRET;
  });
  afterAll(() => {
    delete process.env.WHATSAPP_APP_SECRET;
    delete process.env.WHATSAPP_PHONE_NUMBER_TENANTS;
  });

  const consented = async () => {
    const subject = { phone: phone() };
    const grantedAt = minutesFromNow(-30);
    for (const purpose of ['marketing', 'order-updates']) {
      const res = await api.post('/v1/consents', grantBody({ subject, purpose, grantedAt }));
      expect(res.status).toBe(201);
    }
    return subject;
  };
  const decisions = async (subject: object) =>
    Promise.all(
      ['marketing', 'order-updates'].map(async (purpose) => {
        const res = await api.gateCheck(subject, 'whatsapp', { purpose });
        return [purpose, res.body.decision, res.body.reasons[0]?.code];
      }),
    );

  it.each([
    ['user_preferences stop', (subject: { phone: string }) => preference(subject, 'stop', minutesFromNow(-1))],
    [
      'failed 131050',
      (subject: { phone: string }) => ({
        statuses: [status(subject, 'failed', minutesFromNow(-1), { errorCode: 131050 })],
      }),
    ],
  ])('%s: marketing blocked, order updates still allowed', async (_name, value) => {
    const subject = await consented();
    const res = await deliver(envelope([change(PNID, value(subject))]));
    expect(res.body.recorded).toBe(1);
    expect(await decisions(subject)).toEqual([
      ['marketing', 'block', 'consent_withdrawn'],
      ['order-updates', 'allow', undefined],
    ]);
    const lookup = await api.lookup(subject);
    expect(lookup.body.consents.find((c: { purpose: string }) => c.purpose === 'order-updates').status).toBe('granted');
  });

  it("a resume grants marketing again under the policy's notice and records its hash", async () => {
    const subject = await consented();
    await deliver(envelope([change(PNID, preference(subject, 'stop', minutesFromNow(-2)))]));
    const res = await deliver(envelope([change(PNID, preference(subject, 'resume', minutesFromNow(-1)))]));
    expect(res.body.recorded).toBe(1);
    expect((await decisions(subject)).map(([, d]) => d)).toEqual(['allow', 'allow']);
    const events = await api.events((await api.lookup(subject)).body.subjectKey);
    expect(events.at(-1)).toMatchObject({
      type: 'consent.granted',
      source: 'whatsapp_optin',
      data: { noticeVersion: registered.version, noticeHash: registered.hash },
    });
  });

  it('the preference centre names purposes with their labels in the page language', async () => {
    const subject = await consented();
    const link = await api.post('/v1/optout-links', { subject, channel: 'whatsapp' });
    const page = await anonymous().get(`${new URL(link.body.preferencesUrl).pathname}?lang=fr`);
    expect(page.status).toBe(200);
    expect(page.text).toContain('WhatsApp · Suivi de commande');
    expect(page.text).toContain('WhatsApp · Offres');
  });
});
