import { createHash } from 'node:crypto';
import type { HttpResult } from '#http/problem.ts';
import { html, raw, type SafeHtml } from './html.ts';
import { LANGS, type Lang, messages } from './i18n.ts';

/**
 * The pages' only style sheet, inline: no external asset is ever loaded, and the Content-Security-Policy
 * allows exactly this text by its hash. Phone first: one column, large tap targets, system fonts.
 */
export const STYLE = `
:root{color-scheme:light;--ink:#1a1a1a;--muted:#4a4a4a;--line:#c9c9c9;--brand:#0b4f8a;--danger:#9f1c1c;--ok-bg:#e6f4ea;--ok-ink:#14532d;--warn-bg:#fff4d6;--warn-ink:#5c3d00}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%;text-size-adjust:100%}
body{margin:0;background:#f4f5f7;color:var(--ink);font:1.0625rem/1.55 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
.wrap{max-width:40rem;margin:0 auto;padding:1rem}
header.top{display:flex;flex-wrap:wrap;gap:.5rem 1rem;align-items:center;justify-content:space-between;padding:.75rem 1rem;background:#fff;border-bottom:1px solid var(--line)}
.org{margin:0;font-weight:700;font-size:1.05rem}
nav.lang ul{display:flex;gap:.25rem;margin:0;padding:0;list-style:none}
nav.lang a{display:inline-block;min-height:44px;padding:.6rem .75rem;color:var(--brand);border-radius:.4rem}
nav.lang a[aria-current]{font-weight:700;color:var(--ink);text-decoration:none;background:#e8ebf0}
main{background:#fff;border:1px solid var(--line);border-radius:.75rem;padding:1.25rem;margin-top:1rem}
h1{font-size:1.45rem;line-height:1.25;margin:0 0 .75rem}
h2{font-size:1.15rem;margin:1.75rem 0 .5rem}
p{margin:.5rem 0 1rem}
.muted{color:var(--muted);font-size:.95rem}
.notice{border-radius:.5rem;padding:.75rem 1rem;margin:0 0 1rem;background:var(--ok-bg);color:var(--ok-ink)}
.notice.warn{background:var(--warn-bg);color:var(--warn-ink)}
button{font:inherit;font-weight:600;min-height:48px;padding:.7rem 1.2rem;border-radius:.5rem;border:2px solid var(--brand);background:var(--brand);color:#fff;cursor:pointer;width:100%}
button.secondary{background:#fff;color:var(--brand)}
button.danger{background:var(--danger);border-color:var(--danger)}
button:hover{filter:brightness(1.1)}
a:focus-visible,button:focus-visible,input:focus-visible{outline:3px solid #c2410c;outline-offset:2px}
ul.scopes{list-style:none;margin:0;padding:0}
ul.scopes li{border-top:1px solid var(--line);padding:.9rem 0;display:flex;flex-wrap:wrap;gap:.5rem 1rem;align-items:center;justify-content:space-between}
ul.scopes li:last-child{border-bottom:1px solid var(--line)}
.scope-name{font-weight:600;margin:0}
.scope-state{margin:0;color:var(--muted);font-size:.95rem}
ul.scopes form{flex:0 0 auto}
ul.scopes button{width:auto;min-width:9rem}
.check{display:flex;gap:.6rem;align-items:flex-start;margin:.5rem 0 1rem}
.check input{width:1.4rem;height:1.4rem;margin:.15rem 0 0;flex:0 0 auto}
footer{padding:1rem;color:var(--muted);font-size:.95rem;text-align:center}
footer a,main a{color:var(--brand)}
.vh{position:absolute;width:1px;height:1px;margin:-1px;padding:0;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap;border:0}
@media (min-width:40rem){.wrap{padding:2rem 1rem}button{width:auto}}
`.trim();

/** `sha256-…` of {@link STYLE}, as the CSP `style-src` source. */
export const STYLE_HASH = `sha256-${createHash('sha256').update(STYLE).digest('base64')}`;

/** Strict CSP: nothing but the inline style above, forms only to this origin, never framed. */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  `style-src '${STYLE_HASH}'`,
  "img-src 'self' data:",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

/** Security headers of every page, error pages included. */
export const pageHeaders = (lang: Lang): Record<string, string> => ({
  'content-type': 'text/html; charset=utf-8',
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
  'permissions-policy': 'camera=(), microphone=(), geolocation=(), payment=(), usb=(), interest-cohort=()',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'x-robots-tag': 'noindex, nofollow',
  'content-language': lang,
  vary: 'Accept-Language',
});

/** Who is writing: shown in the header and footer of a page when the link is genuine. */
export interface Controller {
  name: string;
  privacyContact: string;
}

/** The privacy contact as a link when it is an e-mail address or an https URL, else as text. */
export function contactLink(contact: string): SafeHtml {
  if (/^[^\s@<>"]+@[^\s@<>"]+\.[^\s@<>"]+$/.test(contact)) return html`<a href="mailto:${contact}">${contact}</a>`;
  if (/^https:\/\/[^\s<>"]+$/.test(contact)) return html`<a href="${contact}">${contact}</a>`;
  return html`${contact}`;
}

export interface PageInput {
  lang: Lang;
  title: string;
  /** Absent on pages for links we could not verify: then we do not know, nor show, who is writing. */
  controller?: Controller;
  content: SafeHtml;
}

function langSwitch(current: Lang): SafeHtml {
  const items = LANGS.map((lang) => {
    const label = messages(lang).langName;
    return lang === current
      ? html`<li><a href="?lang=${lang}" hreflang="${lang}" lang="${lang}" aria-current="true">${label}</a></li>`
      : html`<li><a href="?lang=${lang}" hreflang="${lang}" lang="${lang}">${label}</a></li>`;
  });
  return html`<nav class="lang" aria-label="${messages(current).switchLabel}"><ul>${items}</ul></nav>`;
}

/** A whole page: the shell, the language switch, the content, the privacy contact. */
export function renderPage(input: PageInput): string {
  const t = messages(input.lang);
  const page = html`<!doctype html>
<html lang="${input.lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex, nofollow">
<meta name="referrer" content="no-referrer">
<link rel="icon" href="data:,">
<title>${input.title}</title>
<style>${raw(STYLE)}</style>
</head>
<body>
<header class="top">
${input.controller ? html`<p class="org">${input.controller.name}</p>` : ''}
${langSwitch(input.lang)}
</header>
<div class="wrap">
<main id="main">
${input.content}
</main>
${input.controller ? html`<footer><p>${t.privacyContact} ${contactLink(input.controller.privacyContact)}</p></footer>` : ''}
</div>
</body>
</html>
`;
  return page.value;
}

/** An HTML response with the page headers. */
export function htmlResponse(statusCode: number, lang: Lang, body: string): HttpResult {
  return { statusCode, headers: pageHeaders(lang), body };
}
