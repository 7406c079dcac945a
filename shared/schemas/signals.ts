import * as z from 'zod';
import { SignalTypeSchema } from '#domain/policy.ts';
import { ChannelSchema } from '#domain/vocabulary.ts';
import { SubjectSchema } from '#shared/identity/subject.ts';
import { shortText, TimestampSchema } from './common.ts';

/** `POST /v1/signals`: one observation about a contact on a channel. */
export const SignalSchema = z.strictObject({
  subject: SubjectSchema,
  channel: ChannelSchema,
  type: SignalTypeSchema,
  observedAt: TimestampSchema.optional(),
  /** The message the signal is about (a wamid): matches a delivery to its send. Only its hash is stored. */
  messageId: shortText(256).optional(),
});
