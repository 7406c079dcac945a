import type { NoticeSummary } from './notices.ts';
import type { Policy } from './policy.ts';
import type { SubjectState } from './subject-state.ts';
import type { Channel } from './vocabulary.ts';

// What the gate (`decide`) and its rules share: a request, a rule, what a rule finds.

/** Why the gate blocks or defers a send. */
export type ReasonCode =
  | 'no_consent'
  | 'consent_withdrawn'
  | 'consent_expired'
  | 'consent_outdated'
  | 'subject_erased'
  | 'erasure_pending'
  | 'likely_blocked'
  | 'cross_channel_cooldown'
  | 'frequency_cap'
  | 'quiet_hours';
export type WarningCode = 'block_suspected' | 'recipient_unreachable';

export interface Reason {
  code: ReasonCode;
  message: string;
  [extra: string]: unknown;
}
export interface Warning {
  code: WarningCode;
  message: string;
  [extra: string]: unknown;
}

export interface GateRequest {
  channel: Channel;
  purpose: string;
  /** Evaluation time (ISO). */
  at: string;
  /** IANA zone of the recipient, for quiet hours. */
  timezone?: string;
}

/** What one rule of the gate found: reasons to block, reasons to defer, warnings. */
export interface RuleOutcome {
  block?: Reason[];
  defer?: { reason: Reason; retryAfter: string }[];
  warnings?: Warning[];
  blockLikelihood?: number;
}

/** The policy as the gate reads it: with the registered notices (without their texts), loaded together. */
export type GatePolicy = Policy & { notices?: readonly NoticeSummary[] };

/** A gate rule: pure, reads only the state, the request and the policy. */
export type GateRule = (state: SubjectState | undefined, req: GateRequest, policy: GatePolicy) => RuleOutcome;
