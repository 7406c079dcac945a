import { applySignal, channelSignals, recordSignal } from '#domain/likelihood.ts';
import type { Policy } from '#domain/policy.ts';
import {
  type Change,
  effectiveScope,
  grantConsent,
  type NextEvent,
  type SubjectState,
  withdrawConsent,
} from '#domain/subject-state.ts';
import type { Channel, ScopeKey } from '#domain/vocabulary.ts';
import type { Notification } from './payload.ts';

const CHANNEL: Channel = 'whatsapp';

/** The concrete WhatsApp purposes the subject has entries for. */
const whatsappPurposes = (state: SubjectState) =>
  (Object.keys(state.scopes) as ScopeKey[])
    .map((k) => k.split('|'))
    .filter(([c, p]) => c === CHANNEL && p !== '*')
    .map(([, p]) => p);

/**
 * A stop (131050, user_preferences, keyword): WhatsApp marketing withdrawn for every purpose. Delivery is
 * unordered, so a stop older than the person's WhatsApp opt-ins (resume, START) now granted was already
 * superseded and changes nothing. The stopped message no longer waits for a
 * delivery.
 */
function withdraw(
  current: SubjectState,
  n: Notification & { action: { kind: 'withdraw' } },
  policy: Policy,
  next: NextEvent,
): Change | null {
  const granted = whatsappPurposes(current)
    .map((p) => effectiveScope(current, CHANNEL, p))
    .filter((s) => s?.status === 'granted');
  // Only the person's own later WhatsApp opt-in supersedes a stop; anything else errs on honouring it.
  const superseded = granted.every((s) => s?.source === 'whatsapp_optin' && (s.grantedAt ?? '') > n.observedAt);
  if (granted.length > 0 && superseded) return null;
  const { action } = n;
  const change = withdrawConsent(
    current,
    {
      channel: CHANNEL,
      source: action.source,
      data: { via: 'whatsapp_webhook', ...(action.errorCode ? { errorCode: action.errorCode } : {}) },
    },
    next,
    n.observedAt,
  );
  if (!action.messageId || !channelSignals(current, CHANNEL)) return change;
  const summary = applySignal(
    channelSignals(current, CHANNEL),
    { type: 'message_failed', observedAt: n.observedAt, messageId: action.messageId },
    policy,
    n.observedAt,
  );
  return { ...change, state: { ...change.state, signals: { ...change.state.signals, [CHANNEL]: summary } } };
}

/**
 * A resume (user_preferences) or START/UNSTOP: the WhatsApp scopes that were withdrawn by that kind of stop
 * are granted again (`whatsapp_optin`, the policy's notice version), in one event; scopes still granted are
 * confirmed at the opt-in's time, so a stop delivered late (older than the opt-in) is recognised as
 * superseded. A resume with no prior WhatsApp entry at all grants `marketing`. A withdrawal newer than the
 * opt-in (unordered delivery) wins. Returns null when nothing is to be given back.
 */
function regrant(
  current: SubjectState,
  n: Notification & { action: { kind: 'regrant' } },
  policy: Policy,
  next: NextEvent,
): Change | null {
  const { action } = n;
  let purposes = whatsappPurposes(current).filter((p) => {
    const scope = effectiveScope(current, CHANNEL, p);
    if (scope?.status === 'granted') return (scope.grantedAt ?? '') < n.observedAt;
    return scope?.status === 'withdrawn' && scope.source === action.after && (scope.withdrawnAt ?? '') <= n.observedAt;
  });
  const withdrawnBefore = whatsappPurposes(current).some(
    (p) => effectiveScope(current, CHANNEL, p)?.source === action.after,
  );
  if (action.via === 'keyword' && !withdrawnBefore) purposes = [];
  if (purposes.length === 0 && action.via === 'user_preferences' && !effectiveScope(current, CHANNEL, 'marketing')) {
    purposes = ['marketing'];
  }
  if (purposes.length === 0) return null;
  const grant = (state: SubjectState, purpose: string) =>
    grantConsent(
      state,
      {
        channel: CHANNEL,
        purpose,
        source: 'whatsapp_optin',
        noticeVersion: policy.noticeVersion,
        grantedAt: n.observedAt,
        data: { via: action.via },
      },
      next,
      n.observedAt,
    );
  let change = grant(current, purposes[0]);
  for (const p of purposes.slice(1)) change = { ...change, state: grant(change.state, p).state };
  return {
    state: change.state,
    event: {
      ...change.event,
      purpose: purposes.length === 1 ? purposes[0] : null,
      data: { ...change.event.data, scopes: purposes.map((purpose) => ({ channel: CHANNEL, purpose })) },
    },
  };
}

/**
 * What one webhook notification changes for its subject, or null when nothing (a superseded stop, an
 * opt-in with nothing to give back that is not a message, a signal about an erased subject). Pure.
 */
export function applyNotification(
  current: SubjectState,
  n: Notification,
  policy: Policy,
  next: NextEvent,
  now: string,
): Change | null {
  const { action } = n;
  if (action.kind === 'withdraw') return withdraw(current, { ...n, action }, policy, next);
  if (action.kind === 'regrant') {
    const change = regrant(current, { ...n, action }, policy, next);
    if (change || action.via !== 'keyword') return change;
    // START with nothing to give back is just a message from the person.
    return applyNotification(current, { ...n, action: { kind: 'signal', type: 'inbound_message' } }, policy, next, now);
  }
  if (current.erasure?.status === 'completed') return null;
  return recordSignal(
    current,
    {
      channel: CHANNEL,
      type: action.type,
      observedAt: n.observedAt,
      messageId: action.messageId,
      source: 'whatsapp_webhook',
      data: action.errorCode ? { errorCode: action.errorCode } : {},
    },
    policy,
    now,
  );
}
