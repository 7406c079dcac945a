import { DeleteCommand, GetCommand, PutCommand, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { functionTimeoutSeconds } from '#shared/function-timeout.ts';
import { toSec } from '#shared/time.ts';
import type { Db } from './db.ts';
import { storeFailure } from './errors.ts';
import { keys } from './table.ts';

/** How long a stored response answers retries. */
export const IDEMPOTENCY_TTL_SECONDS = 24 * 3600;

/**
 * How long an in-progress key belongs to the request that claimed it: the function's timeout plus 10 s.
 * Past that the request cannot be running any more (Lambda stopped it), so a retry takes the key over
 * instead of getting 409 `idempotency_in_progress` for 24 h.
 */
export const idempotencyLeaseSeconds = () => functionTimeoutSeconds() + 10;

export interface IdempotencyRecord {
  requestHash: string;
  status: 'in_progress' | 'completed';
  /** In progress: the claim's lease ends then (epoch seconds). */
  leaseUntilEpoch?: number;
  response?: { statusCode: number; headers: Record<string, string>; body: string };
}

const key = (tenant: string, keyHash: string) => ({ PK: keys.idempotency(tenant, keyHash), SK: 'IDEM' });

/**
 * Claims an idempotency key. Returns undefined when this request owns it now, or the record another
 * request left (in progress or completed). Expired records (TTL not yet swept) and in-progress records
 * whose lease has ended (a request that crashed or timed out) are taken over.
 */
export async function claimIdempotencyKey(
  db: Db,
  tenant: string,
  keyHash: string,
  requestHash: string,
  now = Date.now(),
): Promise<IdempotencyRecord | undefined> {
  try {
    await db.client.send(
      new PutCommand({
        TableName: db.table,
        Item: {
          ...key(tenant, keyHash),
          requestHash,
          status: 'in_progress',
          leaseUntilEpoch: toSec(now) + idempotencyLeaseSeconds(),
          expiresAtEpoch: toSec(now) + IDEMPOTENCY_TTL_SECONDS,
        },
        ConditionExpression:
          'attribute_not_exists(PK) OR expiresAtEpoch < :now OR (#s = :inProgress AND leaseUntilEpoch < :now)',
        ExpressionAttributeNames: { '#s': 'status' },
        ExpressionAttributeValues: { ':now': toSec(now), ':inProgress': 'in_progress' },
      }),
    );
    return undefined;
  } catch (error) {
    if ((error as Error).name !== 'ConditionalCheckFailedException') throw storeFailure(error, 'claimIdempotencyKey');
  }
  try {
    const out = await db.client.send(
      new GetCommand({ TableName: db.table, Key: key(tenant, keyHash), ConsistentRead: true }),
    );
    return out.Item as IdempotencyRecord | undefined;
  } catch (error) {
    throw storeFailure(error, 'claimIdempotencyKey');
  }
}

/**
 * Stores the response that answers retries of this key and, in each named subject's partition, a
 * reference to the record, so that erasing the subject deletes it (the record outlives nothing it names).
 */
export async function completeIdempotencyKey(
  db: Db,
  tenant: string,
  keyHash: string,
  response: NonNullable<IdempotencyRecord['response']>,
  subjectKeys: string[] = [],
): Promise<void> {
  const record = key(tenant, keyHash);
  const expiresAtEpoch = toSec(Date.now()) + IDEMPOTENCY_TTL_SECONDS;
  await db.client.send(
    new TransactWriteCommand({
      TransactItems: [
        {
          Update: {
            TableName: db.table,
            Key: record,
            UpdateExpression: 'SET #s = :done, #r = :response REMOVE leaseUntilEpoch',
            ExpressionAttributeNames: { '#s': 'status', '#r': 'response' },
            ExpressionAttributeValues: { ':done': 'completed', ':response': response },
          },
        },
        ...[...new Set(subjectKeys)].slice(0, 20).map((subjectKey) => ({
          Put: {
            TableName: db.table,
            Item: { PK: keys.subject(tenant, subjectKey), SK: `REF#IDEM#${keyHash}`, ref: record, expiresAtEpoch },
          },
        })),
      ],
    }),
  );
}

/** Frees a key whose request failed, so a retry can run. */
export async function releaseIdempotencyKey(db: Db, tenant: string, keyHash: string): Promise<void> {
  await db.client.send(new DeleteCommand({ TableName: db.table, Key: key(tenant, keyHash) }));
}
