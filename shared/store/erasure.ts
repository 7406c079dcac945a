import {
  BatchWriteCommand,
  DeleteCommand,
  GetCommand,
  PutCommand,
  QueryCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { ulid } from 'ulid';
import { dueBy, type ErasureQuery, erasureSelection, requestErasure, tombstone } from '#domain/erasure.ts';
import { emptyState } from '#domain/subject-state.ts';
import type { IdentifierKind } from '#shared/identity/subject.ts';
import { logger } from '#shared/log.ts';
import type { Db } from './db.ts';
import { backoffMs, isWriteConflict, StoreUnavailable, sleep, storeFailure, WriteContention } from './errors.ts';
import { appendChange, chainEvent, changeTransaction, getState } from './subjects.ts';
import { keys } from './table.ts';

export interface ErasureRequest {
  requestId: string;
  status: 'received' | 'completed';
  receivedAt: string;
  dueBy: string;
  completedAt?: string;
  requestedVia: string;
  reference?: string;
  subjectKeys: string[];
}

const requestKey = (tenant: string, requestId: string) => ({ PK: keys.erasure(tenant, requestId), SK: 'REQ' });

function toRequest(item: Record<string, unknown>): ErasureRequest {
  const { requestId, status, receivedAt, dueBy, completedAt, requestedVia, reference, subjectKeys } =
    item as unknown as ErasureRequest;
  return {
    requestId,
    status,
    receivedAt,
    dueBy,
    ...(completedAt ? { completedAt } : {}),
    requestedVia,
    ...(reference ? { reference } : {}),
    subjectKeys,
  };
}

/** Stores a received request, indexed by status and due date. */
export async function createErasureRequest(
  db: Db,
  tenant: string,
  input: { subjectKeys: string[]; requestedVia: string; reference?: string },
  now: string,
): Promise<ErasureRequest> {
  const request: ErasureRequest = {
    requestId: `er_${ulid()}`,
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
      appendChange(db, tenant, subjectKey, (current) => requestErasure(current, request.requestId, now), { kind }),
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

/**
 * Requests of one stored status in due-date order (received) or completion order (completed);
 * `dueBefore` keeps only the received ones due before that time (overdue, due within N days).
 */
export async function listErasureRequests(
  db: Db,
  tenant: string,
  status: 'received' | 'completed',
  options: { dueBefore?: string; limit?: number } = {},
): Promise<ErasureRequest[]> {
  const out: ErasureRequest[] = [];
  let start: Record<string, unknown> | undefined;
  const limit = options.limit ?? 100;
  try {
    do {
      const page = await db.client.send(
        new QueryCommand({
          TableName: db.table,
          IndexName: 'GSI2',
          KeyConditionExpression: options.dueBefore ? 'GSI2PK = :pk AND GSI2SK < :before' : 'GSI2PK = :pk',
          ExpressionAttributeValues: {
            ':pk': keys.erasuresByStatus(tenant, status),
            ...(options.dueBefore ? { ':before': options.dueBefore } : {}),
          },
          ExclusiveStartKey: start,
          Limit: limit - out.length,
        }),
      );
      out.push(...(page.Items ?? []).map(toRequest));
      start = page.LastEvaluatedKey;
    } while (start && out.length < limit);
  } catch (error) {
    throw storeFailure(error, 'listErasureRequests');
  }
  return out;
}

/**
 * The requests a listing shows (see {@link erasureSelection}): received ones in due-date order, then
 * completed ones, at most `limit`. Shared by `GET /v1/erasure-requests` and the erasure deadlines.
 */
export async function listErasures(
  db: Db,
  tenant: string,
  query: ErasureQuery & { limit: number },
  now: number,
): Promise<ErasureRequest[]> {
  const { received, completed, dueBefore } = erasureSelection(query, now);
  const limit = query.limit;
  const requests = received
    ? await listErasureRequests(db, tenant, 'received', { limit, ...(dueBefore ? { dueBefore } : {}) })
    : [];
  if (completed) requests.push(...(await listErasureRequests(db, tenant, 'completed', { limit })));
  return requests.slice(0, limit);
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

/**
 * Erases one subject: deletes every event (and with them their audit-index entries), then replaces the
 * state with a tombstone and starts a new chain with one `erasure.completed` event, in one transaction
 * conditioned on the state's version. A writer that slipped in meanwhile makes it go round again.
 */
export async function eraseSubject(db: Db, tenant: string, subjectKey: string, requestId: string, now: string) {
  const pk = keys.subject(tenant, subjectKey);
  for (let round = 0; round < MAX_ERASE_ROUNDS; round++) {
    try {
      const current = (await getState(db, tenant, subjectKey)) ?? emptyState(subjectKey);
      const eventKeys: Record<string, unknown>[] = [];
      let start: Record<string, unknown> | undefined;
      do {
        const page = await db.client.send(
          new QueryCommand({
            TableName: db.table,
            KeyConditionExpression: 'PK = :pk AND begins_with(SK, :ev)',
            ExpressionAttributeValues: { ':pk': pk, ':ev': 'EV#' },
            ProjectionExpression: 'PK, SK',
            ConsistentRead: true,
            ExclusiveStartKey: start,
          }),
        );
        eventKeys.push(...(page.Items ?? []));
        start = page.LastEvaluatedKey;
      } while (start);
      await deleteKeys(db, eventKeys);
      const change = tombstone(current, requestId, now);
      const event = chainEvent(change.state, { seq: 1, eventId: ulid() }, change.event);
      const state = { ...change.state, version: current.version + 1, seq: 1, head: event.hash };
      await db.client.send(changeTransaction(db, tenant, subjectKey, event, state));
      return;
    } catch (error) {
      if (!isWriteConflict(error)) throw storeFailure(error, 'eraseSubject');
      await sleep(backoffMs(round, 20, 500));
    }
  }
  throw new WriteContention('the subject kept changing during erasure; retry');
}

/** Marks a request completed (moves it to the completed index). */
export async function markErasureCompleted(db: Db, tenant: string, requestId: string, now: string) {
  try {
    const out = await db.client.send(
      new UpdateCommand({
        TableName: db.table,
        Key: requestKey(tenant, requestId),
        UpdateExpression: 'SET #s = :completed, completedAt = :now, GSI2PK = :pk, GSI2SK = :sk',
        ConditionExpression: 'attribute_exists(PK)',
        ExpressionAttributeNames: { '#s': 'status' },
        ExpressionAttributeValues: {
          ':completed': 'completed',
          ':now': now,
          ':pk': keys.erasuresByStatus(tenant, 'completed'),
          ':sk': `${now}#${requestId}`,
        },
        ReturnValues: 'ALL_NEW',
      }),
    );
    return toRequest(out.Attributes as Record<string, unknown>);
  } catch (error) {
    throw storeFailure(error, 'markErasureCompleted');
  }
}

/** Carries out a received request: every subject erased to a tombstone, then the request completed. */
export async function completeErasureRequest(db: Db, tenant: string, request: ErasureRequest): Promise<ErasureRequest> {
  const now = new Date().toISOString();
  for (const subjectKey of request.subjectKeys) await eraseSubject(db, tenant, subjectKey, request.requestId, now);
  return markErasureCompleted(db, tenant, request.requestId, now);
}
