import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { Browser, BrowserContextOptions, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from '../helpers/browser.ts';
import { email, grantBody, phone, tenantWithKey } from '../helpers/factories.ts';
import { client, startServer } from '../helpers/http.ts';

/**
 * The self-service pages in real Chromium (Debian's /usr/bin/chromium driven by playwright-core): a
 * person on a phone stops messages in one tap, uses the preference centre, only with the keyboard, in
 * French and English; axe-core finds no accessibility violation. Screenshots go to
 * test-results/screenshots/ as artefacts.
 */
// The callbacks given to page.evaluate run in Chromium; the project compiles without the DOM lib, so the
// few browser globals they use are named here (module scope only).
declare const window: {
  innerWidth: number;
  injected?: boolean;
  axe: { run: (options: unknown) => Promise<{ violations: unknown[]; passes: unknown[] }> };
};
declare const document: {
  documentElement: { scrollWidth: number };
  activeElement: { tagName: string } | null;
  body: { insertAdjacentHTML: (position: string, html: string) => void };
};
declare function getComputedStyle(element: unknown): {
  outlineStyle: string;
  getPropertyValue: (name: string) => string;
};

const require = createRequire(import.meta.url);
const AXE = require.resolve('axe-core/axe.min.js');
const SHOTS = join('test-results', 'screenshots');
const NOTICE = '2026-11-privacy-v4';

const PHONE: BrowserContextOptions = {
  viewport: { width: 390, height: 844 },
  deviceScaleFactor: 2,
  isMobile: true,
  hasTouch: true,
};
const DESKTOP: BrowserContextOptions = { viewport: { width: 1280, height: 800 } };

let server: Awaited<ReturnType<typeof startServer>>;
let api: ReturnType<typeof client>;
let browser: Browser | undefined;

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  server = await startServer();
  const { key } = await tenantWithKey(['admin']);
  api = client(server.url, key);
  const policy = (await api.get('/v1/policy')).body;
  await api.put('/v1/policy', {
    ...policy,
    noticeVersion: NOTICE,
    controller: { name: 'Boulangerie Émile', privacyContact: 'dpo@emile.example' },
  });
  browser = await launchChromium();
});

afterAll(async () => {
  // Close Chromium even when a test failed, so no browser outlives the run.
  await browser?.close();
  await server?.close();
});

async function consentedWithLinks(channels: string[] = ['whatsapp']) {
  const subject = { phone: phone() };
  for (const channel of channels) {
    expect((await api.post('/v1/consents', grantBody({ subject, channel }))).status).toBe(201);
  }
  const links = (await api.post('/v1/optout-links', { subject, channel: channels[0] })).body;
  return { subject, links: links as { url: string; preferencesUrl: string; subjectKey: string } };
}

/** A fresh context (no cookies, no cache) and page; every request it makes is recorded. */
async function open(options: BrowserContextOptions & { locale?: string }) {
  const context = await (browser as Browser).newContext(options);
  const page = await context.newPage();
  const requests: string[] = [];
  const cspErrors: string[] = [];
  page.on('request', (r) => requests.push(r.url()));
  page.on('console', (m) => {
    if (/Content Security Policy/i.test(m.text())) cspErrors.push(m.text());
  });
  return { context, page, requests, cspErrors };
}

/** Does `act` (a tap, a key press) and waits for the page it submits to be loaded. */
async function submit(page: Page, act: () => Promise<unknown>) {
  await Promise.all([page.waitForResponse((r) => r.request().method() === 'POST'), act()]);
  await page.waitForLoadState();
}

const shot = (page: Page, name: string) => page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });

/** Fits a phone: no horizontal scrolling, tap targets at least 44 px high. */
async function expectPhoneFriendly(page: Page) {
  const fits = await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth);
  expect(fits).toBe(true);
  for (const button of await page.locator('button').all()) {
    const box = await button.boundingBox();
    expect(box?.height ?? 0).toBeGreaterThanOrEqual(44);
  }
}

/**
 * Runs axe-core on a page reached by `reach`. The pages' CSP forbids every script, so this one context
 * bypasses CSP to inject axe; the other tests keep CSP on.
 */
async function axeViolations(name: string, reach: (page: Page) => Promise<unknown>) {
  const { context, page } = await open({ ...PHONE, bypassCSP: true });
  try {
    await reach(page);
    await page.addScriptTag({ path: AXE });
    const result = await page.evaluate(() => window.axe.run({ resultTypes: ['violations'] }));
    // axe really ran: it reports the rules that passed as well.
    expect(result.passes.length).toBeGreaterThan(10);
    const violations = result.violations as { id: string; help: string; nodes: { target: string[] }[] }[];
    return violations.map(
      (v) => `${name}: ${v.id} (${v.help}) at ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`,
    );
  } finally {
    await context.close();
  }
}

describe('opt-out link in Chromium', () => {
  it('stops messages in one tap on a phone, in French, and the gate then blocks', async () => {
    const { subject, links } = await consentedWithLinks();
    const { context, page, requests, cspErrors } = await open({ ...PHONE, locale: 'fr-FR' });
    try {
      const response = await page.goto(links.url);
      expect(response?.status()).toBe(200);
      await expect(page.locator('h1').textContent()).resolves.toBe(
        'Ne plus recevoir les offres et actualités sur WhatsApp ?',
      );
      await expect(page.locator('.org').textContent()).resolves.toBe('Boulangerie Émile');
      await expectPhoneFriendly(page);
      // The inline style is allowed by its CSP hash: the button is styled, and no CSP error was reported.
      const background = await page
        .locator('button')
        .evaluate((b) => getComputedStyle(b).getPropertyValue('background-color'));
      expect(background).toBe('rgb(11, 79, 138)');
      await shot(page, 'optout-phone-fr');
      expect((await api.gateCheck(subject)).body.decision).toBe('allow');

      await submit(page, () => page.getByRole('button', { name: 'Ne plus recevoir ces messages' }).tap());
      await expect(page.locator('h1').textContent()).resolves.toBe('C’est fait : ces messages sont arrêtés');
      await shot(page, 'optout-done-phone-fr');
      const decision = (await api.gateCheck(subject)).body;
      expect(decision.decision).toBe('block');
      expect(decision.reasons[0].code).toBe('consent_withdrawn');

      const origin = new URL(server.url).origin;
      expect(requests.every((url) => url.startsWith(origin))).toBe(true);
      expect(cspErrors).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('runs no script at all: the Content-Security-Policy blocks an injected one', async () => {
    const { links } = await consentedWithLinks();
    const { context, page } = await open(DESKTOP);
    try {
      await page.goto(links.url);
      await expect(page.addScriptTag({ content: 'window.injected = true' })).rejects.toThrow();
      expect(await page.evaluate(() => window.injected)).toBeUndefined();
    } finally {
      await context.close();
    }
  });

  it('works with the keyboard alone: Tab to the button, Enter submits', async () => {
    const { subject, links } = await consentedWithLinks();
    const { context, page } = await open({ ...DESKTOP, locale: 'en-GB' });
    try {
      await page.goto(links.url);
      let focused = '';
      for (let i = 0; i < 10 && focused !== 'BUTTON'; i++) {
        await page.keyboard.press('Tab');
        focused = await page.evaluate(() => document.activeElement?.tagName ?? '');
      }
      expect(focused).toBe('BUTTON');
      // The focus is visible (our outline), not only reachable.
      const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
      expect(outline).toBe('solid');
      await shot(page, 'optout-keyboard-focus-desktop-en');
      await submit(page, () => page.keyboard.press('Enter'));
      await expect(page.locator('h1').textContent()).resolves.toBe('Done: these messages are stopped');
      expect((await api.gateCheck(subject)).body.reasons[0].code).toBe('consent_withdrawn');
    } finally {
      await context.close();
    }
  });

  it('switches language with a link, and the choice survives the form POST', async () => {
    const { subject, links } = await consentedWithLinks();
    const { context, page } = await open({ ...PHONE, locale: 'en-US' });
    try {
      await page.goto(links.url);
      await expect(page.locator('html').getAttribute('lang')).resolves.toBe('en');
      await Promise.all([page.waitForURL(/\?lang=fr$/), page.getByRole('link', { name: 'Français' }).tap()]);
      await expect(page.locator('html').getAttribute('lang')).resolves.toBe('fr');
      await submit(page, () => page.getByRole('button', { name: 'Ne plus recevoir ces messages' }).tap());
      await expect(page.locator('html').getAttribute('lang')).resolves.toBe('fr');
      await expect(page.locator('h1').textContent()).resolves.toContain('C’est fait');
      expect((await api.gateCheck(subject)).body.decision).toBe('block');
    } finally {
      await context.close();
    }
  });

  it('shows a tampered link an explanatory 400 page and records nothing', async () => {
    const { subject, links } = await consentedWithLinks();
    const tampered = links.url.replace(/.$/, (c) => (c === 'A' ? 'B' : 'A'));
    const { context, page } = await open({ ...PHONE, locale: 'en-GB' });
    try {
      const response = await page.goto(tampered);
      expect(response?.status()).toBe(400);
      await expect(page.locator('h1').textContent()).resolves.toBe('This link is not valid');
      await expect(page.locator('main').textContent()).resolves.toContain('Nothing has been changed.');
      await shot(page, 'optout-tampered-phone-en');
      expect((await api.gateCheck(subject)).body.decision).toBe('allow');
    } finally {
      await context.close();
    }
  });
});

describe('preference centre in Chromium', () => {
  it('withdraws one scope, gives it again with the current notice, then asks for erasure', async () => {
    const { subject, links } = await consentedWithLinks(['whatsapp', 'sms']);
    const { context, page } = await open({ ...PHONE, locale: 'en-GB' });
    try {
      await page.goto(links.preferencesUrl);
      expect(await page.locator('ul.scopes li').count()).toBe(2);
      await expectPhoneFriendly(page);
      await shot(page, 'preferences-phone-en');

      await submit(page, () => page.getByRole('button', { name: 'Stop — SMS · Offers and news' }).tap());
      await expect(page.locator('[role=status]').textContent()).resolves.toContain(
        'no longer receive offers and news by SMS',
      );
      expect((await api.gateCheck(subject, 'sms')).body.reasons[0].code).toBe('consent_withdrawn');
      expect((await api.gateCheck(subject, 'whatsapp')).body.decision).toBe('allow');
      await expect(page.locator('main').textContent()).resolves.toContain(`(version ${NOTICE})`);
      await shot(page, 'preferences-withdrawn-phone-en');

      await submit(page, () => page.getByRole('button', { name: 'Allow again — SMS · Offers and news' }).tap());
      const allowed = (await api.gateCheck(subject, 'sms')).body;
      expect(allowed.decision).toBe('allow');
      expect(allowed.consent.noticeVersion).toBe(NOTICE);
      const ledger = await api.events(links.subjectKey);
      expect(ledger.at(-1)).toMatchObject({ type: 'consent.granted', source: 'preference_center' });
      expect(ledger.at(-1).data.noticeVersion).toBe(NOTICE);

      // Without the box ticked the browser does not even send the form.
      await page.getByRole('button', { name: 'Ask for deletion' }).tap();
      expect((await api.gateCheck(subject)).body.decision).toBe('allow');
      await page.getByLabel('I want all my data to be deleted').check();
      await shot(page, 'preferences-erase-ticked-phone-en');
      await submit(page, () => page.getByRole('button', { name: 'Ask for deletion' }).tap());
      await expect(page.locator('main').textContent()).resolves.toMatch(
        /will be carried out by \d{1,2} [A-Z][a-z]+ \d{4} at the latest/,
      );
      expect((await api.gateCheck(subject)).body.reasons[0].code).toBe('erasure_pending');
      expect(await page.locator('button').count()).toBe(0);
      await shot(page, 'preferences-erasure-pending-phone-en');
    } finally {
      await context.close();
    }
  });

  it('reads well in French on a desktop screen', async () => {
    const { links } = await consentedWithLinks(['whatsapp', 'sms']);
    const { context, page } = await open({ ...DESKTOP, locale: 'fr-FR' });
    try {
      await page.goto(links.preferencesUrl);
      await expect(page.locator('h1').textContent()).resolves.toBe(
        'Vos préférences de messages chez Boulangerie Émile',
      );
      expect(await page.getByRole('button', { name: 'Arrêter — SMS · Offres et actualités' }).count()).toBe(1);
      await shot(page, 'preferences-desktop-fr');
    } finally {
      await context.close();
    }
  });
});

describe('accessibility (axe-core)', () => {
  it('the check itself catches a violation (a button without a name)', async () => {
    const { links } = await consentedWithLinks();
    const violations = await axeViolations('broken on purpose', async (p) => {
      await p.goto(links.url);
      await p.evaluate(() => document.body.insertAdjacentHTML('beforeend', '<button></button>'));
    });
    expect(violations.join('\n')).toContain('button-name');
  });

  it('finds no violation on any self-service page', async () => {
    const { links } = await consentedWithLinks(['whatsapp', 'sms']);
    const emailLinks = (
      await api.post('/v1/optout-links', { subject: { email: email() }, channel: 'email', purpose: 'newsletter' })
    ).body;
    const violations = [
      ...(await axeViolations('optout (en)', (p) => p.goto(`${links.url}?lang=en`))),
      ...(await axeViolations('optout (fr)', (p) => p.goto(`${links.url}?lang=fr`))),
      ...(await axeViolations('optout unknown subject', (p) => p.goto(emailLinks.url))),
      ...(await axeViolations('preferences (fr)', (p) => p.goto(`${links.preferencesUrl}?lang=fr`))),
      ...(await axeViolations('preferences after a change', async (p) => {
        await p.goto(links.preferencesUrl);
        await submit(p, () => p.getByRole('button', { name: /^Stop — SMS/ }).click());
      })),
      ...(await axeViolations('preferences unknown subject', (p) => p.goto(emailLinks.preferencesUrl))),
      ...(await axeViolations('optout done', async (p) => {
        await p.goto(links.url);
        await submit(p, () => p.getByRole('button').click());
      })),
      ...(await axeViolations('preferences erasure pending', async (p) => {
        await p.goto(links.preferencesUrl);
        await p.getByRole('checkbox').check();
        await submit(p, () => p.getByRole('button', { name: 'Ask for deletion' }).click());
      })),
      ...(await axeViolations('error page', (p) => p.goto(`${server.url}/optout/not-a-token`))),
    ];
    expect(violations).toEqual([]);
  });
});
