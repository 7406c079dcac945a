// Receipts: an event with its leaf index, its inclusion proof and the signed checkpoint that proof leads
// to — everything a person or a regulator needs to check, offline, that the event is in the log. Shared by
// `GET /v1/receipts/{eventId}` (an API key) and the preference centre (the person's own link).
import { inclusionNodes, inclusionProof, nodeKey } from '#shared/log/merkle.ts';
import type { CheckpointView, Receipt } from '#shared/log/receipt.ts';
import { auditItems } from '#store/audit-index.ts';
import type { Db } from '#store/db.ts';
import { getCheckpoint, getHead, getNodes, leafOf, type StoredCheckpoint } from '#store/log.ts';
import { getEventItem, listEventItems, toEvent } from '#store/subjects.ts';
import { ulidTime } from './log-verify.ts';

/** A stored checkpoint as the API shows it (the table's extra attributes left out). */
export function checkpointView(cp: StoredCheckpoint): CheckpointView {
  return {
    origin: cp.origin,
    treeSize: cp.treeSize,
    rootHash: cp.rootHash,
    timestamp: cp.timestamp,
    keyId: cp.keyId,
    note: cp.note,
  };
}

/** What a receipt request comes to. */
export type ReceiptResult =
  | { kind: 'receipt'; receipt: Receipt }
  | { kind: 'not_found'; detail: string }
  | { kind: 'not_sealed'; detail: string };

/** How long an event id's time and its recording time may differ when looking for an unsealed event. */
const LOOKUP_MARGIN_MS = 60_000;

/**
 * Is an event with this id recorded (in the audit index) though not sealed yet? Only recent ids are looked
 * for: an event older than what the sealer has passed and in no leaf is not going to be sealed.
 */
async function recordedRecently(db: Db, tenant: string, eventId: string, watermark?: string): Promise<boolean> {
  const t = ulidTime(eventId);
  if (t === undefined) return false;
  if (watermark && new Date(t + LOOKUP_MARGIN_MS).toISOString() < watermark) return false;
  const range = {
    from: new Date(t - LOOKUP_MARGIN_MS).toISOString(),
    to: new Date(t + LOOKUP_MARGIN_MS).toISOString(),
  };
  for await (const item of auditItems(db, tenant, range, { projection: 'eventId, GSI1SK', pageSize: 1000 })) {
    if (item.eventId === eventId) return true;
  }
  return false;
}

const NOT_SEALED = (eventId: string) =>
  ({
    kind: 'not_sealed',
    detail: `event ${eventId} is recorded but not sealed into the log yet (a few seconds); retry`,
  }) as const;

/**
 * The receipt of an event of the tenant; with `subjectKey`, only of that subject's events (the preference
 * centre: a link names one person). The proof leads to the latest checkpoint.
 */
export async function receiptOf(
  db: Db,
  tenant: string,
  eventId: string,
  options: { subjectKey?: string } = {},
): Promise<ReceiptResult> {
  const notFound = { kind: 'not_found', detail: `no event ${eventId}` } as const;
  const leaf = await leafOf(db, tenant, eventId);
  if (!leaf) {
    if (options.subjectKey) {
      const items = await listEventItems(db, tenant, options.subjectKey);
      return items.some((item) => item.eventId === eventId) ? NOT_SEALED(eventId) : notFound;
    }
    const head = await getHead(db, tenant);
    return (await recordedRecently(db, tenant, eventId, head?.watermark)) ? NOT_SEALED(eventId) : notFound;
  }
  if (options.subjectKey && leaf.subjectKey !== options.subjectKey) return notFound;
  const [atSeq, checkpoint] = await Promise.all([
    getEventItem(db, tenant, leaf.subjectKey, leaf.seq),
    getCheckpoint(db, tenant),
  ]);
  // Not at its seq any more (a rewritten chain): served from wherever it is now, so its receipt fails to verify.
  const item =
    atSeq?.eventId === eventId
      ? atSeq
      : (await listEventItems(db, tenant, leaf.subjectKey)).find((candidate) => candidate.eventId === eventId);
  if (!item) {
    return { kind: 'not_found', detail: `event ${eventId} is no longer kept (erasure or retention ended its proof)` };
  }
  if (!checkpoint || leaf.leafIndex >= checkpoint.treeSize) return NOT_SEALED(eventId);
  const nodes = await getNodes(db, tenant, inclusionNodes(leaf.leafIndex, checkpoint.treeSize));
  const proof = inclusionProof(leaf.leafIndex, checkpoint.treeSize, (id) => {
    const hash = nodes.get(nodeKey(id));
    if (!hash) throw new Error(`log node ${nodeKey(id)} is missing`);
    return hash;
  });
  return {
    kind: 'receipt',
    receipt: {
      event: { ...toEvent(item), subjectKey: leaf.subjectKey },
      leafIndex: leaf.leafIndex,
      inclusionProof: proof.map((h) => h.toString('base64')),
      checkpoint: checkpointView(checkpoint),
    },
  };
}
