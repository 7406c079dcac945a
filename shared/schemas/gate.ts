import * as z from 'zod';
import { TimeZoneSchema } from '#domain/policy.ts';
import { ChannelSchema, PurposeSchema } from '#domain/vocabulary.ts';
import { SubjectSchema } from '#shared/identity/subject.ts';
import { TimestampSchema } from './common.ts';

export const GateCheckSchema = z.strictObject({
  subject: SubjectSchema,
  channel: ChannelSchema,
  purpose: PurposeSchema.default('marketing'),
  at: TimestampSchema.optional(),
  record: z.boolean().default(false),
  timezone: TimeZoneSchema.optional(),
});
export type GateCheck = z.infer<typeof GateCheckSchema>;

export const MAX_BATCH_ITEMS = 1000;

/** Items are checked one by one (a bad item is an error in its slot), so only their outer shape is validated here. */
export const GateBatchSchema = z.strictObject({
  channel: ChannelSchema,
  purpose: PurposeSchema.default('marketing'),
  at: TimestampSchema.optional(),
  timezone: TimeZoneSchema.optional(),
  items: z
    .array(z.strictObject({ subject: z.unknown(), timezone: z.unknown().optional() }))
    .min(1)
    .max(MAX_BATCH_ITEMS),
});
export type GateBatch = z.infer<typeof GateBatchSchema>;
