import * as z from 'zod';
import { CHANNELS, PurposeSchema } from './vocabulary.ts';

/** Signal types a caller or the WhatsApp webhook can report. */
export const SIGNAL_TYPES = [
  'message_sent',
  'message_delivered',
  'message_read',
  'message_undelivered',
  'profile_photo_hidden',
  'last_seen_hidden',
  'call_failed',
  'group_add_refused',
  'inbound_message',
  'read_receipts_missing',
  // A hard bounce or a number/address that does not exist (docs/connectors.md): no block evidence by itself.
  'recipient_unreachable',
  // The channel says the person blocked the sender (Twilio WhatsApp 63014): strong block evidence.
  'channel_blocked',
] as const;
export const SignalTypeSchema = z.enum(SIGNAL_TYPES);
export type SignalType = z.infer<typeof SignalTypeSchema>;

/**
 * Signal types that are clues of a block, with their default weights (docs/signals-and-policy.md, "The model").
 * A weight w is the clue's likelihood ratio written as `1 − P(clue | not blocked) / P(clue | blocked)`: the
 * ratio is `1 / (1 − w)`, so 0 switches a clue off and 0.5 doubles the odds of a block. The defaults come
 * from the seed's base rates: a hidden photo or last seen ≈ 2 (0.5; strict privacy is one setting, so the
 * pair counts once, ≈ 2.3), a call that does not ring ≈ 5 (0.8), a refused group add ≈ 5 (0.8), one message
 * on a single tick for `undeliveredAfterHours` ≈ 6.7 (0.85: 15 % of phones are not always connected;
 * the evidence then grows with the wait, see `longOfflineShare`), messages seen staying unread ≈ 1.5
 * (0.33), and a block reported by the channel (Twilio 63014) ≈ 1000 (0.999). `recipient_unreachable`
 * (hard bounce, Meta 131026) is never a clue.
 */
export const DEFAULT_SIGNAL_WEIGHTS = {
  message_undelivered: 0.85,
  profile_photo_hidden: 0.5,
  last_seen_hidden: 0.5,
  call_failed: 0.8,
  group_add_refused: 0.8,
  read_receipts_missing: 0.33,
  channel_blocked: 0.999,
} as const;
/** The weights before the calibrated model (a noisy-OR): a stored policy holding exactly these gets the new defaults. */
export const LEGACY_SIGNAL_WEIGHTS = {
  message_undelivered: 0.45,
  profile_photo_hidden: 0.25,
  last_seen_hidden: 0.25,
  call_failed: 0.35,
  group_add_refused: 0.5,
  read_receipts_missing: 0.1,
} as const;
/** Default prior share of contacts who block the business (the seed's range is 5–15 %). */
export const DEFAULT_BLOCK_BASE_RATE = 0.1;
/** Default share of contacts who may stay offline for weeks (a third of the 15 % not always connected). */
export const DEFAULT_LONG_OFFLINE_SHARE = 0.05;
export type BlockClue = keyof typeof DEFAULT_SIGNAL_WEIGHTS;

const hhmm = z.string().regex(/^([01][0-9]|2[0-3]):[0-5][0-9]$/, 'must be HH:MM (24 h)');
/** Fractions and durations are kept to a millionth: a value like 5e-324 means nothing here and no store can keep it. */
const fine = (n: number) => n === 0 || n >= 1e-6;
const FINE = 'must be 0 or at least 0.000001';
const weight = z.number().min(0).max(1).refine(fine, FINE);

const isLegacyDefault = (w: unknown) =>
  typeof w === 'object' &&
  w !== null &&
  Object.keys(w).length === Object.keys(LEGACY_SIGNAL_WEIGHTS).length &&
  Object.entries(LEGACY_SIGNAL_WEIGHTS).every(([k, v]) => (w as Record<string, unknown>)[k] === v);

function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}
export const TimeZoneSchema = z
  .string()
  .max(64)
  .refine(isTimeZone, 'not a known IANA time zone such as "Europe/Paris"');

/** A language tag as notices and purpose labels are keyed by it ("fr", "en", "pt-BR"). */
export const LanguageSchema = z
  .string()
  .regex(/^[a-z]{2,3}(-[A-Za-z0-9]{1,8}){0,3}$/, 'must be a language tag such as "fr", "en" or "pt-BR"');

/** What a purpose is for: `marketing` (promotions, news) or `service` (order updates, reminders the person asked for). */
export const PURPOSE_KINDS = ['marketing', 'service'] as const;
export type PurposeKind = (typeof PURPOSE_KINDS)[number];

/** The purposes registry: kind and per-language labels of each purpose slug (at most 100). */
export const PurposesSchema = z
  .record(
    PurposeSchema,
    z.strictObject({
      kind: z.enum(PURPOSE_KINDS),
      labels: z.record(LanguageSchema, z.string().min(1).max(120)).optional(),
    }),
  )
  .refine((purposes) => Object.keys(purposes).length <= 100, 'at most 100 purposes');

export const FrequencyCapSchema = z.strictObject({
  channel: z.enum([...CHANNELS, '*']),
  purpose: z.union([PurposeSchema, z.literal('*')]).default('*'),
  // The state keeps the SEND_LOG_MAX (31) latest sends per scope, so a cap above that could not be counted.
  max: z.number().int().min(0).max(31),
  perDays: z.number().int().min(1).max(365),
});

/** Retention defaults: CNIL's 3 years without contact for prospects, 6 months of signals, 5 years of proof. */
export const DEFAULT_RETENTION = { inactiveSubjectDays: 1095, signalDays: 180, proofDays: 1825 } as const;

/**
 * How long data is kept (docs/dpo.md, "Retention"): a subject with no own action of the person and no grant
 * for `inactiveSubjectDays` is purged like an erasure; signal and send details older than `signalDays` are
 * deleted; an erased subject's proof events are deleted `proofDays` after the erasure (0: only the
 * tombstone is kept).
 */
export const RetentionSchema = z.strictObject({
  inactiveSubjectDays: z.number().int().min(30).max(36_500).default(DEFAULT_RETENTION.inactiveSubjectDays),
  signalDays: z.number().int().min(1).max(3650).default(DEFAULT_RETENTION.signalDays),
  proofDays: z.number().int().min(0).max(36_500).default(DEFAULT_RETENTION.proofDays),
});
export type Retention = z.infer<typeof RetentionSchema>;

/** The tenant's gate policy. `PUT /v1/policy` replaces it whole; omitted fields take their defaults. */
export const PolicySchema = z
  .strictObject({
    consentMaxAgeDays: z.number().int().min(1).max(36_500).default(1095),
    undeliveredAfterHours: z
      .number()
      .int()
      .min(1)
      .max(24 * 30)
      .default(72),
    suspectedThreshold: z.number().gt(0).lt(1).refine(fine, FINE).default(0.4),
    blockThreshold: z.number().gt(0).max(1).refine(fine, FINE).default(0.7),
    signalHalfLifeDays: z.number().gt(0).max(3650).refine(fine, FINE).default(30),
    /** Prior probability that a contact blocked the business, before any clue. */
    blockBaseRate: z.number().min(0.001).max(0.5).default(DEFAULT_BLOCK_BASE_RATE),
    /** Share of contacts who may stay offline for weeks: the floor of the long-undelivered evidence. */
    longOfflineShare: z.number().min(0.001).max(0.5).default(DEFAULT_LONG_OFFLINE_SHARE),
    /** Days the cross-channel pause lasts after the block stops being likely (a bounded tail). */
    crossChannelCooldownDays: z.number().int().min(0).max(3650).default(7),
    frequencyCaps: z
      .array(FrequencyCapSchema)
      .max(20)
      .default([{ channel: '*', purpose: '*', max: 3, perDays: 7 }]),
    quietHours: z
      .strictObject({ start: hhmm, end: hhmm })
      .refine((q) => q.start !== q.end, {
        path: ['end'],
        message: 'must differ from start (use null to switch quiet hours off)',
      })
      .nullable()
      .default(null),
    defaultTimezone: TimeZoneSchema.default('Europe/Paris'),
    signalWeights: z.preprocess(
      // Policies stored before the calibrated model hold the noisy-OR defaults: they mean "the defaults".
      (w) => (isLegacyDefault(w) ? undefined : w),
      z
        .strictObject({
          message_undelivered: weight.default(DEFAULT_SIGNAL_WEIGHTS.message_undelivered),
          profile_photo_hidden: weight.default(DEFAULT_SIGNAL_WEIGHTS.profile_photo_hidden),
          last_seen_hidden: weight.default(DEFAULT_SIGNAL_WEIGHTS.last_seen_hidden),
          call_failed: weight.default(DEFAULT_SIGNAL_WEIGHTS.call_failed),
          group_add_refused: weight.default(DEFAULT_SIGNAL_WEIGHTS.group_add_refused),
          read_receipts_missing: weight.default(DEFAULT_SIGNAL_WEIGHTS.read_receipts_missing),
          channel_blocked: weight.default(DEFAULT_SIGNAL_WEIGHTS.channel_blocked),
        })
        .default({ ...DEFAULT_SIGNAL_WEIGHTS }),
    ),
    noticeVersion: z.string().min(1).max(128).default('unset'),
    /** Consents must name a notice registered with `POST /v1/notices` (otherwise 422 `unknown_notice`). */
    requireRegisteredNotice: z.boolean().default(false),
    purposes: PurposesSchema.default({}),
    controller: z
      .strictObject({
        name: z.string().min(1).max(200),
        privacyContact: z.string().min(1).max(320),
      })
      .default({ name: 'Demo Company', privacyContact: 'privacy@example.org' }),
    retention: RetentionSchema.default({ ...DEFAULT_RETENTION }),
  })
  .refine((p) => p.suspectedThreshold < p.blockThreshold, {
    path: ['suspectedThreshold'],
    message: 'must be lower than blockThreshold',
  });
export type Policy = z.infer<typeof PolicySchema>;

/** A purpose's kind in the registry; a purpose the registry does not list counts as `marketing`. */
export const purposeKind = (policy: Policy, purpose: string): PurposeKind =>
  policy.purposes?.[purpose]?.kind ?? 'marketing';

/** `purposeKind` bound to a policy: what `effectiveScope` and `withdrawConsent` take as `kindOf`. */
export const kindOf =
  (policy: Policy) =>
  (purpose: string): PurposeKind =>
    purposeKind(policy, purpose);

/** The policy a tenant has before it sets its own. */
export const defaultPolicy = (): Policy => PolicySchema.parse({});
