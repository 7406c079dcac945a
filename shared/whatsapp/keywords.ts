/**
 * Opt-out and opt-in keywords (docs/api.md#whatsapp-webhook: the usual SMS opt-out words, as in Twilio's
 * and AWS End User Messaging's defaults, with French and Spanish ones, and the marketing opt-out phrases of
 * WhatsApp's "Stop promotions" button): the whole message, compared case- and accent-insensitively after
 * trimming; "STOP PLEASE" is not a keyword.
 */
export const OPT_OUT_KEYWORDS = [
  'STOP',
  'STOPALL',
  'STOP ALL',
  'STOP PUB',
  'ARRET',
  'ARRETE',
  'UNSUBSCRIBE',
  'END',
  'QUIT',
  'CANCEL',
  'OPTOUT',
  'OPT-OUT',
  'OPT OUT',
  'REVOKE',
  'REMOVE',
  'DESABONNER',
  'SE DESABONNER',
  'DESINSCRIRE',
  'SE DESINSCRIRE',
  'BAJA',
  'DAR DE BAJA',
  'DARSE DE BAJA',
  'DETENER',
  'STOP PROMOTIONS',
  'STOP PROMOS',
  'STOP MARKETING',
  'ARRETER LES PROMOTIONS',
  'ARRETER LES PROMOS',
  'DETENER PROMOCIONES',
] as const;

/**
 * What a tapped button or list row may say to withdraw: only phrases that ask to stop marketing
 * (WhatsApp's own marketing opt-out quick reply is "Stop promotions"). The business writes the labels of its
 * buttons and lists, so words that mean something else on a button — "Cancel" (an appointment), "End",
 * "Quit", "Remove", "Arrêt" (de bus), "Baja" (low) — never withdraw there; typed as the whole message, they do.
 * Every phrase here is also an opt-out keyword when typed.
 */
export const MARKETING_OPT_OUT_PHRASES = [
  'STOP',
  'STOPALL',
  'STOP ALL',
  'STOP PUB',
  'STOP PROMOTIONS',
  'STOP PROMOS',
  'STOP MARKETING',
  'UNSUBSCRIBE',
  'OPTOUT',
  'OPT-OUT',
  'OPT OUT',
  'ARRETER LES PROMOTIONS',
  'ARRETER LES PROMOS',
  'DESABONNER',
  'SE DESABONNER',
  'DESINSCRIRE',
  'SE DESINSCRIRE',
  'DETENER',
  'DETENER PROMOCIONES',
  'DAR DE BAJA',
  'DARSE DE BAJA',
] as const satisfies readonly (typeof OPT_OUT_KEYWORDS)[number][];

/** Keywords that give back a scope the person withdrew by keyword (typed only: never a button). */
export const OPT_IN_KEYWORDS = ['START', 'UNSTOP'] as const;

/**
 * The comparable form of a message: accents removed (NFD, combining marks dropped), upper case, inner
 * whitespace collapsed, trimmed, and a trailing "." or "!" dropped ("Stop." is still STOP).
 */
export function normaliseKeyword(text: string): string {
  return text
    .normalize('NFD')
    .replace(/\p{M}/gu, '')
    .toUpperCase()
    .replace(/\s+/g, ' ')
    .trim()
    .replace(/\s*[.!]+$/, '');
}

/** A button's label or payload, comparable: as a message, with `_` and `-` read as spaces (`STOP_PROMOTIONS`). */
const normaliseButton = (text: string) => normaliseKeyword(text.replace(/[_-]+/g, ' '));

const optOut: ReadonlySet<string> = new Set(OPT_OUT_KEYWORDS);
const optIn: ReadonlySet<string> = new Set(OPT_IN_KEYWORDS);
const buttonOptOut: ReadonlySet<string> = new Set(MARKETING_OPT_OUT_PHRASES.map(normaliseButton));

/** What a whole typed message says, if it is a keyword. */
export function keywordOf(text: string | undefined): 'opt_out' | 'opt_in' | undefined {
  if (!text) return undefined;
  const k = normaliseKeyword(text);
  if (optOut.has(k)) return 'opt_out';
  if (optIn.has(k)) return 'opt_in';
  return undefined;
}

/**
 * What a tapped button or list row says (its label, or the payload or id the business gave it): `opt_out`
 * when it is a marketing opt-out phrase, else nothing — a button never opts in (the business wrote it).
 */
export function buttonKeywordOf(text: string | undefined): 'opt_out' | undefined {
  if (!text) return undefined;
  return buttonOptOut.has(normaliseButton(text)) ? 'opt_out' : undefined;
}
