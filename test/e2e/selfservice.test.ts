import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { signLink } from '#shared/links/token.ts';
import { getSecrets } from '#shared/secrets.ts';
import { getDb } from '#store/db.ts';
import { getState } from '#store/subjects.ts';
import { email, grantBody, phone, tenantWithKey } from '../helpers/factories.ts';
import { client, describeLocal, startServer, validatedFetch } from '../helpers/http.ts';

let server: Awaited<ReturnType<typeof startServer>>;
let api: ReturnType<typeof client>;
let web: ReturnType<typeof client>;
let tenant: string;
const NOTICE = '2026-11-privacy-v4';

beforeAll(async () => {
  server = await startServer();
  const created = await tenantWithKey(['admin']);
  tenant = created.tenant;
  api = client(server.url, created.key);
  web = client(server.url);
  const policy = (await api.get('/v1/policy')).body;
  const put = await api.put('/v1/policy', {
    ...policy,
    noticeVersion: NOTICE,
    controller: { name: 'Boulangerie Émile & Fils', privacyContact: 'dpo@emile.example' },
  });
  expect(put.status).toBe(200);
});
afterAll(() => server.close());

const form = (fields: Record<string, string>) => ({
  headers: { 'content-type': 'application/x-www-form-urlencoded' },
  raw: new URLSearchParams(fields).toString(),
});

async function consented(channel = 'whatsapp', subject: Record<string, string> = { phone: phone() }) {
  expect((await api.post('/v1/consents', grantBody({ subject, channel }))).status).toBe(201);
  return subject;
}
async function links(subject: Record<string, string>, channel = 'whatsapp', extra: Record<string, unknown> = {}) {
  const res = await api.post('/v1/optout-links', { subject, channel, ...extra });
  expect(res.status).toBe(201);
  return res.body as { url: string; preferencesUrl: string; token: string; subjectKey: string; expiresAt: string };
}
const ownActionAt = async (subjectKey: string) => (await getState(getDb(), tenant, subjectKey))?.lastOwnActionAt;
const path = (url: string) => new URL(url).pathname;

describeLocal('POST /v1/optout-links', () => {
  it('answers 201 with both links, the expiry and the e-mail headers', async () => {
    const subject = { email: email() };
    const res = await api.post('/v1/optout-links', { subject, channel: 'email', expiresInDays: 30 });
    expect(res.status).toBe(201);
    expect(res.body.url).toBe(`${server.url}/optout/${res.body.token}`);
    expect(res.body.preferencesUrl).toMatch(new RegExp(`^${server.url}/preferences/v1\\.`));
    expect(res.body.listUnsubscribe).toBe(`<${res.body.url}>`);
    expect(res.body.listUnsubscribePost).toBe('List-Unsubscribe=One-Click');
    const days = (Date.parse(res.body.expiresAt) - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(29.9);
    expect(days).toBeLessThanOrEqual(30);
    expect(res.body.url).not.toContain(subject.email.split('@')[0]);
    expect(Buffer.from(res.body.token.split('.')[2], 'base64url').toString()).not.toContain('@');
  });

  it('refuses bad input with problem+json and needs consents:write', async () => {
    const bad = await api.post('/v1/optout-links', {
      subject: { phone: phone() },
      channel: 'whatsapp',
      expiresInDays: 0,
    });
    expect(bad.status).toBe(400);
    expect(bad.body.errors[0].path).toBe('expiresInDays');
    const mismatch = await api.post('/v1/optout-links', { subject: { email: email() }, channel: 'whatsapp' });
    expect(mismatch.body.code).toBe('identifier_channel_mismatch');
    const reader = client(server.url, (await tenantWithKey(['gate:check'])).key);
    expect((await reader.post('/v1/optout-links', { subject: { phone: phone() }, channel: 'sms' })).status).toBe(403);
    expect((await web.post('/v1/optout-links', { subject: { phone: phone() }, channel: 'sms' })).status).toBe(401);
  });
});

describeLocal('opt-out page', () => {
  it('GET shows who is writing and what stops, with the page security headers, and records nothing', async () => {
    const subject = await consented();
    const link = await links(subject);
    const before = await api.events(link.subjectKey);
    for (let i = 0; i < 3; i++) {
      const page = await web.get(path(link.url), { headers: { 'accept-language': 'fr-FR,fr;q=0.9,en;q=0.5' } });
      expect(page.status).toBe(200);
      expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
      expect(page.text).toContain('<html lang="fr">');
      expect(page.text).toContain('Boulangerie Émile &amp; Fils');
      expect(page.text).toContain('Ne plus recevoir les offres et actualités sur WhatsApp ?');
      expect(page.text).toContain('mailto:dpo@emile.example');
      expect(page.headers.get('content-security-policy')).toMatch(/^default-src 'none'; style-src 'sha256-/);
      expect(page.headers.get('x-frame-options')).toBe('DENY');
      expect(page.headers.get('referrer-policy')).toBe('no-referrer');
      expect(page.headers.get('cache-control')).toBe('no-store');
      expect(page.headers.get('x-content-type-options')).toBe('nosniff');
      expect(page.headers.get('set-cookie')).toBeNull();
    }
    expect(await api.events(link.subjectKey)).toEqual(before);
    expect((await api.gateCheck(subject)).body.decision).toBe('allow');
    const english = await web.get(`${path(link.url)}?lang=en`, { headers: { 'accept-language': 'fr' } });
    expect(english.text).toContain('Stop offers and news on WhatsApp?');
  });

  it('POST withdraws as self_service_link, the gate blocks at once, a second POST records nothing new', async () => {
    const subject = await consented();
    const link = await links(subject);
    const ownBefore = await ownActionAt(link.subjectKey);
    const done = await web.post(path(link.url), undefined, form({}));
    expect(done.status).toBe(200);
    expect(done.text).toContain('Done: these messages are stopped');
    const decision = (await api.gateCheck(subject)).body;
    expect(decision.decision).toBe('block');
    expect(decision.reasons[0].code).toBe('consent_withdrawn');
    const ledger = await api.events(link.subjectKey);
    expect(ledger.at(-1)).toMatchObject({
      type: 'consent.withdrawn',
      source: 'self_service_link',
      channel: 'whatsapp',
    });
    // An opt-out link stops one scope; it is not taken as a sign that the person wants the others kept.
    expect(await ownActionAt(link.subjectKey)).toBe(ownBefore);
    const again = await web.post(path(link.url), undefined, form({}));
    expect(again.status).toBe(200);
    expect(again.text).toContain('Done: these messages are stopped');
    expect(await api.events(link.subjectKey)).toHaveLength(ledger.length);
    const page = await web.get(path(link.url));
    expect(page.text).toContain('You already stopped these messages');
    expect(page.text).not.toContain('<button');
  });

  it('RFC 8058 one-click POST (urlencoded) withdraws and answers 200 without cookies or auth', async () => {
    const subject = await consented('email', { email: email() });
    const link = await links(subject, 'email');
    const res = await web.post(path(link.url), undefined, form({ 'List-Unsubscribe': 'One-Click' }));
    expect(res.status).toBe(200);
    expect(res.headers.get('set-cookie')).toBeNull();
    expect((await api.gateCheck(subject, 'email')).body.reasons[0].code).toBe('consent_withdrawn');
    expect((await api.events(link.subjectKey)).at(-1)).toMatchObject({ source: 'one_click', channel: 'email' });
  });

  it('RFC 8058 one-click POST as multipart/form-data works too', async () => {
    const subject = await consented('email', { email: email() });
    const link = await links(subject, 'email');
    const body = new FormData();
    body.set('List-Unsubscribe', 'One-Click');
    const res = await validatedFetch(link.url, { method: 'POST', body });
    expect(res.status).toBe(200);
    expect((await api.gateCheck(subject, 'email')).body.reasons[0].code).toBe('consent_withdrawn');
    expect((await api.events(link.subjectKey)).at(-1)).toMatchObject({ source: 'one_click' });
  });

  it('a link for a subject without consent records an objection that blocks', async () => {
    const subject = { phone: phone() };
    const link = await links(subject, 'sms');
    expect((await web.post(path(link.url), undefined, form({}))).status).toBe(200);
    const decision = (await api.gateCheck(subject, 'sms')).body;
    expect(decision.reasons[0]).toMatchObject({ code: 'consent_withdrawn' });
    expect(decision.reasons[0].message).toContain('objection');
  });

  it('acts only in its own tenant and on its own scope', async () => {
    const subject = await consented('whatsapp');
    await consented('sms', subject);
    const other = await tenantWithKey(['admin']);
    const otherApi = client(server.url, other.key);
    await otherApi.post('/v1/consents', grantBody({ subject, channel: 'whatsapp' }));
    const link = await links(subject, 'whatsapp');
    await web.post(path(link.url), undefined, form({}));
    expect((await api.gateCheck(subject, 'whatsapp')).body.decision).toBe('block');
    expect((await api.gateCheck(subject, 'sms')).body.decision).toBe('allow');
    const elsewhere = await otherApi.post('/v1/gate/check', { subject, channel: 'whatsapp' });
    expect(elsewhere.body.decision).toBe('allow');
  });
});

describeLocal('refused links', () => {
  it('tampered, truncated and unknown-key links get a 400 page and record nothing', async () => {
    const subject = await consented();
    const link = await links(subject);
    const [v, kid, body, sig] = link.token.split('.');
    const wider = Buffer.from(
      JSON.stringify({ ...JSON.parse(Buffer.from(body, 'base64url').toString()), p: 'newsletter' }),
    ).toString('base64url');
    const bad = [
      `${v}.${kid}.${body}.${sig.slice(0, -2)}AA`,
      `${v}.${kid}.${wider}.${sig}`,
      `${v}.zzzz.${body}.${sig}`,
      link.token.slice(0, 60),
      'not-a-token',
    ];
    for (const token of bad) {
      for (const method of ['GET', 'POST'] as const) {
        const res =
          method === 'GET'
            ? await web.get(`/optout/${token}`)
            : await web.post(`/optout/${token}`, undefined, form({ 'List-Unsubscribe': 'One-Click' }));
        expect(res.status).toBe(400);
        expect(res.headers.get('content-type')).toContain('text/html');
        expect(res.headers.get('content-security-policy')).toContain("default-src 'none'");
        expect(res.text).toContain('This link is not valid');
        expect(res.text).not.toContain('Émile');
      }
    }
    expect((await api.gateCheck(subject)).body.decision).toBe('allow');
    expect(await api.events(link.subjectKey)).toHaveLength(1);
  });

  it('an expired genuine link gets a 410 page with the privacy contact, and records nothing', async () => {
    const subject = await consented();
    const link = await links(subject);
    const { linkKeys } = await getSecrets();
    const token = signLink(
      {
        tenant,
        subjectKey: link.subjectKey,
        kind: 'optout',
        channel: 'whatsapp',
        purpose: 'marketing',
        exp: Math.floor(Date.now() / 1000) - 60,
      },
      linkKeys,
    );
    const res = await web.post(`/optout/${token}`, undefined, form({ 'List-Unsubscribe': 'One-Click' }));
    expect(res.status).toBe(410);
    expect(res.text).toContain('This link has expired');
    expect(res.text).toContain('mailto:dpo@emile.example');
    expect((await api.gateCheck(subject)).body.decision).toBe('allow');
  });

  it('an opt-out link does not open the preference centre, nor the reverse', async () => {
    const subject = await consented();
    const link = await links(subject);
    const asPrefs = await web.post(`/preferences/${link.token}`, undefined, form({ action: 'erase', confirm: 'yes' }));
    expect(asPrefs.status).toBe(400);
    expect(asPrefs.text).toContain('not meant for this page');
    const prefsToken = path(link.preferencesUrl).split('/')[2];
    expect((await web.post(`/optout/${prefsToken}`, undefined, form({}))).status).toBe(400);
    expect((await api.gateCheck(subject)).body.decision).toBe('allow');
  });

  it('any POST to a valid link opts out: JSON, a broken multipart or no body at all (the body only names the source)', async () => {
    const cases: { headers?: Record<string, string>; raw?: string }[] = [
      { headers: { 'content-type': 'application/json' }, raw: JSON.stringify({ 'List-Unsubscribe': 'One-Click' }) },
      { headers: { 'content-type': 'multipart/form-data; boundary=xyz' }, raw: 'garbage without boundaries' },
      {},
    ];
    for (const request of cases) {
      const subject = await consented();
      const link = await links(subject);
      const res = await web.post(path(link.url), undefined, request);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toContain('text/html');
      expect((await api.gateCheck(subject)).body.reasons[0].code).toBe('consent_withdrawn');
      const source = (await api.events(link.subjectKey)).at(-1).source;
      expect(source).toBe(request.raw?.startsWith('{') ? 'one_click' : 'self_service_link');
    }
  });
});

describeLocal('RFC 8058 one-click, every way mail providers send it', () => {
  const RFC_EXAMPLE = readFileSync(new URL('../fixtures/rfc8058/section-8.3-body.txt', import.meta.url), 'utf8');

  it('honours the RFC 8058 §8.3 example body as printed (its delimiters lack the leading "--")', async () => {
    const subject = await consented('email', { email: email() });
    const link = await links(subject, 'email');
    const res = await web.post(path(link.url), undefined, {
      headers: { 'content-type': 'multipart/form-data; boundary=---FormBoundaryjWmhtjORrn' },
      raw: RFC_EXAMPLE,
    });
    expect(res.status).toBe(200);
    expect((await api.gateCheck(subject, 'email')).body.reasons[0].code).toBe('consent_withdrawn');
    expect((await api.events(link.subjectKey)).at(-1)).toMatchObject({ source: 'one_click' });
  });

  it('honours a text/plain one-click body', async () => {
    const subject = await consented('email', { email: email() });
    const link = await links(subject, 'email');
    const res = await web.post(path(link.url), undefined, {
      headers: { 'content-type': 'text/plain' },
      raw: 'List-Unsubscribe=One-Click',
    });
    expect(res.status).toBe(200);
    expect((await api.events(link.subjectKey)).at(-1)).toMatchObject({ source: 'one_click' });
  });

  it('answers HEAD on the pages with 200 and no body, and changes nothing', async () => {
    const subject = await consented();
    const link = await links(subject);
    const before = await api.events(link.subjectKey);
    for (const url of [link.url, link.preferencesUrl]) {
      const res = await fetch(url, { method: 'HEAD' });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toContain('text/html');
      expect(await res.text()).toBe('');
    }
    expect((await fetch(`${server.url}/v1/health`, { method: 'HEAD' })).status).toBe(200);
    expect(await api.events(link.subjectKey)).toHaveLength(before.length);
    expect((await api.gateCheck(subject)).body.decision).toBe('allow');
  });
});

describeLocal('preference centre', () => {
  it('lists every scope, withdraws one, gives it again with the current notice, as the person’s own action', async () => {
    const subject = await consented('whatsapp');
    await consented('sms', subject);
    const link = await links(subject);
    const prefs = path(link.preferencesUrl);
    const page = await web.get(prefs);
    expect(page.status).toBe(200);
    expect(page.text).toContain('WhatsApp · Offers and news');
    expect(page.text).toContain('SMS · Offers and news');

    const stopped = await web.post(prefs, undefined, form({ action: 'withdraw', scope: 'sms|marketing' }));
    expect(stopped.status).toBe(200);
    // A change in the preference centre is the person's own action: it resets the consent age.
    expect(await ownActionAt(link.subjectKey)).toBe((await api.events(link.subjectKey)).at(-1).at);
    expect(stopped.text).toContain('Done: you will no longer receive offers and news by SMS.');
    expect((await api.gateCheck(subject, 'sms')).body.reasons[0].code).toBe('consent_withdrawn');
    expect((await api.gateCheck(subject, 'whatsapp')).body.decision).toBe('allow');

    const given = await web.post(prefs, undefined, form({ action: 'grant', scope: 'sms|marketing' }));
    expect(given.status).toBe(200);
    expect(given.text).toContain(`privacy notice version ${NOTICE}`);
    const allowed = (await api.gateCheck(subject, 'sms')).body;
    expect(allowed.decision).toBe('allow');
    expect(allowed.consent.noticeVersion).toBe(NOTICE);
    const ledger = await api.events(link.subjectKey);
    expect(ledger.slice(-2).map((e: { type: string; source: string }) => [e.type, e.source])).toEqual([
      ['consent.withdrawn', 'preference_center'],
      ['consent.granted', 'preference_center'],
    ]);
    expect(ledger.at(-1).data.noticeVersion).toBe(NOTICE);

    const twice = await web.post(prefs, undefined, form({ action: 'grant', scope: 'sms|marketing' }));
    expect(twice.status).toBe(200);
    expect(await api.events(link.subjectKey)).toHaveLength(ledger.length);
  });

  it('cannot add a scope the subject never had, and records nothing then', async () => {
    const subject = await consented('whatsapp');
    const link = await links(subject);
    const prefs = path(link.preferencesUrl);
    const before = await api.events(link.subjectKey);
    for (const scope of ['sms|marketing', 'whatsapp|newsletter', '*|*', 'fax|marketing', 'nonsense']) {
      const res = await web.post(prefs, undefined, form({ action: 'grant', scope }));
      expect(res.status).toBe(400);
    }
    expect(await api.events(link.subjectKey)).toEqual(before);
    expect((await api.gateCheck(subject, 'sms')).body.reasons[0].code).toBe('no_consent');
  });

  it('records a confirmed visit as preferences.visited (a GET alone records nothing)', async () => {
    const subject = await consented('whatsapp');
    const link = await links(subject);
    const prefs = path(link.preferencesUrl);
    await web.get(prefs);
    expect(await api.events(link.subjectKey)).toHaveLength(1);
    const res = await web.post(prefs, undefined, form({ action: 'confirm' }));
    expect(res.text).toContain('your choices are confirmed');
    expect((await api.events(link.subjectKey)).at(-1)).toMatchObject({
      type: 'preferences.visited',
      source: 'preference_center',
    });
  });

  it('asks for erasure only with the box ticked, then blocks and shows the due date; twice is harmless', async () => {
    const subject = await consented('whatsapp');
    const link = await links(subject);
    const prefs = path(link.preferencesUrl);
    const unticked = await web.post(prefs, undefined, form({ action: 'erase' }));
    expect(unticked.status).toBe(400);
    expect((await api.gateCheck(subject)).body.decision).toBe('allow');

    const res = await web.post(`${prefs}?lang=fr`, undefined, form({ action: 'erase', confirm: 'yes' }));
    expect(res.status).toBe(200);
    expect(res.text).toMatch(/Votre demande de suppression a été reçue le .+ au plus tard le \d{1,2} \S+ \d{4}/);
    expect((await api.gateCheck(subject)).body.reasons[0].code).toBe('erasure_pending');
    const requested = (await api.events(link.subjectKey)).at(-1);
    expect(requested.type).toBe('erasure.requested');
    const request = await api.get(`/v1/erasure-requests/${requested.data.requestId}`);
    expect(request.body).toMatchObject({
      status: 'received',
      requestedVia: 'self_service',
      subjectKeys: [link.subjectKey],
    });

    const again = await web.post(prefs, undefined, form({ action: 'erase', confirm: 'yes' }));
    expect(again.status).toBe(200);
    expect(await api.events(link.subjectKey)).toHaveLength(2);
    expect(again.text).not.toContain('<button');
  });

  it('tells an erased subject when the data was deleted, and offers nothing to change', async () => {
    const subject = await consented('whatsapp');
    const link = await links(subject);
    const erased = await api.post('/v1/erasure-requests', {
      subjects: [subject],
      requestedVia: 'email',
      immediate: true,
    });
    expect(erased.body.status).toBe('completed');
    const page = await web.get(path(link.preferencesUrl));
    expect(page.status).toBe(200);
    expect(page.text).toMatch(/Your data was deleted on \d{1,2} [A-Z][a-z]+ \d{4}\./);
    expect(page.text).not.toContain('<button');
    const kept = await api.events(link.subjectKey);
    expect((await web.post(path(link.preferencesUrl), undefined, form({ action: 'confirm' }))).status).toBe(200);
    expect(kept.at(-1).type).toBe('erasure.completed');
    expect(await api.events(link.subjectKey)).toEqual(kept);
  });

  it('shows an unknown subject that nothing is recorded, and records nothing', async () => {
    const subject = { phone: phone() };
    const link = await links(subject);
    const page = await web.get(path(link.preferencesUrl), { headers: { 'accept-language': 'fr' } });
    expect(page.status).toBe(200);
    expect(page.text).toContain('rien n’est enregistré à votre sujet');
    await web.post(path(link.preferencesUrl), undefined, form({ action: 'erase', confirm: 'yes' }));
    expect(await api.events(link.subjectKey)).toEqual([]);
  });
});
