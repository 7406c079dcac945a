import type { Lang } from '#shared/pages/i18n.ts';
import { keptOf } from './erasure.ts';
import { type LedgerEvent, verifyChain } from './ledger.ts';
import type { Notice } from './notices.ts';
import { type Policy, purposeKind } from './policy.ts';
import { automatedInference, rightsOf } from './rights.ts';
import type { Change, SubjectState } from './subject-state.ts';
import { type ConsentView, consentViews, signalViews } from './views.ts';

/** Withdrawal methods offered to every person (GDPR Art. 7(3): as easy as giving consent). */
const WITHDRAWAL_METHODS: Record<string, string> = {
  whatsapp: 'reply STOP to a message, use "Stop promotions" in WhatsApp, or the opt-out link in any message',
  sms: 'reply STOP, or use the opt-out link in any message',
  email: 'use the unsubscribe link in any e-mail (one click)',
  voice: 'say so during a call, or contact the controller',
  push: 'turn notifications off, or use the preference centre',
};

const receiptState = (status: ConsentView['status']) =>
  status === 'granted' ? 'active' : status === 'withdrawn' ? 'withdrawn' : 'expired';

/**
 * A consent receipt for one scope, with the terms of ISO/IEC TS 27560:2023 and the Kantara Initiative
 * Consent Receipt Specification v1.1 (the field names follow Kantara; the 27560 name is noted where
 * it differs).
 */
export function consentReceipt(
  view: ConsentView,
  subjectKey: string,
  policy: Policy,
  events: readonly LedgerEvent[],
  notice?: Notice,
) {
  const grant = events.find((e) => e.type === 'consent.granted' && e.data?.grantedAt === view.grantedAt);
  const withdrawal = view.status === 'withdrawn' ? events.find((e) => e.eventId === view.eventId) : undefined;
  return {
    version: 'KI-CR-v1.1.0',
    /** 27560: consent record identifier. The ledger event that recorded the grant (or the decisive event). */
    consentReceiptID: grant?.eventId ?? view.eventId,
    jurisdiction: 'EU (GDPR, Regulation (EU) 2016/679)',
    /** 27560: ConsentTimestamp. */
    consentTimestamp: view.grantedAt,
    /** 27560: CollectionMethod (how the consent was given: web form, double opt-in, in store…). */
    collectionMethod: grant?.source ?? (view.grantedAt ? view.source : null),
    /** 27560: PiiPrincipalId — the pseudonymous key; the identifier itself is never stored. */
    piiPrincipalId: subjectKey,
    piiControllers: [{ piiController: policy.controller.name, contact: policy.controller.privacyContact }],
    /** 27560: Notice — the version of the text the person agreed to; when registered, its hash and texts. */
    notice: {
      noticeVersion: view.noticeVersion,
      noticeHash: view.noticeHash ?? notice?.hash ?? null,
      /** The consent's own event committed to the hash (the version was registered when it was given). */
      hashRecorded: Boolean(view.noticeHash),
      ...(notice ? { effectiveAt: notice.effectiveAt, url: notice.url, texts: notice.texts } : {}),
    },
    policyUrl: notice?.url ?? null,
    services: [
      {
        service: view.channel === '*' ? 'every channel' : view.channel,
        purposes: [
          {
            purpose: view.purpose === '*' ? 'every purpose' : view.purpose,
            purposeCategory: ['direct marketing'],
            consentType: 'EXPLICIT',
            legalBasis: 'consent (GDPR Art. 6(1)(a))',
            piiCategory: ['contact identifier'],
            primaryPurpose: true,
            termination: view.expiresAt ?? 'until withdrawn',
            thirdPartyDisclosure: false,
          },
        ],
      },
    ],
    sensitive: false,
    spiCat: [],
    /** 27560: State — active, withdrawn or expired. */
    state: receiptState(view.status),
    expiresAt: view.expiresAt,
    objection: view.objection ?? false,
    withdrawal: {
      /** 27560: WithdrawalMethod — how the person can withdraw. */
      method: `${WITHDRAWAL_METHODS[view.channel] ?? 'use the opt-out link or the preference centre'}, or write to ${policy.controller.privacyContact}`,
      withdrawnAt: view.withdrawnAt,
      withdrawnVia: withdrawal?.source ?? (view.status === 'withdrawn' ? view.source : null),
    },
  };
}

/** Where the log receipt of an event is served (`GET /v1/receipts/{eventId}`). */
export const receiptUrl = (eventId: string) => `/v1/receipts/${encodeURIComponent(eventId)}`;

/** The notice versions a subject's consents were given under (to load their texts for the copy). */
export const noticeVersionsOf = (events: readonly LedgerEvent[]): string[] =>
  distinct(events.filter((e) => e.type === 'consent.granted').map((e) => e.data?.noticeVersion as string | undefined));

/** What the person sent (echoed in the reply only; never stored). */
export interface AccessIdentifier {
  kind: string;
  value: string;
}

/** Records that a copy of the data was given (Art. 5(2) accountability); who gave it is the event's actor. */
export const accessProvided = (current: SubjectState, now: string): Change => ({
  state: current,
  event: { type: 'access.provided', at: now, data: {} },
});

/** The purposes of the processing: the policy's, and any other the subject has a consent for (marketing). */
function purposesOf(policy: Policy, consents: readonly ConsentView[], lang: Lang) {
  const registry = policy.purposes ?? {};
  const used = consents.map((c) => c.purpose).filter((p) => p !== '*' && !p.startsWith('@'));
  return [...new Set([...Object.keys(registry), ...used])].sort().map((slug) => {
    const labels: Record<string, string> = registry[slug]?.labels ?? {};
    return { slug, kind: purposeKind(policy, slug), labels, label: labels[lang] ?? labels.en ?? slug };
  });
}

const distinct = (values: readonly (string | null | undefined)[]) =>
  [...new Set(values.filter((v): v is string => Boolean(v)))].sort();

/** Where the data came from (Art. 15(1)(g)): how consents and withdrawals were collected, which providers reported. */
function sourcesOf(events: readonly LedgerEvent[]) {
  const of = (type: string) => distinct(events.filter((e) => e.type === type).map((e) => e.source));
  return {
    consents: of('consent.granted'),
    withdrawals: of('consent.withdrawn'),
    providers: distinct(events.map((e) => (e.actor?.type === 'webhook' ? e.actor.provider : null))),
  };
}

/** How long data is kept (Art. 15(1)(d)): the policy's periods, in plain words. */
function retentionOf(policy: Policy, lang: Lang) {
  const { inactiveSubjectDays, signalDays, proofDays } = policy.retention;
  return {
    inactiveSubjectDays,
    signalDays,
    proofDays,
    explanation:
      lang === 'fr'
        ? `Vos données sont effacées après ${inactiveSubjectDays} jours sans action de votre part ni consentement en cours. Le détail des signaux de distribution et de blocage est effacé après ${signalDays} jours. Après un effacement, la preuve de vos consentements et retraits est gardée ${proofDays} jours, sans vos informations personnelles ; seule une trace anonyme de l’effacement est gardée ensuite.`
        : `Your data is erased after ${inactiveSubjectDays} days without any action of yours and without a consent in force. The details of delivery and blocking signals are erased after ${signalDays} days. After an erasure, the proof of your consents and withdrawals is kept for ${proofDays} days without your personal details; only a pseudonymous trace of the erasure is kept after that.`,
  };
}

/** The log receipts of a ledger's consent events (granted, withdrawn): where to fetch each one's proof. */
export const logReceiptsOf = (events: readonly LedgerEvent[]) =>
  events
    .filter((e) => e.type.startsWith('consent.'))
    .map((e) => ({ eventId: e.eventId, type: e.type, at: e.at, receiptUrl: receiptUrl(e.eventId) }));

/**
 * The Art. 15 copy of a subject's data: controller, purposes, retention, sources, current consents with
 * receipts, the person's rights, the block inference explained, full ledger with its verification,
 * erasure status and, once erased, what is kept, why and until when. `identifier` is what the caller
 * sent, normalised; the plain-language parts are in `lang` (English by default).
 */
export function accessReport(input: {
  subjectKey: string;
  identifier: AccessIdentifier;
  state: SubjectState | undefined;
  events: readonly LedgerEvent[];
  policy: Policy;
  now: string;
  lang?: Lang;
  /** The registered notices of the subject's consents, by version (`noticeVersionsOf`). */
  notices?: ReadonlyMap<string, Notice>;
}) {
  const { subjectKey, identifier, state, events, policy, now, lang = 'en' } = input;
  const consents = state ? consentViews(state, policy, now) : [];
  const chain = verifyChain(events);
  const erasure = state?.erasure;
  return {
    generatedAt: now,
    legalBasis: 'GDPR Art. 15 (right of access by the data subject)',
    controller: { name: policy.controller.name, privacyContact: policy.controller.privacyContact },
    subject: { subjectKey, identifierKind: identifier.kind, identifier: identifier.value },
    dataHeld: {
      stored:
        'a pseudonymous key (keyed hash) of the identifier, consents and withdrawals with their evidence (IP addresses only as keyed hashes), delivery and blocking signals, send counts, erasure requests',
      notStored: 'the phone number, e-mail address or other identifier itself; raw IP addresses',
      retention:
        'consent records are kept while the consent is in force and as proof afterwards (see `retention`); erasure keeps only the proof (see `kept`) and a suppression tombstone',
      recipients: 'none: the service only answers whether a message may be sent',
    },
    purposes: purposesOf(policy, consents, lang),
    retention: retentionOf(policy, lang),
    sources: sourcesOf(events),
    rights: rightsOf(policy, lang),
    automatedInference: automatedInference(policy, lang),
    consents,
    signals: state ? signalViews(state, policy, now) : {},
    receipts: consents.map((view) => {
      const receipt = consentReceipt(view, subjectKey, policy, events, input.notices?.get(view.noticeVersion ?? ''));
      const recorded = events.some((e) => e.eventId === receipt.consentReceiptID);
      return { ...receipt, receiptUrl: recorded ? receiptUrl(receipt.consentReceiptID) : null };
    }),
    /**
     * The proof that each consent event is in the verifiable log: its receipt (the event, its leaf index,
     * inclusion proof and signed checkpoint), checked offline with `consent-gate receipt verify`.
     */
    logReceipts: logReceiptsOf(events),
    /** The exact words of each registered notice the person consented under, with its hash. */
    notices: [...(input.notices?.values() ?? [])],
    erasure: erasure
      ? {
          requestId: erasure.requestId,
          status: erasure.status,
          receivedAt: erasure.receivedAt,
          erasedAt: erasure.erasedAt ?? null,
        }
      : null,
    kept: erasure
      ? keptOf({ status: erasure.status, completedAt: erasure.erasedAt }, policy.retention.proofDays)
      : null,
    events,
    chain: { valid: chain.valid, length: chain.length, head: chain.head },
  };
}
