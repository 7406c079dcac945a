import * as z from 'zod';

/** ISO 8601 timestamp with a zone (`Z` or `+01:00`); answered back in UTC. */
export const TimestampSchema = z.iso
  .datetime({ offset: true, message: 'must be an ISO 8601 time with a zone, e.g. 2026-11-24T10:00:00Z' })
  .transform((s) => new Date(s).toISOString());

/** Free text fields are bounded so no request can bloat an item. */
export const shortText = (max = 256) => z.string().min(1).max(max);

/** Page sizes of the paged listings (`?limit=`): 100 unless asked, at most 1000. */
export const DEFAULT_PAGE_LIMIT = 100;
export const MAX_PAGE_LIMIT = 1000;

/** `?limit=&cursor=` of a paged listing; the next page's cursor comes back in `X-Next-Cursor`. */
export const pageQuery = {
  limit: z.coerce.number().int().min(1).max(MAX_PAGE_LIMIT).default(DEFAULT_PAGE_LIMIT),
  cursor: z.string().min(1).max(512).optional(),
};
export const PageQuerySchema = z.strictObject(pageQuery);
export type PageQuery = z.infer<typeof PageQuerySchema>;

/** The header of a page that has a next one (absent on the last page). */
export const nextCursorHeader = (cursor: string | undefined): Record<string, string> =>
  cursor ? { 'x-next-cursor': cursor } : {};
