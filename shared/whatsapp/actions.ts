import { applySignal, channelSignals, recordSignal } from '#domain/likelihood.ts';
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
import type { Channel, ScopeKey } from '#domain/vocabulary.ts';
import type { Notification } from './payload.ts';

const CHANNEL: Channel = 'whatsapp';

/** The concrete WhatsApp purposes the subject has entries for. */
const whatsappPurposes = (state: SubjectState) =>
  (Object.keys(state.scopes) as ScopeKey[])
    .map((k) => k.split('|'))
    .filter(([c, p]) => c === CHANNEL && p !== '*' && !p.startsWith('@'))
    .map(([, p]) => p);

/**
 * A stop (131050, user_preferences, keyword): WhatsApp's marketing-kind purposes withdrawn at the stop's
 * time (service purposes such as order updates stay). The ledger folds by event time, so a stop older
 * than the person's own later opt-in closes nothing; a stop that changes nothing (a replay after its
 * marker expired, an older stop) records nothing. The stopped message no longer waits for a delivery.
 */
function withdraw(
  current: SubjectState,
  n: Notification & { action: { kind: 'withdraw' } },
  policy: Policy,
  next: NextEvent,
): Change | null {
  const { action } = n;
  const change = withdrawConsent(
    current,
    {
      channel: CHANNEL,
      onlyKind: 'marketing',
      source: action.source,
      at: n.observedAt,
      data: { via: 'whatsapp_webhook', ...(action.errorCode ? { errorCode: action.errorCode } : {}) },
    },
    next,
    n.observedAt,
    kindOf(policy),
  );
  if (change.state.scopes[marketingKey(CHANNEL)] === current.scopes[marketingKey(CHANNEL)]) return null;
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
 * A resume (user_preferences) or START/UNSTOP: the person's own act, at its time. The WhatsApp scopes
 * closed before it by that kind of stop (a resume also re-opens what an erasure closed before it) are
 * granted again (`whatsapp_optin`, the policy's notice version), in one event; scopes still granted are
 * confirmed at the opt-in's time. A resume with no prior WhatsApp entry at all grants `marketing`. Anything
 * closed at or after the opt-in's time stays closed (withdrawal always wins). Null when nothing is given back.
 */
function regrant(
  current: SubjectState,
  n: Notification & { action: { kind: 'regrant' } },
  policy: Policy,
  next: NextEvent,
  notice: { noticeHash?: string },
): Change | null {
  const { action } = n;
  const kinds = kindOf(policy);
  const at = Date.parse(n.observedAt);
  const reopens = (source: string) =>
    source === action.after || (action.via === 'user_preferences' && source === 'erasure');
  let purposes = whatsappPurposes(current).filter((p) => {
    const scope = effectiveScope(current, CHANNEL, p, kinds);
    if (scope?.status === 'granted') return Date.parse(scope.grantedAt ?? '') < at;
    return scope?.status === 'withdrawn' && reopens(scope.source) && Date.parse(scope.withdrawnAt ?? '') < at;
  });
  const withdrawnBefore = whatsappPurposes(current).some(
    (p) => effectiveScope(current, CHANNEL, p, kinds)?.source === action.after,
  );
  if (action.via === 'keyword' && !withdrawnBefore) purposes = [];
  const marketing = effectiveScope(current, CHANNEL, 'marketing', kinds);
  const untouched = !marketing || (marketing.source === 'erasure' && Date.parse(marketing.withdrawnAt ?? '') < at);
  if (purposes.length === 0 && action.via === 'user_preferences' && untouched) purposes = ['marketing'];
  if (purposes.length === 0) return null;
  const grant = (state: SubjectState, purpose: string) =>
    grantConsent(
      state,
      {
        channel: CHANNEL,
        purpose,
        source: 'whatsapp_optin',
        noticeVersion: policy.noticeVersion,
        ...notice,
        grantedAt: n.observedAt,
        data: { via: action.via },
      },
      next,
      n.observedAt,
      kinds,
    );
  return grantPurposes(current, CHANNEL, purposes, grant);
}

/**
 * What one webhook notification changes for its subject, or null when nothing (a superseded stop, an
 * opt-in with nothing to give back that is not a message, a signal about an erased subject, a number change,
 * which is not one subject's to apply). Pure.
 * `notice`: the `noticeHash` of the policy's notice version when registered (what an opt-in records).
 */
export function applyNotification(
  current: SubjectState,
  n: Notification,
  policy: Policy,
  next: NextEvent,
  now: string,
  notice: { noticeHash?: string } = {},
): Change | null {
  const { action } = n;
  if (action.kind === 'withdraw') return withdraw(current, { ...n, action }, policy, next);
  if (action.kind === 'regrant') {
    const change = regrant(current, { ...n, action }, policy, next, notice);
    if (change || action.via !== 'keyword') return change;
    // START with nothing to give back is just a message from the person.
    return applyNotification(current, { ...n, action: { kind: 'signal', type: 'inbound_message' } }, policy, next, now);
  }
  // A number change moves consents across subjects: applied by the links service, not to one subject here.
  if (action.kind === 'number_changed') return null;
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
