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
] as const;
export const SignalTypeSchema = z.enum(SIGNAL_TYPES);
export type SignalType = z.infer<typeof SignalTypeSchema>;

/**
 * Signal types that are clues of a block, with their default weights (see docs/signals-and-policy.md, "The model").
 * Chosen so that no weak clue alone (hidden photo, hidden last seen, unread messages) reaches even
 * `suspectedThreshold` (0.4), one undelivered message is suspected, and several clues together pass
 * `blockThreshold` (0.7): three undelivered messages; two undelivered and a hidden photo; an undelivered
 * message, a failed call and a hidden photo; an undelivered message and all three weak clues.
 * `read_receipts_missing` is an extension: an agent's observation that messages stay unread.
 */
export const DEFAULT_SIGNAL_WEIGHTS = {
  message_undelivered: 0.45,
  profile_photo_hidden: 0.25,
  last_seen_hidden: 0.25,
  call_failed: 0.35,
  group_add_refused: 0.5,
  read_receipts_missing: 0.1,
} as const;
export type BlockClue = keyof typeof DEFAULT_SIGNAL_WEIGHTS;

const hhmm = z.string().regex(/^([01][0-9]|2[0-3]):[0-5][0-9]$/, 'must be HH:MM (24 h)');
/** Fractions and durations are kept to a millionth: a value like 5e-324 means nothing here and no store can keep it. */
const fine = (n: number) => n === 0 || n >= 1e-6;
const FINE = 'must be 0 or at least 0.000001';
const weight = z.number().min(0).max(1).refine(fine, FINE);

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
    crossChannelCooldownDays: z.number().int().min(0).max(3650).default(30),
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
    signalWeights: z
      .strictObject({
        message_undelivered: weight.default(DEFAULT_SIGNAL_WEIGHTS.message_undelivered),
        profile_photo_hidden: weight.default(DEFAULT_SIGNAL_WEIGHTS.profile_photo_hidden),
        last_seen_hidden: weight.default(DEFAULT_SIGNAL_WEIGHTS.last_seen_hidden),
        call_failed: weight.default(DEFAULT_SIGNAL_WEIGHTS.call_failed),
        group_add_refused: weight.default(DEFAULT_SIGNAL_WEIGHTS.group_add_refused),
        read_receipts_missing: weight.default(DEFAULT_SIGNAL_WEIGHTS.read_receipts_missing),
      })
      .default({ ...DEFAULT_SIGNAL_WEIGHTS }),
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
