import { createHash } from 'node:crypto';
import type { Context } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import type { ApiEvent } from '#http/middlewares.ts';
import { errorPage } from '#shared/pages/errors.ts';
import { escapeHtml, html, raw } from '#shared/pages/html.ts';
import { formatDate, negotiateLang, scopePhrase } from '#shared/pages/i18n.ts';
import { CONTENT_SECURITY_POLICY, contactLink, pageHeaders, renderPage, STYLE } from '#shared/pages/layout.ts';
import { optoutDonePage, optoutPage } from '#shared/pages/optout.ts';
import { preferencesPage } from '#shared/pages/preferences.ts';
import { pageRoute, readForm } from '#shared/pages/route.ts';
import { StoreUnavailable } from '#store/errors.ts';

const evil = '<script>alert("x")</script>&\'';
const controller = { name: evil, privacyContact: 'dpo@example.org' };

describe('html escaping', () => {
  it('escapes interpolated values, joins arrays, keeps SafeHtml', () => {
    expect(escapeHtml(`<a href="x">'&`)).toBe('&lt;a href=&quot;x&quot;&gt;&#39;&amp;');
    expect(html`<p title="${'"x"'}">${['<b>', raw('<i>ok</i>')]}${null}${false}${0}</p>`.value).toBe(
      '<p title="&quot;x&quot;">&lt;b&gt;<i>ok</i>0</p>',
    );
  });

  it('never lets a tenant name or a purpose inject markup into a page', () => {
    const pages = [
      optoutPage({
        lang: 'en',
        controller,
        timeZone: 'Europe/Paris',
        channel: 'email',
        purpose: 'x"><script>',
        action: '/optout/t',
      }),
      optoutDonePage({
        lang: 'fr',
        controller,
        timeZone: 'Europe/Paris',
        channel: 'sms',
        purpose: 'marketing',
        withdrawnAt: '2026-11-25T10:00:00Z',
      }),
      preferencesPage({
        lang: 'en',
        controller,
        timeZone: 'UTC',
        noticeVersion: '<v3>',
        action: '/preferences/t',
        rows: [
          {
            channel: 'sms',
            purpose: 'a<b',
            status: 'withdrawn',
            grantedAt: null,
            withdrawnAt: '2026-11-25T10:00:00Z',
            changeable: true,
          },
        ],
      }),
    ];
    for (const page of pages) {
      expect(page).not.toContain('<script>');
      expect(page).toContain('&lt;script&gt;');
    }
  });

  it('links a privacy contact only when it is an e-mail address or https URL', () => {
    expect(contactLink('dpo@example.org').value).toBe('<a href="mailto:dpo@example.org">dpo@example.org</a>');
    expect(contactLink('https://example.org/privacy').value).toContain('href="https://example.org/privacy"');
    expect(contactLink('javascript:alert(1)').value).toBe('javascript:alert(1)');
    expect(contactLink('Privacy Office, 1 rue X, Paris').value).not.toContain('<a');
  });
});

describe('language', () => {
  it('negotiates fr or en from Accept-Language by q-value, an explicit choice first', () => {
    expect(negotiateLang('fr-FR,fr;q=0.9,en;q=0.8')).toBe('fr');
    expect(negotiateLang('de-DE,en;q=0.5,fr;q=0.7')).toBe('fr');
    expect(negotiateLang('en-GB,fr;q=0.9')).toBe('en');
    expect(negotiateLang('de, es')).toBe('en');
    expect(negotiateLang(undefined)).toBe('en');
    expect(negotiateLang('fr;q=0, en;q=0.1')).toBe('en');
    expect(negotiateLang('fr-FR', 'en')).toBe('en');
    expect(negotiateLang('en', 'fr')).toBe('fr');
    expect(negotiateLang('fr', 'xx')).toBe('fr');
  });

  it('phrases scopes and dates in each language', () => {
    expect(scopePhrase('en', 'whatsapp', 'marketing')).toBe('offers and news on WhatsApp');
    expect(scopePhrase('fr', 'email', 'newsletter')).toBe('la lettre d’information par e-mail');
    expect(scopePhrase('fr', 'sms', 'black-friday')).toBe('les messages « black friday » par SMS');
    expect(formatDate('fr', '2026-11-25T10:00:00Z', 'Europe/Paris')).toBe('25 novembre 2026');
    expect(formatDate('en', '2026-11-25T23:30:00Z', 'Europe/Paris')).toBe('26 November 2026');
  });

  it('renders the page in its language with a switch to the other', () => {
    const page = renderPage({ lang: 'fr', title: 'T', controller, content: html`<h1>x</h1>` });
    expect(page).toContain('<html lang="fr">');
    expect(page).toContain('href="?lang=en" hreflang="en" lang="en">English</a>');
    expect(page).toMatch(/href="\?lang=fr"[^>]*aria-current="true"/);
  });
});

describe('security of the pages', () => {
  it('allows exactly the inline style by its hash, and nothing else', () => {
    const hash = createHash('sha256').update(STYLE).digest('base64');
    expect(CONTENT_SECURITY_POLICY).toContain(`style-src 'sha256-${hash}'`);
    expect(CONTENT_SECURITY_POLICY).toContain("default-src 'none'");
    expect(CONTENT_SECURITY_POLICY).toContain("form-action 'self'");
    expect(CONTENT_SECURITY_POLICY).toContain("frame-ancestors 'none'");
    const page = renderPage({ lang: 'en', title: 'T', content: html`` });
    expect(page).toContain(`<style>${STYLE}</style>`);
    expect(page).not.toMatch(/<script|https?:\/\//);
  });

  it('sends the usual security headers', () => {
    expect(pageHeaders('en')).toMatchObject({
      'x-content-type-options': 'nosniff',
      'x-frame-options': 'DENY',
      'referrer-policy': 'no-referrer',
      'cache-control': 'no-store',
      'content-language': 'en',
    });
    expect(pageHeaders('fr')['permissions-policy']).toContain('camera=()');
  });

  it('names no organisation on the page of a link that could not be verified', () => {
    const page = errorPage('en', 'invalid');
    expect(page).toContain('This link is not valid');
    expect(page).not.toContain('class="org"');
    expect(page).not.toContain('mailto:');
    const expired = errorPage('fr', 'expired', { name: 'Acme', privacyContact: 'dpo@acme.example' });
    expect(expired).toContain('Ce lien a expiré');
    expect(expired).toContain('mailto:dpo@acme.example');
  });
});

describe('preference centre page', () => {
  const base = {
    lang: 'en' as const,
    controller: { name: 'Acme', privacyContact: 'dpo@acme.example' },
    timeZone: 'UTC',
    noticeVersion: '2026-09-v3',
    action: '/preferences/tok?lang=en',
  };

  it('says nothing is recorded for an unknown subject and offers no buttons', () => {
    const page = preferencesPage({ ...base, rows: [] });
    expect(page).toContain('nothing is recorded about you');
    expect(page).not.toContain('<button');
  });

  it('offers stop for granted scopes, allow-again with the notice version for withdrawn ones', () => {
    const page = preferencesPage({
      ...base,
      rows: [
        {
          channel: 'whatsapp',
          purpose: 'marketing',
          status: 'granted',
          grantedAt: '2026-01-01T00:00:00Z',
          withdrawnAt: null,
          changeable: true,
        },
        {
          channel: 'sms',
          purpose: 'marketing',
          status: 'withdrawn',
          grantedAt: null,
          withdrawnAt: '2026-02-01T00:00:00Z',
          changeable: true,
        },
        {
          channel: '*',
          purpose: '*',
          status: 'withdrawn',
          grantedAt: null,
          withdrawnAt: '2026-02-01T00:00:00Z',
          changeable: false,
        },
      ],
    });
    expect(page).toContain('name="scope" value="whatsapp|marketing"');
    expect(page).toContain('name="action" value="withdraw"');
    expect(page).toContain('name="scope" value="sms|marketing"');
    expect(page).toContain('(version 2026-09-v3)');
    expect(page).not.toContain('value="*|*"');
    expect(page).toContain('All channels · All messages');
    expect(page).toContain('name="confirm" value="yes" required');
  });

  it('shows the erasure due date and no buttons while an erasure is pending', () => {
    const page = preferencesPage({
      ...base,
      rows: [
        {
          channel: 'sms',
          purpose: 'marketing',
          status: 'granted',
          grantedAt: '2026-01-01T00:00:00Z',
          withdrawnAt: null,
          changeable: true,
        },
      ],
      erasure: { status: 'received', receivedAt: '2026-11-25T10:00:00Z', dueBy: '2026-12-25T10:00:00Z' },
    });
    expect(page).toContain('carried out by 25 December 2026');
    expect(page).not.toContain('<button');
  });

  it("names purposes with the policy's labels in the page language, else the built-in label or the slug", () => {
    const row = (purpose: string) => ({
      channel: 'whatsapp',
      purpose,
      status: 'granted' as const,
      grantedAt: '2026-01-01T00:00:00Z',
      withdrawnAt: null,
      changeable: true,
    });
    const purposes = {
      'order-updates': { labels: { fr: 'Suivi de commande', en: 'Order tracking' } },
      marketing: { labels: { de: 'Angebote' } },
    };
    const rows = [row('order-updates'), row('marketing'), row('black-friday')];
    const fr = preferencesPage({ ...base, lang: 'fr', rows, purposes });
    expect(fr).toContain('WhatsApp · Suivi de commande');
    expect(fr).toContain('WhatsApp · Offres et actualités');
    expect(fr).toContain('WhatsApp · Black friday');
    const en = preferencesPage({
      ...base,
      rows,
      purposes,
      notice: { tone: 'ok', key: 'withdrawn', channel: 'whatsapp', purpose: 'order-updates' },
    });
    expect(en).toContain('WhatsApp · Order tracking');
    expect(en).toContain('“Order tracking” messages on WhatsApp');
  });
});

describe('page routes', () => {
  const event = (over: Record<string, unknown> = {}) =>
    ({ headers: { 'accept-language': 'fr-FR' }, rawPath: '/optout/x', ...over }) as unknown as ApiEvent;
  const context = {} as Context;

  it('turn a store failure into a French 503 page with retry-after, not problem+json', async () => {
    const route = pageRoute('GET /optout/{token}', async () => {
      throw new StoreUnavailable();
    });
    const res = await route(event(), context);
    expect(res.statusCode).toBe(503);
    expect(res.headers?.['content-type']).toBe('text/html; charset=utf-8');
    expect(res.headers?.['retry-after']).toBe('30');
    expect(res.body).toContain('Service momentanément indisponible');
  });

  it('turn an unexpected error into a 500 page that never shows its message', async () => {
    const route = pageRoute('GET /optout/{token}', async () => {
      throw new Error('secret detail at /srv/app.ts:12');
    });
    const res = await route(event({ queryStringParameters: { lang: 'en' } }), context);
    expect(res.statusCode).toBe(500);
    expect(res.body).toContain('Something went wrong');
    expect(res.body).not.toContain('secret detail');
  });
});

describe('readForm', () => {
  it('reads urlencoded and base64 multipart bodies alike, first value wins', async () => {
    const urlencoded = await readForm({
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'List-Unsubscribe=One-Click&a=1&a=2',
      isBase64Encoded: false,
    } as unknown as ApiEvent);
    expect(Object.fromEntries(urlencoded)).toEqual({ 'List-Unsubscribe': 'One-Click', a: '1' });
    const multipart = new Response(
      (() => {
        const f = new FormData();
        f.set('List-Unsubscribe', 'One-Click');
        return f;
      })(),
    );
    const type = multipart.headers.get('content-type') as string;
    const body = Buffer.from(await multipart.arrayBuffer()).toString('base64');
    const fields = await readForm({
      headers: { 'Content-Type': type },
      body,
      isBase64Encoded: true,
    } as unknown as ApiEvent);
    expect(fields.get('List-Unsubscribe')).toBe('One-Click');
  });

  it('treats no body as no fields, and refuses other media types and broken multipart', async () => {
    expect((await readForm({ headers: {} } as unknown as ApiEvent)).size).toBe(0);
    await expect(
      readForm({ headers: { 'content-type': 'application/json' }, body: '{}' } as unknown as ApiEvent),
    ).rejects.toMatchObject({ status: 415 });
    await expect(
      readForm({
        headers: { 'content-type': 'multipart/form-data; boundary=x' },
        body: 'nope',
      } as unknown as ApiEvent),
    ).rejects.toMatchObject({ status: 400 });
  });
});
