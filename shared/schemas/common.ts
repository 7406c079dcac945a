import * as z from 'zod';

/** ISO 8601 timestamp with a zone (`Z` or `+01:00`); answered back in UTC. */
export const TimestampSchema = z.iso
  .datetime({ offset: true, message: 'must be an ISO 8601 time with a zone, e.g. 2026-11-24T10:00:00Z' })
  .transform((s) => new Date(s).toISOString());

/** Free text fields are bounded so no request can bloat an item. */
export const shortText = (max = 256) => z.string().min(1).max(max);
