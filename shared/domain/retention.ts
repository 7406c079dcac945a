import { DAY_MS } from '#shared/time.ts';
import { proofUntil } from './erasure.ts';
import { expiryMessage } from './gate.ts';
import { kindOf, type Policy } from './policy.ts';
import { effectiveScope, latest, type SubjectState } from './subject-state.ts';
import type { Channel, EventType, ScopeKey } from './vocabulary.ts';

/**
 * Retention rules (docs/dpo.md, "Retention"), pure: what the daily job does with one subject and one
 * event, for the tenant's policy at `now`.
 *
 * A subject is **inactive** — and purged like an erasure, reason `retention` — when, for
 * `inactiveSubjectDays`, the person did nothing themself and gave no consent:
 * - its activity time is the later of `lastOwnActionAt` (a reply, a preference-centre visit, an own-act
 *   grant) and the `grantedAt` of every consent recorded for it (whoever recorded it: a consent is the
 *   person's act, dated when they gave it); a subject with neither (only signals, sends or withdrawals)
 *   counts from when it was first recorded;
 * - a consent the gate still honours at `now` (granted, not withdrawn, not expired: see `expiryMessage`)
 *   keeps the subject whatever its age, so retention never drops a consent the gate would act on;
 * - a subject whose erasure is pending is left to its request; an erased one only has its proof purged.
 * Purging leaves the erasure tombstone, so an inactive person is never contacted or imported again.
 *
 * An erased subject's **proof** (the public part of its consent, withdrawal and erasure events) is kept
 * until `erasedAt + proofDays` of the current policy, then deleted once (`proofPurgedAt`); the tombstone
 * stays.
 *
 * **Details** (the personal part) of `signal.recorded` and `send.recorded` events older than `signalDays`
 * (by event time) are deleted; the state's bounded summaries and the events' public parts stay, and the
 * chain still verifies (its hash commits to the details' salted digest).
 */
export type RetentionDecision = 'keep' | 'inactive' | 'proof_expired';

/** Events whose details retention deletes after `signalDays`. */
export const REDACTED_TYPES: readonly EventType[] = ['signal.recorded', 'send.recorded'];

const concreteScopes = (state: SubjectState) =>
  (Object.keys(state.scopes) as ScopeKey[])
    .map((key) => key.split('|') as [string, string])
    .filter(([channel, purpose]) => channel !== '*' && purpose !== '*' && !purpose.startsWith('@'));

/**
 * When the subject was last active: the later of the person's last own action and the latest consent
 * given; undefined when it has neither (then only its first recording time can tell).
 */
export function activeSince(state: SubjectState): string | undefined {
  let since = state.lastOwnActionAt;
  for (const entry of Object.values(state.scopes)) since = latest(since, entry?.grantedAt);
  return since;
}

/** True when one of the subject's consents is still honoured by the gate at `now`. */
export function hasLiveConsent(state: SubjectState, policy: Policy, now: string): boolean {
  const kinds = kindOf(policy);
  return concreteScopes(state).some(([channel, purpose]) => {
    const scope = effectiveScope(state, channel as Channel, purpose, kinds);
    return scope?.status === 'granted' && scope.grantedAt !== undefined && !expiryMessage(state, scope, policy, now);
  });
}

/** Whether the subject needs its first recording time to be decided (no own action, no consent). */
export const needsFirstRecorded = (state: SubjectState) => !state.erasure && activeSince(state) === undefined;

/**
 * What retention does with one subject at `now`. `firstRecordedAt` (when its first event was recorded) is
 * needed only when {@link needsFirstRecorded}; without it such a subject is kept (its age is unknown).
 */
export function retentionDecision(
  state: SubjectState,
  policy: Policy,
  now: string,
  firstRecordedAt?: string,
): RetentionDecision {
  const nowMs = Date.parse(now);
  const { inactiveSubjectDays, proofDays } = policy.retention;
  const erasure = state.erasure;
  if (erasure) {
    if (erasure.status !== 'completed' || !erasure.erasedAt || erasure.proofPurgedAt) return 'keep';
    return Date.parse(proofUntil(erasure.erasedAt, proofDays)) <= nowMs ? 'proof_expired' : 'keep';
  }
  const since = activeSince(state) ?? firstRecordedAt;
  if (since === undefined || Date.parse(since) + inactiveSubjectDays * DAY_MS > nowMs) return 'keep';
  return hasLiveConsent(state, policy, now) ? 'keep' : 'inactive';
}

/** True when retention deletes this event's details at `now`: a signal or send older than `signalDays`. */
export function detailsExpired(event: { type: string; at: string }, policy: Policy, now: string): boolean {
  return (
    (REDACTED_TYPES as readonly string[]).includes(event.type) &&
    Date.parse(event.at) + policy.retention.signalDays * DAY_MS <= Date.parse(now)
  );
}
