import { DAY_MS } from '#shared/time.ts';
import type { GatePolicy, GateRequest, GateRule, Reason, Warning } from './gate-rule.ts';
import { signalAndPolicyRules } from './gate-rules.ts';
import { outdatingNotice } from './notices.ts';
import { kindOf, type Policy } from './policy.ts';
import { effectiveScope, type ScopeState, type SubjectState } from './subject-state.ts';

export interface GateDecision {
  decision: 'allow' | 'block' | 'defer';
  reasons: Reason[];
  warnings: Warning[];
  consent: { eventId: string; grantedAt: string; noticeVersion: string } | null;
  blockLikelihood: number;
  retryAfter: string | null;
}

/**
 * Why a granted scope no longer counts at `at`, if it does not: past its `expiresAt`, or older than the
 * policy's consentMaxAgeDays counted from the later of the grant and the person's last own action.
 */
export function expiryMessage(state: SubjectState, scope: ScopeState, policy: Policy, at: string): string | undefined {
  const atMs = Date.parse(at);
  if (scope.expiresAt && Date.parse(scope.expiresAt) <= atMs) return `the consent expired on ${scope.expiresAt}`;
  const grantedAt = scope.grantedAt as string;
  const lastContact = Math.max(Date.parse(grantedAt), Date.parse(state.lastOwnActionAt ?? grantedAt));
  if (lastContact + policy.consentMaxAgeDays * DAY_MS <= atMs) {
    return `the consent or the person's last own action (${new Date(lastContact).toISOString()}) is older than the policy's ${policy.consentMaxAgeDays} days`;
  }
  return undefined;
}

/** Consent rules: erasure first, then the scope's own status, then its age. */
export const consentRule: GateRule = (state, req, policy) => {
  if (state?.erasure?.status === 'received') {
    return {
      block: [
        {
          code: 'erasure_pending',
          message: `an erasure request (${state.erasure.requestId}) was received on ${state.erasure.receivedAt}`,
        },
      ],
    };
  }
  const scope = effectiveScope(state, req.channel, req.purpose, kindOf(policy));
  if (state?.erasure?.status === 'completed' && scope?.status !== 'granted') {
    return {
      block: [{ code: 'subject_erased', message: `the subject's data was erased on ${state.erasure.erasedAt}` }],
    };
  }
  if (!scope) {
    return { block: [{ code: 'no_consent', message: `no consent recorded for ${req.channel}/${req.purpose}` }] };
  }
  if (scope.status === 'withdrawn') {
    const what = scope.objection ? 'an objection to' : 'a withdrawal of';
    return {
      block: [
        {
          code: 'consent_withdrawn',
          message: `${what} ${req.channel}/${req.purpose} was recorded on ${scope.withdrawnAt} (${scope.source})`,
        },
      ],
    };
  }
  const expired = expiryMessage(state as SubjectState, scope, policy, req.at);
  if (expired) return { block: [{ code: 'consent_expired', message: expired }] };
  return {};
};

/**
 * A notice with `reconsentRequired`, once in force, outdates the consents for its purposes given under an
 * earlier notice (`consent_outdated`; see `outdatingNotice`).
 */
export const consentOutdatedRule: GateRule = (state, req, policy) => {
  if (!policy.notices?.length) return {};
  const scope = effectiveScope(state, req.channel, req.purpose, kindOf(policy));
  if (scope?.status !== 'granted') return {};
  const notice = outdatingNotice(scope, req.purpose, req.at, policy.notices);
  if (!notice) return {};
  const message = `the consent was given under notice ${scope.noticeVersion}; notice ${notice.version}, in force since ${notice.effectiveAt}, requires consent again for ${req.purpose}`;
  return {
    block: [{ code: 'consent_outdated', message, noticeVersion: notice.version, effectiveAt: notice.effectiveAt }],
  };
};

/** The rules applied, in order: consent first, then block signals, cross-channel cooldown, caps, quiet hours. */
export const gateRules: GateRule[] = [consentRule, consentOutdatedRule, ...signalAndPolicyRules];

/**
 * The pre-send decision: block when any rule blocks, else defer when any rule defers (retry at the
 * latest of their times), else allow. Pure: same state, request and policy, same decision.
 */
export function decide(
  state: SubjectState | undefined,
  req: GateRequest,
  policy: GatePolicy,
  rules: readonly GateRule[] = gateRules,
): GateDecision {
  const block: Reason[] = [];
  const defer: { reason: Reason; retryAfter: string }[] = [];
  const warnings: Warning[] = [];
  let blockLikelihood = 0;
  for (const rule of rules) {
    const out = rule(state, req, policy);
    block.push(...(out.block ?? []));
    defer.push(...(out.defer ?? []));
    warnings.push(...(out.warnings ?? []));
    blockLikelihood = Math.max(blockLikelihood, out.blockLikelihood ?? 0);
  }
  const scope = effectiveScope(state, req.channel, req.purpose, kindOf(policy));
  const consent =
    scope?.status === 'granted'
      ? { eventId: scope.eventId, grantedAt: scope.grantedAt as string, noticeVersion: scope.noticeVersion as string }
      : null;
  if (block.length > 0) {
    return { decision: 'block', reasons: block, warnings, consent, blockLikelihood, retryAfter: null };
  }
  if (defer.length > 0) {
    const retryAfter = defer
      .map((d) => d.retryAfter)
      .sort()
      .at(-1) as string;
    return { decision: 'defer', reasons: defer.map((d) => d.reason), warnings, consent, blockLikelihood, retryAfter };
  }
  return { decision: 'allow', reasons: [], warnings, consent, blockLikelihood, retryAfter: null };
}
