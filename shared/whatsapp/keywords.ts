/**
 * Opt-out and opt-in keywords (docs/api.md#whatsapp-webhook: the usual SMS opt-out words, as in Twilio's
 * and AWS End User Messaging's defaults, with French and Spanish ones): the whole message, compared case- and
 * accent-insensitively after trimming; "STOP PLEASE" is not a keyword.
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
  'REVOKE',
  'REMOVE',
  'DESABONNER',
  'DESINSCRIRE',
  'BAJA',
  'STOP PROMOTIONS',
] as const;

/** Keywords that give back a scope the person withdrew by keyword. */
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

const optOut: ReadonlySet<string> = new Set(OPT_OUT_KEYWORDS);
const optIn: ReadonlySet<string> = new Set(OPT_IN_KEYWORDS);

/** What a whole message says, if it is a keyword. */
export function keywordOf(text: string | undefined): 'opt_out' | 'opt_in' | undefined {
  if (!text) return undefined;
  const k = normaliseKeyword(text);
  if (optOut.has(k)) return 'opt_out';
  if (optIn.has(k)) return 'opt_in';
  return undefined;
}
