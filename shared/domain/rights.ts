import type { Lang } from '#shared/pages/i18n.ts';
import { likelihoodRatioOf } from './likelihood.ts';
import type { Policy } from './policy.ts';

/**
 * What an Art. 15 copy tells the person beyond their data, in plain words (English and French): their
 * rights (Art. 15(1)(e), (f)), what is kept after an erasure and why (Art. 17(3)), and the automated block
 * inference (Art. 15(1)(h): the logic, what it causes, how to contest it).
 */

/** The supervisory authority named in the copy: the controller's (France: CNIL). */
export const SUPERVISORY_AUTHORITY = {
  name: 'CNIL (Commission nationale de l’informatique et des libertés)',
  country: 'FR',
  url: 'https://www.cnil.fr/fr/plaintes',
} as const;

const RIGHTS = [
  ['access', 'GDPR Art. 15'],
  ['rectification', 'GDPR Art. 16'],
  ['erasure', 'GDPR Art. 17'],
  ['restriction', 'GDPR Art. 18'],
  ['objection', 'GDPR Art. 21'],
  ['withdrawal', 'GDPR Art. 7(3)'],
  ['portability', 'GDPR Art. 20'],
  ['complaint', 'GDPR Art. 77'],
] as const;
type Right = (typeof RIGHTS)[number][0];

const RIGHT_TEXTS: Record<Lang, (contact: string) => Record<Right, string>> = {
  en: (contact) => ({
    access: `You may ask at any time for a copy of the data kept about you, such as this one. Write to ${contact}.`,
    rectification: `You may have inaccurate data about you corrected and incomplete data completed. Write to ${contact}.`,
    erasure: `You may have your data erased. Only what must be kept as proof (see "kept") stays, without your personal details.`,
    restriction: `You may ask that your data be kept but no longer used while its accuracy or use is being checked.`,
    objection:
      'You may object at any time to direct marketing: it then stops for good, and a record of your objection is kept so that it stays honoured.',
    withdrawal: `You may withdraw your consent at any time, as easily as you gave it: reply STOP, use the opt-out link in any message or the preference centre, or write to ${contact}. What was done before the withdrawal stays lawful.`,
    portability: `You may receive the data you gave in a structured, machine-readable form (this copy is JSON), or have it sent to another organisation. Write to ${contact}.`,
    complaint: `You may lodge a complaint with a data protection supervisory authority, in particular in the EU country where you live, work or where the infringement happened. In France: ${SUPERVISORY_AUTHORITY.name}, ${SUPERVISORY_AUTHORITY.url}.`,
  }),
  fr: (contact) => ({
    access: `Vous pouvez demander à tout moment une copie des données conservées à votre sujet, comme celle-ci. Écrivez à ${contact}.`,
    rectification: `Vous pouvez faire corriger les données inexactes vous concernant et compléter les données incomplètes. Écrivez à ${contact}.`,
    erasure:
      'Vous pouvez faire effacer vos données. Seul ce qui doit être gardé comme preuve (voir « kept ») est conservé, sans vos informations personnelles.',
    restriction:
      'Vous pouvez demander que vos données soient conservées sans être utilisées le temps de vérifier leur exactitude ou leur usage.',
    objection:
      'Vous pouvez vous opposer à tout moment à la prospection : elle cesse définitivement, et la trace de votre opposition est gardée pour qu’elle reste respectée.',
    withdrawal: `Vous pouvez retirer votre consentement à tout moment, aussi simplement que vous l’avez donné : répondez STOP, utilisez le lien de désinscription d’un message ou le centre de préférences, ou écrivez à ${contact}. Ce qui a été fait avant le retrait reste licite.`,
    portability: `Vous pouvez recevoir les données que vous avez fournies dans un format structuré et lisible par machine (cette copie est en JSON), ou les faire transmettre à un autre organisme. Écrivez à ${contact}.`,
    complaint: `Vous pouvez introduire une réclamation auprès d’une autorité de contrôle, notamment dans le pays de l’UE où vous résidez, travaillez ou où l’infraction a eu lieu. En France : ${SUPERVISORY_AUTHORITY.name}, ${SUPERVISORY_AUTHORITY.url}.`,
  }),
};

/** The person's rights, in `lang`, with the articles and the supervisory authority. */
export function rightsOf(policy: Policy, lang: Lang) {
  const texts = RIGHT_TEXTS[lang](policy.controller.privacyContact);
  return {
    lang,
    rights: RIGHTS.map(([right, article]) => ({ right, article, text: texts[right] })),
    supervisoryAuthority: SUPERVISORY_AUTHORITY,
  };
}

const CLUES: Record<Lang, Record<string, string>> = {
  en: {
    message_undelivered: 'a message stays undelivered (one grey tick)',
    profile_photo_hidden: 'the profile photo is hidden',
    last_seen_hidden: '"last seen" is hidden',
    call_failed: 'calls never ring through',
    group_add_refused: 'being added to a group is refused',
    read_receipts_missing: 'messages stay unread',
    channel_blocked: 'the messaging provider reports that you blocked the sender',
  },
  fr: {
    message_undelivered: 'un message reste non distribué (une seule coche grise)',
    profile_photo_hidden: 'la photo de profil est masquée',
    last_seen_hidden: '« vu à » est masqué',
    call_failed: 'les appels ne sonnent jamais',
    group_add_refused: 'l’ajout à un groupe est refusé',
    read_receipts_missing: 'les messages restent non lus',
    channel_blocked: 'le fournisseur de messagerie signale que vous avez bloqué l’expéditeur',
  },
};

/**
 * The WhatsApp block inference explained (Art. 15(1)(h), Art. 22): the clues and their weights, what the
 * score causes, that it is no decision with legal effect, and how it is reset or contested.
 */
export function automatedInference(policy: Policy, lang: Lang) {
  const clues = Object.entries(policy.signalWeights).map(([type, weight]) => ({
    type,
    weight,
    likelihoodRatio: Math.round(likelihoodRatioOf(weight) * 100) / 100,
    description: CLUES[lang][type] ?? type,
  }));
  const p = policy;
  const contact = p.controller.privacyContact;
  const en = lang === 'en';
  return {
    lang,
    what: en
      ? `WhatsApp does not say when someone blocks a sender. The service estimates the probability from clues on WhatsApp, starting from the share of contacts who block a business (${p.blockBaseRate}): each clue multiplies the odds by how much more often it is seen when someone blocked than when not (its likelihood ratio); clues with one cause (a hidden photo and a hidden "last seen" are one privacy setting; an undelivered message and a call that does not ring are both explained by a phone that is off) count once; a clue counts less and less after ${p.signalHalfLifeDays} days. A message sent and not delivered within ${p.undeliveredAfterHours} hours counts as undelivered, and weighs more the longer it waits, within a limit: some people stay offline for weeks (${p.longOfflineShare}).`
      : `WhatsApp n’indique pas qu’un expéditeur est bloqué. Le service en estime la probabilité à partir d’indices sur WhatsApp, en partant de la part des contacts qui bloquent une entreprise (${p.blockBaseRate}) : chaque indice multiplie la cote par sa fréquence relative chez ceux qui ont bloqué et chez les autres (son rapport de vraisemblance) ; les indices de même cause (photo et « vu à » masqués relèvent d’un seul réglage ; un message non distribué et un appel qui ne sonne pas s’expliquent tous deux par un téléphone éteint) ne comptent qu’une fois ; un indice compte de moins en moins après ${p.signalHalfLifeDays} jours. Un message envoyé et non distribué sous ${p.undeliveredAfterHours} heures compte comme non distribué, et pèse d’autant plus qu’il attend, dans une limite : certaines personnes restent hors ligne des semaines (${p.longOfflineShare}).`,
    clues,
    thresholds: { suspected: p.suspectedThreshold, likely: p.blockThreshold },
    effect: en
      ? `From a probability of ${p.blockThreshold}, marketing messages to you are paused on WhatsApp, and on your other channels as long as it stays there and for ${p.crossChannelCooldownDays} days after. It only pauses marketing: it is not a decision with legal or similarly significant effects (GDPR Art. 22), and it changes no contract, price or service.`
      : `À partir d’une probabilité de ${p.blockThreshold}, les messages de prospection vous concernant sont suspendus sur WhatsApp, et sur vos autres canaux tant qu’elle s’y maintient et ${p.crossChannelCooldownDays} jours de plus. Cela ne fait que suspendre la prospection : ce n’est pas une décision produisant des effets juridiques ou similaires (RGPD art. 22), et cela ne change aucun contrat, prix ni service.`,
    contest: en
      ? `Any message you send, and any message that reaches you (delivered or read), resets the estimate at once. You may also ask ${contact} to have it reviewed by a person.`
      : `Tout message que vous envoyez, et tout message qui vous parvient (distribué ou lu), remet aussitôt l’estimation au plus bas. Vous pouvez aussi demander à ${contact} qu’une personne le réexamine.`,
  };
}

/**
 * What an erasure keeps, why and until when: the public part of the consent, withdrawal, objection and
 * erasure events until `proofUntil`, and the tombstone for good. Shown to the person (access copy) and to
 * the DPO (erasure requests).
 */
export function keptAfterErasure(proofUntil: string) {
  return {
    proof:
      'the public part of the consent, withdrawal, objection and erasure events (type, times, channel, purpose, source, notice version and hash, who recorded it); their personal details (evidence, IP hash, user agent, page, reasons, message ids) are deleted',
    proofUntil,
    tombstone: 'the pseudonymous key, the erasure time and the request id, kept for good',
    why: [
      {
        basis: 'GDPR Art. 17(3)(e)',
        reason:
          'the establishment, exercise or defence of legal claims: proof of what was consented to, when, and when it was withdrawn (Art. 7(1))',
      },
      {
        basis: 'GDPR Art. 17(3)(b), Art. 21(3)',
        reason: 'keeping the objection honoured: the person is not imported or contacted for marketing again',
      },
    ],
  };
}
