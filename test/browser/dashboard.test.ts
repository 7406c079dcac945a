import { mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getDb } from '#store/db.ts';
import { keys } from '#store/table.ts';
import { tamperEvent } from '../helpers/audit-seed.ts';
import { launchChromium } from '../helpers/browser.ts';
import { grantBody, phone, tenantWithKey } from '../helpers/factories.ts';
import { client, startServer } from '../helpers/http.ts';

/**
 * The DPO dashboard in real Chromium: sign-in with an audit:read key kept in sessionStorage only, charts
 * drawn from the audit summary, erasure deadlines, CSV/NDJSON downloads, ledger verification, French and
 * English, keyboard only, axe-core clean. Screenshots go to test-results/screenshots/.
 */
// page.evaluate callbacks run in Chromium; the project compiles without the DOM lib.
declare const window: {
  Chart: { getChart: (id: string) => { data: { labels: string[]; datasets: { label: string; data: number[] }[] } } };
  axe: { run: (options: unknown) => Promise<{ violations: { id: string; nodes: unknown[] }[]; passes: unknown[] }> };
  sessionStorage: { length: number; getItem: (k: string) => string | null };
  localStorage: { length: number };
};
declare const document: {
  activeElement: { id: string } | null;
  getElementById: (id: string) => { width: number; height: number; textContent: string | null } | null;
};

const require = createRequire(import.meta.url);
const AXE = require.resolve('axe-core/axe.min.js');
const SHOTS = join('test-results', 'screenshots');
const CSV_HEADER = 'at,eventId,subjectKey,type,channel,purpose,source,noticeVersion,prevHash,hash,recordedAt,actor';

let server: Awaited<ReturnType<typeof startServer>>;
let browser: Browser | undefined;
let tenant: string;
let auditKey: string;
let overdueId: string;
let pendingId: string;
const subjects: { phone: string }[] = [];

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  server = await startServer();
  const owner = await tenantWithKey(['admin']);
  tenant = owner.tenant;
  auditKey = (await tenantWithKey(['audit:read'], tenant)).key;
  const api = client(server.url, owner.key);
  for (let i = 0; i < 6; i++) {
    const subject = { phone: phone() };
    subjects.push(subject);
    expect((await api.post('/v1/consents', grantBody({ subject }))).status).toBe(201);
  }
  await api.post('/v1/consents/withdraw', { subject: subjects[0], channel: 'whatsapp' });
  await api.post('/v1/consents/withdraw', { subject: subjects[1] });
  await api.post('/v1/signals', { subject: subjects[2], channel: 'whatsapp', type: 'message_undelivered' });
  overdueId = (await api.post('/v1/erasure-requests', { subjects: [subjects[4]], requestedVia: 'email' })).body
    .requestId;
  pendingId = (await api.post('/v1/erasure-requests', { subjects: [subjects[5]], requestedVia: 'letter' })).body
    .requestId;
  // The first request was received 40 days ago: overdue by about 10 days.
  const received = new Date(Date.now() - 40 * 86_400_000).toISOString();
  const due = new Date(Date.now() - 10 * 86_400_000).toISOString();
  const db = getDb();
  await db.client.send(
    new UpdateCommand({
      TableName: db.table,
      Key: { PK: keys.erasure(tenant, overdueId), SK: 'REQ' },
      UpdateExpression: 'SET receivedAt = :r, dueBy = :d, GSI2SK = :sk',
      ExpressionAttributeValues: { ':r': received, ':d': due, ':sk': `${due}#${overdueId}` },
    }),
  );
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  await server?.close();
});

const shot = (page: Page, name: string) => page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });

/** A page whose CSP violations and script errors are collected (there must be none). */
async function openPage(options: { bypassCSP?: boolean } = {}) {
  const context: BrowserContext = await browser!.newContext({
    viewport: { width: 1280, height: 900 },
    acceptDownloads: true,
    ...options,
  });
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(m.text());
  });
  page.on('pageerror', (e) => problems.push(e.message));
  return { context, page, problems };
}

async function signIn(page: Page, key = auditKey) {
  await page.fill('#api-key', key);
  await page.press('#api-key', 'Enter');
}

const waitLoaded = (page: Page, text = 'Figures updated.') =>
  page.waitForFunction((t) => document.getElementById('status')?.textContent === t, text);

describe('DPO dashboard', () => {
  it('signs in with an audit:read key kept for the tab only, and draws the charts from the audit API', async () => {
    const { context, page, problems } = await openPage();
    try {
      await page.goto(`${server.url}/dashboard?lang=en`);
      await expect(page.isVisible('#board')).resolves.toBe(false);
      await signIn(page, 'cg_wrong_key');
      await page.waitForSelector('#signin-error:has-text("refused")');
      await signIn(page);
      await waitLoaded(page);
      await expect(page.textContent('#kpi-consents')).resolves.toBe('6');
      await expect(page.textContent('#kpi-withdrawals')).resolves.toBe('2');
      await expect(page.textContent('#kpi-erasures')).resolves.toBe('2');
      await expect(page.textContent('#kpi-contacts')).resolves.toBe('6');

      const daily = await page.evaluate(() => window.Chart.getChart('chart-daily').data);
      const today = new Date().toISOString().slice(0, 10);
      const i = daily.labels.indexOf(today);
      expect(i).toBeGreaterThanOrEqual(0);
      expect(daily.datasets.map((d) => d.data[i])).toEqual([6, 2, 2, 0]);
      const size = await page.evaluate(() => {
        const c = document.getElementById('chart-daily')!;
        return [c.width, c.height];
      });
      expect(size[0]).toBeGreaterThan(0);
      expect(size[1]).toBeGreaterThan(0);

      // Block levels: 6 contacts (the erased-pending ones included), one suspected.
      const levels = await page.evaluate(() => window.Chart.getChart('chart-levels').data.datasets[0].data);
      expect(levels).toEqual([5, 1, 0]);

      // Erasure deadlines: the overdue request first and flagged.
      const rows = page.locator('#erasure-table tbody tr');
      await expect(rows.count()).resolves.toBe(2);
      await expect(rows.nth(0).getAttribute('class')).resolves.toBe('overdue');
      await expect(rows.nth(0).textContent()).resolves.toContain(overdueId);
      await expect(rows.nth(0).textContent()).resolves.toContain('Overdue');
      await expect(rows.nth(1).textContent()).resolves.toContain(pendingId);

      // The key lives in sessionStorage only: no cookie, nothing in localStorage.
      const stored = await page.evaluate(() => [
        window.sessionStorage.getItem('consent-gate.audit-key'),
        window.localStorage.length,
      ]);
      expect(stored).toEqual([auditKey, 0]);
      await expect(context.cookies()).resolves.toEqual([]);
      await shot(page, 'dashboard-en');

      // Same tab after a reload: still signed in. Another browser session: signed out.
      await page.reload();
      await waitLoaded(page);
      const other = await openPage();
      await other.page.goto(`${server.url}/dashboard?lang=en`);
      await expect(other.page.isVisible('#signin-form')).resolves.toBe(true);
      await other.context.close();

      await page.click('#sign-out');
      await expect(page.evaluate(() => window.sessionStorage.length)).resolves.toBe(0);
      await expect(page.isVisible('#signin-form')).resolves.toBe(true);
      expect(problems.filter((p) => !p.includes('401'))).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('downloads the period as CSV and NDJSON with the export buttons', async () => {
    const { context, page, problems } = await openPage();
    try {
      await page.goto(`${server.url}/dashboard`);
      await signIn(page);
      await waitLoaded(page);
      const [csv] = await Promise.all([page.waitForEvent('download'), page.click('#export-csv')]);
      expect(csv.suggestedFilename()).toMatch(/^audit-\d{4}-\d{2}-\d{2}-\d{4}-\d{2}-\d{2}\.csv$/);
      const csvLines = readFileSync((await csv.path())!, 'utf8')
        .trimEnd()
        .split('\r\n');
      expect(csvLines[0]).toBe(CSV_HEADER);
      // 6 grants, 2 withdrawals, 1 signal, 2 erasure requests.
      expect(csvLines).toHaveLength(12);
      const [nd] = await Promise.all([page.waitForEvent('download'), page.click('#export-ndjson')]);
      const events = readFileSync((await nd.path())!, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      expect(events).toHaveLength(11);
      expect(events.map((e) => e.eventId)).toEqual(csvLines.slice(1).map((l) => l.split(',')[1]));
      await page.waitForSelector('#export-status:has-text("11 events exported")');
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('verifies the ledger and shows exactly where it was altered', async () => {
    const { context, page } = await openPage();
    try {
      await page.goto(`${server.url}/dashboard?lang=en`);
      await signIn(page);
      await waitLoaded(page);
      await page.click('#verify');
      await page.waitForSelector('#verify-result .ok');
      await expect(page.textContent('#verify-result')).resolves.toContain('Ledger intact: 6 contacts, 11 events');

      const lookup = await client(server.url, (await tenantWithKey(['consents:read'], tenant)).key).post(
        '/v1/subjects/lookup',
        { subject: subjects[3] },
      );
      const db = getDb();
      await tamperEvent(db, tenant, lookup.body.subjectKey, 1, ['purpose'], 'newsletter');
      await page.click('#verify');
      await page.waitForSelector('#verify-breaks');
      const cells = await page.locator('#verify-breaks tbody td').allTextContents();
      expect(cells).toEqual([lookup.body.subjectKey, '1', 'hash_mismatch']);
      await shot(page, 'dashboard-verify-broken');
      // Put the event back as it was, for the other tests.
      await tamperEvent(db, tenant, lookup.body.subjectKey, 1, ['purpose'], 'marketing');
    } finally {
      await context.close();
    }
  });

  it('works in French and with the keyboard only', async () => {
    const { context, page, problems } = await openPage();
    try {
      await page.goto(`${server.url}/dashboard`, { waitUntil: 'load' });
      await page.setExtraHTTPHeaders({ 'accept-language': 'fr-FR,fr;q=0.9' });
      await page.goto(`${server.url}/dashboard`);
      await expect(page.getAttribute('html', 'lang')).resolves.toBe('fr');
      await expect(page.textContent('h1')).resolves.toBe('Tableau de bord du DPO');
      // Keyboard only: Tab to the key field, type, Enter.
      for (let n = 0; n < 10; n++) {
        await page.keyboard.press('Tab');
        if ((await page.evaluate(() => document.activeElement?.id)) === 'api-key') break;
      }
      await expect(page.evaluate(() => document.activeElement?.id)).resolves.toBe('api-key');
      await page.keyboard.type(auditKey);
      await page.keyboard.press('Enter');
      await waitLoaded(page, 'Chiffres mis à jour.');
      await expect(page.locator('#erasure-table tbody tr').nth(0).textContent()).resolves.toContain('En retard');
      const labels = await page.evaluate(() => window.Chart.getChart('chart-daily').data.datasets.map((d) => d.label));
      expect(labels).toEqual(['Consentements donnés', 'Retraits', "Demandes d'effacement", 'Effacements réalisés']);
      // Tab on to the CSV export and press Enter: the file downloads.
      let reached = false;
      for (let n = 0; n < 40 && !reached; n++) {
        await page.keyboard.press('Tab');
        reached = (await page.evaluate(() => document.activeElement?.id)) === 'export-csv';
      }
      expect(reached).toBe(true);
      const [download] = await Promise.all([page.waitForEvent('download'), page.keyboard.press('Enter')]);
      expect(readFileSync((await download.path())!, 'utf8').startsWith(CSV_HEADER)).toBe(true);
      await shot(page, 'dashboard-fr');
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it.each(['en', 'fr'])('has no axe-core violation, signed out and signed in (%s)', async (lang) => {
    // axe is injected as an inline script, which the page's CSP forbids: this context bypasses CSP.
    const { context, page } = await openPage({ bypassCSP: true });
    try {
      await page.goto(`${server.url}/dashboard?lang=${lang}`);
      await page.addScriptTag({ path: AXE });
      const signedOut = await page.evaluate(() => window.axe.run({ resultTypes: ['violations'] }));
      await signIn(page);
      await waitLoaded(page, lang === 'fr' ? 'Chiffres mis à jour.' : 'Figures updated.');
      await page.click('details summary');
      const signedIn = await page.evaluate(() => window.axe.run({ resultTypes: ['violations'] }));
      expect(signedIn.passes.length).toBeGreaterThan(0);
      expect([...signedOut.violations, ...signedIn.violations].map((v) => v.id)).toEqual([]);
    } finally {
      await context.close();
    }
  });
});
