import { createHash, randomBytes } from 'node:crypto';
import {
  BatchGetCommand,
  GetCommand,
  QueryCommand,
  ScanCommand,
  TransactWriteCommand,
  type TransactWriteCommandInput,
} from '@aws-sdk/lib-dynamodb';
import { type Actor, detailsDigest, GENESIS_HASH, hashEvent, type LedgerEvent } from '#domain/ledger.ts';
import { type Change, emptyState, type NextEvent, type SubjectState } from '#domain/subject-state.ts';
import type { IdentifierKind } from '#shared/identity/subject.ts';
import { newUlid } from '#shared/ids.ts';
import { DAY_MS, toSec } from '#shared/time.ts';
import type { Db } from './db.ts';
import { backoffMs, isWriteConflict, StoreUnavailable, sleep, storeFailure, WriteContention } from './errors.ts';
import { decodeState, encodeState } from './state-codec.ts';
import { AUDIT_SHARDS, keys } from './table.ts';

/** Attempts of a contended append before giving up with 503 (40 concurrent writers need ~20 here). */
const MAX_APPEND_ATTEMPTS = 40;
const BATCH_GET_CHUNK = 100;
const MAX_BATCH_ROUNDS = 8;

/** The state item of a subject as stored (shared/store/state-codec.ts): its keys and its encoded state. */
export function stateItem(tenant: string, subjectKey: string, state: SubjectState): Record<string, unknown> {
  return { PK: keys.subject(tenant, subjectKey), SK: keys.state, ...encodeState(state) };
}

/** The state of a state item read from the table, whichever layout it was written in. */
export function toState(tenant: string, item: Record<string, unknown> | undefined): SubjectState | undefined {
  if (!item) return undefined;
  return decodeState(item, String(item.PK).slice(keys.subject(tenant, '').length));
}

/**
 * The write of a subject's new state: put on condition that the stored version is still the one the change
 * was made from (`state.version - 1`; none stored for version 0). The version is `n` in the compact layout
 * and `version` in the layout of earlier releases (an item in it is re-encoded by this write).
 */
export function statePut(tenant: string, subjectKey: string, state: SubjectState) {
  const expected = state.version - 1;
  return {
    Item: stateItem(tenant, subjectKey, state),
    ...(expected === 0
      ? { ConditionExpression: 'attribute_not_exists(PK)' }
      : {
          ConditionExpression: '#n = :expected OR #version = :expected',
          ExpressionAttributeNames: { '#n': 'n', '#version': 'version' },
          ExpressionAttributeValues: { ':expected': expected },
        }),
  };
}

/** Reads a subject's state item. Strongly consistent: a withdrawal counts for the very next check. */
export async function getState(db: Db, tenant: string, subjectKey: string): Promise<SubjectState | undefined> {
  try {
    const out = await db.client.send(
      new GetCommand({
        TableName: db.table,
        Key: { PK: keys.subject(tenant, subjectKey), SK: keys.state },
        ConsistentRead: true,
      }),
    );
    return toState(tenant, out.Item);
  } catch (error) {
    throw storeFailure(error, 'getState');
  }
}

/**
 * Reads many state items: BatchGetItem in parallel chunks of 100, unprocessed keys retried with
 * backoff a bounded number of times, then 503 (fail closed).
 */
export async function getStates(db: Db, tenant: string, subjectKeys: string[]): Promise<Map<string, SubjectState>> {
  const unique = [...new Set(subjectKeys)];
  const found = new Map<string, SubjectState>();
  const chunks: string[][] = [];
  for (let i = 0; i < unique.length; i += BATCH_GET_CHUNK) chunks.push(unique.slice(i, i + BATCH_GET_CHUNK));
  await Promise.all(
    chunks.map(async (chunk) => {
      let pending: Record<string, unknown>[] = chunk.map((sk) => ({ PK: keys.subject(tenant, sk), SK: keys.state }));
      for (let round = 0; pending.length > 0; round++) {
        if (round >= MAX_BATCH_ROUNDS) throw new StoreUnavailable('the store kept throttling the batch read');
        if (round > 0) await sleep(backoffMs(round, 20, 500));
        try {
          const out = await db.client.send(
            new BatchGetCommand({ RequestItems: { [db.table]: { Keys: pending, ConsistentRead: true } } }),
          );
          for (const item of out.Responses?.[db.table] ?? []) {
            const state = toState(tenant, item);
            if (state) found.set(state.subjectKey, state);
          }
          pending = (out.UnprocessedKeys?.[db.table]?.Keys as Record<string, unknown>[] | undefined) ?? [];
        } catch (error) {
          throw storeFailure(error, 'getStates');
        }
      }
    }),
  );
  return found;
}

/**
 * Every subject of the tenant, from its state items: a parallel Scan (CLI `verify` without a range,
 * an offline job; never on a request path).
 */
export async function allSubjects(db: Db, tenant: string, segments = 4): Promise<Set<string>> {
  const seen = new Set<string>();
  const prefix = keys.subject(tenant, '');
  await scanSubjects(db, tenant, { events: false, projection: 'PK' }, segments, (items) => {
    for (const item of items) seen.add(String(item.PK).slice(prefix.length));
  });
  return seen;
}

/**
 * Every state and event item of the tenant's subjects, page by page to `onPage`: a parallel Scan (the full
 * log verification, an offline job; never on a request path).
 */
export const scanSubjectItems = (
  db: Db,
  tenant: string,
  onPage: (items: Record<string, unknown>[]) => void,
  segments = 4,
): Promise<void> => scanSubjects(db, tenant, { events: true }, segments, onPage);

/** A parallel Scan of the tenant's state items (and event items with `events`), page by page. */
async function scanSubjects(
  db: Db,
  tenant: string,
  what: { events: boolean; projection?: string },
  segments: number,
  onPage: (items: Record<string, unknown>[]) => void,
): Promise<void> {
  const values: Record<string, string> = { ':prefix': keys.subject(tenant, ''), ':state': keys.state };
  if (what.events) values[':ev'] = 'EV#';
  await Promise.all(
    Array.from({ length: segments }, async (_, segment) => {
      let start: Record<string, unknown> | undefined;
      try {
        do {
          const out = await db.client.send(
            new ScanCommand({
              TableName: db.table,
              Segment: segment,
              TotalSegments: segments,
              FilterExpression: what.events
                ? 'begins_with(PK, :prefix) AND (SK = :state OR begins_with(SK, :ev))'
                : 'begins_with(PK, :prefix) AND SK = :state',
              ExpressionAttributeValues: values,
              ...(what.projection ? { ProjectionExpression: what.projection } : {}),
              ExclusiveStartKey: start,
            }),
          );
          onPage(out.Items ?? []);
          start = out.LastEvaluatedKey;
        } while (start);
      } catch (error) {
        throw storeFailure(error, 'scanSubjects');
      }
    }),
  );
}

/** Audit-index shard of a subject: spreads a busy day over several index partitions. */
export function auditShard(subjectKey: string): number {
  return createHash('sha256').update(subjectKey).digest()[0] % AUDIT_SHARDS;
}

/** The stored form of a ledger event. The audit index orders by `recordedAt`, so a late delivery still lands in an unexported day. */
export function eventItem(tenant: string, subjectKey: string, event: LedgerEvent): Record<string, unknown> {
  const recorded = event.recordedAt ?? event.at;
  return {
    PK: keys.subject(tenant, subjectKey),
    SK: keys.event(event.seq),
    GSI1PK: keys.auditDay(tenant, recorded.slice(0, 10), auditShard(subjectKey)),
    GSI1SK: `${recorded}#${event.eventId}`,
    subjectKey,
    ...event,
  };
}

/**
 * Builds the next chained event (hash format 2) from a draft: the draft's event time, the recording time,
 * the actor, and the personal details behind a fresh salt.
 */
export function chainEvent(
  current: SubjectState,
  next: NextEvent,
  draft: Change['event'],
  actor: Actor,
  recordedAt: string,
): LedgerEvent {
  const details = draft.details && Object.keys(draft.details).length > 0 ? draft.details : undefined;
  const detailsSalt = details ? randomBytes(16).toString('hex') : undefined;
  const unhashed = {
    v: 2 as const,
    eventId: next.eventId,
    seq: next.seq,
    type: draft.type,
    at: draft.at,
    recordedAt,
    actor,
    channel: draft.channel ?? null,
    purpose: draft.purpose ?? null,
    source: draft.source ?? null,
    data: draft.data,
    detailsDigest: details ? detailsDigest(details, detailsSalt as string) : null,
    prevHash: current.seq === 0 ? GENESIS_HASH : current.head,
  };
  return { ...unhashed, ...(details ? { details, detailsSalt } : {}), hash: hashEvent(unhashed) };
}

export interface Appended<T extends Change | null> {
  result: T;
  /** The appended event (undefined when `apply` returned null: nothing was written). */
  event: T extends Change ? LedgerEvent : LedgerEvent | undefined;
  state: SubjectState;
}

/** One item of a TransactWriteItems (document form). */
export type TransactItem = NonNullable<TransactWriteCommandInput['TransactItems']>[number];

/**
 * The one transaction that writes a change to a subject: the new event (it must not exist) and the new
 * state ({@link statePut}), then any `extra` items.
 */
export function changeTransaction(
  db: Db,
  tenant: string,
  subjectKey: string,
  event: LedgerEvent,
  state: SubjectState,
  extra: TransactItem[] = [],
): TransactWriteCommand {
  return new TransactWriteCommand({
    TransactItems: [
      {
        Put: {
          TableName: db.table,
          Item: eventItem(tenant, subjectKey, event),
          ConditionExpression: 'attribute_not_exists(PK)',
        },
      },
      { Put: { TableName: db.table, ...statePut(tenant, subjectKey, state) } },
      ...extra,
    ],
  });
}

/** Options of {@link appendChange}. */
export interface AppendOptions {
  /** Who writes the change (recorded on the event and covered by its hash). */
  actor: Actor;
  /** The identifier kind recorded on a subject's first state. */
  kind?: IdentifierKind;
  /**
   * An id that may be applied only once (a webhook notification): a marker item is put in the same
   * transaction on condition that it does not exist, and kept `onceTtlDays`. A replay then records
   * nothing and {@link AlreadyAppliedError} is thrown.
   */
  once?: string;
  onceTtlDays?: number;
}

/** The change was already applied under this `once` id (a replay). */
export class AlreadyAppliedError extends Error {
  constructor() {
    super('already applied');
    this.name = 'AlreadyAppliedError';
  }
}

const ONCE_SK = 'ONCE';

/**
 * A replay marker (put only if absent, kept `ttlDays`) and, in the subject's partition, a reference to it
 * so that an erasure finds and deletes the subject's markers.
 */
export function onceItems(db: Db, tenant: string, subjectKey: string, once: string, ttlDays: number): TransactItem[] {
  const marker = markerKey(tenant, once);
  const expiresAtEpoch = toSec(Date.now() + ttlDays * DAY_MS);
  return [
    {
      Put: {
        TableName: db.table,
        Item: { ...marker, expiresAtEpoch },
        ConditionExpression: 'attribute_not_exists(PK)',
      },
    },
    {
      Put: {
        TableName: db.table,
        Item: { PK: keys.subject(tenant, subjectKey), SK: `REF#${ONCE_SK}#${once}`, ref: marker, expiresAtEpoch },
      },
    },
  ];
}

const markerKey = (tenant: string, once: string) => ({ PK: `${keys.tenant(tenant)}#${ONCE_SK}#${once}`, SK: ONCE_SK });

/** The key of a replay marker (tenant-wide: a once id is applied once whatever the subject). */
export { markerKey };

export async function markerExists(db: Db, tenant: string, once: string): Promise<boolean> {
  try {
    const out = await db.client.send(
      new GetCommand({ TableName: db.table, Key: markerKey(tenant, once), ConsistentRead: true }),
    );
    return out.Item !== undefined;
  } catch (error) {
    throw storeFailure(error, 'markerExists');
  }
}

/** The replay marker's cancellation reason is the third of the transaction's items. */
const markerFailed = (error: unknown) =>
  (error as { name?: string; CancellationReasons?: { Code?: string }[] })?.name === 'TransactionCanceledException' &&
  (error as { CancellationReasons?: { Code?: string }[] }).CancellationReasons?.[2]?.Code === 'ConditionalCheckFailed';

/**
 * Applies one change to a subject: one TransactWriteItems that puts the new event (it must not exist)
 * and the new state (its version must be the one read). On a conflict it re-reads and re-applies, with
 * jittered backoff, a bounded number of times. So state and ledger never disagree and chains never fork.
 * `apply` is pure and may throw a domain error (nothing is written then), or return null when there is
 * nothing to write (a gate check that is not allowed): the decision then rests on the state just read.
 */
export async function appendChange<T extends Change | null>(
  db: Db,
  tenant: string,
  subjectKey: string,
  apply: (current: SubjectState, next: NextEvent) => T,
  options: AppendOptions,
): Promise<Appended<T>> {
  const { kind } = options;
  for (let attempt = 0; attempt < MAX_APPEND_ATTEMPTS; attempt++) {
    const current = (await getState(db, tenant, subjectKey)) ?? emptyState(subjectKey, kind);
    const next: NextEvent = { seq: current.seq + 1, eventId: newUlid() };
    const result = apply(current, next);
    if (result === null) {
      // Nothing to write: still tell a replay (its marker exists) from a notification that changes nothing.
      if (options.once && (await markerExists(db, tenant, options.once))) throw new AlreadyAppliedError();
      return { result, event: undefined, state: current } as Appended<T>;
    }
    const event = chainEvent(current, next, result.event, options.actor, new Date().toISOString());
    const state: SubjectState = {
      ...result.state,
      kind: result.state.kind ?? kind,
      version: current.version + 1,
      seq: next.seq,
      head: event.hash,
    };
    const marker = options.once ? onceItems(db, tenant, subjectKey, options.once, options.onceTtlDays ?? 30) : [];
    try {
      await db.client.send(changeTransaction(db, tenant, subjectKey, event, state, marker));
      return { result, event, state } as Appended<T>;
    } catch (error) {
      if (options.once && markerFailed(error)) throw new AlreadyAppliedError();
      if (!isWriteConflict(error)) throw storeFailure(error, 'appendChange');
      await sleep(backoffMs(attempt));
    }
  }
  throw new WriteContention('too many concurrent changes to this subject; retry');
}

/** The subject's ledger in seq order. */
export async function listEvents(db: Db, tenant: string, subjectKey: string): Promise<LedgerEvent[]> {
  return (await listEventItems(db, tenant, subjectKey)).map(toEvent);
}

/** A page of a subject's ledger: `limit` events after `afterSeq`, and whether more follow. */
export async function listEventsPage(
  db: Db,
  tenant: string,
  subjectKey: string,
  page: { afterSeq: number; limit: number },
): Promise<{ events: LedgerEvent[]; more: boolean }> {
  const events: LedgerEvent[] = [];
  let start: Record<string, unknown> | undefined;
  try {
    do {
      const out = await db.client.send(
        new QueryCommand({
          TableName: db.table,
          KeyConditionExpression: 'PK = :pk AND SK BETWEEN :after AND :last',
          ExpressionAttributeValues: {
            ':pk': keys.subject(tenant, subjectKey),
            ':after': keys.event(page.afterSeq + 1),
            ':last': keys.event(999_999_999_999),
          },
          ConsistentRead: true,
          // One more than asked: tells whether a next page exists, so the last page has no cursor.
          Limit: page.limit + 1 - events.length,
          ExclusiveStartKey: start,
        }),
      );
      events.push(...(out.Items ?? []).map(toEvent));
      start = out.LastEvaluatedKey;
    } while (start && events.length <= page.limit);
  } catch (error) {
    throw storeFailure(error, 'listEventsPage');
  }
  return { events: events.slice(0, page.limit), more: events.length > page.limit };
}

/** The subject's event items as stored (audit-index attributes included), in seq order. */
export async function listEventItems(db: Db, tenant: string, subjectKey: string): Promise<Record<string, unknown>[]> {
  const events: Record<string, unknown>[] = [];
  let start: Record<string, unknown> | undefined;
  try {
    do {
      const out = await db.client.send(
        new QueryCommand({
          TableName: db.table,
          KeyConditionExpression: 'PK = :pk AND begins_with(SK, :ev)',
          ExpressionAttributeValues: { ':pk': keys.subject(tenant, subjectKey), ':ev': 'EV#' },
          ConsistentRead: true,
          ExclusiveStartKey: start,
        }),
      );
      events.push(...(out.Items ?? []));
      start = out.LastEvaluatedKey;
    } while (start);
  } catch (error) {
    throw storeFailure(error, 'listEvents');
  }
  return events;
}

/** One event item of a subject by seq, as stored (strongly consistent); undefined when there is none. */
export async function getEventItem(
  db: Db,
  tenant: string,
  subjectKey: string,
  seq: number,
): Promise<Record<string, unknown> | undefined> {
  try {
    const out = await db.client.send(
      new GetCommand({
        TableName: db.table,
        Key: { PK: keys.subject(tenant, subjectKey), SK: keys.event(seq) },
        ConsistentRead: true,
      }),
    );
    return out.Item;
  } catch (error) {
    throw storeFailure(error, 'getEvent');
  }
}

/** The fields of an event, in the order the API shows them (format 2 adds its own). */
const V1_FIELDS = ['eventId', 'seq', 'type', 'at', 'channel', 'purpose', 'source', 'data', 'prevHash', 'hash'] as const;
const V2_FIELDS = [
  'v',
  'eventId',
  'seq',
  'type',
  'at',
  'recordedAt',
  'actor',
  'channel',
  'purpose',
  'source',
  'data',
  'detailsDigest',
  'details',
  'detailsSalt',
  'prevHash',
  'hash',
] as const;

/** The API shape of a stored event: its own fields only (no keys or index attributes). */
export function toEvent(item: Record<string, unknown>): LedgerEvent {
  const fields = item.v === 2 ? V2_FIELDS : V1_FIELDS;
  return Object.fromEntries(
    fields.filter((f) => item[f] !== undefined).map((f) => [f, item[f]]),
  ) as unknown as LedgerEvent;
}
