import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { tombstone } from '#domain/erasure.ts';
import { type Policy, PolicySchema } from '#domain/policy.ts';
import {
  activeSince,
  detailsExpired,
  hasLiveConsent,
  needsFirstRecorded,
  retentionDecision,
} from '#domain/retention.ts';
import { emptyState, grantConsent, type SubjectState, withdrawConsent } from '#domain/subject-state.ts';
import { DAY_MS } from '#shared/time.ts';

const NOW = '2030-06-01T00:00:00.000Z';
const policy = PolicySchema.parse({});
const daysAgo = (days: number) => new Date(Date.parse(NOW) - days * DAY_MS).toISOString();
let seq = 0;
const next = () => ({ seq: ++seq, eventId: `ev${seq}` });

const grant = (state: SubjectState, grantedAt: string, source = 'web_form', extra: object = {}) =>
  grantConsent(
    state,
    { channel: 'whatsapp', purpose: 'marketing', source, noticeVersion: 'v1', grantedAt, ...extra },
    next(),
    grantedAt,
  ).state;
const withdraw = (state: SubjectState, at: string) =>
  withdrawConsent(state, { channel: 'whatsapp', purpose: 'marketing', source: 'keyword', at }, next(), at).state;
const subject = (extra: Partial<SubjectState> = {}): SubjectState => ({ ...emptyState('sk'), ...extra });

describe('policy retention', () => {
  it('defaults to 3 years of inactivity, 180 days of signals and 5 years of proof', () => {
    expect(policy.retention).toEqual({ inactiveSubjectDays: 1095, signalDays: 180, proofDays: 1825 });
    expect(PolicySchema.parse({ retention: { signalDays: 30 } }).retention).toEqual({
      inactiveSubjectDays: 1095,
      signalDays: 30,
      proofDays: 1825,
    });
  });

  it('bounds each value and allows proofDays 0 (only the tombstone)', () => {
    expect(PolicySchema.parse({ retention: { proofDays: 0 } }).retention.proofDays).toBe(0);
    for (const retention of [
      { inactiveSubjectDays: 0 },
      { inactiveSubjectDays: 1.5 },
      { signalDays: 0 },
      { proofDays: -1 },
      { proofDays: 40_000 },
      { other: 1 },
    ]) {
      const parsed = PolicySchema.safeParse({ retention });
      expect(parsed.success, JSON.stringify(retention)).toBe(false);
      expect(parsed.error?.issues[0].path[0]).toBe('retention');
    }
  });
});

describe('inactive subjects', () => {
  it('purges a subject whose last own action is older than inactiveSubjectDays', () => {
    expect(retentionDecision(subject({ lastOwnActionAt: daysAgo(1096) }), policy, NOW)).toBe('inactive');
    expect(retentionDecision(subject({ lastOwnActionAt: daysAgo(1094) }), policy, NOW)).toBe('keep');
    // Exactly inactiveSubjectDays ago: the period is over.
    expect(retentionDecision(subject({ lastOwnActionAt: daysAgo(1095) }), policy, NOW)).toBe('inactive');
  });

  it("counts a consent's grantedAt as activity, whoever recorded it", () => {
    const imported = grant(subject(), daysAgo(400), 'import');
    expect(activeSince(imported)).toBe(daysAgo(400));
    expect(retentionDecision(imported, policy, NOW)).toBe('keep');
    // A recent grant keeps a subject whose last own action is old.
    const recent = grant(subject({ lastOwnActionAt: daysAgo(2000) }), daysAgo(10), 'api');
    expect(retentionDecision(recent, policy, NOW)).toBe('keep');
  });

  it('purges a subject whose only consent was given, then withdrawn, long ago', () => {
    const state = withdraw(grant(subject(), daysAgo(1500)), daysAgo(1400));
    expect(hasLiveConsent(state, policy, NOW)).toBe(false);
    expect(retentionDecision(state, policy, NOW)).toBe('inactive');
  });

  it('keeps a subject with a consent the gate still honours, however old', () => {
    const long = PolicySchema.parse({ consentMaxAgeDays: 3650 });
    const state = grant(subject(), daysAgo(1500));
    expect(hasLiveConsent(state, long, NOW)).toBe(true);
    expect(retentionDecision(state, long, NOW)).toBe('keep');
    // Under the default policy the same consent lapsed after 1095 days: inactive.
    expect(hasLiveConsent(state, policy, NOW)).toBe(false);
    expect(retentionDecision(state, policy, NOW)).toBe('inactive');
    // An explicit expiry in the past does not keep it either.
    const expired = grant(subject(), daysAgo(1500), 'web_form', { expiresAt: daysAgo(100) });
    expect(retentionDecision(expired, long, NOW)).toBe('inactive');
  });

  it('dates a subject with no own action and no consent from its first recording', () => {
    const signalsOnly = subject({ signals: { whatsapp: {} } });
    expect(needsFirstRecorded(signalsOnly)).toBe(true);
    expect(retentionDecision(signalsOnly, policy, NOW, daysAgo(1200))).toBe('inactive');
    expect(retentionDecision(signalsOnly, policy, NOW, daysAgo(30))).toBe('keep');
    // Unknown age: kept.
    expect(retentionDecision(signalsOnly, policy, NOW)).toBe('keep');
    // A withdrawal-only subject (an objection) too: purging leaves the tombstone, which still blocks.
    const objection = withdraw(subject(), daysAgo(1200));
    expect(needsFirstRecorded(objection)).toBe(true);
    expect(retentionDecision(objection, policy, NOW, daysAgo(1200))).toBe('inactive');
    expect(needsFirstRecorded(subject({ lastOwnActionAt: daysAgo(1) }))).toBe(false);
  });

  it('leaves a subject with a pending erasure to its request', () => {
    const pending = subject({
      lastOwnActionAt: daysAgo(3000),
      erasure: { requestId: 'er_1', status: 'received', receivedAt: daysAgo(3) },
    });
    expect(needsFirstRecorded(pending)).toBe(false);
    expect(retentionDecision(pending, policy, NOW, daysAgo(3000))).toBe('keep');
  });

  it('follows the policy: a shorter period purges sooner', () => {
    const short: Policy = PolicySchema.parse({ retention: { inactiveSubjectDays: 365 } });
    const state = subject({ lastOwnActionAt: daysAgo(400) });
    expect(retentionDecision(state, policy, NOW)).toBe('keep');
    expect(retentionDecision(state, short, NOW)).toBe('inactive');
  });

  it('never purges a subject active within the period (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1094 }), fc.integer({ min: 0, max: 5000 }), (own, granted) => {
        const state = grant(subject({ lastOwnActionAt: daysAgo(own) }), daysAgo(granted), 'import');
        return retentionDecision(state, policy, NOW, daysAgo(9000)) === 'keep';
      }),
    );
  });
});

describe('proof of erased subjects', () => {
  const erased = (erasedAt: string, kept?: { reason: 'request' | 'retention'; proofUntil?: string }) =>
    tombstone(subject({ lastOwnActionAt: daysAgo(5000) }), 'er_1', erasedAt, kept).state;

  it('purges the proof once erasedAt + proofDays has passed, then never again', () => {
    expect(retentionDecision(erased(daysAgo(1826)), policy, NOW)).toBe('proof_expired');
    expect(retentionDecision(erased(daysAgo(1824)), policy, NOW)).toBe('keep');
    const done = erased(daysAgo(1826));
    done.erasure = { ...(done.erasure as NonNullable<SubjectState['erasure']>), proofPurgedAt: daysAgo(1) };
    expect(retentionDecision(done, policy, NOW)).toBe('keep');
  });

  it('counts proofDays of the current policy; 0 keeps only the tombstone', () => {
    const state = erased(daysAgo(400), { reason: 'request', proofUntil: daysAgo(-1425) });
    expect(retentionDecision(state, policy, NOW)).toBe('keep');
    const shorter = PolicySchema.parse({ retention: { proofDays: 365 } });
    expect(retentionDecision(state, shorter, NOW)).toBe('proof_expired');
    const zero = PolicySchema.parse({ retention: { proofDays: 0 } });
    expect(retentionDecision(erased(daysAgo(0)), zero, NOW)).toBe('proof_expired');
  });

  it('never purges an erased subject as inactive: the tombstone stays', () => {
    expect(needsFirstRecorded(erased(daysAgo(10)))).toBe(false);
    expect(retentionDecision(erased(daysAgo(10)), policy, NOW, daysAgo(9000))).toBe('keep');
  });
});

describe('signal and send details', () => {
  it('expire after signalDays, by event time, for signals and sends only', () => {
    expect(detailsExpired({ type: 'signal.recorded', at: daysAgo(181) }, policy, NOW)).toBe(true);
    expect(detailsExpired({ type: 'send.recorded', at: daysAgo(180) }, policy, NOW)).toBe(true);
    expect(detailsExpired({ type: 'signal.recorded', at: daysAgo(179) }, policy, NOW)).toBe(false);
    expect(detailsExpired({ type: 'consent.granted', at: daysAgo(4000) }, policy, NOW)).toBe(false);
    expect(detailsExpired({ type: 'consent.withdrawn', at: daysAgo(4000) }, policy, NOW)).toBe(false);
    // Times without milliseconds compare by instant, not as text.
    expect(detailsExpired({ type: 'signal.recorded', at: '2029-12-03T00:00:00Z' }, policy, NOW)).toBe(true);
  });
});
