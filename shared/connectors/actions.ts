import { recordSignal } from '#domain/likelihood.ts';
import { kindOf, type Policy } from '#domain/policy.ts';
import {
  type Change,
  effectiveScope,
  grantConsent,
  grantPurposes,
  marketingKey,
  type NextEvent,
  type SubjectState,
  withdrawConsent,
} from '#domain/subject-state.ts';
import { type Channel, type ScopeKey, scopeKey } from '#domain/vocabulary.ts';
import type { SubjectInput } from '#shared/identity/subject.ts';

/** The providers a connector can be made for. */
export const PROVIDERS = ['twilio', 'sendgrid', 'ses'] as const;
export type Provider = (typeof PROVIDERS)[number];

/**
 * What one provider event asks of its subject (docs/connectors.md, "Mapping"):
 * - `withdraw`: close `purpose` on `channel`, or with no purpose every marketing-kind purpose of the channel;
 * - `regrant`: the person's own opt-in (Twilio START) gives back what an earlier keyword stop closed;
 * - `signal`: `recipient_unreachable` (no block evidence) or `channel_blocked` (strong block evidence).
 */
export type ConnectorAction =
  | {
      kind: 'withdraw';
      channel: Channel;
      purpose?: string;
      source: 'keyword' | 'provider_unsubscribe' | 'spam_complaint';
    }
  | { kind: 'regrant'; channel: Channel; purpose?: string }
  | { kind: 'signal'; channel: Channel; type: 'recipient_unreachable' | 'channel_blocked' };

/**
 * One usable event of a verified provider delivery. `subject` holds the raw identifier only until the
 * subjectKey is derived (never stored, never logged); `replayId` is the provider's own event id (plus the
 * recipient where one event names several), kept only as a keyed digest.
 */
export interface ProviderEvent {
  subject: SubjectInput;
  /** When it happened, when the provider says; otherwise the arrival time is used. */
  observedAt?: string;
  action: ConnectorAction;
  replayId: string;
  /** What it was, for metrics and logs (never who): e.g. `sendgrid.unsubscribe`. */
  name: string;
  /** Public detail for the ledger event: the provider, its event type, an error code. Never an identifier. */
  data: Record<string, string | number>;
}

/** A verified delivery, read: the usable events in the order they happened, and the others counted by reason. */
export interface ParsedDelivery {
  events: ProviderEvent[];
  skipped: Record<string, number>;
}

/** Adds one skipped item under its reason. */
export const skip = (skipped: Record<string, number>, reason: string) => {
  skipped[reason] = (skipped[reason] ?? 0) + 1;
};

/** The concrete purposes a subject has entries for on a channel. */
const purposesOn = (state: SubjectState, channel: Channel) =>
  (Object.keys(state.scopes) as ScopeKey[])
    .map((k) => k.split('|'))
    .filter(([c, p]) => c === channel && p !== '*' && !p.startsWith('@'))
    .map(([, p]) => p);

function withdraw(
  current: SubjectState,
  action: ConnectorAction & { kind: 'withdraw' },
  at: string,
  data: Record<string, unknown>,
  policy: Policy,
  next: NextEvent,
): Change | null {
  const change = withdrawConsent(
    current,
    {
      channel: action.channel,
      ...(action.purpose ? { purpose: action.purpose } : { onlyKind: 'marketing' }),
      source: action.source,
      at,
      data: { via: 'connector', ...data },
    },
    next,
    at,
    kindOf(policy),
  );
  // A stop that closes nothing new (an older or repeated one) records nothing.
  const key = action.purpose ? scopeKey(action.channel, action.purpose) : marketingKey(action.channel);
  return change.state.scopes[key] === current.scopes[key] ? null : change;
}

/**
 * The person's own opt-in (START): the channel's purposes (or the mapped one) that a keyword stop closed
 * before it are granted again, at its time, in one event. A scope closed by anything else (the API, a link, an
 * erasure) or closed after the opt-in stays closed: withdrawal always wins. Null when nothing is given back.
 */
function regrant(
  current: SubjectState,
  action: ConnectorAction & { kind: 'regrant' },
  at: string,
  data: Record<string, unknown>,
  policy: Policy,
  next: NextEvent,
  notice: { noticeHash?: string },
): Change | null {
  if (current.erasure?.status) return null;
  const kinds = kindOf(policy);
  const time = Date.parse(at);
  const purposes = purposesOn(current, action.channel)
    .filter((p) => !action.purpose || p === action.purpose)
    .filter((p) => {
      const scope = effectiveScope(current, action.channel, p, kinds);
      return scope?.status === 'withdrawn' && scope.source === 'keyword' && Date.parse(scope.withdrawnAt ?? '') < time;
    });
  if (purposes.length === 0) return null;
  const grant = (state: SubjectState, purpose: string) =>
    grantConsent(
      state,
      {
        channel: action.channel,
        purpose,
        source: action.channel === 'whatsapp' ? 'whatsapp_optin' : 'sms_optin',
        noticeVersion: policy.noticeVersion,
        ...notice,
        grantedAt: at,
        data: { via: 'connector', ...data },
      },
      next,
      at,
      kinds,
    );
  return grantPurposes(current, action.channel, purposes, grant);
}

/**
 * What one provider event changes for its subject, or null when nothing (a stop already recorded, an opt-in
 * with nothing to give back, a signal about an erased subject). `at` is the event time (never in the
 * future); `notice` the registered hash of the policy's notice version, for an opt-in. Pure.
 */
export function applyProviderEvent(
  current: SubjectState,
  event: Pick<ProviderEvent, 'action' | 'data'>,
  at: string,
  policy: Policy,
  next: NextEvent,
  now: string,
  notice: { noticeHash?: string } = {},
): Change | null {
  const { action, data } = event;
  if (action.kind === 'withdraw') return withdraw(current, action, at, data, policy, next);
  if (action.kind === 'regrant') return regrant(current, action, at, data, policy, next, notice);
  if (current.erasure?.status === 'completed') return null;
  const { likelihood: _likelihood, ...change } = recordSignal(
    current,
    { channel: action.channel, type: action.type, observedAt: at, source: 'connector', data },
    policy,
    now,
  );
  return change;
}
