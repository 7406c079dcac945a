// Erasure deadlines for the DPO, shared by `GET /v1/audit/erasures` (the dashboard) and the CLI `erasures`.
import { type ErasureQuery, erasureDeadline } from '#domain/erasure.ts';
import type { Db } from '#store/db.ts';
import { listErasures } from '#store/erasure.ts';

/**
 * Erasure requests with their deadlines (see `erasureSelection` for what each query lists; `pending`
 * puts the overdue ones first, as received requests are in due-date order). `received` shows only
 * those not yet overdue.
 */
export async function erasureDeadlines(db: Db, tenant: string, query: ErasureQuery & { limit: number }, now: number) {
  const shown = (await listErasures(db, tenant, query, now)).map((r) => erasureDeadline(r, now));
  return query.status === 'received' ? shown.filter((r) => r.status === 'received') : shown;
}
