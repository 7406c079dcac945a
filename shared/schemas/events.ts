import * as z from 'zod';
import { CHANGE_TYPES } from '#domain/changes.ts';
import { shortText, TimestampSchema } from './common.ts';

/** An endpoint id as the API hands them out (`ep_` + ULID). */
export const EndpointIdSchema = z.string().regex(/^ep_[0-9A-HJKMNP-TV-Z]{26}$/, 'is not an endpoint id (ep_…)');

/** `POST /v1/event-endpoints`: where to send which changes. The URL's rules are checked by the handler too. */
export const EndpointCreateSchema = z.strictObject({
  url: z.string().min(1).max(2048),
  types: z
    .array(z.enum(CHANGE_TYPES))
    .min(1)
    .max(CHANGE_TYPES.length)
    .refine((types) => new Set(types).size === types.length, 'each type once')
    .optional(),
  description: shortText(256).optional(),
});
export type EndpointCreate = z.infer<typeof EndpointCreateSchema>;

/** `POST /v1/event-endpoints/{id}/rotate-secret?overlapHours=`: how long the old secret still signs (0–168, default 24). */
export const RotateQuerySchema = z.strictObject({
  overlapHours: z.coerce.number().int().min(0).max(168).default(24),
});

/** `GET /v1/event-endpoints/{id}/deliveries`. */
export const DeliveriesQuerySchema = z.strictObject({
  status: z.enum(['pending', 'delivered', 'failed']).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  cursor: z.string().min(1).max(2048).optional(),
});

/** `POST /v1/event-endpoints/{id}/replay`: every change recorded since then is sent again. */
export const ReplaySchema = z.strictObject({ since: TimestampSchema });

/** `GET /v1/changes`. */
export const ChangesQuerySchema = z.strictObject({
  after: z.string().min(1).max(512).optional(),
  /** Where a first poll (no `after`) starts; default 30 days back. */
  since: TimestampSchema.optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});
