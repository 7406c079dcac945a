import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decide } from '#domain/gate.ts';
import { applySignal, channelSignals, type SignalInput } from '#domain/likelihood.ts';
import { defaultPolicy, type Policy, PolicySchema } from '#domain/policy.ts';
import { localTime, quietUntil } from '#domain/quiet-hours.ts';
import { recordSend, SEND_LOG_MAX } from '#domain/sends.ts';
import { emptyState, grantConsent, type SubjectState } from '#domain/subject-state.ts';
import type { Channel } from '#domain/vocabulary.ts';

const GRANTED_AT = '2026-10-01T08:00:00.000Z';
const policy = (overrides: Record<string, unknown> = {}): Policy => PolicySchema.parse(overrides);

/** A subject with marketing granted on the given channels. */
function granted(...channels: Channel[]): SubjectState {
  let state = emptyState('sk', 'phone');
  for (const channel of channels) {
    const next = { seq: state.seq + 1, eventId: `ev${state.seq + 1}` };
    state = {
      ...grantConsent(
        state,
        { channel, purpose: 'marketing', source: 'web_form', noticeVersion: 'v1', grantedAt: GRANTED_AT, data: {} },
        next,
        GRANTED_AT,
      ).state,
      seq: next.seq,
    };
  }
  return state;
}

function withSignals(state: SubjectState, channel: Channel, signals: SignalInput[], p = defaultPolicy()): SubjectState {
  let summary = channelSignals(state, channel);
  for (const s of signals) summary = applySignal(summary, s, p, s.observedAt);
  return { ...state, signals: { ...state.signals, [channel]: summary } };
}

const undelivered = (at: string, id: string): SignalInput => ({
  type: 'message_undelivered',
  observedAt: at,
  messageId: id,
});
const check = (state: SubjectState, channel: Channel, at: string, p = defaultPolicy(), timezone?: string) =>
  decide(state, { channel, purpose: 'marketing', at, timezone }, p);

describe('likely_blocked and block_suspected', () => {
  const base = granted('whatsapp', 'sms');

  it('warns when a block is suspected and still allows', () => {
    const s = withSignals(base, 'whatsapp', [undelivered('2026-11-20T10:00:00Z', 'w1')]);
    const d = check(s, 'whatsapp', '2026-11-20T11:00:00Z');
    expect(d.decision).toBe('allow');
    expect(d.warnings[0].code).toBe('block_suspected');
    expect(d.warnings[0].message).toContain('message_undelivered');
    expect(d.blockLikelihood).toBeGreaterThanOrEqual(0.4);
  });

  it('blocks a likely block and lists the contributing signals', () => {
    const s = withSignals(base, 'whatsapp', [
      undelivered('2026-11-20T10:00:00Z', 'w1'),
      { type: 'group_add_refused', observedAt: '2026-11-20T11:00:00Z' },
      { type: 'profile_photo_hidden', observedAt: '2026-11-20T12:00:00Z' },
    ]);
    const d = check(s, 'whatsapp', '2026-11-20T13:00:00Z');
    expect(d.decision).toBe('block');
    expect(d.reasons[0].code).toBe('likely_blocked');
    expect((d.reasons[0].signals as unknown[]).length).toBe(3);
    expect(d.reasons[0].message).toContain('profile_photo_hidden');
  });

  it('follows the policy thresholds and weights', () => {
    const s = withSignals(base, 'whatsapp', [{ type: 'profile_photo_hidden', observedAt: '2026-11-20T10:00:00Z' }]);
    expect(check(s, 'whatsapp', '2026-11-20T10:00:00Z').decision).toBe('allow');
    // Weight 0.99: a likelihood ratio of 100.
    const strict = policy({ signalWeights: { profile_photo_hidden: 0.99 } });
    expect(check(s, 'whatsapp', '2026-11-20T10:00:00Z', strict).reasons[0].code).toBe('likely_blocked');
    // A lower prior needs more evidence.
    const rare = policy({ signalWeights: { profile_photo_hidden: 0.99 }, blockBaseRate: 0.01 });
    expect(check(s, 'whatsapp', '2026-11-20T10:00:00Z', rare).decision).toBe('allow');
    // Half-life: five days later the clue has faded away.
    const fading = policy({ signalWeights: { profile_photo_hidden: 0.99 }, signalHalfLifeDays: 1 });
    expect(check(s, 'whatsapp', '2026-11-25T10:00:00Z', fading).decision).toBe('allow');
  });
});

describe('cross_channel_cooldown', () => {
  // Twilio 63014: the channel reports the block (×1000); likely until it decays below the threshold.
  const blocked = withSignals(granted('whatsapp', 'sms', 'voice'), 'whatsapp', [
    { type: 'channel_blocked', observedAt: '2026-11-01T12:00:00Z', messageId: 'SM1' },
  ]);

  it('blocks marketing on the other channels while the block is likely', () => {
    const d = check(blocked, 'sms', '2026-11-02T10:00:00Z');
    expect(d.decision).toBe('block');
    expect(d.reasons.map((r) => r.code)).toEqual(['cross_channel_cooldown']);
    expect(d.reasons[0]).toMatchObject({ channel: 'whatsapp', until: '2026-11-09T10:00:00.000Z' });
    expect(d.reasons[0].message).toContain('while the block is likely');
    expect(check(blocked, 'voice', '2026-11-30T12:00:00Z').decision).toBe('block');
  });

  it('and for crossChannelCooldownDays after it stopped being likely, not longer', () => {
    // 1000^(2^(−t / 30 d)) falls below the odds of 0.7 at prior 0.1 (×21) after about 35.4 days.
    const late = check(blocked, 'sms', '2026-12-10T12:00:00Z');
    expect(check(blocked, 'whatsapp', '2026-12-10T12:00:00Z').reasons.map((r) => r.code)).not.toContain(
      'likely_blocked',
    );
    expect(late.decision).toBe('block');
    const until = late.reasons[0].until as string;
    expect(until > '2026-12-13T12:00:00Z' && until < '2026-12-14T06:00:00Z').toBe(true);
    const hourBefore = new Date(Date.parse(until) - 3_600_000).toISOString();
    expect(check(blocked, 'sms', hourBefore).decision).toBe('block');
    expect(check(blocked, 'sms', until).decision).toBe('allow');
    expect(check(blocked, 'sms', '2026-12-10T12:00:00Z', policy({ crossChannelCooldownDays: 1 })).decision).toBe(
      'allow',
    );
  });

  it('is not applied before the block is likely, nor after evidence against it, nor when set to 0', () => {
    expect(check(blocked, 'sms', '2026-11-01T11:30:00Z').decision).toBe('allow');
    const delivered = withSignals(blocked, 'whatsapp', [
      { type: 'message_delivered', observedAt: '2026-11-03T10:00:00Z', messageId: 'w4' },
    ]);
    expect(check(delivered, 'sms', '2026-11-04T10:00:00Z').decision).toBe('allow');
    expect(check(blocked, 'sms', '2026-11-02T10:00:00Z', policy({ crossChannelCooldownDays: 0 })).decision).toBe(
      'allow',
    );
  });

  it('undelivered messages alone never pause the other channels', () => {
    const silent = withSignals(granted('whatsapp', 'sms'), 'whatsapp', [
      undelivered('2026-11-01T10:00:00Z', 'w1'),
      undelivered('2026-11-08T11:00:00Z', 'w2'),
      undelivered('2026-11-15T12:00:00Z', 'w3'),
    ]);
    expect(check(silent, 'sms', '2026-12-30T10:00:00Z').decision).toBe('allow');
  });
});

describe('recipient_unreachable', () => {
  const base = granted('whatsapp', 'sms', 'email');
  const unreachable = (at: string, id: string): SignalInput => ({
    type: 'recipient_unreachable',
    observedAt: at,
    messageId: id,
  });

  it('warns while the latest word on reach is that the contact could not be reached, and never blocks', () => {
    const s = withSignals(base, 'whatsapp', [
      { type: 'message_sent', observedAt: '2026-11-01T10:00:00Z', messageId: 'w1' },
      unreachable('2026-11-01T10:00:05Z', 'w1'),
      unreachable('2026-11-08T10:00:05Z', 'w2'),
      unreachable('2026-11-15T10:00:05Z', 'w3'),
    ]);
    const d = check(s, 'whatsapp', '2026-11-20T10:00:00Z');
    expect(d.decision).toBe('allow');
    expect(d.warnings).toEqual([
      expect.objectContaining({ code: 'recipient_unreachable', since: '2026-11-15T10:00:05.000Z' }),
    ]);
    // No block evidence: the prior only, and the other channels are not paused.
    expect(d.blockLikelihood).toBe(defaultPolicy().blockBaseRate);
    expect(check(s, 'sms', '2026-11-20T10:00:00Z')).toMatchObject({ decision: 'allow', warnings: [] });
    // Months later it still says so: nothing has reached the contact since.
    expect(check(s, 'whatsapp', '2027-03-01T10:00:00Z').warnings[0].code).toBe('recipient_unreachable');
  });

  it('is lifted by a later delivery, read receipt or inbound message, not by an earlier one', () => {
    const s = withSignals(base, 'email', [unreachable('2026-11-10T10:00:00Z', 'b1')]);
    for (const type of ['message_delivered', 'message_read', 'inbound_message'] as const) {
      const later = withSignals(s, 'email', [{ type, observedAt: '2026-11-11T10:00:00Z' }]);
      expect(check(later, 'email', '2026-11-12T10:00:00Z').warnings, type).toEqual([]);
      const earlier = withSignals(s, 'email', [{ type, observedAt: '2026-11-09T10:00:00Z' }]);
      expect(check(earlier, 'email', '2026-11-12T10:00:00Z').warnings[0].code, type).toBe('recipient_unreachable');
    }
    // A send, or another failure, is no news about reach.
    const more = withSignals(s, 'email', [
      { type: 'message_sent', observedAt: '2026-11-11T10:00:00Z', messageId: 'b2' },
      { type: 'message_failed', observedAt: '2026-11-11T10:00:01Z', messageId: 'b2' },
    ]);
    expect(check(more, 'email', '2026-11-12T10:00:00Z').warnings[0].code).toBe('recipient_unreachable');
  });

  it('does not depend on the order the reports arrive in', () => {
    const arb = fc.array(
      fc.record({
        type: fc.constantFrom<SignalInput['type']>(
          'recipient_unreachable',
          'message_delivered',
          'message_read',
          'inbound_message',
          'message_sent',
          'message_failed',
          'message_undelivered',
        ),
        hour: fc.integer({ min: 0, max: 200 }),
        m: fc.integer({ min: 1, max: 5 }),
      }),
      { maxLength: 20 },
    );
    fc.assert(
      fc.property(arb, (items) => {
        const signals = items.map(
          (i): SignalInput => ({
            type: i.type,
            observedAt: new Date(Date.parse('2026-11-01T00:00:00Z') + i.hour * 3_600_000).toISOString(),
            messageId: `w${i.m}`,
          }),
        );
        const warn = (list: SignalInput[]) =>
          check(withSignals(base, 'whatsapp', list), 'whatsapp', '2026-11-10T00:00:00Z').warnings.filter(
            (w) => w.code === 'recipient_unreachable',
          );
        expect(warn([...signals].reverse())).toEqual(warn(signals));
        // Expected: an unreachable report later than every delivery, read and inbound message.
        const latest = (types: string[]) =>
          Math.max(-1, ...items.filter((i) => types.includes(i.type)).map((i) => i.hour));
        const expected =
          latest(['recipient_unreachable']) > latest(['message_delivered', 'message_read', 'inbound_message']);
        expect(warn(signals).length).toBe(expected ? 1 : 0);
      }),
    );
  });
});

describe('frequency_cap', () => {
  const send = (state: SubjectState, at: string, p = defaultPolicy(), channel: Channel = 'whatsapp') => ({
    ...recordSend(state, { channel, purpose: 'marketing', at, decisionId: 'd' }, p, at).state,
  });

  it('blocks once the cap is reached in the window, and says when a slot frees up', () => {
    let s = granted('whatsapp', 'sms');
    for (const day of ['01', '02', '03']) s = send(s, `2026-11-${day}T10:00:00Z`);
    const d = check(s, 'whatsapp', '2026-11-04T10:00:00Z');
    expect(d.decision).toBe('block');
    expect(d.reasons[0]).toMatchObject({ code: 'frequency_cap', availableAt: '2026-11-08T10:00:00.000Z' });
    // The default cap counts every channel.
    expect(check(s, 'sms', '2026-11-04T10:00:00Z').reasons[0].code).toBe('frequency_cap');
    expect(check(s, 'whatsapp', '2026-11-08T10:00:01Z').decision).toBe('allow');
  });

  it('applies per-channel caps only to their channel', () => {
    const p = policy({ frequencyCaps: [{ channel: 'sms', max: 1, perDays: 1 }] });
    const s = send(granted('whatsapp', 'sms'), '2026-11-01T10:00:00Z', p, 'sms');
    expect(check(s, 'sms', '2026-11-01T12:00:00Z', p).reasons[0].code).toBe('frequency_cap');
    expect(check(s, 'whatsapp', '2026-11-01T12:00:00Z', p).decision).toBe('allow');
  });

  it('keeps at most SEND_LOG_MAX sends per scope, and no more than the caps need', () => {
    let s = granted('whatsapp');
    const few = policy();
    for (let i = 0; i < 10; i++) s = send(s, `2026-11-01T0${i}:00:00Z`, few);
    expect((s.sends as Record<string, number[]>)['whatsapp|marketing']).toHaveLength(3);
    const p = policy({ frequencyCaps: [{ channel: 'whatsapp', max: 31, perDays: 30 }] });
    for (let i = 0; i < 200; i++)
      s = send(s, new Date(Date.parse('2026-11-01T00:00:00Z') + i * 60_000).toISOString(), p);
    expect((s.sends as Record<string, number[]>)['whatsapp|marketing']).toHaveLength(SEND_LOG_MAX);
  });
});

describe('quiet_hours', () => {
  const quiet = policy({ quietHours: { start: '21:00', end: '09:00' } });
  const s = granted('whatsapp');

  it('defers inside a period spanning midnight to its end, in the policy’s default time zone', () => {
    const d = check(s, 'whatsapp', '2026-11-24T21:30:00Z', quiet); // 22:30 in Paris
    expect(d).toMatchObject({ decision: 'defer', retryAfter: '2026-11-25T08:00:00.000Z' });
    expect(d.reasons[0].code).toBe('quiet_hours');
    expect(check(s, 'whatsapp', '2026-11-25T07:30:00Z', quiet).retryAfter).toBe('2026-11-25T08:00:00.000Z');
    expect(check(s, 'whatsapp', '2026-11-25T08:00:00Z', quiet).decision).toBe('allow');
  });

  it("uses the request's time zone", () => {
    // 10:00 UTC is 05:00 in New York: quiet until 09:00 there (14:00 UTC).
    const d = check(s, 'whatsapp', '2026-11-24T10:00:00Z', quiet, 'America/New_York');
    expect(d.retryAfter).toBe('2026-11-24T14:00:00.000Z');
  });

  it('is right across the spring-forward night in Paris', () => {
    // 28 March 2026 23:00 CET; the clocks jump 02:00 → 03:00; 09:00 CEST is 07:00 UTC.
    expect(quietUntil('2026-03-28T22:00:00Z', { start: '21:00', end: '09:00' }, 'Europe/Paris')).toBe(
      '2026-03-29T07:00:00.000Z',
    );
    // An end inside the gap (02:30 does not exist) ends when the clock jumps.
    expect(quietUntil('2026-03-29T00:30:00Z', { start: '01:00', end: '02:30' }, 'Europe/Paris')).toBe(
      '2026-03-29T01:00:00.000Z',
    );
  });

  it('is right across the fall-back night in Paris', () => {
    // 24 October 2026 22:00 CEST; the clocks go back 03:00 → 02:00; 09:00 CET is 08:00 UTC.
    expect(quietUntil('2026-10-24T20:00:00Z', { start: '21:00', end: '09:00' }, 'Europe/Paris')).toBe(
      '2026-10-25T08:00:00.000Z',
    );
    // 02:15 in the repeated hour: the end (02:30) is the next one, not the one already past.
    expect(quietUntil('2026-10-25T01:15:00Z', { start: '01:00', end: '02:30' }, 'Europe/Paris')).toBe(
      '2026-10-25T01:30:00.000Z',
    );
  });

  it('always ends after the check and at the end time on the local clock', () => {
    const zones = ['Europe/Paris', 'America/New_York', 'Australia/Sydney', 'Asia/Kolkata', 'UTC'];
    const hhmm = fc
      .tuple(fc.integer({ min: 0, max: 23 }), fc.constantFrom(0, 15, 30, 45))
      .map(([h, m]) => `${String(h).padStart(2, '0')}:${String(m).padStart(2, '0')}`);
    fc.assert(
      fc.property(
        fc.integer({ min: Date.parse('2026-01-01T00:00:00Z'), max: Date.parse('2027-12-31T00:00:00Z') }),
        hhmm,
        hhmm,
        fc.constantFrom(...zones),
        (ms, start, end, zone) => {
          fc.pre(start !== end);
          const at = new Date(Math.floor(ms / 60_000) * 60_000).toISOString();
          const until = quietUntil(at, { start, end }, zone);
          if (!until) return;
          expect(Date.parse(until)).toBeGreaterThan(Date.parse(at));
          expect(Date.parse(until) - Date.parse(at)).toBeLessThanOrEqual(25 * 3_600_000);
          const local = localTime(Date.parse(until), zone);
          const shown = local.hour * 60 + local.minute;
          const wanted = Number(end.slice(0, 2)) * 60 + Number(end.slice(3));
          // Equal, or later when the end time fell into a DST gap.
          expect(shown === wanted || shown > wanted).toBe(true);
        },
      ),
    );
  });

  it('a block wins over a deferral', () => {
    const d = check(emptyState('x'), 'whatsapp', '2026-11-24T21:30:00Z', quiet);
    expect(d).toMatchObject({ decision: 'block', retryAfter: null });
  });
});
