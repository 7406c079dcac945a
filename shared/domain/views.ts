import { expiryMessage } from './gate.ts';
import { blockLikelihood, channelSignals, signalChannels, unreachableSince } from './likelihood.ts';
import { kindOf, type Policy } from './policy.ts';
import { effectiveScope, entryScope, type SubjectState } from './subject-state.ts';
import type { Channel, ScopeKey } from './vocabulary.ts';

export interface ConsentView {
  channel: string;
  purpose: string;
  status: 'granted' | 'withdrawn' | 'expired';
  source: string;
  noticeVersion: string | null;
  /** SHA-256 of the registered notice the consent was given under (null: the version was not registered). */
  noticeHash: string | null;
  grantedAt: string | null;
  withdrawnAt: string | null;
  expiresAt: string | null;
  eventId: string;
  objection?: boolean;
}

/** Each scope of a subject as it stands at `now` (`*` entries are objections covering every channel/purpose). */
export function consentViews(state: SubjectState, policy: Policy, now: string): ConsentView[] {
  return (Object.keys(state.scopes) as ScopeKey[]).sort().map((key) => {
    const [channel, purpose] = key.split('|');
    const own = state.scopes[key]!;
    const wildcard = channel === '*' || purpose === '*' || purpose.startsWith('@');
    const decisive =
      (wildcard ? undefined : effectiveScope(state, channel as Channel, purpose, kindOf(policy))) ?? entryScope(own);
    const status =
      decisive.status === 'withdrawn'
        ? 'withdrawn'
        : expiryMessage(state, decisive, policy, now)
          ? 'expired'
          : 'granted';
    return {
      channel,
      purpose,
      status,
      source: decisive.source,
      noticeVersion: own.noticeVersion ?? null,
      noticeHash: own.noticeHash ?? null,
      grantedAt: own.grantedAt ?? null,
      withdrawnAt: decisive.status === 'withdrawn' ? (decisive.withdrawnAt ?? null) : null,
      expiresAt: own.expiresAt ?? null,
      eventId: decisive.eventId,
      ...(decisive.objection ? { objection: true } : {}),
    };
  });
}

/**
 * Each channel's block likelihood and level at `now`, with the contributing clues: every channel that has
 * signals or a consent scope (a channel with consent and no signal shows 0 / none).
 */
export function signalViews(state: SubjectState, policy: Policy, now: string) {
  const scoped = Object.keys(state.scopes)
    .map((key) => key.split('|')[0])
    .filter((c): c is Channel => c !== '*');
  const channels = [...new Set([...signalChannels(state), ...scoped])].sort();
  return Object.fromEntries(
    channels.map((channel) => {
      const summary = channelSignals(state, channel);
      const { blockLikelihood: likelihood, level, signals } = blockLikelihood(summary, policy, now);
      return [
        channel,
        {
          blockLikelihood: likelihood,
          level,
          signals,
          lastEvidenceAgainstBlockAt: summary?.clearedAt ? new Date(summary.clearedAt * 1000).toISOString() : null,
          unreachableSince: unreachableSince(summary) ?? null,
        },
      ];
    }),
  );
}

/** The body of `POST /v1/subjects/lookup`. */
export function lookupView(state: SubjectState, policy: Policy, now: string) {
  return {
    subjectKey: state.subjectKey,
    consents: consentViews(state, policy, now),
    signals: signalViews(state, policy, now),
    erasure: state.erasure
      ? { requestId: state.erasure.requestId, status: state.erasure.status, erasedAt: state.erasure.erasedAt ?? null }
      : null,
  };
}
