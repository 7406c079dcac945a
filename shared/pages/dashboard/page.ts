import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { HttpResult } from '#http/problem.ts';
import { html, raw } from '../html.ts';
import { LANGS, type Lang } from '../i18n.ts';
import { dashboardMessages } from './messages.ts';

/**
 * The dashboard's CSP: scripts and styles only from this origin (no inline code at all), API calls
 * only to this origin, never framed. The page's texts travel in a JSON data block, which is not run.
 */
export const DASHBOARD_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "form-action 'none'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'x-robots-tag': 'noindex, nofollow',
};

/** `<` escaped so the JSON can never close its script element. */
const jsonBlock = (value: unknown) => raw(JSON.stringify(value).replace(/</g, '\\u003c'));

/** The dashboard page in a language. Everything dynamic is drawn by `dashboard.js` after sign-in. */
export function dashboardPage(lang: Lang): string {
  const t = dashboardMessages(lang);
  const langs = LANGS.map((l) =>
    l === lang
      ? html`<li><a href="?lang=${l}" hreflang="${l}" lang="${l}" aria-current="true">${dashboardMessages(l).langName}</a></li>`
      : html`<li><a href="?lang=${l}" hreflang="${l}" lang="${l}">${dashboardMessages(l).langName}</a></li>`,
  );
  return html`<!doctype html>
<html lang="${lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex, nofollow">
<meta name="referrer" content="no-referrer">
<link rel="icon" href="data:,">
<title>${t.title} — ${t.product}</title>
<link rel="stylesheet" href="/dashboard/assets/dashboard.css">
<script type="application/json" id="messages">${jsonBlock(t)}</script>
<script src="/dashboard/assets/chart.umd.min.js" defer></script>
<script src="/dashboard/assets/dashboard.js" defer></script>
</head>
<body>
<header class="top">
<p class="product">${t.product}</p>
<nav class="lang" aria-label="${t.switchLabel}"><ul>${langs}</ul></nav>
<button type="button" id="sign-out" class="secondary" hidden>${t.signOut}</button>
</header>
<main id="main">
<h1 tabindex="-1">${t.title}</h1>
<p id="status" role="status" aria-live="polite"></p>
<section id="signin" aria-labelledby="signin-title">
<h2 id="signin-title">${t.signInTitle}</h2>
<p>${t.signInIntro}</p>
<form id="signin-form" novalidate>
<label for="api-key">${t.keyLabel}</label>
<input id="api-key" name="key" type="password" autocomplete="off" spellcheck="false" required>
<button type="submit">${t.signIn}</button>
</form>
<p id="signin-error" class="error" role="alert"></p>
</section>
<div id="board" hidden>
<section aria-labelledby="range-title">
<h2 id="range-title">${t.rangeTitle}</h2>
<form id="range-form" class="range" novalidate>
<p><label for="from">${t.from}</label> <input id="from" type="date" required></p>
<p><label for="to">${t.to}</label> <input id="to" type="date" required></p>
<p><button type="submit">${t.refresh}</button></p>
</form>
</section>
<section aria-labelledby="kpi-title">
<h2 id="kpi-title" class="vh">${t.totalEvents}</h2>
<dl class="kpis">
<div><dt>${t.totalEvents}</dt><dd id="kpi-total">–</dd></div>
<div><dt>${t.consents}</dt><dd id="kpi-consents">–</dd></div>
<div><dt>${t.withdrawals}</dt><dd id="kpi-withdrawals">–</dd></div>
<div><dt>${t.erasures}</dt><dd id="kpi-erasures">–</dd></div>
<div><dt>${t.contacts}</dt><dd id="kpi-contacts">–</dd></div>
</dl>
</section>
<section aria-labelledby="log-title">
<h2 id="log-title">${t.logTitle}</h2>
<p class="muted">${t.logNote}</p>
<dl class="kpis">
<div><dt>${t.logSize}</dt><dd id="log-size">–</dd></div>
<div><dt>${t.logAge}</dt><dd id="log-age">–</dd></div>
<div><dt>${t.logVerified}</dt><dd id="log-verified">–</dd></div>
</dl>
</section>
<section aria-labelledby="per-day-title">
<h2 id="per-day-title">${t.perDayTitle}</h2>
<div class="chart"><canvas id="chart-daily" role="img" aria-label="${t.perDayTitle}"></canvas></div>
<details><summary>${t.perDayTable}</summary><div class="scroll"><table id="daily-table"><thead><tr><th scope="col">${t.day}</th><th scope="col">${t.consents}</th><th scope="col">${t.withdrawals}</th><th scope="col">${t.erasures}</th><th scope="col">${t.erasuresDone}</th></tr></thead><tbody></tbody></table></div></details>
</section>
<section aria-labelledby="levels-title">
<h2 id="levels-title">${t.levelsTitle}</h2>
<p class="muted">${t.levelsNote}</p>
<div class="chart small"><canvas id="chart-levels" role="img" aria-label="${t.levelsTitle}"></canvas></div>
<table id="levels-table"><thead><tr><th scope="col">${t.levelsTitle}</th><th scope="col">${t.count}</th><th scope="col">${t.share}</th></tr></thead><tbody></tbody></table>
</section>
<section aria-labelledby="erasure-title">
<h2 id="erasure-title">${t.erasureTitle}</h2>
<p class="muted">${t.erasureNote}</p>
<div class="scroll"><table id="erasure-table"><thead><tr><th scope="col">${t.requestId}</th><th scope="col">${t.receivedAt}</th><th scope="col">${t.dueBy}</th><th scope="col">${t.daysLeft}</th><th scope="col">${t.status}</th></tr></thead><tbody></tbody></table></div>
<p id="erasure-empty" hidden>${t.noErasures}</p>
</section>
<section aria-labelledby="export-title">
<h2 id="export-title">${t.exportTitle}</h2>
<p class="muted">${t.exportNote}</p>
<p class="actions">
<button type="button" id="export-csv">${t.exportCsv}</button>
<button type="button" id="export-ndjson">${t.exportNdjson}</button>
<button type="button" id="verify" class="secondary">${t.verify}</button>
</p>
<p id="export-status" role="status" aria-live="polite"></p>
<div id="verify-result"></div>
</section>
</div>
</main>
</body>
</html>
`.value;
}

/** Response headers of the page. */
export const dashboardHeaders = (lang: Lang): Record<string, string> => ({
  'content-type': 'text/html; charset=utf-8',
  'content-security-policy': DASHBOARD_CSP,
  'cache-control': 'no-store',
  'content-language': lang,
  vary: 'Accept-Language',
  ...SECURITY_HEADERS,
});

const require = createRequire(import.meta.url);
const here = fileURLToPath(new URL('.', import.meta.url));

/**
 * Where each served file lives. In the cloud bundle the files sit in `DASHBOARD_ASSETS_DIR` (copied
 * there at bundling time); locally they are read from the sources and from the chart.js package.
 */
const ASSETS: Record<string, { type: string; local: () => string }> = {
  'dashboard.js': { type: 'text/javascript; charset=utf-8', local: () => join(here, 'assets', 'dashboard.js') },
  'dashboard.css': { type: 'text/css; charset=utf-8', local: () => join(here, 'assets', 'dashboard.css') },
  'chart.umd.min.js': {
    type: 'text/javascript; charset=utf-8',
    // The package exports no subpath for its UMD build: find its dist folder from the main entry.
    local: () => join(dirname(require.resolve('chart.js')), 'chart.umd.min.js'),
  },
};

/** The names of the files the dashboard serves (the CDK bundling must ship exactly these). */
export const DASHBOARD_ASSETS = Object.keys(ASSETS);

const cache = new Map<string, string>();

/** A dashboard asset as a response, or undefined for an unknown name (only the listed files are served). */
export function dashboardAsset(file: string, assetsDir = process.env.DASHBOARD_ASSETS_DIR): HttpResult | undefined {
  const asset = Object.hasOwn(ASSETS, file) ? ASSETS[file] : undefined;
  if (!asset) return undefined;
  let body = cache.get(file);
  if (body === undefined) {
    body = readFileSync(assetsDir ? join(assetsDir, file) : asset.local(), 'utf8');
    cache.set(file, body);
  }
  return {
    statusCode: 200,
    headers: { 'content-type': asset.type, 'cache-control': 'public, max-age=300', ...SECURITY_HEADERS },
    body,
  };
}
