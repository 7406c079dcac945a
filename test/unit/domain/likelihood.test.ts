import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SubjectErased } from '#domain/errors.ts';
import {
  applySignal,
  blockLikelihood,
  type ChannelSignals,
  EVENT_CLUES_PER_TYPE,
  lastLikelyAt,
  PENDING_MAX,
  PRIVACY_PAIR_SHARE,
  RESET_PRIOR_SHARE,
  recordSignal,
  type SignalInput,
  undeliveredLikelihoodRatio,
} from '#domain/likelihood.ts';
import {
  type BlockClue,
  DEFAULT_SIGNAL_WEIGHTS,
  defaultPolicy,
  type Policy,
  PolicySchema,
  type SignalType,
} from '#domain/policy.ts';
import { emptyState } from '#domain/subject-state.ts';

const policy = defaultPolicy();
const T0 = Date.parse('2026-11-01T00:00:00Z');
const iso = (hours: number) => new Date(T0 + hours * 3_600_000).toISOString();

/** Applies signals in order, each recorded at its own time. */
function fold(signals: SignalInput[], start?: ChannelSignals, p: Policy = policy): ChannelSignals | undefined {
  return signals.reduce<ChannelSignals | undefined>((s, sig) => applySignal(s, sig, p, sig.observedAt), start);
}
const logit = (p: number) => Math.log(p / (1 - p));
const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));
const sent = (hours: number, messageId: string): SignalInput => ({
  type: 'message_sent',
  observedAt: iso(hours),
  messageId,
});

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
      'recipient_unreachable',
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
  it('is 0 and level none without signals on the channel, the prior once a signal was recorded', () => {
    expect(blockLikelihood(undefined, policy, iso(0))).toEqual({ blockLikelihood: 0, level: 'none', signals: [] });
    expect(blockLikelihood(fold([sent(0, 'wamid.a')]), policy, iso(1)).blockLikelihood).toBe(policy.blockBaseRate);
  });

  it('is the prior updated by each clue’s likelihood ratio', () => {
    const l = level([clue('message_undelivered', 0, 'a'), clue('group_add_refused', 0)], 0);
    const expected = sigmoid(logit(policy.blockBaseRate) + Math.log(1 / 0.15) + Math.log(1 / (1 - 0.8)));
    expect(l.blockLikelihood).toBeCloseTo(expected, 4);
    expect(l.signals.map((s) => s.likelihoodRatio)).toEqual([6.67, 5]);
    // blockBaseRate is the prior.
    const rare = PolicySchema.parse({ blockBaseRate: 0.02 });
    expect(blockLikelihood(fold([clue('group_add_refused', 0)], undefined, rare), rare, iso(0)).blockLikelihood).toBe(
      Math.round(sigmoid(logit(0.02) + Math.log(5)) * 10_000) / 10_000,
    );
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

  it('counts the privacy pair (photo and last seen hidden: one setting) once, never suspected on its own', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2000 }), fc.integer({ min: 0, max: 2000 }), (a, b) => {
        const at = Math.max(a, b);
        const pair = level([clue('profile_photo_hidden', a), clue('last_seen_hidden', b)], at);
        expect(pair.level).toBe('none');
        // The stronger counts whole, the other adds a fifth of its own: 2 and 2 make ≈ 2.3, not 4.
        const lr = pair.signals.map((s) => Math.log(s.likelihoodRatio));
        const [contribution] = pair.signals.map((s) => s.contribution);
        expect(contribution).toBeCloseTo(Math.max(...lr), 1);
      }),
    );
    const same = level([clue('profile_photo_hidden', 0), clue('last_seen_hidden', 0)], 0).blockLikelihood;
    expect(same).toBeCloseTo(sigmoid(logit(0.1) + (1 + PRIVACY_PAIR_SHARE) * Math.log(2)), 4);
    expect(same).toBeLessThan(sigmoid(logit(0.1) + 2 * Math.log(2)));
  });

  it('counts clues explained by a phone that is offline once: the strongest of undelivered, failed call, unread', () => {
    const alone = level([clue('message_undelivered', 0, 'a')], 0).blockLikelihood;
    const withCall = level(
      [clue('message_undelivered', 0, 'a'), clue('call_failed', 0), clue('read_receipts_missing', 0)],
      0,
    );
    expect(withCall.blockLikelihood).toBe(alone);
    expect(withCall.signals.filter((s) => s.contribution > 0).map((s) => s.type)).toEqual(['message_undelivered']);
  });

  it('a block reported by the channel (Twilio 63014) is a strong clue: likely on its own', () => {
    const l = level([clue('channel_blocked', 0, 'SM1')], 0);
    expect(l.level).toBe('likely');
    expect(l.blockLikelihood).toBeGreaterThan(0.95);
  });

  it('counts a send not delivered after undeliveredAfterHours as undelivered, with no further call', () => {
    const pending = fold([sent(0, 'wamid.x')]);
    expect(blockLikelihood(pending, policy, iso(71)).blockLikelihood).toBe(policy.blockBaseRate);
    const after = blockLikelihood(pending, policy, iso(72));
    expect(after.level).toBe('suspected');
    expect(after.signals[0]).toMatchObject({ type: 'message_undelivered', inferred: true, observedAt: iso(72) });
    // Delivered in time: nothing but a low prior.
    const delivered = fold([{ type: 'message_delivered', observedAt: iso(5), messageId: 'wamid.x' }], pending);
    expect(blockLikelihood(delivered, policy, iso(100))).toMatchObject({ level: 'none', signals: [] });
  });

  it('weighs an undelivered message more the longer it waits (never less), up to 1 / longOfflineShare', () => {
    const pending = fold([sent(0, 'wamid.x')]);
    const ceiling = sigmoid(logit(policy.blockBaseRate) + Math.log(1 / policy.longOfflineShare));
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 24 * 400 }), fc.integer({ min: 0, max: 24 * 400 }), (a, b) => {
        const [early, late] = a <= b ? [a, b] : [b, a];
        const p1 = blockLikelihood(pending, policy, iso(early)).blockLikelihood;
        const p2 = blockLikelihood(pending, policy, iso(late)).blockLikelihood;
        expect(p2).toBeGreaterThanOrEqual(p1);
        expect(p2).toBeLessThanOrEqual(Math.round(ceiling * 10_000) / 10_000);
      }),
    );
    // The regression: 60 days on one tick weighs more than 3.
    expect(blockLikelihood(pending, policy, iso(60 * 24)).blockLikelihood).toBeGreaterThan(
      blockLikelihood(pending, policy, iso(3 * 24)).blockLikelihood,
    );
    // A larger longOfflineShare weakens the long wait: a contact offline for weeks looks like a blocker.
    const offline = PolicySchema.parse({ longOfflineShare: 0.2 });
    expect(undeliveredLikelihoodRatio(60 * 86_400, offline)).toBeLessThan(
      undeliveredLikelihoodRatio(60 * 86_400, policy),
    );
    expect(undeliveredLikelihoodRatio(60 * 86_400, offline)).toBeCloseTo(1 / 0.2, 6);
  });

  it('undelivered messages alone are never likely, however many and however long', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            type: fc.constantFrom<SignalInput['type']>('message_sent', 'message_undelivered'),
            hours: fc.integer({ min: 0, max: 2000 }),
            message: fc.integer({ min: 1, max: 8 }),
          }),
          { minLength: 1, maxLength: 30 },
        ),
        fc.integer({ min: 0, max: 24 * 365 }),
        (signals, later) => {
          const sorted = [...signals].sort((a, b) => a.hours - b.hours);
          const s = fold(sorted.map(toInput));
          expect(blockLikelihood(s, policy, iso(2000 + later)).level).not.toBe('likely');
        },
      ),
    );
  });

  it('keeps the oldest undelivered message: many later sends do not shorten the wait', () => {
    const sends = Array.from({ length: 40 }, (_, i) => sent(i * 24, `wamid.${i}`));
    const s = fold(sends) as ChannelSignals;
    const l = blockLikelihood(s, policy, iso(40 * 24));
    const oldest = l.signals.find((c) => c.type === 'message_undelivered' && c.contribution > 0);
    expect(oldest?.observedAt).toBe(iso(72));
  });

  it('a late delivery after a failure is evidence at its own timestamp', () => {
    const failed = clue('message_undelivered', 10, 'wamid.y');
    const deliveredLater = { type: 'message_delivered' as const, observedAt: iso(11), messageId: 'wamid.y' };
    const deliveredEarlier = { type: 'message_delivered' as const, observedAt: iso(9), messageId: 'wamid.z' };
    expect(level([failed, deliveredLater], 12).signals).toEqual([]);
    // An older delivery of another message arriving late does not erase a newer failure.
    expect(level([failed, deliveredEarlier], 12).signals.map((c) => c.type)).toEqual(['message_undelivered']);
  });

  it('stays strictly inside (0, 1) for any sequence of signals', () => {
    fc.assert(
      fc.property(
        fc.array(arbSignal(2000), { minLength: 1, maxLength: 60 }),
        fc.integer({ min: 0, max: 4000 }),
        (signals, at) => {
          const l = blockLikelihood(fold(signals.map(toInput)), policy, iso(at));
          expect(l.blockLikelihood).toBeGreaterThan(0);
          expect(l.blockLikelihood).toBeLessThan(1);
        },
      ),
    );
  });

  it('measures an undelivered message from its first report, however often it is reported again', () => {
    // fast-check's counterexample: the same message reported undelivered at 0 h, then again at 425 h.
    const first = fold([{ type: 'message_undelivered', observedAt: iso(0), messageId: 'wamid.1' }]);
    const again = applySignal(
      first,
      { type: 'message_undelivered', observedAt: iso(425), messageId: 'wamid.1' },
      policy,
      iso(1000),
    );
    expect(blockLikelihood(again, policy, iso(1000))).toEqual(blockLikelihood(first, policy, iso(1000)));
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
            before ? blockLikelihood(before, policy, at).blockLikelihood : 0,
          );
        },
      ),
    );
  });

  it('never rises with recipient_unreachable (a hard bounce, Meta 131026): it is no block clue', () => {
    fc.assert(
      fc.property(
        fc.array(arbSignal(1000), { minLength: 1, maxLength: 40 }),
        fc.integer({ min: 1, max: 6 }),
        (signals, m) => {
          const at = iso(1000);
          const before = fold(signals.map(toInput)) as ChannelSignals;
          const after = applySignal(
            before,
            { type: 'recipient_unreachable', observedAt: iso(999), messageId: `wamid.${m}` },
            policy,
            at,
          );
          expect(blockLikelihood(after, policy, at).blockLikelihood).toBeLessThanOrEqual(
            blockLikelihood(before, policy, at).blockLikelihood,
          );
        },
      ),
    );
  });

  it('is reset by a delivery, read receipt or inbound message: none, no clue, a tenth of the prior', () => {
    fc.assert(
      fc.property(fc.array(arbSignal(1000), { maxLength: 40 }), fc.constantFrom(...AGAINST), (signals, type) => {
        const s = fold([...signals.map(toInput), { type, observedAt: iso(1001) }]);
        const l = blockLikelihood(s, policy, iso(1001));
        expect(l).toMatchObject({ level: 'none', signals: [] });
        expect(l.blockLikelihood).toBeCloseTo(policy.blockBaseRate * RESET_PRIOR_SHARE, 4);
      }),
    );
  });

  it('lets old clues decay with signalHalfLifeDays, back to the prior', () => {
    const halfLifeHours = policy.signalHalfLifeDays * 24;
    const s = fold([clue('group_add_refused', 0)]);
    const lr = (hours: number) => blockLikelihood(s, policy, iso(hours)).signals[0]?.likelihoodRatio ?? 1;
    expect(lr(0)).toBe(5);
    expect(lr(halfLifeHours)).toBeCloseTo(Math.sqrt(5), 2);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 24 * 365 }), fc.integer({ min: 0, max: 24 * 365 }), (a, b) => {
        const [early, late] = a <= b ? [a, b] : [b, a];
        expect(blockLikelihood(s, policy, iso(late)).blockLikelihood).toBeLessThanOrEqual(
          blockLikelihood(s, policy, iso(early)).blockLikelihood,
        );
      }),
    );
    expect(blockLikelihood(s, policy, iso(24 * 3650)).blockLikelihood).toBe(policy.blockBaseRate);
  });

  it('maps signalWeights onto likelihood ratios: 1 / (1 − weight); 0 switches a clue off', () => {
    const off = PolicySchema.parse({ signalWeights: { message_undelivered: 0, group_add_refused: 0 } });
    const s = fold([clue('message_undelivered', 0, 'a'), clue('group_add_refused', 0)], undefined, off);
    expect(blockLikelihood(s, off, iso(24 * 60)).blockLikelihood).toBe(off.blockBaseRate);
    const strong = PolicySchema.parse({ signalWeights: { group_add_refused: 0.95 } });
    expect(blockLikelihood(fold([clue('group_add_refused', 0)]), strong, iso(0)).signals[0].likelihoodRatio).toBe(20);
  });

  it('drops a re-reported undelivered message that evidence cleared, whichever report came first (found by fast-check)', () => {
    const undelivered = (hours: number) => toInput({ type: 'message_undelivered', hours, message: 2 });
    const read = toInput({ type: 'message_read', hours: 1 });
    const at = iso(3);
    const orders = [
      [undelivered(0), undelivered(2), read],
      [undelivered(0), read, undelivered(2)],
      [read, undelivered(2), undelivered(0)],
    ];
    const answers = orders.map((o) => blockLikelihood(fold(o), policy, at).blockLikelihood);
    expect(new Set(answers).size).toBe(1);
    // Its wait runs from its first report, which the read at hour 1 cleared: no evidence left.
    expect(answers[0]).toBeLessThan(policy.blockBaseRate);
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
    const eventTypes = CLUES.length - WEAK.length;
    expect(clues.length).toBeLessThanOrEqual(EVENT_CLUES_PER_TYPE * eventTypes + WEAK.length);
    expect(JSON.stringify(s).length).toBeLessThan(900);
  });
});

describe('summaries stored by the noisy-OR model', () => {
  // Written by the previous version: same layout (epoch seconds, 8-character message hashes).
  const stored: ChannelSignals = {
    clearedAt: T0 / 1000 - 3600,
    clues: {
      message_undelivered: [
        [T0 / 1000 + 7200, 'h3'],
        [T0 / 1000 + 3600, 'h2', 1],
        [T0 / 1000, 'h1'],
      ],
      profile_photo_hidden: [[T0 / 1000 + 60]],
    },
    pending: [[T0 / 1000 + 9000, 'h4']],
    resolved: ['h0'],
    count: 9,
  };

  it('are scored and keep folding new signals', () => {
    // Twenty days after the last evidence the prior has climbed back part of the way.
    const l = blockLikelihood(stored, policy, iso(480));
    expect(l.level).toBe('suspected');
    expect(l.signals.map((c) => c.type)).toContain('profile_photo_hidden');
    const next = applySignal(
      stored,
      { type: 'channel_blocked', observedAt: iso(481), messageId: 'SM9' },
      policy,
      iso(481),
    );
    expect(next.count).toBe(10);
    expect(blockLikelihood(next, policy, iso(481)).level).toBe('likely');
    const cleared = applySignal(stored, { type: 'message_read', observedAt: iso(482) }, policy, iso(482));
    expect(blockLikelihood(cleared, policy, iso(482))).toMatchObject({ level: 'none', signals: [] });
  });
});

describe('lastLikelyAt (the cross-channel pause)', () => {
  const blocked = fold([clue('channel_blocked', 0, 'SM1')]);

  it('is the evaluation time while the block is likely', () => {
    expect(lastLikelyAt(blocked, policy, iso(10), 7)).toBe(iso(10));
  });

  it('is the last likely moment once the clue has decayed, and nothing after the lookback', () => {
    // 63014 (×1000) at prior 0.1 stays likely while 1000^(2^−t/30 d) ≥ 21: about 2.6 half-lives.
    const fadedHours = 24 * 200;
    expect(blockLikelihood(blocked, policy, iso(fadedHours)).level).not.toBe('likely');
    const last = lastLikelyAt(blocked, policy, iso(fadedHours), 365) as string;
    expect(blockLikelihood(blocked, policy, last).level).toBe('likely');
    expect(blockLikelihood(blocked, policy, new Date(Date.parse(last) + 3_600_000).toISOString()).level).not.toBe(
      'likely',
    );
    const days = (fadedHours - (Date.parse(last) - T0) / 3_600_000) / 24;
    expect(lastLikelyAt(blocked, policy, iso(fadedHours), Math.floor(days) - 1)).toBeUndefined();
  });

  it('is forgotten after evidence against a block', () => {
    const s = fold([{ type: 'message_read', observedAt: iso(3) }], blocked);
    expect(lastLikelyAt(s, policy, iso(4), 30)).toBeUndefined();
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
    [['profile_photo_hidden', 'last_seen_hidden'], 'none'],
    [['profile_photo_hidden', 'last_seen_hidden', 'read_receipts_missing'], 'none'],
    [['message_undelivered'], 'suspected'],
    [['message_undelivered', 'message_undelivered', 'message_undelivered'], 'suspected'],
    [['message_undelivered', 'call_failed'], 'suspected'],
    [['message_undelivered', 'profile_photo_hidden', 'last_seen_hidden'], 'suspected'],
    [['group_add_refused', 'profile_photo_hidden', 'last_seen_hidden'], 'suspected'],
    [['message_undelivered', 'group_add_refused'], 'likely'],
    [['channel_blocked'], 'likely'],
  ];
  it.each(combos)('%j observed within an hour → %s', (types, expected) => {
    const signals = types.map((t, i) => clue(t, i / 10, `wamid.${i}`));
    expect(level(signals, 1).level).toBe(expected);
  });

  it('an undelivered message that waited two weeks and the privacy pair → likely', () => {
    const s = fold([sent(0, 'w'), clue('profile_photo_hidden', 300), clue('last_seen_hidden', 300)]);
    expect(blockLikelihood(s, policy, iso(14 * 24)).level).toBe('likely');
  });
});
