import {
  BatchWriteCommand,
  DeleteCommand,
  GetCommand,
  PutCommand,
  QueryCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import * as z from 'zod';
import {
  assertCancellable,
  cancelErasure,
  dueBy,
  type ErasureQuery,
  ErasureRefused,
  erasureSelection,
  extendErasure,
  requestErasure,
  type StoredErasureStatus,
  tombstone,
} from '#domain/erasure.ts';
import type { Actor } from '#domain/ledger.ts';
import { emptyState } from '#domain/subject-state.ts';
import type { IdentifierKind } from '#shared/identity/subject.ts';
import { newUlid } from '#shared/ids.ts';
import { logger } from '#shared/log.ts';
import { DAY_MS } from '#shared/time.ts';
import { decodePosition, encodePosition } from './cursor.ts';
import type { Db } from './db.ts';
import {
  backoffMs,
  InvalidCursor,
  isWriteConflict,
  StoreUnavailable,
  sleep,
  storeFailure,
  WriteContention,
} from './errors.ts';
import { unlinkSubjects } from './links.ts';
import { getPolicy } from './policy.ts';
import { redactDetails } from './retention.ts';
import { appendChange, chainEvent, changeTransaction, getState, statePut } from './subjects.ts';
import { keys } from './table.ts';

export interface ErasureRequest {
  requestId: string;
  status: StoredErasureStatus;
  receivedAt: string;
  /** One month after receipt; later once extended (Art. 12(3)). */
  dueBy: string;
  completedAt?: string;
  cancelledAt?: string;
  extendedAt?: string;
  extensionMonths?: 1 | 2;
  extensionReason?: string;
  requestedVia: string;
  reference?: string;
  subjectKeys: string[];
}

const requestKey = (tenant: string, requestId: string) => ({ PK: keys.erasure(tenant, requestId), SK: 'REQ' });

const OPTIONAL_FIELDS = [
  'completedAt',
  'cancelledAt',
  'extendedAt',
  'extensionMonths',
  'extensionReason',
  'reference',
] as const;

function toRequest(item: Record<string, unknown>): ErasureRequest {
  const { requestId, status, receivedAt, dueBy, requestedVia, subjectKeys } = item as unknown as ErasureRequest;
  const request: ErasureRequest = { requestId, status, receivedAt, dueBy, requestedVia, subjectKeys };
  for (const f of OPTIONAL_FIELDS) if (item[f] !== undefined) Object.assign(request, { [f]: item[f] });
  return request;
}

/** Stores a received request, indexed by status and due date. */
export async function createErasureRequest(
  db: Db,
  tenant: string,
  input: { subjectKeys: string[]; requestedVia: string; reference?: string },
  now: string,
): Promise<ErasureRequest> {
  const request: ErasureRequest = {
    requestId: `er_${newUlid()}`,
    status: 'received',
    receivedAt: now,
    dueBy: dueBy(now),
    requestedVia: input.requestedVia,
    ...(input.reference ? { reference: input.reference } : {}),
    subjectKeys: input.subjectKeys,
  };
  try {
    await db.client.send(
      new PutCommand({
        TableName: db.table,
        Item: {
          ...requestKey(tenant, request.requestId),
          ...request,
          GSI2PK: keys.erasuresByStatus(tenant, 'received'),
          GSI2SK: `${request.dueBy}#${request.requestId}`,
        },
      }),
    );
  } catch (error) {
    throw storeFailure(error, 'createErasureRequest');
  }
  return request;
}

/**
 * Receives an erasure request: stores it, then marks each subject `erasure_pending` with one chained
 * `erasure.requested` event. Shared by the API (`POST /v1/erasure-requests`) and the preference centre.
 */
export async function receiveErasureRequest(
  db: Db,
  tenant: string,
  input: {
    subjects: { subjectKey: string; kind?: IdentifierKind }[];
    requestedVia: string;
    reference?: string;
  },
  now: string,
  actor: Actor,
): Promise<ErasureRequest> {
  const subjectKeys = [...new Set(input.subjects.map((s) => s.subjectKey))];
  const request = await createErasureRequest(
    db,
    tenant,
    { subjectKeys, requestedVia: input.requestedVia, reference: input.reference },
    now,
  );
  const flagged = await Promise.allSettled(
    input.subjects.map(({ subjectKey, kind }) =>
      appendChange(db, tenant, subjectKey, (current) => requestErasure(current, request.requestId, now), {
        kind,
        actor,
      }),
    ),
  );
  const failed = flagged.find((r) => r.status === 'rejected');
  if (failed) {
    // The caller gets a 503 and retries: no orphan "received" request may stay behind. Subjects already
    // flagged stay blocked (erasure_pending), the safe side; the retry re-flags them with its own request.
    await db.client
      .send(new DeleteCommand({ TableName: db.table, Key: requestKey(tenant, request.requestId) }))
      .catch((error) => logger.warn('could not withdraw a half-received erasure request', { errorName: error?.name }));
    throw failed.reason;
  }
  return request;
}

export async function getErasureRequest(
  db: Db,
  tenant: string,
  requestId: string,
): Promise<ErasureRequest | undefined> {
  try {
    const out = await db.client.send(
      new GetCommand({ TableName: db.table, Key: requestKey(tenant, requestId), ConsistentRead: true }),
    );
    return out.Item ? toRequest(out.Item) : undefined;
  } catch (error) {
    throw storeFailure(error, 'getErasureRequest');
  }
}

/** Where a listing stopped: the status partition and the index sort key of the last request handed out. */
const ErasurePositionSchema = z.object({
  status: z.enum(['received', 'completed', 'cancelled']),
  sk: z.string().min(1).max(200),
  id: z.string().regex(/^er_[0-9A-Z]{26}$/),
});
type ErasurePosition = z.infer<typeof ErasurePositionSchema>;

/** Index items of one stored status, in index order, strictly after `after` when given. */
async function erasureItems(
  db: Db,
  tenant: string,
  status: StoredErasureStatus,
  options: { dueBefore?: string; limit: number; after?: ErasurePosition },
): Promise<Record<string, unknown>[]> {
  const out: Record<string, unknown>[] = [];
  const pk = keys.erasuresByStatus(tenant, status);
  let start: Record<string, unknown> | undefined = options.after
    ? { GSI2PK: pk, GSI2SK: options.after.sk, ...requestKey(tenant, options.after.id) }
    : undefined;
  try {
    do {
      const page = await db.client.send(
        new QueryCommand({
          TableName: db.table,
          IndexName: 'GSI2',
          KeyConditionExpression: options.dueBefore ? 'GSI2PK = :pk AND GSI2SK < :before' : 'GSI2PK = :pk',
          ExpressionAttributeValues: { ':pk': pk, ...(options.dueBefore ? { ':before': options.dueBefore } : {}) },
          ExclusiveStartKey: start,
          Limit: options.limit - out.length,
        }),
      );
      out.push(...(page.Items ?? []));
      start = page.LastEvaluatedKey;
    } while (start && out.length < options.limit);
  } catch (error) {
    throw storeFailure(error, 'listErasureRequests');
  }
  return out;
}

/**
 * Requests of one stored status in due-date order (received) or completion (cancellation) order;
 * `dueBefore` keeps only the received ones due before that time (overdue, due within N days).
 */
export async function listErasureRequests(
  db: Db,
  tenant: string,
  status: StoredErasureStatus,
  options: { dueBefore?: string; limit?: number } = {},
): Promise<ErasureRequest[]> {
  return (await erasureItems(db, tenant, status, { ...options, limit: options.limit ?? 100 })).map(toRequest);
}

/**
 * One page of a listing (see {@link erasureSelection}): received requests in due-date order, then
 * completed, then cancelled ones, `limit` of them after `cursor`; `nextCursor` when more follow. A
 * cursor this service did not hand out is {@link InvalidCursor}.
 */
export async function pageErasures(
  db: Db,
  tenant: string,
  query: ErasureQuery,
  now: number,
  page: { limit: number; cursor?: string },
): Promise<{ requests: ErasureRequest[]; nextCursor?: string }> {
  const { received, completed, cancelled, dueBefore } = erasureSelection(query, now);
  const order = (
    [
      [received, 'received'],
      [completed, 'completed'],
      [cancelled, 'cancelled'],
    ] as const
  )
    .filter(([selected]) => selected)
    .map(([, status]) => status);
  const after = page.cursor ? decodePosition(page.cursor, ErasurePositionSchema) : undefined;
  const from = after ? order.indexOf(after.status) : 0;
  if (from < 0) throw new InvalidCursor('cursor does not belong to this status filter');
  // One more than asked: tells whether a next page exists, so the last page has no cursor.
  const found: { status: StoredErasureStatus; item: Record<string, unknown> }[] = [];
  for (let i = from; i < order.length && found.length <= page.limit; i++) {
    const status = order[i];
    const items = await erasureItems(db, tenant, status, {
      limit: page.limit + 1 - found.length,
      ...(status === 'received' && dueBefore ? { dueBefore } : {}),
      ...(i === from && after ? { after } : {}),
    });
    found.push(...items.map((item) => ({ status, item })));
  }
  const shown = found.slice(0, page.limit);
  const last = shown[shown.length - 1];
  const nextCursor =
    found.length > page.limit && last
      ? encodePosition({ status: last.status, sk: last.item.GSI2SK, id: last.item.requestId })
      : undefined;
  return { requests: shown.map(({ item }) => toRequest(item)), ...(nextCursor ? { nextCursor } : {}) };
}

/**
 * The requests a listing shows (see {@link erasureSelection}): received ones in due-date order, then
 * completed ones, then cancelled ones, at most `limit`. Shared by `GET /v1/erasure-requests` and the
 * erasure deadlines.
 */
export async function listErasures(
  db: Db,
  tenant: string,
  query: ErasureQuery & { limit: number },
  now: number,
): Promise<ErasureRequest[]> {
  const { received, completed, cancelled, dueBefore } = erasureSelection(query, now);
  const limit = query.limit;
  const requests = received
    ? await listErasureRequests(db, tenant, 'received', { limit, ...(dueBefore ? { dueBefore } : {}) })
    : [];
  if (completed && requests.length < limit) {
    requests.push(...(await listErasureRequests(db, tenant, 'completed', { limit: limit - requests.length })));
  }
  if (cancelled && requests.length < limit) {
    requests.push(...(await listErasureRequests(db, tenant, 'cancelled', { limit: limit - requests.length })));
  }
  return requests;
}

const MAX_ERASE_ROUNDS = 10;

async function deleteKeys(db: Db, itemKeys: Record<string, unknown>[]): Promise<void> {
  for (let i = 0; i < itemKeys.length; i += 25) {
    let pending = itemKeys.slice(i, i + 25).map((Key) => ({ DeleteRequest: { Key } }));
    for (let round = 0; pending.length > 0; round++) {
      if (round >= 8) throw new StoreUnavailable('the store kept throttling the erasure');
      if (round > 0) await sleep(backoffMs(round, 20, 500));
      const out = await db.client.send(new BatchWriteCommand({ RequestItems: { [db.table]: pending } }));
      pending = (out.UnprocessedItems?.[db.table] ?? []) as typeof pending;
    }
  }
}

/** Every item of a subject's partition but its state: events, and what points to it (replay markers, idempotency records). */
async function partitionItems(db: Db, tenant: string, subjectKey: string): Promise<Record<string, unknown>[]> {
  const items: Record<string, unknown>[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const page = await db.client.send(
      new QueryCommand({
        TableName: db.table,
        KeyConditionExpression: 'PK = :pk AND SK < :state',
        ExpressionAttributeValues: { ':pk': keys.subject(tenant, subjectKey), ':state': keys.state },
        ProjectionExpression: 'PK, SK, v, details, #ref',
        ExpressionAttributeNames: { '#ref': 'ref' },
        ConsistentRead: true,
        ExclusiveStartKey: start,
      }),
    );
    items.push(...(page.Items ?? []));
    start = page.LastEvaluatedKey;
  } while (start);
  return items;
}

export interface EraseOptions {
  /** The erasure request carried out; none for a retention purge. */
  requestId?: string;
  reason: 'request' | 'retention';
  now: string;
  actor: Actor;
  /** How long the public part of the events is kept as proof (policy `retention.proofDays`). */
  proofDays?: number;
}

/**
 * Erases one subject and keeps the proof. Deleted: every event's personal details, the signal and send
 * summaries and consents of the state, the subject's replay markers and idempotency records. Kept until
 * `erasedAt + proofDays`: the public part of its events (type, times, channel, purpose, source, notice,
 * actor), whose chain still verifies; then {@link purgeProof} leaves only the tombstone. The tombstone
 * (`erasure.completed`, appended to the same chain) keeps the person out of imports for good. A subject
 * with format-1 events (whose hash covers their details) loses them whole and its chain restarts.
 * Conditioned on the state's version: a writer that slipped in meanwhile makes it go round again.
 */
export async function eraseSubject(db: Db, tenant: string, subjectKey: string, options: EraseOptions) {
  const { now, reason, actor } = options;
  const requestId = options.requestId ?? `retention_${newUlid()}`;
  const policy = await getPolicy(db, tenant);
  const proofDays = options.proofDays ?? policy.retention.proofDays;
  // The link to the person's other identifiers is personal data: it goes first (`subject.unlinked`, whose
  // details the erasure then deletes); what the subject inherited through it stays until the tombstone.
  await unlinkSubjects(db, tenant, [subjectKey], {
    actor,
    now,
    policy,
    reason: reason === 'request' ? 'erasure' : 'retention',
  });
  for (let round = 0; round < MAX_ERASE_ROUNDS; round++) {
    try {
      const current = (await getState(db, tenant, subjectKey)) ?? emptyState(subjectKey);
      const items = await partitionItems(db, tenant, subjectKey);
      const events = items.filter((item) => String(item.SK).startsWith('EV#'));
      const legacy = events.some((item) => item.v !== 2);
      const refs = items.filter((item) => item.ref).map((item) => item.ref as Record<string, unknown>);
      const pointers = items.filter((item) => !String(item.SK).startsWith('EV#'));
      await deleteKeys(
        db,
        [...refs, ...pointers].map((item) => ({ PK: item.PK, SK: item.SK })),
      );
      const eventKeys = events.map((item) => ({ PK: item.PK as string, SK: item.SK as string }));
      if (legacy) await deleteKeys(db, eventKeys);
      else
        await redactDetails(
          db,
          eventKeys.filter((_, i) => events[i].details),
        );
      const proofUntil = new Date(Date.parse(now) + proofDays * DAY_MS).toISOString();
      const base = legacy ? { ...current, seq: 0, head: '' } : current;
      const change = tombstone(base, requestId, now, { reason, proofUntil });
      const next = { seq: base.seq + 1, eventId: newUlid() };
      const event = chainEvent(base, next, change.event, actor, now);
      const state = { ...change.state, version: current.version + 1, seq: next.seq, head: event.hash };
      await db.client.send(changeTransaction(db, tenant, subjectKey, event, state));
      if (proofDays === 0) await purgeProof(db, tenant, subjectKey, now);
      return;
    } catch (error) {
      if (!isWriteConflict(error)) throw storeFailure(error, 'eraseSubject');
      await sleep(backoffMs(round, 20, 500));
    }
  }
  throw new WriteContention('the subject kept changing during erasure; retry');
}

/**
 * Ends the proof an erasure kept: deletes the erased subject's events and notes `proofPurgedAt` on the
 * tombstone, which stays for good. Does nothing for a subject that is not erased. The tombstone is rewritten
 * on condition of its version (and the version moves on), so a change that slipped in meanwhile is neither
 * overwritten nor overwrites the note: the purge goes round again.
 */
export async function purgeProof(db: Db, tenant: string, subjectKey: string, now: string): Promise<boolean> {
  for (let round = 0; round < MAX_ERASE_ROUNDS; round++) {
    try {
      const current = await getState(db, tenant, subjectKey);
      if (current?.erasure?.status !== 'completed') return false;
      const items = await partitionItems(db, tenant, subjectKey);
      await deleteKeys(
        db,
        items.map((item) => ({ PK: item.PK, SK: item.SK })),
      );
      const state = { ...current, version: current.version + 1, erasure: { ...current.erasure, proofPurgedAt: now } };
      await db.client.send(new PutCommand({ TableName: db.table, ...statePut(tenant, subjectKey, state) }));
      return true;
    } catch (error) {
      if (!isWriteConflict(error)) throw storeFailure(error, 'purgeProof');
      await sleep(backoffMs(round, 20, 500));
    }
  }
  throw new WriteContention('the subject kept changing while its proof was purged; retry');
}

/**
 * Sets fields of a request on `condition` (over `#s` = its status and `values`); undefined when the
 * condition fails. A change of status moves the request to that status's index.
 */
async function updateRequest(
  db: Db,
  tenant: string,
  requestId: string,
  fields: Partial<ErasureRequest> & { GSI2PK?: string; GSI2SK: string },
  condition: { expression: string; values?: Record<string, unknown> },
): Promise<ErasureRequest | undefined> {
  const names = Object.keys(fields);
  try {
    const out = await db.client.send(
      new UpdateCommand({
        TableName: db.table,
        Key: requestKey(tenant, requestId),
        UpdateExpression: `SET ${names.map((_, i) => `#f${i} = :f${i}`).join(', ')}`,
        ConditionExpression: condition.expression,
        ExpressionAttributeNames: {
          ...Object.fromEntries(names.map((name, i) => [`#f${i}`, name])),
          ...(condition.expression.includes('#s') ? { '#s': 'status' } : {}),
        },
        ExpressionAttributeValues: {
          ...Object.fromEntries(names.map((name, i) => [`:f${i}`, fields[name as keyof typeof fields]])),
          ...condition.values,
        },
        ReturnValues: 'ALL_NEW',
      }),
    );
    return toRequest(out.Attributes as Record<string, unknown>);
  } catch (error) {
    if ((error as { name?: string })?.name === 'ConditionalCheckFailedException') return undefined;
    throw storeFailure(error, 'updateErasureRequest');
  }
}

/** A request moved to `status` at `at` (the completed and cancelled indexes are in that order). */
const moveTo = (tenant: string, requestId: string, status: 'completed' | 'cancelled', at: string) => ({
  status,
  GSI2PK: keys.erasuresByStatus(tenant, status),
  GSI2SK: `${at}#${requestId}`,
});

/**
 * Marks a request completed (moves it to the completed index). The erasure has happened by then, so this
 * wins over a cancellation that raced with it.
 */
export async function markErasureCompleted(db: Db, tenant: string, requestId: string, now: string) {
  const done = await updateRequest(
    db,
    tenant,
    requestId,
    { ...moveTo(tenant, requestId, 'completed', now), completedAt: now },
    { expression: 'attribute_exists(PK)' },
  );
  if (!done) throw new StoreUnavailable(`erasure request ${requestId} disappeared while it was carried out`);
  return done;
}

/** Carries out a received request: every subject erased to a tombstone, then the request completed. */
export async function completeErasureRequest(
  db: Db,
  tenant: string,
  request: ErasureRequest,
  actor: Actor,
): Promise<ErasureRequest> {
  const now = new Date().toISOString();
  for (const subjectKey of request.subjectKeys) {
    await eraseSubject(db, tenant, subjectKey, { requestId: request.requestId, reason: 'request', now, actor });
  }
  return markErasureCompleted(db, tenant, request.requestId, now);
}

/** Re-reads a request after a failed condition (a concurrent change) to say why. */
async function reread(db: Db, tenant: string, requestId: string): Promise<ErasureRequest> {
  const current = await getErasureRequest(db, tenant, requestId);
  if (!current) throw new StoreUnavailable(`erasure request ${requestId} disappeared`);
  return current;
}

/**
 * Cancels a received request: marks it `cancelled` (on condition that it is still received), then takes
 * back each subject's `erasure_pending` with an `erasure.cancelled` event — a subject also covered by
 * another received request stays pending for that one. A completed request → `erasure_completed`.
 * Cancelling a cancelled request again only re-applies the subjects' part (a retry after a failure).
 */
export async function cancelErasureRequest(
  db: Db,
  tenant: string,
  request: ErasureRequest,
  input: { reason?: string; now: string; actor: Actor },
): Promise<ErasureRequest> {
  assertCancellable(request);
  const { requestId } = request;
  const cancelled =
    request.status === 'cancelled'
      ? request
      : ((await updateRequest(
          db,
          tenant,
          requestId,
          { ...moveTo(tenant, requestId, 'cancelled', input.now), cancelledAt: input.now },
          { expression: '#s = :received', values: { ':received': 'received' } },
        )) ??
        // Completed, or cancelled, meanwhile: the first throws, the second goes on as a repeat.
        (await reread(db, tenant, requestId)));
  assertCancellable(cancelled);
  const others = (await listErasureRequests(db, tenant, 'received', { limit: 1000 })).filter(
    (r) => r.requestId !== requestId,
  );
  await Promise.all(
    cancelled.subjectKeys.map((subjectKey) => {
      const other = others.find((r) => r.subjectKeys.includes(subjectKey));
      const stillPending = other && {
        requestId: other.requestId,
        status: 'received' as const,
        receivedAt: other.receivedAt,
      };
      return appendChange(
        db,
        tenant,
        subjectKey,
        (current) => cancelErasure(current, { requestId, reason: input.reason, stillPending }, input.now),
        { actor: input.actor },
      );
    }),
  );
  return cancelled;
}

/**
 * Extends a received request's deadline (see `extendErasure`). The write is conditioned on the request
 * being still received, not extended and due when it was read, so of two concurrent extensions only one
 * wins; the other is answered from the request as it then is (`already_extended`…).
 */
export async function extendErasureRequest(
  db: Db,
  tenant: string,
  request: ErasureRequest,
  input: { months: 1 | 2; reason: string },
  now: string,
): Promise<ErasureRequest> {
  const extension = extendErasure(request, input, now);
  const extended = await updateRequest(
    db,
    tenant,
    request.requestId,
    { ...extension, GSI2SK: `${extension.dueBy}#${request.requestId}` },
    {
      expression: '#s = :received AND attribute_not_exists(extendedAt) AND dueBy = :due',
      values: { ':received': 'received', ':due': request.dueBy },
    },
  );
  if (extended) return extended;
  extendErasure(await reread(db, tenant, request.requestId), input, now);
  throw new ErasureRefused('already_extended', `the deadline of ${request.requestId} was changed meanwhile`);
}
