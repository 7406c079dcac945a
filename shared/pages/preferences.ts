import { html, type SafeHtml } from './html.ts';
import { channelName, formatDate, type Lang, messages, purposeLabel, scopePhrase } from './i18n.ts';
import { type Controller, renderPage } from './layout.ts';

/** One line of the preference centre: a scope and what it says now. */
export interface PreferenceRow {
  channel: string;
  purpose: string;
  status: 'granted' | 'withdrawn' | 'expired';
  grantedAt: string | null;
  withdrawnAt: string | null;
  /** `*` entries (an objection to every channel or purpose) are shown but cannot be changed here. */
  changeable: boolean;
  /** The ledger event that decided this state (its receipt proves it is in the log). */
  eventId?: string;
}

/** The outcome of the form just sent, shown above the list. */
export type PreferenceNotice =
  | { tone: 'ok'; key: 'withdrawn'; channel: string; purpose: string }
  | { tone: 'ok'; key: 'granted'; channel: string; purpose: string; noticeVersion: string }
  | { tone: 'ok'; key: 'confirmed' }
  | { tone: 'warn'; key: 'unknown_scope' | 'erase_unconfirmed' };

function noticeText(input: PreferencesPageInput, notice: PreferenceNotice): string {
  const { lang } = input;
  const t = messages(lang);
  const phrase = (channel: string, purpose: string) =>
    scopePhrase(lang, channel, purpose, input.purposes?.[purpose]?.labels);
  switch (notice.key) {
    case 'withdrawn':
      return t.prefsDoneWithdrawn(phrase(notice.channel, notice.purpose));
    case 'granted':
      return t.prefsDoneGranted(phrase(notice.channel, notice.purpose), notice.noticeVersion);
    case 'confirmed':
      return t.prefsDoneConfirmed;
    case 'unknown_scope':
      return t.prefsUnknownScope;
    case 'erase_unconfirmed':
      return t.prefsEraseMissingConfirm;
  }
}

export interface PreferencesPageInput {
  lang: Lang;
  controller: Controller;
  timeZone: string;
  /** The tenant's current notice: what a person agrees to when allowing a scope again. */
  noticeVersion: string;
  action: string;
  rows: PreferenceRow[];
  /** The policy's purposes registry: each purpose's label per language. */
  purposes?: Record<string, { labels?: Record<string, string> }>;
  erasure?: { status: 'received'; receivedAt: string; dueBy: string } | { status: 'completed'; erasedAt: string };
  /** The outcome of the form just sent. */
  notice?: PreferenceNotice;
  /** Where a row's receipt is (`<receiptsPath>/<eventId>`); no receipt links without it. */
  receiptsPath?: string;
}

function rowState(input: PreferencesPageInput, row: PreferenceRow): string {
  const t = messages(input.lang);
  const date = (iso: string | null) => (iso ? formatDate(input.lang, iso, input.timeZone) : '—');
  if (row.status === 'granted') return t.prefsGranted(date(row.grantedAt));
  if (row.status === 'withdrawn') return t.prefsWithdrawn(date(row.withdrawnAt));
  return t.prefsExpired;
}

function rowForm(input: PreferencesPageInput, row: PreferenceRow, label: string): SafeHtml | '' {
  if (!row.changeable || input.erasure) return '';
  const t = messages(input.lang);
  const withdraw = row.status === 'granted';
  return html`<form method="post" action="${input.action}">
<input type="hidden" name="action" value="${withdraw ? 'withdraw' : 'grant'}">
<input type="hidden" name="scope" value="${row.channel}|${row.purpose}">
<button type="submit" class="${withdraw ? 'secondary' : ''}">${withdraw ? t.prefsWithdraw : t.prefsGrant}<span class="vh"> — ${label}</span></button>
</form>`;
}

/** A link to the receipt of the row's decisive event: the person can check it is in the verifiable log. */
function receiptLink(input: PreferencesPageInput, row: PreferenceRow, label: string): SafeHtml | '' {
  if (!input.receiptsPath || !row.eventId) return '';
  const t = messages(input.lang);
  return html`<p class="scope-state"><a href="${input.receiptsPath}/${row.eventId}" download>${t.prefsReceipt}<span class="vh"> — ${label}</span></a></p>`;
}

/** `GET|POST /preferences/{token}`: every scope of the subject, each changeable, and erasure. */
export function preferencesPage(input: PreferencesPageInput): string {
  const t = messages(input.lang);
  const org = input.controller.name;
  const date = (iso: string) => formatDate(input.lang, iso, input.timeZone);
  const flash = input.notice
    ? html`<p class="notice${input.notice.tone === 'warn' ? ' warn' : ''}" role="status">${noticeText(input, input.notice)}</p>`
    : '';
  const erasure = input.erasure
    ? html`<p class="notice warn">${
        input.erasure.status === 'received'
          ? t.prefsErasePending(date(input.erasure.receivedAt), date(input.erasure.dueBy))
          : t.prefsErased(date(input.erasure.erasedAt))
      }</p>`
    : '';
  const rows = input.rows.map((row) => {
    const label = `${channelName(input.lang, row.channel)} · ${purposeLabel(input.lang, row.purpose, input.purposes?.[row.purpose]?.labels)}`;
    return html`<li>
<div><p class="scope-name">${label}</p><p class="scope-state">${rowState(input, row)}</p>${receiptLink(input, row, label)}</div>
${rowForm(input, row, label)}
</li>`;
  });
  const canChange = !input.erasure && input.rows.some((r) => r.changeable);
  const list = input.rows.length
    ? html`<p>${canChange ? t.prefsIntro : t.prefsIntroReadOnly}</p>
<ul class="scopes">${rows}</ul>
${canChange && input.rows.some((r) => r.changeable && r.status !== 'granted') ? html`<p class="muted">${t.prefsGrantNotice(input.noticeVersion)}</p>` : ''}
${
  canChange && input.rows.some((r) => r.status === 'granted')
    ? html`<form method="post" action="${input.action}">
<input type="hidden" name="action" value="confirm">
<p class="muted">${t.prefsConfirmExplain}</p>
<button type="submit" class="secondary">${t.prefsConfirm}</button>
</form>`
    : ''
}`
    : input.erasure
      ? ''
      : html`<p>${t.prefsNothing}</p>`;
  const eraseForm =
    input.erasure || !input.rows.length
      ? ''
      : html`<h2>${t.prefsEraseHeading}</h2>
<p>${t.prefsEraseExplain}</p>
<form method="post" action="${input.action}">
<input type="hidden" name="action" value="erase">
<div class="check"><input type="checkbox" id="erase-confirm" name="confirm" value="yes" required><label for="erase-confirm">${t.prefsEraseCheckbox}</label></div>
<button type="submit" class="danger">${t.prefsEraseButton}</button>
</form>`;
  const content = html`<h1>${t.prefsHeading(org)}</h1>
${flash}${erasure}${list}${eraseForm}`;
  return renderPage({ lang: input.lang, title: t.preferencesTitle(org), controller: input.controller, content });
}
