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
/**
 * Group transactions in flight at once. DynamoDB Local serialises transactions, so more buys nothing there;
 * on DynamoDB, transactions on different items run side by side.
 */
const TRANSACTIONS_IN_FLIGHT = 4;
/** Subjects resolved one by one at once (after a race or a replay found by the transaction). */
const ONE_BY_ONE_CONCURRENCY = 16;
/** As {@link appendChange}: markers outlive every provider's redelivery window. */
const DEFAULT_ONCE_TTL_DAYS = 30;
const BATCH_GET_CHUNK = 100;
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
 * one, in a fraction of the store's transactions: their states (and replay markers) are read with
 * BatchGetItem, each change is computed, and each subject's items — the same items appendChange writes,
 * from `changeTransaction` and `onceItems` — go into TransactWriteItems of up to 100 items (25 subjects),
 * a few in flight. A transaction is all or nothing, so a subject's event and state never part.
 *
 * A cancelled transaction wrote nothing: its subjects whose condition failed (a concurrent writer moved the
 * state, or the replay marker appeared) are then resolved one by one with appendChange (which re-reads,
 * retries, and tells a replay), the others are sent again in a new transaction. So no event is lost or
 * written twice. Any other store failure propagates (fail closed: the caller answers 503, the provider
 * retries, and what was already applied is then recognised as a replay). Results come in `changes` order.
 */
export async function appendChanges(db: Db, tenant: string, changes: readonly BatchChange[]): Promise<BatchResult[]> {
  const subjectKeys = changes.map((c) => c.subjectKey);
  if (new Set(subjectKeys).size !== subjectKeys.length) {
    throw new Error('appendChanges takes one change per subject: apply a subject’s changes in waves');
  }
  const onces = changes.flatMap((c) => (c.options.once ? [c.options.once] : []));
  const [states, applied] = await Promise.all([getStates(db, tenant, subjectKeys), existingMarkers(db, tenant, onces)]);

  const results = new Array<BatchResult>(changes.length);
  const pending: Prepared[] = [];
  const oneByOne: number[] = [];
  const onceInCall = new Set<string>();
  changes.forEach((change, index) => {
    const { subjectKey, apply, options } = change;
    if (options.once && onceInCall.has(options.once)) {
      // The same marker twice in one transaction is invalid: the second waits for the first (then a replay).
      oneByOne.push(index);
      return;
    }
    if (options.once) onceInCall.add(options.once);
    const current = states.get(subjectKey) ?? emptyState(subjectKey, options.kind);
    const next: NextEvent = { seq: current.seq + 1, eventId: newUlid() };
    let result: Change | null;
    try {
      result = apply(current, next);
    } catch (error) {
      if (!(error instanceof DomainError)) throw error;
      results[index] = { outcome: 'refused', error };
      return;
    }
    if (options.once && applied.has(options.once)) {
      // appendChange would find the marker too: by its read (nothing to write) or by its transaction.
      results[index] = { outcome: 'replayed' };
      return;
    }
    if (result === null) {
      results[index] = { outcome: 'unchanged', appended: { result, event: undefined, state: current } };
      return;
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
    pending.push({ index, items, appended: { result, event, state } });
  });

  await eachLimit(packed(pending), TRANSACTIONS_IN_FLIGHT, async (group) => {
    for (const p of await commit(db, group)) {
      if (p.committed) results[p.index] = { outcome: 'recorded', appended: p.appended };
      else oneByOne.push(p.index);
    }
  });

  await eachLimit(oneByOne, ONE_BY_ONE_CONCURRENCY, async (index) => {
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
  return results;
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
  for (let i = 0; i < all.length; i += BATCH_GET_CHUNK) {
    chunks.push(all.slice(i, i + BATCH_GET_CHUNK).map(({ key }) => key));
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
