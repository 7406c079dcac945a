/** Languages of the self-service pages. */
export const LANGS = ['en', 'fr'] as const;
export type Lang = (typeof LANGS)[number];
export const DEFAULT_LANG: Lang = 'en';

const isLang = (value: unknown): value is Lang => LANGS.includes(value as Lang);

/**
 * The page language: an explicit choice (`?lang=` or the form's `lang` field) first, then the best
 * `Accept-Language` match by q-value (`fr-CA` counts as `fr`), else English.
 */
export function negotiateLang(acceptLanguage: string | undefined, explicit?: string | null): Lang {
  if (isLang(explicit)) return explicit;
  const ranked = (acceptLanguage ?? '')
    .split(',')
    .map((part, index) => {
      const [tag, ...params] = part.trim().split(';');
      const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
      const weight = q ? Number(q.slice(2)) : 1;
      return { lang: tag.trim().toLowerCase().split('-')[0], weight: Number.isFinite(weight) ? weight : 0, index };
    })
    .filter((r) => r.weight > 0 && isLang(r.lang))
    .sort((a, b) => b.weight - a.weight || a.index - b.index);
  return (ranked[0]?.lang as Lang | undefined) ?? DEFAULT_LANG;
}

const CHANNEL_NAMES: Record<Lang, Record<string, string>> = {
  en: {
    whatsapp: 'WhatsApp',
    sms: 'SMS',
    voice: 'Phone calls',
    email: 'E-mail',
    push: 'Push notifications',
    '*': 'All channels',
  },
  fr: {
    whatsapp: 'WhatsApp',
    sms: 'SMS',
    voice: 'Appels téléphoniques',
    email: 'E-mail',
    push: 'Notifications push',
    '*': 'Tous les canaux',
  },
};

const CHANNEL_BY: Record<Lang, Record<string, string>> = {
  en: {
    whatsapp: 'on WhatsApp',
    sms: 'by SMS',
    voice: 'by phone call',
    email: 'by e-mail',
    push: 'by push notification',
    '*': 'on every channel',
  },
  fr: {
    whatsapp: 'sur WhatsApp',
    sms: 'par SMS',
    voice: 'par appel téléphonique',
    email: 'par e-mail',
    push: 'par notification push',
    '*': 'sur tous les canaux',
  },
};

const PURPOSE_LABELS: Record<Lang, Record<string, string>> = {
  en: { marketing: 'Offers and news', newsletter: 'Newsletter', '*': 'All messages' },
  fr: { marketing: 'Offres et actualités', newsletter: 'Lettre d’information', '*': 'Tous les messages' },
};

/** Purposes inside a sentence, with the article French needs ("les offres et actualités"). */
const PURPOSE_PHRASES: Record<Lang, Record<string, string>> = {
  en: { marketing: 'offers and news', newsletter: 'the newsletter', '*': 'all messages' },
  fr: { marketing: 'les offres et actualités', newsletter: 'la lettre d’information', '*': 'tous les messages' },
};

const spaced = (slug: string) => slug.replace(/[-_]+/g, ' ');

/** A channel as a noun ("WhatsApp", "Appels téléphoniques"). */
export const channelName = (lang: Lang, channel: string) => CHANNEL_NAMES[lang][channel] ?? channel;

/**
 * A purpose as a label: the policy's label in the page language (`labels`), else the built-in one, else the
 * slug with spaces ("black-friday" → "Black friday").
 */
export function purposeLabel(lang: Lang, purpose: string, labels?: Record<string, string>): string {
  const known = labels?.[lang] ?? PURPOSE_LABELS[lang][purpose];
  if (known) return known;
  const words = spaced(purpose);
  return words.charAt(0).toUpperCase() + words.slice(1);
}

/** "offers and news on WhatsApp" / "les offres et actualités sur WhatsApp"; `labels`: the policy's labels. */
export function scopePhrase(lang: Lang, channel: string, purpose: string, labels?: Record<string, string>): string {
  const label = labels?.[lang];
  const name = label ?? spaced(purpose);
  const what =
    (label ? undefined : PURPOSE_PHRASES[lang][purpose]) ??
    (lang === 'fr' ? `les messages « ${name} »` : `“${name}” messages`);
  return `${what} ${CHANNEL_BY[lang][channel] ?? channel}`;
}

/** A date in the page language and the tenant's time zone ("24 November 2026", "24 novembre 2026"). */
export function formatDate(lang: Lang, iso: string, timeZone: string): string {
  return new Intl.DateTimeFormat(lang === 'fr' ? 'fr-FR' : 'en-GB', { dateStyle: 'long', timeZone }).format(
    new Date(iso),
  );
}

/** Every text of the pages, per language. Functions take already-localised fragments. */
export interface Messages {
  langName: string;
  switchLabel: string;
  preferencesTitle: (org: string) => string;
  privacyContact: string;
  optoutTitle: (org: string) => string;
  optoutQuestion: (what: string) => string;
  optoutExplain: (org: string, what: string) => string;
  optoutNothingYet: string;
  optoutButton: string;
  optoutAlready: (date: string) => string;
  optoutDoneTitle: string;
  optoutDone: (org: string, what: string) => string;
  optoutDoneWhen: (date: string) => string;
  optoutChangeMind: string;
  prefsHeading: (org: string) => string;
  prefsIntro: string;
  prefsIntroReadOnly: string;
  prefsNothing: string;
  prefsGranted: (date: string) => string;
  prefsWithdrawn: (date: string) => string;
  prefsExpired: string;
  prefsWithdraw: string;
  prefsGrant: string;
  /** The link to the proof (receipt) of a scope's decisive event in the verifiable log. */
  prefsReceipt: string;
  prefsGrantNotice: (version: string) => string;
  prefsConfirm: string;
  prefsConfirmExplain: string;
  prefsDoneWithdrawn: (what: string) => string;
  prefsDoneGranted: (what: string, version: string) => string;
  prefsDoneConfirmed: string;
  prefsEraseHeading: string;
  prefsEraseExplain: string;
  prefsEraseCheckbox: string;
  prefsEraseButton: string;
  prefsEraseMissingConfirm: string;
  prefsErasePending: (received: string, due: string) => string;
  prefsErased: (date: string) => string;
  prefsUnknownScope: string;
  errorInvalidTitle: string;
  errorInvalid: string;
  errorExpiredTitle: string;
  errorExpired: string;
  errorWrongKindTitle: string;
  errorWrongKind: string;
  errorFormTitle: string;
  errorForm: string;
  errorUnavailableTitle: string;
  errorUnavailable: string;
  errorGenericTitle: string;
  errorGeneric: string;
  nothingChanged: string;
  contactUs: string;
}

const en: Messages = {
  langName: 'English',
  switchLabel: 'Language',
  preferencesTitle: (org) => `Message preferences — ${org}`,
  privacyContact: 'Questions about your data:',
  optoutTitle: (org) => `Stop messages from ${org}`,
  optoutQuestion: (what) => `Stop ${what}?`,
  optoutExplain: (org, what) => `${org} will no longer send you ${what}. Other kinds of messages are not affected.`,
  optoutNothingYet: 'Nothing changes until you press the button.',
  optoutButton: 'Stop these messages',
  optoutAlready: (date) => `You already stopped these messages on ${date}. There is nothing more to do.`,
  optoutDoneTitle: 'Done: these messages are stopped',
  optoutDone: (org, what) => `${org} will no longer send you ${what}.`,
  optoutDoneWhen: (date) => `Your choice was recorded on ${date} and applies immediately.`,
  optoutChangeMind: 'Changed your mind? You can give your consent again at any time by contacting us.',
  prefsHeading: (org) => `Your message preferences with ${org}`,
  prefsIntro: 'Here is what you agreed to receive. You can stop each one, or allow it again, at any time.',
  prefsIntroReadOnly: 'Here is what you agreed to receive.',
  prefsNothing: 'We hold no consent for you: nothing is recorded about you.',
  prefsGranted: (date) => `Allowed since ${date}`,
  prefsWithdrawn: (date) => `Stopped on ${date}`,
  prefsExpired: 'Expired: no longer sent',
  prefsWithdraw: 'Stop',
  prefsGrant: 'Allow again',
  prefsReceipt: 'Receipt (proof)',
  prefsGrantNotice: (version) =>
    `Allowing a message again means you agree to our current privacy notice (version ${version}).`,
  prefsConfirm: 'My choices are up to date',
  prefsConfirmExplain: 'Confirming your choices tells us they still reflect your wishes.',
  prefsDoneWithdrawn: (what) => `Done: you will no longer receive ${what}.`,
  prefsDoneGranted: (what, version) => `Done: you will receive ${what} again (privacy notice version ${version}).`,
  prefsDoneConfirmed: 'Thank you: your choices are confirmed.',
  prefsEraseHeading: 'Delete all my data',
  prefsEraseExplain:
    'We will delete everything we hold about you: consents and their history. We keep only a coded marker so that we never contact you again. We answer within one month.',
  prefsEraseCheckbox: 'I want all my data to be deleted',
  prefsEraseButton: 'Ask for deletion',
  prefsEraseMissingConfirm: 'To ask for deletion, tick the box first.',
  prefsErasePending: (received, due) =>
    `Your deletion request was received on ${received}. It will be carried out by ${due} at the latest. Until then you receive no marketing messages.`,
  prefsErased: (date) => `Your data was deleted on ${date}.`,
  prefsUnknownScope: 'This choice is not on your list. Nothing was changed.',
  errorInvalidTitle: 'This link is not valid',
  errorInvalid: 'It may have been copied incompletely or altered. Use the link in the latest message you received.',
  errorExpiredTitle: 'This link has expired',
  errorExpired: 'For your security, links only work for a limited time. Use the link in a more recent message.',
  errorWrongKindTitle: 'This link is not meant for this page',
  errorWrongKind: 'Use the link exactly as it appears in the message.',
  errorFormTitle: 'We could not read your request',
  errorForm: 'Please go back to the page and try again.',
  errorUnavailableTitle: 'Temporarily unavailable',
  errorUnavailable: 'We cannot record your choice right now. Please try again in a few minutes.',
  errorGenericTitle: 'Something went wrong',
  errorGeneric: 'Please try again later.',
  nothingChanged: 'Nothing has been changed.',
  contactUs: 'You can also write to us:',
};

const fr: Messages = {
  langName: 'Français',
  switchLabel: 'Langue',
  preferencesTitle: (org) => `Préférences de messages — ${org}`,
  privacyContact: 'Questions sur vos données :',
  optoutTitle: (org) => `Ne plus recevoir de messages de ${org}`,
  optoutQuestion: (what) => `Ne plus recevoir ${what} ?`,
  optoutExplain: (org, what) =>
    `${org} ne vous enverra plus ${what}. Les autres types de messages ne sont pas concernés.`,
  optoutNothingYet: 'Rien ne change tant que vous n’appuyez pas sur le bouton.',
  optoutButton: 'Ne plus recevoir ces messages',
  optoutAlready: (date) => `Vous avez déjà arrêté ces messages le ${date}. Vous n’avez rien d’autre à faire.`,
  optoutDoneTitle: 'C’est fait : ces messages sont arrêtés',
  optoutDone: (org, what) => `${org} ne vous enverra plus ${what}.`,
  optoutDoneWhen: (date) => `Votre choix a été enregistré le ${date} et s’applique immédiatement.`,
  optoutChangeMind: 'Vous changez d’avis ? Vous pouvez redonner votre accord à tout moment en nous contactant.',
  prefsHeading: (org) => `Vos préférences de messages chez ${org}`,
  prefsIntro:
    'Voici ce que vous avez accepté de recevoir. Vous pouvez arrêter chaque message, ou l’autoriser de nouveau, à tout moment.',
  prefsIntroReadOnly: 'Voici ce que vous avez accepté de recevoir.',
  prefsNothing: 'Nous n’avons aucun consentement pour vous : rien n’est enregistré à votre sujet.',
  prefsGranted: (date) => `Autorisé depuis le ${date}`,
  prefsWithdrawn: (date) => `Arrêté le ${date}`,
  prefsExpired: 'Expiré : plus envoyé',
  prefsWithdraw: 'Arrêter',
  prefsGrant: 'Autoriser de nouveau',
  prefsReceipt: 'Reçu (preuve)',
  prefsGrantNotice: (version) =>
    `Autoriser de nouveau un message vaut accord avec notre politique de confidentialité actuelle (version ${version}).`,
  prefsConfirm: 'Mes choix sont à jour',
  prefsConfirmExplain: 'Confirmer vos choix nous indique qu’ils correspondent toujours à vos souhaits.',
  prefsDoneWithdrawn: (what) => `C’est fait : vous ne recevrez plus ${what}.`,
  prefsDoneGranted: (what, version) =>
    `C’est fait : vous recevrez de nouveau ${what} (politique de confidentialité version ${version}).`,
  prefsDoneConfirmed: 'Merci : vos choix sont confirmés.',
  prefsEraseHeading: 'Supprimer toutes mes données',
  prefsEraseExplain:
    'Nous supprimerons tout ce que nous détenons sur vous : consentements et historique. Nous gardons seulement une empreinte codée pour ne plus jamais vous contacter. Nous répondons sous un mois.',
  prefsEraseCheckbox: 'Je veux que toutes mes données soient supprimées',
  prefsEraseButton: 'Demander la suppression',
  prefsEraseMissingConfirm: 'Pour demander la suppression, cochez d’abord la case.',
  prefsErasePending: (received, due) =>
    `Votre demande de suppression a été reçue le ${received}. Elle sera traitée au plus tard le ${due}. D’ici là, vous ne recevez aucun message commercial.`,
  prefsErased: (date) => `Vos données ont été supprimées le ${date}.`,
  prefsUnknownScope: 'Ce choix ne figure pas dans votre liste. Rien n’a été modifié.',
  errorInvalidTitle: 'Ce lien n’est pas valide',
  errorInvalid: 'Il a peut-être été copié en partie ou modifié. Utilisez le lien du dernier message reçu.',
  errorExpiredTitle: 'Ce lien a expiré',
  errorExpired:
    'Pour votre sécurité, les liens ne fonctionnent que pendant une durée limitée. Utilisez le lien d’un message plus récent.',
  errorWrongKindTitle: 'Ce lien n’est pas prévu pour cette page',
  errorWrongKind: 'Utilisez le lien tel qu’il figure dans le message.',
  errorFormTitle: 'Nous n’avons pas pu lire votre demande',
  errorForm: 'Revenez à la page et réessayez.',
  errorUnavailableTitle: 'Service momentanément indisponible',
  errorUnavailable: 'Nous ne pouvons pas enregistrer votre choix pour le moment. Réessayez dans quelques minutes.',
  errorGenericTitle: 'Une erreur est survenue',
  errorGeneric: 'Réessayez plus tard.',
  nothingChanged: 'Rien n’a été modifié.',
  contactUs: 'Vous pouvez aussi nous écrire :',
};

/** The texts of one language. */
export const messages = (lang: Lang): Messages => (lang === 'fr' ? fr : en);
