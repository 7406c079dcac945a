import * as z from 'zod';

/** Leaves one `GET /v1/log/leaves` may return. */
export const MAX_LEAVES = 1000;

/** A tree size or leaf index in a query string: digits only (no sign, exponent, blank or fraction). */
const Count = z
  .string()
  .regex(/^\d{1,15}$/, 'must be a whole number (digits only)')
  .transform(Number);

/** `GET /v1/log/consistency` query: `1 ≤ from ≤ to` (`to` within the tree is checked against the tree). */
export const LogConsistencyQuerySchema = z.strictObject({ from: Count, to: Count }).superRefine((q, ctx) => {
  if (q.from < 1) ctx.addIssue({ code: 'custom', path: ['from'], message: 'must be at least 1' });
  else if (q.from > q.to) ctx.addIssue({ code: 'custom', path: ['to'], message: 'must be at least from' });
});

/** `GET /v1/log/leaves` query: `[start, end)`, at most {@link MAX_LEAVES} leaves. */
export const LogLeavesQuerySchema = z.strictObject({ start: Count, end: Count }).superRefine((q, ctx) => {
  if (q.end < q.start) ctx.addIssue({ code: 'custom', path: ['end'], message: 'must be at least start' });
  else if (q.end - q.start > MAX_LEAVES) {
    ctx.addIssue({ code: 'custom', path: ['end'], message: `at most ${MAX_LEAVES} leaves per request` });
  }
});

/** `GET /v1/log/public-key` query: `all=true` lists every key (rotation keeps the old ones). */
export const LogPublicKeyQuerySchema = z.strictObject({ all: z.enum(['true', 'false']).optional() });

/** An event id in a path: a ULID. Anything else names no event (404). */
export const EVENT_ID = /^[0-9A-HJKMNP-TV-Z]{26}$/;
