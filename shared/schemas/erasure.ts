import * as z from 'zod';
import { SubjectSchema } from '#shared/identity/subject.ts';
import { pageQuery, shortText } from './common.ts';

export const ERASURE_CHANNELS = ['email', 'web', 'phone', 'letter', 'self_service', 'in_person', 'api'] as const;

export const ErasureRequestSchema = z.strictObject({
  subjects: z.array(SubjectSchema).min(1).max(20),
  requestedVia: z.enum(ERASURE_CHANNELS),
  reference: shortText(128).optional(),
  /** Carry the erasure out now instead of leaving it `received` for review (identity checks, legal holds). */
  immediate: z.boolean().default(false),
  /** Also erase every identifier linked to the given ones (POST /v1/subjects/link). */
  includeLinked: z.boolean().default(false),
});

/** `POST /v1/erasure-requests/{requestId}/cancel`: why (optional; kept as a personal detail of the events). */
export const ErasureCancelSchema = z.strictObject({ reason: shortText(500).optional() });

/** `POST /v1/erasure-requests/{requestId}/extend` (Art. 12(3)): once, by one or two months, with the reason. */
export const ErasureExtendSchema = z.strictObject({
  reason: shortText(500),
  months: z.union([z.literal(1), z.literal(2)]),
});

/** An erasure request id as `POST /v1/erasure-requests` hands them out (`er_` and a ULID). */
export const ErasureRequestIdSchema = z
  .string()
  .regex(/^er_[0-9A-HJKMNP-TV-Z]{26}$/, 'must be an erasure request id such as er_01JD3Z6Q5V9XGZ3E1M1C4V7N2B');

export const ERASURE_STATUSES = ['received', 'completed', 'overdue', 'cancelled'] as const;
export const ErasureListQuerySchema = z.strictObject({
  status: z.enum(ERASURE_STATUSES).optional(),
  ...pageQuery,
});
