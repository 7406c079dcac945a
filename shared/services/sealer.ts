// The sealer: integrates the tenants' new ledger events into their Merkle trees in batches, signs a checkpoint
// per batch and anchors it outside the table. Off the gate's hot path: it reads the audit index the ledger
// append already writes, and the append writes nothing more. Shared by the scheduled function, the local
// runtime's loop and the tests.

import { mapLimit } from '#shared/concurrency.ts';
import type { Anchor } from '#shared/log/anchor.ts';
import {
  appendNodes,
  frontierNodes,
  leafHash,
  type NodeGetter,
  type NodeId,
  nodeKey,
  rootHash,
} from '#shared/log/merkle.ts';
import { type LogSigner, logOrigin, signCheckpoint } from '#shared/log/note.ts';
import { logger } from '#shared/log.ts';
import { auditItems } from '#store/audit-index.ts';
import type { Db } from '#store/db.ts';
import { backoffMs, sleep } from '#store/errors.ts';
import {
  advanceScan,
  type BatchLeaf,
  batchTiles,
  claimBatch,
  edgeTiles,
  finalizeBatch,
  getBatch,
  getHead,
  getTiles,
  type LogBatch,
  LogConflict,
  LogCorrupted,
  type LogHead,
  listCheckpoints,
  listLogTenants,
  markAnchored,
  nodesFrom,
  registerLog,
  sealedEventIds,
  writeBatch,
} from '#store/log.ts';

/**
 * Events are sealed once they are this old: a ledger transaction takes its `recordedAt` before it commits, so
 * an event may appear in the audit index a little after its time. Later stragglers are caught by the sweep.
 */
export const SEAL_LAG_MS = 2_000;
/** Events per batch (one claimed batch item holds them all: ~140 bytes each, under DynamoDB's 400 KB). */
export const SEAL_BATCH = 1_000;
const MAX_BATCH = 2_000;
/** Late events per sweep batch: each is a condition in the claim transaction (at most 100 items). */
const SWEEP_BATCH = 90;

export interface SealOptions {
  signer: LogSigner;
  anchor: Anchor;
  /** The run's clock (default: now). Events recorded after `now - lagMs` wait for the next run. */
  now?: Date;
  lagMs?: number;
  /** Events per batch (default {@link SEAL_BATCH}, at most 2,000). */
  batchSize?: number;
  /** Stop starting new batches after this many (default: until caught up). */
  maxBatches?: number;
  /** Stop starting new batches at this epoch time in ms (a Lambda's remaining time). */
  deadline?: number;
  /** BatchWriteItem requests in flight while writing a batch's items. */
  parallel?: number;
  /**
   * Where a tenant without a log starts reading the audit index (an ISO time). Default: the day of its first
   * API key; a tenant without one and without `since` is skipped.
   */
  since?: string;
  /**
   * Re-read the audit index this far behind the watermark and seal any event found there that is in no leaf
   * (committed later than the lag, or late in the index). Off (0) by default.
   */
  sweepMs?: number;
  /** Test hook: called after a batch's tiles and EVT items are written, before HEAD (throw = a crash). */
  afterItems?: (batch: LogBatch) => void | Promise<void>;
}

export interface SealReport {
  tenant: string;
  /** Events appended by this run (late ones included). */
  sealed: number;
  /** Of which late events found by the sweep. */
  late: number;
  batches: number;
  /** Tree size after the run. */
  treeSize: number;
  /** Checkpoints anchored by this run. */
  anchored: number;
  /** True when the run stopped with events left (maxBatches or deadline). */
  more: boolean;
}

const iso = (ms: number) => new Date(ms).toISOString();

/** The larger of two audit-index positions (sort keys `<recordedAt>#<eventId>` or bare ISO times). */
const later = (a: string | undefined, b: string | undefined) => [a ?? '', b ?? ''].sort()[1];

/** A node getter over nodes already read or computed; a missing one is a broken store. */
function getterOf(...maps: Map<string, Buffer>[]): NodeGetter {
  return (id: NodeId) => {
    const key = nodeKey(id);
    for (const map of maps) {
      const found = map.get(key);
      if (found) return found;
    }
    throw new LogCorrupted(`tree node ${key} is missing`);
  };
}

/** An audit-index item as a leaf of the log. */
function toBatchLeaf(item: Record<string, unknown>): BatchLeaf & { sortKey: string } {
  return {
    eventId: item.eventId as string,
    subjectKey: item.subjectKey as string,
    seq: Number(item.seq),
    eventHash: item.hash as string,
    sortKey: item.GSI1SK as string,
  };
}

const EVENT_FIELDS = 'eventId, subjectKey, seq, hash, GSI1SK';

/** Up to `limit` events recorded strictly after `after` and before `before`, in audit-index order. */
async function readEvents(db: Db, tenant: string, after: string, before: string, limit: number) {
  const found: ReturnType<typeof toBatchLeaf>[] = [];
  if (after >= before) return found;
  // Each of the 8 day shards reads pages of about a quarter batch: the merge reads ~2 batches for one.
  const pageSize = Math.max(50, Math.ceil(limit / 4));
  for await (const item of auditItems(
    db,
    tenant,
    { from: after, to: before },
    { after, projection: EVENT_FIELDS, pageSize },
  )) {
    found.push(toBatchLeaf(item));
    if (found.length >= limit) break;
  }
  return found;
}

/**
 * Appends the claimed (pending) batch of `head`: reads the committed frontier, writes the batch's leaves, EVT
 * items and completed nodes, signs the new checkpoint and finalizes. Everything written is a function of the
 * batch and the committed tree, so a crashed run's successor (or a concurrent sealer) repeats it identically.
 * Returns the head after it (re-read when another sealer finalized it first).
 */
async function completeBatch(db: Db, head: LogHead, options: SealOptions, now: string): Promise<LogHead> {
  const { tenant, pending } = head;
  if (!pending) return head;
  const batch = await getBatch(db, tenant, pending.size);
  if (!batch) {
    // Finalized meanwhile by another sealer (the batch item goes in the same transaction).
    const fresh = await freshHead(db, tenant);
    if (fresh.pending?.size === pending.size) throw new LogCorrupted(`the batch at ${pending.size} is missing`);
    return fresh;
  }
  const size = batch.size + batch.leaves.length;
  // The tiles of the right edge hold the committed frontier; the batch extends them.
  const edges = await getTiles(db, tenant, edgeTiles(batch.size, size));
  const frontier = nodesFrom(edges, frontierNodes(batch.size));
  const leaves = batch.leaves.map((leaf) => leafHash(Buffer.from(leaf.eventHash, 'hex')));
  const added = appendNodes(batch.size, leaves, getterOf(frontier));
  await writeBatch(db, tenant, batch, batchTiles(batch, edges, added), options.parallel);
  await options.afterItems?.(batch);
  const root = rootHash(size, getterOf(added, frontier));
  const origin = logOrigin(tenant);
  const note = signCheckpoint({ origin, treeSize: size, rootHash: root }, options.signer);
  try {
    return await finalizeBatch(db, head, {
      origin,
      treeSize: size,
      rootHash: root.toString('base64'),
      timestamp: now,
      keyId: options.signer.keyId,
      note,
    });
  } catch (error) {
    if (!(error instanceof LogConflict)) throw error;
    return freshHead(db, tenant);
  }
}

/** Anchors every stored checkpoint above `head.anchored` (those of this run, and any a crash left behind). */
async function anchorCheckpoints(db: Db, head: LogHead, anchor: Anchor): Promise<number> {
  if (head.size <= head.anchored) return 0;
  const checkpoints = await listCheckpoints(db, head.tenant, { from: head.anchored + 1, to: head.size });
  for (const cp of checkpoints) await anchor.put(head.tenant, cp.treeSize, cp.note);
  await markAnchored(db, head.tenant, head.size);
  return checkpoints.length;
}

/**
 * Seals a tenant's new events: finishes a batch a crashed run left pending, then appends batches of the
 * events recorded after the watermark (and before `now - lag`) in audit-index order until caught up,
 * optionally sweeps for late events, and anchors the new checkpoints. Safe to run concurrently with itself
 * (one claim wins each batch; the loser finishes the winner's batch or moves on) and after any crash.
 */
export async function sealTenant(db: Db, tenant: string, options: SealOptions): Promise<SealReport> {
  const nowMs = (options.now ?? new Date()).getTime();
  const now = iso(nowMs);
  const cutoff = iso(nowMs - (options.lagMs ?? SEAL_LAG_MS));
  const batchSize = Math.min(options.batchSize ?? SEAL_BATCH, MAX_BATCH);
  const report: SealReport = { tenant, sealed: 0, late: 0, batches: 0, treeSize: 0, anchored: 0, more: false };
  let head = (await getHead(db, tenant)) ?? (await registerLog(db, tenant, options.since));
  if (!head) return report;
  const stop = () =>
    (options.maxBatches !== undefined && report.batches >= options.maxBatches) ||
    (options.deadline !== undefined && Date.now() >= options.deadline);

  // The next batch's events are read while the current batch is written (they start at its last event).
  let prefetched: { from: string; events: ReturnType<typeof readEvents> } | undefined;
  for (let conflicts = 0; ; ) {
    if (head.pending) {
      const before = head.size;
      head = await completeBatch(db, head, options, now);
      if (head.size > before) report.batches++;
      else if (++conflicts > 50) throw new LogConflict();
      continue;
    }
    if (stop()) {
      report.more = true;
      break;
    }
    const from = later(head.watermark, head.scannedTo);
    const events =
      prefetched?.from === from ? await prefetched.events : await readEvents(db, tenant, from, cutoff, batchSize);
    prefetched = undefined;
    try {
      if (events.length === 0) {
        // Idle: move the reading position on once a day, so the next runs read one or two days of index.
        if (from.slice(0, 10) < cutoff.slice(0, 10)) head = await advanceScan(db, head, cutoff);
        break;
      }
      const last = events[events.length - 1].sortKey;
      head = await claimBatch(
        db,
        head,
        events.map(({ sortKey: _, ...leaf }) => leaf),
        // Caught up: everything up to the cutoff was read, whatever the last event's time.
        { watermark: last, ...(events.length < batchSize && cutoff > head.scannedTo ? { scannedTo: cutoff } : {}) },
      );
      report.sealed += events.length;
      if (events.length === batchSize) {
        const next = later(head.watermark, head.scannedTo);
        prefetched = { from: next, events: readEvents(db, tenant, next, cutoff, batchSize) };
        // Not awaited when the head moves elsewhere meanwhile (a concurrent sealer): never an unhandled rejection.
        prefetched.events.catch(() => undefined);
      }
    } catch (error) {
      if (!(error instanceof LogConflict) || ++conflicts > 50) throw error;
      await sleep(backoffMs(Math.min(conflicts, 4), 8, 100));
      head = await freshHead(db, tenant);
    }
  }
  if (options.sweepMs && !stop()) {
    const swept = await sweepLate(db, head, options, now);
    head = swept.head;
    report.late = swept.sealed;
    report.sealed += swept.sealed;
    report.batches += swept.batches;
  }
  report.anchored = await anchorCheckpoints(db, head, options.anchor);
  report.treeSize = head.size;
  return report;
}

/**
 * Looks `sweepMs` behind the reading position for events that are in the audit index but in no leaf (a
 * transaction that committed after the lag, an index entry that showed up late) and appends them, in batches
 * whose claim requires each event to be still unsealed (so two sweeps cannot seal one event twice).
 */
async function sweepLate(db: Db, start: LogHead, options: SealOptions, now: string) {
  let head = start;
  const to = later(head.watermark, head.scannedTo);
  const toMs = Date.parse(to.slice(0, 24));
  const range = { from: iso(toMs - (options.sweepMs ?? 0)), to: iso(toMs + 1) };
  const seen: ReturnType<typeof toBatchLeaf>[] = [];
  for await (const item of auditItems(db, head.tenant, range, { projection: EVENT_FIELDS, pageSize: 1000 })) {
    if ((item.GSI1SK as string) <= to) seen.push(toBatchLeaf(item));
  }
  const unsealed = async (events: typeof seen) => {
    const sealed = await sealedEventIds(
      db,
      head.tenant,
      events.map((e) => e.eventId),
    );
    return events.filter((e) => !sealed.has(e.eventId));
  };
  let missing = await unsealed(seen);
  let sealed = 0;
  let batches = 0;
  for (let conflicts = 0; missing.length > 0; ) {
    const chunk = missing.slice(0, SWEEP_BATCH);
    try {
      head = await claimBatch(
        db,
        head,
        chunk.map(({ sortKey: _, ...leaf }) => leaf),
        {},
        chunk.map((e) => e.eventId),
      );
      head = await completeBatch(db, head, options, now);
      missing = missing.slice(chunk.length);
      sealed += chunk.length;
      batches++;
    } catch (error) {
      if (!(error instanceof LogConflict) || ++conflicts > 50) throw error;
      // Another sealer moved the head (or sealed one of these): finish its batch, then look again.
      await sleep(backoffMs(conflicts, 20, 500));
      head = await freshHead(db, head.tenant);
      if (head.pending) head = await completeBatch(db, head, options, now);
      missing = await unsealed(missing);
    }
  }
  if (sealed > 0) logger.warn('sealer appended late events', { tenant: head.tenant, late: sealed });
  return { head, sealed, batches };
}

/** The head again, after a conflict; it never disappears once the log exists. */
async function freshHead(db: Db, tenant: string): Promise<LogHead> {
  const head = await getHead(db, tenant);
  if (!head) throw new LogCorrupted('the log head is gone');
  return head;
}

const lastFailure = new Map<string, { errorName: string; at: number }>();

export interface SealAllOptions extends SealOptions {
  /** These tenants only (default: every tenant with a log, from the sparse HEAD index). */
  tenants?: string[];
  /** Tenants sealed at once. */
  concurrency?: number;
}

/**
 * Seals every tenant with a log (or the ones given): one {@link sealTenant} per tenant, a few at a time. A
 * tenant that fails is logged (its name and the error's name) and counted; the others go on.
 */
export async function sealAll(db: Db, options: SealAllOptions): Promise<{ reports: SealReport[]; failed: string[] }> {
  const tenants = options.tenants ?? (await listLogTenants(db));
  const failed: string[] = [];
  const reports = await mapLimit(tenants, options.concurrency ?? 4, async (tenant) => {
    try {
      return await sealTenant(db, tenant, options);
    } catch (error) {
      failed.push(tenant);
      const errorName = (error as Error).name;
      // Once a minute per tenant and kind of error: the local loop runs every 500 ms.
      const last = lastFailure.get(tenant);
      if (!last || last.errorName !== errorName || Date.now() - last.at > 60_000) {
        lastFailure.set(tenant, { errorName, at: Date.now() });
        logger.error('sealing a tenant failed', { tenant, errorName });
      }
      return undefined;
    }
  });
  return { reports: reports.filter((r): r is SealReport => r !== undefined), failed };
}

/** A run's counts over every tenant. */
export function sealTotals(result: { reports: SealReport[]; failed: string[] }) {
  const sum = (f: (r: SealReport) => number) => result.reports.reduce((n, r) => n + f(r), 0);
  return {
    tenants: result.reports.length,
    sealed: sum((r) => r.sealed),
    late: sum((r) => r.late),
    batches: sum((r) => r.batches),
    anchored: sum((r) => r.anchored),
    failed: result.failed.length,
  };
}
