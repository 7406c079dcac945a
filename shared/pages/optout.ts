import { html } from './html.ts';
import { formatDate, type Lang, messages, scopePhrase } from './i18n.ts';
import { type Controller, renderPage } from './layout.ts';

export interface OptoutPageInput {
  lang: Lang;
  controller: Controller;
  timeZone: string;
  channel: string;
  purpose: string;
  /** The form's target (the same link), with the language kept in the query. */
  action: string;
  /** When the scope is already withdrawn: the page says so instead of offering the button. */
  withdrawnAt?: string;
}

/** `GET /optout/{token}`: who is writing, what will stop, one button. Showing it changes nothing. */
export function optoutPage(input: OptoutPageInput): string {
  const t = messages(input.lang);
  const what = scopePhrase(input.lang, input.channel, input.purpose);
  const org = input.controller.name;
  const content = input.withdrawnAt
    ? html`<h1>${t.optoutQuestion(what)}</h1>
<p class="notice" role="status">${t.optoutAlready(formatDate(input.lang, input.withdrawnAt, input.timeZone))}</p>`
    : html`<h1>${t.optoutQuestion(what)}</h1>
<p>${t.optoutExplain(org, what)}</p>
<form method="post" action="${input.action}">
<button type="submit">${t.optoutButton}</button>
</form>
<p class="muted">${t.optoutNothingYet}</p>`;
  return renderPage({ lang: input.lang, title: t.optoutTitle(org), controller: input.controller, content });
}

export interface OptoutDoneInput {
  lang: Lang;
  controller: Controller;
  timeZone: string;
  channel: string;
  purpose: string;
  withdrawnAt: string;
}

/** The confirmation after `POST /optout/{token}` (the button or a mail provider's one-click POST). */
export function optoutDonePage(input: OptoutDoneInput): string {
  const t = messages(input.lang);
  const what = scopePhrase(input.lang, input.channel, input.purpose);
  const content = html`<h1>${t.optoutDoneTitle}</h1>
<p class="notice" role="status">${t.optoutDone(input.controller.name, what)}</p>
<p>${t.optoutDoneWhen(formatDate(input.lang, input.withdrawnAt, input.timeZone))}</p>
<p class="muted">${t.optoutChangeMind}</p>`;
  return renderPage({ lang: input.lang, title: t.optoutDoneTitle, controller: input.controller, content });
}
