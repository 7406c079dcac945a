// Group commit of ledger appends: one change each for many subjects, in a few TransactWriteItems.
import { BatchGetCommand, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { DomainError } from '#domain/errors.ts';
import { type Change, emptyState, type NextEvent, type SubjectState } from '#domain/subject-state.ts';
import { mapLimit } from '#shared/concurrency.ts';
import { newUlid } from '#shared/ids.ts';
import type { Db } from './db.ts';
import { backoffMs, StoreUnavailable, sleep, storeFailure } from './errors.ts';
import {
  AlreadyAppliedError,
  type Appended,
  type AppendOptions,
  appendChange,
  chainEvent,
  changeTransaction,
  getStates,
  markerKey,
  onceItems,
  type TransactItem,
} from './subjects.ts';

/** DynamoDB's most items in one TransactWriteItems: 25 subjects of 4 items (event, state, marker, its ref). */
export const MAX_TRANSACT_ITEMS = 100;
/** DynamoDB's most keys in one BatchGetItem. */
const BATCH_GET_MAX = 100;
/** Subjects read together (one BatchGetItem of their states, one of their markers) and then written. */
const SLICE = BATCH_GET_MAX;
/**
 * Slices in flight: one's reads overlap the other's transactions, and at most two transactions are in
 * flight. DynamoDB Local serialises transactions (more would only queue there, and delay reads behind
 * them); on DynamoDB, 1,000 subjects are 20 such round trips.
 */
const SLICES_IN_FLIGHT = 2;
/** Subjects resolved one by one at once (after a race or a replay found by the transaction). */
const ONE_BY_ONE_CONCURRENCY = 16;
/** As {@link appendChange}: markers outlive every provider's redelivery window. */
const DEFAULT_ONCE_TTL_DAYS = 30;
const MAX_BATCH_ROUNDS = 8;

/** One subject's change, as {@link appendChange} takes it. */
export interface BatchChange {
  subjectKey: string;
  /** Pure; may throw a domain error (refused) or return null (nothing to write), as for appendChange. */
  apply: (current: SubjectState, next: NextEvent) => Change | null;
  options: AppendOptions;
}

/**
 * What became of one change — what {@link appendChange} would have returned or thrown: an event recorded,
 * nothing to write (`unchanged`, the decision resting on the state read), a replay of an applied `once` id,
 * or a change refused by the consent rules.
 */
export type BatchResult =
  | { outcome: 'recorded' | 'unchanged'; appended: Appended<Change | null> }
  | { outcome: 'replayed' }
  | { outcome: 'refused'; error: DomainError };

/** A change computed on the state read, with its transaction items, waiting to be committed. */
interface Prepared {
  index: number;
  items: TransactItem[];
  appended: Appended<Change>;
}

/**
 * Applies one change to each of many DIFFERENT subjects of a tenant, as {@link appendChange} would one by
 * one, in a fraction of the store's transactions. By slices of 100 subjects: their states and replay
 * markers are read with BatchGetItem, each change is computed, and each subject's items — the same items
 * appendChange writes, from `changeTransaction` and `onceItems` — go into TransactWriteItems of up to 100
 * items (25 subjects). Two slices are in flight, so one's reads overlap the other's writes. A transaction
 * is all or nothing, so a subject's event and state never part.
 *
 * A cancelled transaction wrote nothing: its subjects whose condition failed (a concurrent writer moved the
 * state, or the replay marker appeared) are then resolved one by one with appendChange (which re-reads,
 * retries, and tells a replay), the others are sent again in a new transaction. So no event is lost or
 * written twice. Any other store failure propagates once the calls in flight have ended (fail closed: the
 * caller answers 503, the provider retries, and what was already applied is then told as a replay).
 * Results come in `changes` order.
 */
export async function appendChanges(db: Db, tenant: string, changes: readonly BatchChange[]): Promise<BatchResult[]> {
  const subjectKeys = changes.map((c) => c.subjectKey);
  if (new Set(subjectKeys).size !== subjectKeys.length) {
    throw new Error('appendChanges takes one change per subject: apply a subject’s changes in waves');
  }
  const results = new Array<BatchResult>(changes.length);
  // The same once id twice in a call (one marker cannot be put twice in a transaction): the second waits
  // until the first is written, then resolves one by one (a replay).
  const onces = new Set<string>();
  const now: number[] = [];
  const later: number[] = [];
  changes.forEach(({ options: { once } }, index) => {
    if (once && onces.has(once)) later.push(index);
    else {
      if (once) onces.add(once);
      now.push(index);
    }
  });
  const slices: number[][] = [];
  for (let i = 0; i < now.length; i += SLICE) slices.push(now.slice(i, i + SLICE));
  await eachLimit(slices, SLICES_IN_FLIGHT, async (slice) => {
    const prepared = await prepareSlice(db, tenant, changes, slice, results);
    const raced: number[] = [];
    for (const group of packed(prepared)) {
      for (const p of await commit(db, group)) {
        if (p.committed) results[p.index] = { outcome: 'recorded', appended: p.appended };
        else raced.push(p.index);
      }
    }
    await oneByOne(db, tenant, changes, raced, results);
  });
  await oneByOne(db, tenant, changes, later, results);
  return results;
}

/**
 * Reads a slice's states and markers, and computes each change on its subject's state: the results that
 * need no write (refused, replayed, unchanged) go into `results`, the changes to write are returned.
 */
async function prepareSlice(
  db: Db,
  tenant: string,
  changes: readonly BatchChange[],
  slice: number[],
  results: BatchResult[],
): Promise<Prepared[]> {
  const onces = slice.flatMap((i) => (changes[i].options.once ? [changes[i].options.once as string] : []));
  const [states, applied] = await Promise.all([
    getStates(
      db,
      tenant,
      slice.map((i) => changes[i].subjectKey),
    ),
    existingMarkers(db, tenant, onces),
  ]);
  const prepared: Prepared[] = [];
  for (const index of slice) {
    const { subjectKey, apply, options } = changes[index];
    const current = states.get(subjectKey) ?? emptyState(subjectKey, options.kind);
    const next: NextEvent = { seq: current.seq + 1, eventId: newUlid() };
    let result: Change | null;
    try {
      result = apply(current, next);
    } catch (error) {
      if (!(error instanceof DomainError)) throw error;
      results[index] = { outcome: 'refused', error };
      continue;
    }
    if (options.once && applied.has(options.once)) {
      // appendChange would find the marker too: by its read (nothing to write) or by its transaction.
      results[index] = { outcome: 'replayed' };
      continue;
    }
    if (result === null) {
      results[index] = { outcome: 'unchanged', appended: { result, event: undefined, state: current } };
      continue;
    }
    const event = chainEvent(current, next, result.event, options.actor, new Date().toISOString());
    const state: SubjectState = {
      ...result.state,
      kind: result.state.kind ?? options.kind,
      version: current.version + 1,
      seq: next.seq,
      head: event.hash,
    };
    const marker = options.once
      ? onceItems(db, tenant, subjectKey, options.once, options.onceTtlDays ?? DEFAULT_ONCE_TTL_DAYS)
      : [];
    const items = changeTransaction(db, tenant, subjectKey, event, state, marker).input.TransactItems ?? [];
    prepared.push({ index, items, appended: { result, event, state } });
  }
  return prepared;
}

/** Changes resolved one by one with appendChange (after a race, a replay, a repeated once id), 16 at a time. */
async function oneByOne(
  db: Db,
  tenant: string,
  changes: readonly BatchChange[],
  indexes: number[],
  results: BatchResult[],
): Promise<void> {
  await eachLimit(indexes, ONE_BY_ONE_CONCURRENCY, async (index) => {
    const { subjectKey, apply, options } = changes[index];
    try {
      const appended = await appendChange(db, tenant, subjectKey, apply, options);
      results[index] = { outcome: appended.event ? 'recorded' : 'unchanged', appended };
    } catch (error) {
      if (error instanceof AlreadyAppliedError) results[index] = { outcome: 'replayed' };
      else if (error instanceof DomainError) results[index] = { outcome: 'refused', error };
      else throw error;
    }
  });
}

/**
 * Runs `fn` over `items`, at most `limit` at a time; after a failure it starts nothing new, waits for the
 * calls in flight, then throws the first error — no write is still under way when the caller answers.
 */
async function eachLimit<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let failure: { error: unknown } | undefined;
  await mapLimit(items, limit, async (item) => {
    if (failure) return;
    try {
      await fn(item);
    } catch (error) {
      failure ??= { error };
    }
  });
  if (failure) throw failure.error;
}

/** The prepared changes in transactions of at most {@link MAX_TRANSACT_ITEMS} items, in order. */
function packed(pending: Prepared[]): Prepared[][] {
  const groups: Prepared[][] = [];
  let size = MAX_TRANSACT_ITEMS;
  for (const p of pending) {
    if (size + p.items.length > MAX_TRANSACT_ITEMS) {
      groups.push([]);
      size = 0;
    }
    groups[groups.length - 1].push(p);
    size += p.items.length;
  }
  return groups;
}

/**
 * Commits a group in one transaction. When it is cancelled by conditions, the subjects whose items failed
 * come back not committed (to be resolved one by one) and the rest is sent again: each round drops at
 * least one subject, so it ends.
 */
async function commit(db: Db, group: Prepared[]): Promise<(Prepared & { committed: boolean })[]> {
  const settled: (Prepared & { committed: boolean })[] = [];
  let batch = group;
  while (batch.length > 0) {
    try {
      await db.client.send(new TransactWriteCommand({ TransactItems: batch.flatMap((p) => p.items) }));
      for (const p of batch) settled.push({ ...p, committed: true });
      return settled;
    } catch (error) {
      const failed = conflicted(error, batch);
      if (!failed) throw storeFailure(error, 'appendChanges');
      for (const p of failed) settled.push({ ...p, committed: false });
      batch = batch.filter((p) => !failed.has(p));
    }
  }
  return settled;
}

/** Cancellation codes that a concurrent writer or a replay causes (the rest is the store failing). */
const CONFLICT_CODES = new Set(['ConditionalCheckFailed', 'TransactionConflict']);

/**
 * The subjects of a cancelled transaction whose items failed a condition or met a concurrent transaction,
 * from the cancellation reasons (one per item, in order). Undefined when the cancellation is not only
 * that (throttling, a validation error, reasons missing): a store failure.
 */
function conflicted(error: unknown, batch: Prepared[]): Set<Prepared> | undefined {
  const e = error as { name?: string; CancellationReasons?: { Code?: string }[] };
  const reasons = e?.name === 'TransactionCanceledException' ? e.CancellationReasons : undefined;
  if (!reasons || reasons.length !== batch.reduce((n, p) => n + p.items.length, 0)) return undefined;
  const failed = new Set<Prepared>();
  let at = 0;
  for (const p of batch) {
    for (const reason of reasons.slice(at, at + p.items.length)) {
      const code = reason?.Code ?? 'None';
      if (CONFLICT_CODES.has(code)) failed.add(p);
      else if (code !== 'None') return undefined;
    }
    at += p.items.length;
  }
  return failed.size > 0 ? failed : undefined;
}

/**
 * The `once` ids whose replay marker exists (strongly consistent BatchGetItem, chunks of 100 in parallel,
 * unprocessed keys retried with backoff a bounded number of times, then 503): a redelivered batch is told
 * without a transaction.
 */
async function existingMarkers(db: Db, tenant: string, onces: string[]): Promise<Set<string>> {
  const all = [...new Set(onces)].map((once) => ({ once, key: markerKey(tenant, once) }));
  const byPk = new Map(all.map(({ once, key }) => [key.PK, once]));
  const found = new Set<string>();
  const chunks: Record<string, unknown>[][] = [];
  for (let i = 0; i < all.length; i += BATCH_GET_MAX) {
    chunks.push(all.slice(i, i + BATCH_GET_MAX).map(({ key }) => key));
  }
  await Promise.all(
    chunks.map(async (chunk) => {
      let pending = chunk;
      for (let round = 0; pending.length > 0; round++) {
        if (round >= MAX_BATCH_ROUNDS) throw new StoreUnavailable('the store kept throttling the batch read');
        if (round > 0) await sleep(backoffMs(round, 20, 500));
        try {
          const out = await db.client.send(
            new BatchGetCommand({
              RequestItems: { [db.table]: { Keys: pending, ConsistentRead: true, ProjectionExpression: 'PK' } },
            }),
          );
          for (const item of out.Responses?.[db.table] ?? []) {
            const once = byPk.get(item.PK as string);
            if (once) found.add(once);
          }
          pending = (out.UnprocessedKeys?.[db.table]?.Keys as Record<string, unknown>[] | undefined) ?? [];
        } catch (error) {
          throw storeFailure(error, 'existingMarkers');
        }
      }
    }),
  );
  return found;
}
