import * as z from 'zod';
import { SubjectSchema } from '#shared/identity/subject.ts';
import { LANGS } from '#shared/pages/i18n.ts';
import { DAY_MS } from '#shared/time.ts';
import { ERASURE_STATUSES } from './erasure.ts';

/** The longest range one request may cover (a year and a day): longer exports are several requests. */
export const MAX_RANGE_DAYS = 366;
export const DEFAULT_PAGE = 1000;
export const MAX_PAGE = 5000;

const DAY = /^\d{4}-\d{2}-\d{2}$/;

/**
 * A range bound: a UTC day (`2026-11-01` = its midnight) or an ISO 8601 time with a zone. Normalised
 * to `toISOString()` form, the form the ledger's `at` uses, so bounds compare with index keys as strings.
 */
export const InstantSchema = z
  .string()
  .refine(
    (s) => (DAY.test(s) || z.iso.datetime({ offset: true }).safeParse(s).success) && !Number.isNaN(Date.parse(s)),
    'must be a day (2026-11-01) or an ISO 8601 time with a zone (2026-11-01T00:00:00Z)',
  )
  .transform((s) => new Date(DAY.test(s) ? `${s}T00:00:00.000Z` : s).toISOString());

/** Checks `[from, to)`: from before to, at most {@link MAX_RANGE_DAYS} days. */
function checkRange(r: { from: string; to: string }, ctx: z.RefinementCtx) {
  if (r.from >= r.to)
    ctx.addIssue({ code: 'custom', path: ['to'], message: 'must be after from (the range is [from, to))' });
  else if (Date.parse(r.to) - Date.parse(r.from) > MAX_RANGE_DAYS * DAY_MS) {
    ctx.addIssue({
      code: 'custom',
      path: ['to'],
      message: `the range may cover at most ${MAX_RANGE_DAYS} days: export longer periods in several requests`,
    });
  }
}

/** `GET /v1/audit/events` query. */
export const AuditEventsQuerySchema = z
  .strictObject({
    from: InstantSchema,
    to: InstantSchema,
    format: z.enum(['ndjson', 'csv']).default('ndjson'),
    limit: z.coerce.number().int().min(1).max(MAX_PAGE).default(DEFAULT_PAGE),
    cursor: z.string().min(1).max(512).optional(),
  })
  .superRefine(checkRange);

/** `GET /v1/audit/verify` and `/v1/audit/summary` query. */
export const AuditRangeQuerySchema = z.strictObject({ from: InstantSchema, to: InstantSchema }).superRefine(checkRange);

/** `GET /v1/audit/erasures` query: requests by shown status (`pending` = received or overdue), optionally due within N days. */
export const AuditErasuresQuerySchema = z.strictObject({
  status: z.enum([...ERASURE_STATUSES, 'pending']).optional(),
  dueWithinDays: z.coerce.number().int().min(0).max(366).optional(),
  limit: z.coerce.number().int().min(1).max(500).default(200),
});

/** `POST /v1/subjects/access` body: the subject, and the language of the copy's plain-language parts (default `en`). */
export const SubjectAccessSchema = z.strictObject({ subject: SubjectSchema, lang: z.enum(LANGS).optional() });
