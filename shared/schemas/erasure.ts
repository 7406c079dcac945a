import * as z from 'zod';
import { SubjectSchema } from '#shared/identity/subject.ts';
import { shortText } from './common.ts';

export const ERASURE_CHANNELS = ['email', 'web', 'phone', 'letter', 'self_service', 'in_person', 'api'] as const;

export const ErasureRequestSchema = z.strictObject({
  subjects: z.array(SubjectSchema).min(1).max(20),
  requestedVia: z.enum(ERASURE_CHANNELS),
  reference: shortText(128).optional(),
  /** Carry the erasure out now instead of leaving it `received` for review (identity checks, legal holds). */
  immediate: z.boolean().default(false),
});

export const ERASURE_STATUSES = ['received', 'completed', 'overdue'] as const;
export const ErasureListQuerySchema = z.strictObject({
  status: z.enum(ERASURE_STATUSES).optional(),
  limit: z.coerce.number().int().min(1).max(500).default(100),
});
