import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SubjectErased } from '#domain/errors.ts';
import {
  applySignal,
  blockCrossedAt,
  blockLikelihood,
  type ChannelSignals,
  EVENT_CLUES_PER_TYPE,
  PENDING_MAX,
  recordSignal,
  type SignalInput,
} from '#domain/likelihood.ts';
import { type BlockClue, DEFAULT_SIGNAL_WEIGHTS, defaultPolicy, type SignalType } from '#domain/policy.ts';
import { emptyState } from '#domain/subject-state.ts';

const policy = defaultPolicy();
const T0 = Date.parse('2026-11-01T00:00:00Z');
const iso = (hours: number) => new Date(T0 + hours * 3_600_000).toISOString();

/** Applies signals in order, each recorded at its own time. */
function fold(signals: SignalInput[], start?: ChannelSignals): ChannelSignals | undefined {
  return signals.reduce<ChannelSignals | undefined>((s, sig) => applySignal(s, sig, policy, sig.observedAt), start);
}

const clue = (type: BlockClue, hours: number, messageId?: string): SignalInput => ({
  type,
  observedAt: iso(hours),
  ...(messageId ? { messageId } : {}),
});
const level = (signals: SignalInput[], atHours: number) => blockLikelihood(fold(signals), policy, iso(atHours));

const CLUES = Object.keys(DEFAULT_SIGNAL_WEIGHTS) as BlockClue[];
const WEAK: BlockClue[] = ['profile_photo_hidden', 'last_seen_hidden', 'read_receipts_missing'];
const AGAINST: SignalType[] = ['message_delivered', 'message_read', 'inbound_message'];

const arbSignal = (maxHours: number) =>
  fc.record({
    type: fc.constantFrom<SignalInput['type']>(
      ...CLUES,
      'message_sent',
      'message_delivered',
      'message_read',
      'inbound_message',
      'message_failed',
    ),
    hours: fc.integer({ min: 0, max: maxHours }),
    message: fc.option(fc.integer({ min: 1, max: 6 }), { nil: undefined }),
  });
const toInput = (s: { type: SignalInput['type']; hours: number; message?: number }): SignalInput => ({
  type: s.type,
  observedAt: iso(s.hours),
  ...(s.message ? { messageId: `wamid.${s.message}` } : {}),
});

describe('block likelihood', () => {
  it('is 0 and level none without signals', () => {
    expect(blockLikelihood(undefined, policy, iso(0))).toEqual({ blockLikelihood: 0, level: 'none', signals: [] });
  });

  it('no single weak clue reaches even the suspected threshold, however often it is observed', () => {
    for (const type of WEAK) {
      const once = level([clue(type, 0)], 0);
      expect(once.level).toBe('none');
      const often = level(
        Array.from({ length: 50 }, (_, i) => clue(type, i)),
        50,
      );
      expect(often.blockLikelihood).toBeLessThan(policy.suspectedThreshold);
    }
  });

  it('several clues together reach the block threshold and are listed', () => {
    const l = level(
      [
        clue('message_undelivered', 0, 'wamid.1'),
        clue('profile_photo_hidden', 1),
        clue('last_seen_hidden', 2),
        clue('call_failed', 3),
      ],
      3,
    );
    expect(l.level).toBe('likely');
    expect(l.signals.map((s) => s.type).sort()).toEqual(
      ['call_failed', 'last_seen_hidden', 'message_undelivered', 'profile_photo_hidden'].sort(),
    );
    // All weak clues together are suspicious but not a block.
    expect(
      level(
        WEAK.map((t, i) => clue(t, i)),
        3,
      ).level,
    ).toBe('suspected');
  });

  it('is the noisy-OR of the decayed weights', () => {
    const halfLifeHours = policy.signalHalfLifeDays * 24;
    const l = level([clue('message_undelivered', 0, 'a'), clue('call_failed', 0)], halfLifeHours);
    const w = DEFAULT_SIGNAL_WEIGHTS;
    const expected = 1 - (1 - w.message_undelivered / 2) * (1 - w.call_failed / 2);
    expect(l.blockLikelihood).toBeCloseTo(expected, 4);
  });

  it('counts a send not delivered after undeliveredAfterHours as undelivered, with no further call', () => {
    const sent = fold([{ type: 'message_sent', observedAt: iso(0), messageId: 'wamid.x' }]);
    expect(blockLikelihood(sent, policy, iso(71)).blockLikelihood).toBe(0);
    const after = blockLikelihood(sent, policy, iso(72));
    expect(after.level).toBe('suspected');
    expect(after.signals[0]).toMatchObject({ type: 'message_undelivered', inferred: true, observedAt: iso(72) });
    // Delivered in time: nothing.
    const delivered = fold([{ type: 'message_delivered', observedAt: iso(5), messageId: 'wamid.x' }], sent);
    expect(blockLikelihood(delivered, policy, iso(100)).blockLikelihood).toBe(0);
  });

  it('a late delivery after a failure is evidence at its own timestamp', () => {
    const failed = clue('message_undelivered', 10, 'wamid.y');
    const deliveredLater = { type: 'message_delivered' as const, observedAt: iso(11), messageId: 'wamid.y' };
    const deliveredEarlier = { type: 'message_delivered' as const, observedAt: iso(9), messageId: 'wamid.z' };
    expect(level([failed, deliveredLater], 12).blockLikelihood).toBe(0);
    // An older delivery of another message arriving late does not erase a newer failure.
    expect(level([failed, deliveredEarlier], 12).blockLikelihood).toBeGreaterThan(0);
  });

  it('stays in [0, 1] for any sequence of signals', () => {
    fc.assert(
      fc.property(fc.array(arbSignal(2000), { maxLength: 60 }), fc.integer({ min: 0, max: 4000 }), (signals, at) => {
        const l = blockLikelihood(fold(signals.map(toInput)), policy, iso(at));
        expect(l.blockLikelihood).toBeGreaterThanOrEqual(0);
        expect(l.blockLikelihood).toBeLessThanOrEqual(1);
      }),
    );
  });

  it('never decreases when a block clue is added', () => {
    fc.assert(
      fc.property(
        fc.array(arbSignal(1000), { maxLength: 40 }),
        fc.constantFrom(...CLUES),
        fc.integer({ min: 0, max: 1000 }),
        fc.option(fc.integer({ min: 1, max: 6 }), { nil: undefined }),
        (signals, type, hours, message) => {
          const at = iso(1000);
          const before = fold(signals.map(toInput));
          const added = { type, observedAt: iso(hours), ...(message ? { messageId: `wamid.${message}` } : {}) };
          const after = applySignal(before, added, policy, at);
          expect(blockLikelihood(after, policy, at).blockLikelihood).toBeGreaterThanOrEqual(
            blockLikelihood(before, policy, at).blockLikelihood,
          );
        },
      ),
    );
  });

  it('drops back to none after a delivery, read receipt or inbound message', () => {
    fc.assert(
      fc.property(fc.array(arbSignal(1000), { maxLength: 40 }), fc.constantFrom(...AGAINST), (signals, type) => {
        const s = fold([...signals.map(toInput), { type, observedAt: iso(1001) }]);
        const l = blockLikelihood(s, policy, iso(1001));
        expect(l).toMatchObject({ blockLikelihood: 0, level: 'none', signals: [] });
      }),
    );
  });

  it('does not depend on the order signals arrive in', () => {
    fc.assert(
      fc.property(
        fc
          .array(arbSignal(500), { maxLength: 12 })
          .chain((s) => fc.tuple(fc.constant(s), fc.shuffledSubarray(s, { minLength: s.length, maxLength: s.length }))),
        ([inOrder, shuffled]) => {
          const at = iso(501);
          // Order of arrival is what changes; each is applied as soon as it arrives (at its own time).
          const a = blockLikelihood(fold(inOrder.map(toInput)), policy, at).blockLikelihood;
          const b = blockLikelihood(fold(shuffled.map(toInput)), policy, at).blockLikelihood;
          expect(b).toBeCloseTo(a, 4);
        },
      ),
    );
  });

  it('keeps the summary bounded whatever the flood', () => {
    let s: ChannelSignals | undefined;
    for (let i = 0; i < 10_000; i++) {
      const type = (['message_sent', ...CLUES] as const)[i % (CLUES.length + 1)];
      s = applySignal(s, { type, observedAt: iso(i / 100), messageId: `wamid.${i}` }, policy, iso(i / 100));
    }
    expect(s?.count).toBe(10_000);
    expect(s?.pending.length).toBeLessThanOrEqual(PENDING_MAX);
    const clues = Object.values(s?.clues ?? {}).flat();
    // Four event clue types (undelivered, call failed, group add refused, channel blocked), three lasting-state ones.
    expect(clues.length).toBeLessThanOrEqual(EVENT_CLUES_PER_TYPE * 4 + 3);
    expect(JSON.stringify(s).length).toBeLessThan(800);
  });
});

describe('block threshold crossing', () => {
  it('is when the clue that pushed the likelihood over the threshold was observed', () => {
    const s = fold([
      clue('message_undelivered', 0, 'a'),
      clue('message_undelivered', 10, 'b'),
      clue('message_undelivered', 20, 'c'),
    ]);
    expect(blockLikelihood(s, policy, iso(20)).level).toBe('likely');
    expect(blockCrossedAt(s, policy, iso(30))).toBe(iso(20));
    expect(blockCrossedAt(s, policy, iso(15))).toBeUndefined();
  });

  it('is forgotten after evidence against a block', () => {
    const s = fold([
      clue('message_undelivered', 0, 'a'),
      clue('message_undelivered', 1, 'b'),
      clue('message_undelivered', 2, 'c'),
      { type: 'message_read', observedAt: iso(3) },
    ]);
    expect(blockCrossedAt(s, policy, iso(4))).toBeUndefined();
  });
});

describe('recordSignal', () => {
  it('updates the state, marks an inbound message as the person’s own action and keeps only a message hash', () => {
    const change = recordSignal(
      emptyState('sk'),
      {
        channel: 'whatsapp',
        type: 'inbound_message',
        observedAt: iso(1),
        messageId: 'wamid.HBgLMzM2MTIzNDU2Nzg',
        source: 'api',
      },
      policy,
      iso(2),
    );
    expect(change.state.lastOwnActionAt).toBe(iso(1));
    expect(change.event).toMatchObject({ type: 'signal.recorded', channel: 'whatsapp', source: 'api' });
    expect(JSON.stringify(change)).not.toContain('HBgLMzM2MTIzNDU2Nzg');
  });

  it('refuses a signal about an erased subject', () => {
    const tomb = {
      ...emptyState('sk'),
      erasure: { requestId: 'r', status: 'completed' as const, receivedAt: iso(0), erasedAt: iso(0) },
    };
    expect(() =>
      recordSignal(tomb, { channel: 'sms', type: 'call_failed', observedAt: iso(1), source: 'api' }, policy, iso(1)),
    ).toThrow(SubjectErased);
  });
});

describe('default weights', () => {
  const combos: [BlockClue[], 'none' | 'suspected' | 'likely'][] = [
    [['profile_photo_hidden'], 'none'],
    [['last_seen_hidden'], 'none'],
    [['read_receipts_missing'], 'none'],
    [['message_undelivered'], 'suspected'],
    [['profile_photo_hidden', 'last_seen_hidden', 'read_receipts_missing'], 'suspected'],
    [['message_undelivered', 'message_undelivered', 'message_undelivered'], 'likely'],
    [['message_undelivered', 'message_undelivered', 'profile_photo_hidden'], 'likely'],
    [['message_undelivered', 'call_failed', 'profile_photo_hidden'], 'likely'],
    [['message_undelivered', 'profile_photo_hidden', 'last_seen_hidden', 'read_receipts_missing'], 'likely'],
  ];
  it.each(combos)('%j observed within an hour → %s', (types, expected) => {
    const signals = types.map((t, i) => clue(t, i / 10, `wamid.${i}`));
    expect(level(signals, 1).level).toBe(expected);
  });
});
