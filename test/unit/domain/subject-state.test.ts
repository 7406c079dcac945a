import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { dueBy, erasureStatus, requestErasure, tombstone } from '#domain/erasure.ts';
import { ErasurePending, FreshConsentRequired, StaleConsent } from '#domain/errors.ts';
import { decide } from '#domain/gate.ts';
import { defaultPolicy } from '#domain/policy.ts';
import {
  type Change,
  effectiveScope,
  emptyState,
  grantConsent,
  type SubjectState,
  withdrawConsent,
} from '#domain/subject-state.ts';
import { CHANNELS, type Channel } from '#domain/vocabulary.ts';

const NOW = '2026-11-24T10:00:00.000Z';
const LATER = '2026-11-24T11:00:00.000Z';
const policy = defaultPolicy();

/** Applies changes in order, as the store would (seq and version advance). */
function run(...steps: ((s: SubjectState, next: { seq: number; eventId: string }) => Change)[]): SubjectState {
  let state = emptyState('sk');
  for (const step of steps) {
    const next = { seq: state.seq + 1, eventId: `ev${state.seq + 1}` };
    state = { ...step(state, next).state, seq: next.seq, version: state.version + 1 };
  }
  return state;
}

const grant =
  (channel: Channel = 'whatsapp', extra: Partial<Parameters<typeof grantConsent>[1]> = {}) =>
  (s: SubjectState, next: { seq: number; eventId: string }) =>
    grantConsent(
      s,
      { channel, purpose: 'marketing', source: 'web_form', noticeVersion: 'v1', grantedAt: NOW, data: {}, ...extra },
      next,
      NOW,
    );
const withdraw = (channel?: Channel, purpose?: string) => (s: SubjectState, next: { seq: number; eventId: string }) =>
  withdrawConsent(s, { channel, purpose, source: 'api', data: {} }, next, NOW);

const check = (state: SubjectState | undefined, channel: Channel = 'whatsapp', at = NOW) =>
  decide(state, { channel, purpose: 'marketing', at }, policy);

describe('the gate on consent', () => {
  it('blocks an unknown subject with no_consent', () => {
    expect(check(undefined)).toMatchObject({ decision: 'block', reasons: [{ code: 'no_consent' }], consent: null });
  });

  it('allows a granted scope and names the consent', () => {
    const d = check(run(grant()));
    expect(d.decision).toBe('allow');
    expect(d.consent).toEqual({ eventId: 'ev1', grantedAt: NOW, noticeVersion: 'v1' });
  });

  it('blocks a withdrawn scope, and only that scope', () => {
    const state = run(grant('whatsapp'), grant('sms'), withdraw('whatsapp', 'marketing'));
    expect(check(state, 'whatsapp').reasons[0].code).toBe('consent_withdrawn');
    expect(check(state, 'sms').decision).toBe('allow');
  });

  it('an objection to all channels blocks every channel, now and later', () => {
    const state = run(grant('whatsapp'), grant('sms'), withdraw());
    for (const channel of ['whatsapp', 'sms', 'voice'] as Channel[]) {
      expect(check(state, channel).reasons[0].code).toBe('consent_withdrawn');
    }
  });

  it('a fresh consent after an objection grants that scope again', () => {
    const state = run(grant('whatsapp'), withdraw(), grant('whatsapp', { grantedAt: LATER }));
    expect(check(state, 'whatsapp').decision).toBe('allow');
    expect(check(state, 'sms').reasons[0].code).toBe('consent_withdrawn');
  });

  it('withdrawal always wins over earlier grants (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom(...CHANNELS), { maxLength: 6 }),
        fc.option(fc.constantFrom(...CHANNELS), { nil: undefined }),
        (granted, withdrawn) => {
          const state = run(...granted.map((c) => grant(c)), withdraw(withdrawn));
          for (const channel of CHANNELS) {
            const d = check(state, channel);
            if (withdrawn === undefined || withdrawn === channel) expect(d.reasons[0]?.code).toBe('consent_withdrawn');
            else expect(d.decision).toBe(granted.includes(channel) ? 'allow' : 'block');
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('records an objection when nothing was granted', () => {
    const state = emptyState('sk');
    const change = withdrawConsent(state, { channel: 'sms', source: 'api', data: {} }, { seq: 1, eventId: 'e1' }, NOW);
    expect(change.state.scopes['sms|*']).toMatchObject({ withdrawnAt: NOW, objection: true });
    expect(change.withdrawn).toEqual([{ channel: 'sms', purpose: '*' }]);
    expect(change.event).toMatchObject({ type: 'consent.withdrawn', data: { objection: true } });
  });

  it('lists the scopes a withdrawal covers', () => {
    const state = run(grant('whatsapp'), grant('sms'), grant('email'));
    const change = withdrawConsent(
      state,
      { purpose: 'marketing', source: 'api', data: {} },
      { seq: 4, eventId: 'e4' },
      NOW,
    );
    expect(change.withdrawn).toEqual([
      { channel: 'whatsapp', purpose: 'marketing' },
      { channel: 'sms', purpose: 'marketing' },
      { channel: 'email', purpose: 'marketing' },
      { channel: '*', purpose: 'marketing' },
    ]);
  });

  it('refuses an import over a withdrawal, an objection or an erasure', () => {
    const imp = grant('whatsapp', { source: 'import' });
    expect(() => run(grant(), withdraw('whatsapp', 'marketing'), imp)).toThrow(FreshConsentRequired);
    expect(() => run(withdraw(), imp)).toThrow(FreshConsentRequired);
    expect(() => run((s) => requestErasure(s, 'er1', NOW), imp)).toThrow(ErasurePending);
    expect(() =>
      run((s) => tombstone(s, 'er1', NOW), grant('whatsapp', { source: 'import', grantedAt: LATER })),
    ).toThrow(FreshConsentRequired);
    expect(() => run(imp)).not.toThrow();
    expect(() =>
      run(grant(), withdraw('whatsapp', 'marketing'), grant('whatsapp', { grantedAt: LATER })),
    ).not.toThrow();
  });

  it('expires a consent at expiresAt', () => {
    const state = run(grant('whatsapp', { expiresAt: '2026-12-01T00:00:00.000Z' }));
    expect(check(state, 'whatsapp', '2026-11-30T23:59:59.000Z').decision).toBe('allow');
    expect(check(state, 'whatsapp', '2026-12-01T00:00:00.000Z').reasons[0].code).toBe('consent_expired');
  });

  it('expires a consent older than consentMaxAgeDays since the last own action', () => {
    const old = '2023-01-01T00:00:00.000Z';
    const state = run(grant('whatsapp', { grantedAt: old }));
    expect(check(state, 'whatsapp', '2026-01-01T00:00:00.000Z').reasons[0].code).toBe('consent_expired');
    const refreshed = { ...state, lastOwnActionAt: '2025-06-01T00:00:00.000Z' };
    expect(check(refreshed, 'whatsapp', '2026-01-01T00:00:00.000Z').decision).toBe('allow');
  });

  it('an import does not count as the person’s own action', () => {
    const state = run(grant('whatsapp', { source: 'import', grantedAt: '2020-01-01T00:00:00.000Z' }));
    expect(state.lastOwnActionAt).toBeUndefined();
  });
});

describe('erasure', () => {
  it('blocks with erasure_pending from receipt, then subject_erased', () => {
    const pending = run(grant(), (s) => requestErasure(s, 'er1', NOW));
    expect(check(pending).reasons).toEqual([expect.objectContaining({ code: 'erasure_pending' })]);
    const erased = run(
      grant(),
      (s) => requestErasure(s, 'er1', NOW),
      (s) => tombstone(s, 'er1', NOW),
    );
    expect(erased.scopes).toEqual({});
    expect(check(erased).reasons[0].code).toBe('subject_erased');
  });

  it('is due one calendar month after receipt, clamped to the month’s end', () => {
    expect(dueBy('2026-11-24T10:00:00.000Z')).toBe('2026-12-24T10:00:00.000Z');
    expect(dueBy('2026-01-31T08:00:00.000Z')).toBe('2026-02-28T08:00:00.000Z');
    expect(dueBy('2028-01-31T08:00:00.000Z')).toBe('2028-02-29T08:00:00.000Z');
    expect(dueBy('2026-12-15T00:00:00.000Z')).toBe('2027-01-15T00:00:00.000Z');
  });

  it('is overdue when past due and not completed', () => {
    const due = '2026-12-24T10:00:00.000Z';
    expect(erasureStatus({ status: 'received', dueBy: due }, Date.parse('2026-12-25T00:00:00Z'))).toBe('overdue');
    expect(erasureStatus({ status: 'received', dueBy: due }, Date.parse('2026-12-01T00:00:00Z'))).toBe('received');
    expect(erasureStatus({ status: 'completed', dueBy: due }, Date.parse('2027-01-01T00:00:00Z'))).toBe('completed');
  });
});

describe('consent truth: event time decides, withdrawal always wins', () => {
  const at = (minute: number) => new Date(Date.parse(NOW) + minute * 60_000).toISOString();
  const grantAt = (minute: number, source = 'web_form', channel: Channel = 'whatsapp') =>
    grant(channel, { source, grantedAt: at(minute) });
  const withdrawAt =
    (minute: number, channel?: Channel, purpose?: string) =>
    (s: SubjectState, next: { seq: number; eventId: string }) =>
      withdrawConsent(s, { channel, purpose, source: 'api', at: at(minute), data: {} }, next, at(60));

  it('refuses to re-open a withdrawn scope with an old grant re-posted (stale_consent) or any api/import grant', () => {
    const closed = run(grantAt(0), withdrawAt(10, 'whatsapp', 'marketing'));
    expect(() => run(grantAt(0), withdrawAt(10, 'whatsapp', 'marketing'), grantAt(0))).toThrow(StaleConsent);
    expect(() => run(grantAt(0), withdrawAt(10, 'whatsapp', 'marketing'), grantAt(10))).toThrow(StaleConsent);
    expect(() => run(grantAt(0), withdrawAt(10), grantAt(20, 'api'))).toThrow(FreshConsentRequired);
    expect(() => run(grantAt(0), withdrawAt(10), grantAt(20, 'import'))).toThrow(FreshConsentRequired);
    expect(check(closed).reasons[0].code).toBe('consent_withdrawn');
    expect(check(run(grantAt(0), withdrawAt(10), grantAt(20))).decision).toBe('allow');
  });

  it('a withdrawal dated before the person’s own later grant does not close it, whatever the arrival order', () => {
    const state = run(grantAt(30), withdrawAt(10));
    expect(check(state, 'whatsapp', at(60)).decision).toBe('allow');
    // …but an import after a withdrawal never re-opens, even when it arrived first.
    const imported = run(grantAt(30, 'import'), withdrawAt(10));
    expect(check(imported, 'whatsapp', at(60)).reasons[0].code).toBe('consent_withdrawn');
  });

  it('a grant after the person re-opened the scope is accepted, from any source', () => {
    expect(() => run(grantAt(0), withdrawAt(10), grantAt(20), grantAt(30, 'import'))).not.toThrow();
  });

  it('a marketing-only stop leaves service purposes open', () => {
    const kinds = (p: string) => (p === 'order-updates' ? 'service' : 'marketing');
    const grantPurpose = (purpose: string) => (s: SubjectState, next: { seq: number; eventId: string }) =>
      grantConsent(
        s,
        { channel: 'whatsapp', purpose, source: 'web_form', noticeVersion: 'v1', grantedAt: NOW },
        next,
        NOW,
        kinds,
      );
    const stop = (s: SubjectState, next: { seq: number; eventId: string }) =>
      withdrawConsent(
        s,
        { channel: 'whatsapp', onlyKind: 'marketing', source: 'keyword', at: LATER },
        next,
        LATER,
        kinds,
      );
    const state = run(grantPurpose('marketing'), grantPurpose('order-updates'), stop);
    expect(effectiveScope(state, 'whatsapp', 'marketing', kinds)?.status).toBe('withdrawn');
    expect(effectiveScope(state, 'whatsapp', 'order-updates', kinds)?.status).toBe('granted');
    expect(effectiveScope(state, 'whatsapp', 'newsletter', kinds)?.status).toBe('withdrawn');
  });

  type Step =
    | { kind: 'grant'; t: number; own: boolean; channel: Channel }
    | { kind: 'withdraw' | 'objection'; t: number; channel?: Channel }
    | { kind: 'erasure'; t: number };
  const CH: Channel[] = ['whatsapp', 'sms'];
  const stepArb: fc.Arbitrary<Step> = fc.oneof(
    fc.record({
      kind: fc.constant('grant' as const),
      t: fc.nat(20),
      own: fc.boolean(),
      channel: fc.constantFrom(...CH),
    }),
    fc.record({
      kind: fc.constantFrom('withdraw' as const, 'objection' as const),
      t: fc.nat(20),
      channel: fc.option(fc.constantFrom(...CH), { nil: undefined }),
    }),
    fc.record({ kind: fc.constant('erasure' as const), t: fc.nat(20) }),
  );
  const apply = (state: SubjectState, step: Step, seq: number): SubjectState => {
    const next = { seq, eventId: `ev${seq}` };
    const time = at(step.t);
    if (step.kind === 'grant') {
      const source = step.own ? 'web_form' : step.t % 2 ? 'api' : 'import';
      return grantConsent(
        state,
        { channel: step.channel, purpose: 'marketing', source, noticeVersion: 'v', grantedAt: time },
        next,
        at(99),
      ).state;
    }
    if (step.kind === 'erasure') return tombstone(state, `er${seq}`, time).state;
    const purpose = step.kind === 'objection' ? undefined : 'marketing';
    return withdrawConsent(state, { channel: step.channel, purpose, source: 'api', at: time }, next, at(99)).state;
  };
  /** Applies steps in arrival order; a refused grant (409) stores nothing. */
  const arrive = (steps: Step[]) => {
    let state = emptyState('sk');
    const accepted: Step[] = [];
    steps.forEach((step, i) => {
      try {
        state = apply(state, step, i + 1);
        accepted.push(step);
      } catch (error) {
        if (!(error instanceof FreshConsentRequired || error instanceof StaleConsent)) throw error;
      }
    });
    return { state, accepted };
  };
  /** The reference: the accepted events in time order (a closing wins a tie), folded one by one. */
  const reference = (accepted: Step[], channel: Channel) => {
    const ordered = [...accepted].sort(
      (a, b) => a.t - b.t || (a.kind === 'grant' ? -1 : 0) - (b.kind === 'grant' ? -1 : 0),
    );
    let open = false;
    let closed = false;
    for (const step of ordered) {
      if (step.kind === 'grant') {
        if (step.channel === channel && (!closed || step.own)) [open, closed] = [true, false];
      } else if (step.kind === 'erasure' || step.channel === undefined || step.channel === channel) {
        [open, closed] = [false, true];
      }
    }
    return open ? 'granted' : undefined;
  };
  const statusOf = (state: SubjectState, channel: Channel) =>
    effectiveScope(state, channel, 'marketing')?.status === 'granted' ? 'granted' : undefined;

  it('the state equals the accepted events applied in time order, whatever the arrival order (property)', () => {
    fc.assert(
      fc.property(fc.array(stepArb, { maxLength: 12 }), (steps) => {
        const { state, accepted } = arrive(steps);
        const inTimeOrder = arrive([...accepted].sort((a, b) => a.t - b.t)).state;
        for (const channel of CH) {
          expect(statusOf(state, channel)).toBe(reference(accepted, channel));
          expect(statusOf(inTimeOrder, channel)).toBe(statusOf(state, channel));
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('no grant re-opens a scope closed by a later or equal-time closing event (property)', () => {
    fc.assert(
      fc.property(fc.array(stepArb, { maxLength: 12 }), (steps) => {
        const { state, accepted } = arrive(steps);
        for (const channel of CH) {
          if (statusOf(state, channel) !== 'granted') continue;
          const closings = accepted.filter(
            (s) =>
              s.kind === 'erasure' ||
              ((s.kind === 'withdraw' || s.kind === 'objection') && (s.channel ?? channel) === channel),
          );
          const lastClosing = Math.max(-1, ...closings.map((s) => s.t));
          const reopener = accepted.some(
            (s) => s.kind === 'grant' && s.channel === channel && s.t > lastClosing && (s.own || closings.length === 0),
          );
          expect(reopener).toBe(true);
        }
      }),
      { numRuns: 2000 },
    );
  });
});
