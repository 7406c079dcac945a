import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TooManyScopes } from '#domain/errors.ts';
import {
  type Change,
  effectiveScope,
  emptyState,
  grantConsent,
  grantedScopeCount,
  MAX_CLOSING_ONLY_SCOPES,
  MAX_GRANTED_SCOPES,
  type SubjectState,
  withdrawConsent,
} from '#domain/subject-state.ts';
import { CHANNELS, type Channel } from '#domain/vocabulary.ts';

type Step = (s: SubjectState, next: { seq: number; eventId: string }) => Change;
const T0 = Date.parse('2026-11-01T00:00:00Z');
const at = (minute: number) => new Date(T0 + minute * 60_000).toISOString();

function apply(state: SubjectState, step: Step): SubjectState {
  const next = { seq: state.seq + 1, eventId: `ev${state.seq + 1}` };
  return { ...step(state, next).state, seq: next.seq, version: state.version + 1 };
}
const run = (...steps: Step[]) => steps.reduce(apply, emptyState('sk'));

const grant =
  (channel: Channel, purpose: string, minute = 0, source = 'web_form'): Step =>
  (s, next) =>
    grantConsent(s, { channel, purpose, source, noticeVersion: 'v1', grantedAt: at(minute) }, next, at(minute));
const withdraw =
  (channel: Channel | undefined, purpose: string | undefined, minute: number): Step =>
  (s, next) =>
    withdrawConsent(s, { channel, purpose, source: 'api', at: at(minute) }, next, at(minute));

/** Keys the state can hold whatever happens: the two bounds, the patterns (`*|*`, `c|*`, marketing stops), the fold. */
const MAX_KEYS = MAX_GRANTED_SCOPES + MAX_CLOSING_ONLY_SCOPES + 2 * CHANNELS.length + 3;

describe('a subject holds a bounded number of scopes', () => {
  it(`grants up to ${MAX_GRANTED_SCOPES} scopes, then refuses a new one with too_many_scopes; re-grants still work`, () => {
    expect(MAX_GRANTED_SCOPES).toBeGreaterThanOrEqual(10);
    const full = run(...Array.from({ length: MAX_GRANTED_SCOPES }, (_, i) => grant('email', `p${i}`)));
    expect(grantedScopeCount(full)).toBe(MAX_GRANTED_SCOPES);
    expect(() => apply(full, grant('email', 'one-more', 1))).toThrow(TooManyScopes);
    expect(() => apply(full, grant('sms', 'p0', 1))).toThrow(TooManyScopes);
    const regranted = apply(full, grant('email', 'p3', 5));
    expect(regranted.scopes['email|p3']?.grantedAt).toBe(at(5));
    // Withdrawing frees nothing (the entry stays as proof), and is never refused.
    const withdrawn = apply(full, withdraw('email', 'p0', 10));
    expect(effectiveScope(withdrawn, 'email', 'p0')?.status).toBe('withdrawn');
    expect(() => apply(withdrawn, grant('email', 'another', 11))).toThrow(TooManyScopes);
  });

  it('records every objection, however many, without growing the state past its bound', () => {
    let state = run(grant('whatsapp', 'marketing'), grant('email', 'newsletter'));
    for (let i = 0; i < 60; i++) state = apply(state, withdraw(CHANNELS[i % CHANNELS.length], `objected-${i}`, i + 1));
    expect(Object.keys(state.scopes).length).toBeLessThanOrEqual(MAX_KEYS);
    for (let i = 0; i < 60; i++) {
      const scope = effectiveScope(state, CHANNELS[i % CHANNELS.length], `objected-${i}`);
      expect(scope?.status, `objected-${i}`).toBe('withdrawn');
    }
    // The person's own grants are untouched by objections to other scopes.
    expect(effectiveScope(state, 'whatsapp', 'marketing')?.status).toBe('granted');
    expect(effectiveScope(state, 'email', 'newsletter')?.status).toBe('granted');
    // A folded objection still refuses a grant that is not the person's own fresh act.
    expect(() => apply(state, grant('sms', 'objected-59', 100, 'import'))).toThrow();
  });

  it('a withdrawal of a purpose on every channel past the bound closes its granted scopes too', () => {
    let state = run(grant('whatsapp', 'promo'), grant('email', 'promo'), grant('sms', 'other'));
    for (let i = 0; i < MAX_CLOSING_ONLY_SCOPES; i++) state = apply(state, withdraw('push', `x${i}`, i + 1));
    state = apply(state, withdraw(undefined, 'promo', 50));
    expect(state.scopes['*|promo']).toBeUndefined(); // folded, not a new entry
    expect(effectiveScope(state, 'whatsapp', 'promo')?.status).toBe('withdrawn');
    expect(effectiveScope(state, 'email', 'promo')?.status).toBe('withdrawn');
    expect(effectiveScope(state, 'voice', 'promo')?.status).toBe('withdrawn');
    expect(effectiveScope(state, 'sms', 'other')?.status).toBe('granted');
  });

  it('property: any sequence of grants and withdrawals keeps the state bounded; a withdrawal always closes', () => {
    const step = fc.record({
      kind: fc.constantFrom('grant', 'withdraw', 'withdraw-all-channels'),
      channel: fc.constantFrom(...CHANNELS),
      purpose: fc.integer({ min: 0, max: 40 }).map((n) => `p${n}`),
    });
    fc.assert(
      fc.property(fc.array(step, { maxLength: 120 }), (steps) => {
        let state = emptyState('sk');
        steps.forEach((s, minute) => {
          if (s.kind === 'grant') {
            try {
              state = apply(state, grant(s.channel, s.purpose, minute, 'web_form'));
            } catch (error) {
              expect(error).toBeInstanceOf(TooManyScopes);
            }
            return;
          }
          state = apply(state, withdraw(s.kind === 'withdraw' ? s.channel : undefined, s.purpose, minute));
          expect(effectiveScope(state, s.channel, s.purpose)?.status).toBe('withdrawn');
        });
        expect(Object.keys(state.scopes).length).toBeLessThanOrEqual(MAX_KEYS);
        expect(grantedScopeCount(state)).toBeLessThanOrEqual(MAX_GRANTED_SCOPES);
      }),
      { numRuns: 200 },
    );
  });
});
