// Erasure deadlines for the DPO, shared by `GET /v1/audit/erasures` (the dashboard) and the CLI `erasures`.
import { type ErasureQuery, erasureDeadline, keptOf } from '#domain/erasure.ts';
import type { Db } from '#store/db.ts';
import { listErasures } from '#store/erasure.ts';
import { getPolicy } from '#store/policy.ts';

/**
 * Erasure requests with their deadlines (see `erasureSelection` for what each query lists; `pending`
 * puts the overdue ones first, as received requests are in due-date order) and, once completed, what is
 * kept, why and until when. `received` shows only those not yet overdue.
 */
export async function erasureDeadlines(db: Db, tenant: string, query: ErasureQuery & { limit: number }, now: number) {
  const [requests, policy] = await Promise.all([listErasures(db, tenant, query, now), getPolicy(db, tenant)]);
  const shown = requests.map((r) => ({ ...erasureDeadline(r, now), kept: keptOf(r, policy.retention.proofDays) }));
  return query.status === 'received' ? shown.filter((r) => r.status === 'received') : shown;
}
