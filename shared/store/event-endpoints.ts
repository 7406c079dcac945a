import { DeleteCommand, GetCommand, PutCommand, QueryCommand, ScanCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { DAY_MS, toSec } from '#shared/time.ts';
import { type Db, queryAll } from './db.ts';
import { InvalidCursor, storeFailure } from './errors.ts';
import { keys } from './table.ts';

/**
 * Change-event endpoints and their delivery logs (docs/events.md). An endpoint lives in its tenant's endpoints
 * partition (`T#<tenant>#EPS`, `EP#<id>`), its signing secrets sealed; each change it is sent is one delivery item in the
 * endpoint's own partition (`T#<tenant>#EP#<id>`, `DLV#<recordedAt>#<change id>`), indexed by status on GSI2
 * for `?status=`, kept 30 days after its last attempt.
 */

/** One signing secret, sealed (shared/secret-box.ts); a retired one signs until `retiresAt`. */
export interface SealedSecret {
  sealed: string;
  createdAt: string;
  retiresAt?: string;
}

export interface EventEndpoint {
  id: string;
  url: string;
  /** The change types sent to it. */
  types: string[];
  description?: string;
  createdAt: string;
  /** Newest first: the current secret, then at most one retiring one. */
  secrets: SealedSecret[];
}

export type DeliveryStatus = 'pending' | 'delivered' | 'failed';

export interface DeliveryAttempt {
  at: string;
  httpStatus: number | null;
  error: string | null;
}

/** A delivery of one change to one endpoint. */
export interface Delivery {
  tenant: string;
  endpointId: string;
  /** Its sort key in the endpoint's log (`DLV#<recordedAt>#<change id>`). */
  key: string;
  webhookId: string;
  type: string;
  eventId: string;
  subjectKey: string;
  status: DeliveryStatus;
  attempts: DeliveryAttempt[];
  /** The change body, as signed and sent. */
  body: string;
  /** When the current round of attempts began (created, or replayed). */
  roundStartedAt: string;
  /** Attempts in the current round (the backoff's exponent). */
  roundAttempts: number;
  replays: number;
}

/** A delivery log item keeps this many attempts (the newest); `attemptCount` counts them all. */
const ATTEMPTS_KEPT = 100;
const KEEP_DAYS = 30;
const ENDPOINT_FIELDS = ['id', 'url', 'types', 'description', 'createdAt', 'secrets'] as const;

const toEndpoint = (item: Record<string, unknown>): EventEndpoint =>
  Object.fromEntries(
    ENDPOINT_FIELDS.filter((f) => item[f] !== undefined).map((f) => [f, item[f]]),
  ) as unknown as EventEndpoint;

/** Stores a new endpoint (its id is new: the put is conditional on its absence). */
export async function putEndpoint(db: Db, tenant: string, endpoint: EventEndpoint): Promise<void> {
  try {
    await db.client.send(
      new PutCommand({
        TableName: db.table,
        Item: { PK: keys.endpoints(tenant), SK: keys.endpoint(endpoint.id), tenant, ...endpoint },
        ConditionExpression: 'attribute_not_exists(PK)',
      }),
    );
  } catch (error) {
    throw storeFailure(error, 'putEndpoint');
  }
}

/** One endpoint of the tenant, or undefined. */
export async function getEndpoint(db: Db, tenant: string, id: string): Promise<EventEndpoint | undefined> {
  try {
    const out = await db.client.send(
      new GetCommand({
        TableName: db.table,
        Key: { PK: keys.endpoints(tenant), SK: keys.endpoint(id) },
        ConsistentRead: true,
      }),
    );
    return out.Item ? toEndpoint(out.Item) : undefined;
  } catch (error) {
    throw storeFailure(error, 'getEndpoint');
  }
}

/** Every endpoint of the tenant, oldest first (ids are ULIDs). */
export async function listEndpoints(db: Db, tenant: string): Promise<EventEndpoint[]> {
  try {
    const items = await queryAll(db, {
      KeyConditionExpression: 'PK = :pk AND begins_with(SK, :ep)',
      ExpressionAttributeValues: { ':pk': keys.endpoints(tenant), ':ep': keys.endpoint('') },
    });
    return items.map(toEndpoint);
  } catch (error) {
    throw storeFailure(error, 'listEndpoints');
  }
}

/** Deletes an endpoint; false when it did not exist. Its delivery log expires with its TTL. */
export async function deleteEndpoint(db: Db, tenant: string, id: string): Promise<boolean> {
  try {
    const out = await db.client.send(
      new DeleteCommand({
        TableName: db.table,
        Key: { PK: keys.endpoints(tenant), SK: keys.endpoint(id) },
        ReturnValues: 'ALL_OLD',
      }),
    );
    return out.Attributes !== undefined;
  } catch (error) {
    throw storeFailure(error, 'deleteEndpoint');
  }
}

/** Replaces the endpoint's secrets, on condition that it still exists; false when it does not. */
export async function setEndpointSecrets(
  db: Db,
  tenant: string,
  id: string,
  secrets: SealedSecret[],
): Promise<boolean> {
  try {
    await db.client.send(
      new UpdateCommand({
        TableName: db.table,
        Key: { PK: keys.endpoints(tenant), SK: keys.endpoint(id) },
        UpdateExpression: 'SET secrets = :s',
        ConditionExpression: 'attribute_exists(PK)',
        ExpressionAttributeValues: { ':s': secrets },
      }),
    );
    return true;
  } catch (error) {
    if ((error as { name?: string }).name === 'ConditionalCheckFailedException') return false;
    throw storeFailure(error, 'setEndpointSecrets');
  }
}

const DELIVERY_FIELDS = [
  'tenant',
  'endpointId',
  'webhookId',
  'type',
  'eventId',
  'subjectKey',
  'status',
  'attempts',
  'body',
  'roundStartedAt',
  'roundAttempts',
  'replays',
] as const;

function toDelivery(item: Record<string, unknown>): Delivery {
  const d = Object.fromEntries(DELIVERY_FIELDS.map((f) => [f, item[f]])) as unknown as Delivery;
  return { ...d, key: item.SK as string, attempts: (item.attempts as DeliveryAttempt[]) ?? [] };
}

const byStatus = (tenant: string, endpointId: string, status: DeliveryStatus) =>
  `${keys.deliveries(tenant, endpointId)}#${status}`;
const ttl = (now: string) => toSec(Date.parse(now) + KEEP_DAYS * DAY_MS);

/**
 * Records a delivery as pending, once: a repeat (a dispatcher that crashed after writing it) finds it there.
 * Returns the stored delivery and whether this call created it.
 */
export async function recordDelivery(
  db: Db,
  delivery: Delivery,
  now: string,
): Promise<{ delivery: Delivery; created: boolean }> {
  const { key, ...fields } = delivery;
  try {
    await db.client.send(
      new PutCommand({
        TableName: db.table,
        Item: {
          PK: keys.deliveries(delivery.tenant, delivery.endpointId),
          SK: key,
          ...fields,
          GSI2PK: byStatus(delivery.tenant, delivery.endpointId, delivery.status),
          GSI2SK: key,
          expiresAtEpoch: ttl(now),
        },
        ConditionExpression: 'attribute_not_exists(PK)',
      }),
    );
    return { delivery, created: true };
  } catch (error) {
    if ((error as { name?: string }).name !== 'ConditionalCheckFailedException')
      throw storeFailure(error, 'recordDelivery');
  }
  const existing = await getDelivery(db, delivery.tenant, delivery.endpointId, key);
  return { delivery: existing ?? delivery, created: false };
}

/** One delivery, strongly consistent. */
export async function getDelivery(
  db: Db,
  tenant: string,
  endpointId: string,
  key: string,
): Promise<Delivery | undefined> {
  try {
    const out = await db.client.send(
      new GetCommand({
        TableName: db.table,
        Key: { PK: keys.deliveries(tenant, endpointId), SK: key },
        ConsistentRead: true,
      }),
    );
    return out.Item ? toDelivery(out.Item) : undefined;
  } catch (error) {
    throw storeFailure(error, 'getDelivery');
  }
}

/** Appends an attempt and sets the status (the attempts kept are bounded: the newest {@link ATTEMPTS_KEPT}). */
export async function recordAttempt(
  db: Db,
  delivery: Delivery,
  attempt: DeliveryAttempt,
  status: DeliveryStatus,
): Promise<Delivery> {
  const attempts = [...delivery.attempts, attempt].slice(-ATTEMPTS_KEPT);
  const roundAttempts = delivery.roundAttempts + 1;
  try {
    await db.client.send(
      new UpdateCommand({
        TableName: db.table,
        Key: { PK: keys.deliveries(delivery.tenant, delivery.endpointId), SK: delivery.key },
        UpdateExpression: 'SET attempts = :a, #s = :s, roundAttempts = :n, GSI2PK = :g, expiresAtEpoch = :ttl',
        ExpressionAttributeNames: { '#s': 'status' },
        ExpressionAttributeValues: {
          ':a': attempts,
          ':s': status,
          ':n': roundAttempts,
          ':g': byStatus(delivery.tenant, delivery.endpointId, status),
          ':ttl': ttl(attempt.at),
        },
      }),
    );
    return { ...delivery, attempts, status, roundAttempts };
  } catch (error) {
    throw storeFailure(error, 'recordAttempt');
  }
}

/** Starts a new round of attempts for a replayed delivery: pending again, its attempts kept. */
export async function restartDelivery(db: Db, delivery: Delivery, now: string): Promise<Delivery> {
  try {
    await db.client.send(
      new UpdateCommand({
        TableName: db.table,
        Key: { PK: keys.deliveries(delivery.tenant, delivery.endpointId), SK: delivery.key },
        UpdateExpression:
          'SET #s = :s, roundAttempts = :zero, roundStartedAt = :now, replays = replays + :one, GSI2PK = :g, expiresAtEpoch = :ttl',
        ExpressionAttributeNames: { '#s': 'status' },
        ExpressionAttributeValues: {
          ':s': 'pending',
          ':zero': 0,
          ':one': 1,
          ':now': now,
          ':g': byStatus(delivery.tenant, delivery.endpointId, 'pending'),
          ':ttl': ttl(now),
        },
      }),
    );
    return { ...delivery, status: 'pending', roundAttempts: 0, roundStartedAt: now, replays: delivery.replays + 1 };
  } catch (error) {
    throw storeFailure(error, 'restartDelivery');
  }
}

const encode = (key: string) => Buffer.from(JSON.stringify({ v: 1, k: key })).toString('base64url');
function decode(cursor: string): string {
  try {
    const parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (parsed?.v === 1 && typeof parsed.k === 'string' && parsed.k.startsWith('DLV#')) return parsed.k;
  } catch {}
  throw new InvalidCursor('cursor is not one this service handed out (X-Next-Cursor)');
}

/** An endpoint's delivery log, newest first, optionally one status, a page at a time. */
export async function listDeliveries(
  db: Db,
  tenant: string,
  endpointId: string,
  options: { status?: DeliveryStatus; limit: number; cursor?: string },
): Promise<{ deliveries: Delivery[]; next?: string }> {
  const after = options.cursor ? decode(options.cursor) : undefined;
  const input = options.status
    ? {
        IndexName: 'GSI2',
        KeyConditionExpression: 'GSI2PK = :pk',
        ExpressionAttributeValues: { ':pk': byStatus(tenant, endpointId, options.status) },
        ...(after
          ? {
              ExclusiveStartKey: {
                GSI2PK: byStatus(tenant, endpointId, options.status),
                GSI2SK: after,
                PK: keys.deliveries(tenant, endpointId),
                SK: after,
              },
            }
          : {}),
      }
    : {
        KeyConditionExpression: 'PK = :pk AND begins_with(SK, :dlv)',
        ExpressionAttributeValues: { ':pk': keys.deliveries(tenant, endpointId), ':dlv': 'DLV#' },
        ConsistentRead: true,
        ...(after ? { ExclusiveStartKey: { PK: keys.deliveries(tenant, endpointId), SK: after } } : {}),
      };
  try {
    const out = await db.client.send(
      new QueryCommand({ TableName: db.table, ScanIndexForward: false, Limit: options.limit, ...input }),
    );
    const deliveries = (out.Items ?? []).map(toDelivery);
    const last = deliveries.at(-1);
    return { deliveries, ...(out.LastEvaluatedKey && last ? { next: encode(last.key) } : {}) };
  } catch (error) {
    throw storeFailure(error, 'listDeliveries');
  }
}

/**
 * Every pending delivery of the table (the local runtime's queue after a restart): a Scan, run once at start
 * of the local runtime only, never in the cloud (SQS keeps the queue there).
 */
export async function scanPendingDeliveries(db: Db): Promise<Delivery[]> {
  const found: Delivery[] = [];
  let start: Record<string, unknown> | undefined;
  try {
    do {
      const out = await db.client.send(
        new ScanCommand({
          TableName: db.table,
          FilterExpression: 'begins_with(SK, :dlv) AND #s = :pending',
          ExpressionAttributeNames: { '#s': 'status' },
          ExpressionAttributeValues: { ':dlv': 'DLV#', ':pending': 'pending' },
          ExclusiveStartKey: start,
        }),
      );
      found.push(...(out.Items ?? []).map(toDelivery));
      start = out.LastEvaluatedKey;
    } while (start);
  } catch (error) {
    throw storeFailure(error, 'scanPendingDeliveries');
  }
  return found.sort((a, b) => a.key.localeCompare(b.key));
}
