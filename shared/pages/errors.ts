import { ProblemError } from '#http/errors.ts';
import { html } from './html.ts';
import { type Lang, type Messages, messages } from './i18n.ts';
import { type Controller, contactLink, renderPage } from './layout.ts';

/** What went wrong, as the person should read it. */
export type ErrorPageKind = 'invalid' | 'expired' | 'wrong_kind' | 'form' | 'unavailable' | 'generic';

const TEXTS: Record<ErrorPageKind, (t: Messages) => [string, string]> = {
  invalid: (t) => [t.errorInvalidTitle, t.errorInvalid],
  expired: (t) => [t.errorExpiredTitle, t.errorExpired],
  wrong_kind: (t) => [t.errorWrongKindTitle, t.errorWrongKind],
  form: (t) => [t.errorFormTitle, t.errorForm],
  unavailable: (t) => [t.errorUnavailableTitle, t.errorUnavailable],
  generic: (t) => [t.errorGenericTitle, t.errorGeneric],
};

/**
 * An error of a self-service page: rendered as an HTML page (not problem+json) with its status.
 * `controller` is only given when the link was genuine (an expired one): a forged link must not be
 * able to put any organisation's name on our page.
 */
export class PageError extends ProblemError {
  constructor(
    status: number,
    code: string,
    readonly page: ErrorPageKind,
    readonly controller?: Controller,
  ) {
    super(status, code, 'Self-service page error', code);
    this.name = 'PageError';
  }
}

/** The error page: what happened, that nothing changed, and whom to ask when we know. */
export function errorPage(lang: Lang, kind: ErrorPageKind, controller?: Controller): string {
  const t = messages(lang);
  const [title, text] = TEXTS[kind](t);
  const content = html`<h1>${title}</h1>
<p>${text}</p>
<p class="notice warn">${t.nothingChanged}</p>
${controller ? html`<p>${t.contactUs} ${contactLink(controller.privacyContact)}</p>` : ''}`;
  return renderPage({ lang, title, controller, content });
}
