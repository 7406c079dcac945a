import { isIP } from 'node:net';
import * as z from 'zod';
import { ChannelSchema, GrantSourceSchema, PurposeSchema, WithdrawSourceSchema } from '#domain/vocabulary.ts';
import { SubjectSchema } from '#shared/identity/subject.ts';
import { shortText, TimestampSchema } from './common.ts';

/** Proof of how the consent was collected. The IP address is never stored raw (see README, Privacy). */
export const EvidenceSchema = z.strictObject({
  formId: shortText(128).optional(),
  text: shortText(4000).optional(),
  ipAddress: z
    .string()
    .max(64)
    .refine((ip) => isIP(ip) !== 0, 'must be an IPv4 or IPv6 address')
    .optional(),
  userAgent: shortText(512).optional(),
  pageUrl: z.url().max(2048).optional(),
  confirmationId: shortText(128).optional(),
  collectedBy: shortText(128).optional(),
});

export const ConsentGrantSchema = z.strictObject({
  subject: SubjectSchema,
  channel: ChannelSchema,
  purpose: PurposeSchema.default('marketing'),
  source: GrantSourceSchema,
  noticeVersion: shortText(128),
  grantedAt: TimestampSchema.optional(),
  expiresAt: TimestampSchema.optional(),
  evidence: EvidenceSchema.optional(),
});

export const ConsentWithdrawSchema = z.strictObject({
  subject: SubjectSchema,
  channel: ChannelSchema.optional(),
  purpose: PurposeSchema.optional(),
  source: WithdrawSourceSchema.default('api'),
  /** When the person withdrew (event time); defaults to now. */
  at: TimestampSchema.optional(),
  reason: shortText(500).optional(),
});

export const SubjectLookupSchema = z.strictObject({ subject: SubjectSchema });
