import { type LedgerEvent, verifyChain } from './ledger.ts';
import type { Policy } from './policy.ts';
import type { SubjectState } from './subject-state.ts';
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
export function consentReceipt(view: ConsentView, subjectKey: string, policy: Policy, events: readonly LedgerEvent[]) {
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
    /** 27560: Notice — the version of the text the person agreed to. */
    notice: { noticeVersion: view.noticeVersion },
    policyUrl: null,
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

/** What the person sent (echoed in the reply only; never stored). */
export interface AccessIdentifier {
  kind: string;
  value: string;
}

/**
 * The Art. 15 copy of a subject's data: controller, current consents with receipts, full ledger with
 * its verification, erasure status. `identifier` is what the caller sent, normalised.
 */
export function accessReport(input: {
  subjectKey: string;
  identifier: AccessIdentifier;
  state: SubjectState | undefined;
  events: readonly LedgerEvent[];
  policy: Policy;
  now: string;
}) {
  const { subjectKey, identifier, state, events, policy, now } = input;
  const consents = state ? consentViews(state, policy, now) : [];
  const chain = verifyChain(events);
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
        'consent records are kept while the consent is in force and as proof afterwards; erasure leaves only a suppression tombstone',
      recipients: 'none: the service only answers whether a message may be sent',
    },
    consents,
    signals: state ? signalViews(state, policy, now) : {},
    receipts: consents.map((view) => consentReceipt(view, subjectKey, policy, events)),
    erasure: state?.erasure
      ? {
          requestId: state.erasure.requestId,
          status: state.erasure.status,
          receivedAt: state.erasure.receivedAt,
          erasedAt: state.erasure.erasedAt ?? null,
        }
      : null,
    events,
    chain: { valid: chain.valid, length: chain.length, head: chain.head },
  };
}
