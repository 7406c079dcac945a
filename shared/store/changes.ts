import { GetCommand, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { changeFromItem, type DerivedChange, EXPIRY_PREFIX, type ExpiryRecord, expiryId } from '#domain/changes.ts';
import { DAY_MS } from '#shared/time.ts';
import type { Db } from './db.ts';
import { InvalidCursor, storeFailure } from './errors.ts';
import { AUDIT_SHARDS, keys } from './table.ts';

/**
 * The change feed's store side (docs/events.md): `consent.expired` records, and the tenant's changes in
 * `recordedAt` order read from the audit index (ledger events, GSI1) and the expiry records' day index (GSI2).
 */

/**
 * Records that a consent expired, exactly once: the record's key is its grant's (`EXP#<grant eventId>` in the
 * subject's partition, so an erasure deletes it), put only if absent. Its insert is what the table's stream
 * turns into a `consent.expired` change. Returns false when it was recorded before.
 */
export async function recordExpiry(db: Db, record: ExpiryRecord): Promise<boolean> {
  const { tenant, subjectKey, ...fields } = record;
  try {
    await db.client.send(
      new PutCommand({
        TableName: db.table,
        Item: {
          PK: keys.subject(tenant, subjectKey),
          SK: `${EXPIRY_PREFIX}${record.grantEventId}`,
          ...fields,
          GSI2PK: keys.changesDay(tenant, record.recordedAt.slice(0, 10)),
          GSI2SK: `${record.recordedAt}#${expiryId(record.grantEventId)}`,
        },
        ConditionExpression: 'attribute_not_exists(PK)',
      }),
    );
    return true;
  } catch (error) {
    if ((error as { name?: string }).name === 'ConditionalCheckFailedException') return false;
    throw storeFailure(error, 'recordExpiry');
  }
}

const WATERMARK = { PK: 'JOB#RETENTION', SK: 'EXPIRY' };

/** Until when the retention job has looked for expired consents (every tenant), if it ever did. */
export async function expiryWatermark(db: Db): Promise<string | undefined> {
  try {
    const out = await db.client.send(new GetCommand({ TableName: db.table, Key: WATERMARK, ConsistentRead: true }));
    return out.Item?.checkedTo as string | undefined;
  } catch (error) {
    throw storeFailure(error, 'expiryWatermark');
  }
}

/** Moves the watermark forward (never back). */
export async function setExpiryWatermark(db: Db, checkedTo: string): Promise<void> {
  try {
    await db.client.send(
      new PutCommand({
        TableName: db.table,
        Item: { ...WATERMARK, checkedTo },
        ConditionExpression: 'attribute_not_exists(checkedTo) OR checkedTo < :to',
        ExpressionAttributeValues: { ':to': checkedTo },
      }),
    );
  } catch (error) {
    if ((error as { name?: string }).name === 'ConditionalCheckFailedException') return;
    throw storeFailure(error, 'setExpiryWatermark');
  }
}

/** Ledger event types that can be a change (a signal only when it moves a block level). */
const CHANGE_EVENT_TYPES = [
  'consent.granted',
  'consent.withdrawn',
  'erasure.requested',
  'erasure.completed',
  'signal.recorded',
];

/** A position in the feed: `<recordedAt>#<id>`, or the end of a day `<day>T23:59:59.999Z#~`. */
const POSITION = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z#[0-9A-Za-z_~]*$/;

/** The opaque cursor of a feed position. */
export const encodeChangeCursor = (position: string) =>
  Buffer.from(JSON.stringify({ v: 1, after: position })).toString('base64url');

/** The position a cursor names, or {@link InvalidCursor}. */
export function decodeChangeCursor(cursor: string): string {
  let position: unknown;
  try {
    position = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'))?.after;
  } catch {
    position = undefined;
  }
  if (typeof position !== 'string' || !POSITION.test(position) || Number.isNaN(Date.parse(position.split('#')[0]))) {
    throw new InvalidCursor('after is not a cursor this service handed out (the "next" of GET /v1/changes)');
  }
  return position;
}

/** The feed position just before `time` (every change recorded at or after it comes after). */
export const positionBefore = (time: string) => `${new Date(Date.parse(time) - 1).toISOString()}#~`;

/** One partition's items after `after` and up to `until`, at most `need` changes (filtered), in key order. */
async function partitionChanges(
  db: Db,
  query: { index: 'GSI1' | 'GSI2'; pk: string; after: string; until: string; need: number },
): Promise<DerivedChange[]> {
  const found: DerivedChange[] = [];
  let start: Record<string, unknown> | undefined;
  const pkName = `${query.index}PK`;
  const skName = `${query.index}SK`;
  const events = query.index === 'GSI1';
  do {
    const out = await db.client.send(
      new QueryCommand({
        TableName: db.table,
        IndexName: query.index,
        KeyConditionExpression: `#pk = :pk AND #sk BETWEEN :after AND :until`,
        ...(events ? { FilterExpression: `#type IN (${CHANGE_EVENT_TYPES.map((_, i) => `:t${i}`).join(', ')})` } : {}),
        ExpressionAttributeNames: { '#pk': pkName, '#sk': skName, ...(events ? { '#type': 'type' } : {}) },
        ExpressionAttributeValues: {
          ':pk': query.pk,
          ':after': `${query.after}\u0000`,
          ':until': query.until,
          ...(events ? Object.fromEntries(CHANGE_EVENT_TYPES.map((t, i) => [`:t${i}`, t])) : {}),
        },
        ExclusiveStartKey: start,
        Limit: Math.max(50, query.need * 2),
      }),
    );
    for (const item of out.Items ?? []) {
      const change = changeFromItem(item);
      if (change) found.push(change);
    }
    start = out.LastEvaluatedKey;
  } while (start && found.length < query.need);
  return found.slice(0, query.need);
}

/**
 * The tenant's changes after `after` (a feed position), in `recordedAt` order, recorded no later than `until`
 * (the caller keeps a settle lag: an event takes its `recordedAt` before its transaction commits), at most
 * `limit`, looking at no more than `maxDays` days. Returns them and the position to go on from: the last
 * change's, or — nothing found in a whole past day — that day's end, so an idle feed's cursor moves on.
 */
export async function readChanges(
  db: Db,
  tenant: string,
  options: { after: string; until: string; limit: number; maxDays?: number },
): Promise<{ changes: DerivedChange[]; position: string }> {
  const changes: DerivedChange[] = [];
  let position = options.after;
  const lastDay = options.until.slice(0, 10);
  const maxDays = options.maxDays ?? 8;
  const untilKey = `${options.until}#~`;
  try {
    for (let d = 0; d < maxDays && changes.length < options.limit; d++) {
      const day = position.slice(0, 10);
      if (day > lastDay) break;
      const need = options.limit - changes.length;
      const partitions = [
        ...Array.from({ length: AUDIT_SHARDS }, (_, shard) => ({
          index: 'GSI1' as const,
          pk: keys.auditDay(tenant, day, shard),
        })),
        { index: 'GSI2' as const, pk: keys.changesDay(tenant, day) },
      ];
      const dayEnd = `${day}T23:59:59.999Z#~`;
      const until = dayEnd < untilKey ? dayEnd : untilKey;
      const found = (
        await Promise.all(partitions.map((p) => partitionChanges(db, { ...p, after: position, until, need })))
      )
        .flat()
        .sort((a, b) => (a.sortKey < b.sortKey ? -1 : a.sortKey > b.sortKey ? 1 : 0))
        .slice(0, need);
      changes.push(...found);
      if (found.length === need) {
        position = found[found.length - 1].sortKey;
        break;
      }
      if (found.length > 0) position = found[found.length - 1].sortKey;
      // The day is read up to `until`: stop there, or go on from the next day's start.
      if (until !== dayEnd) break;
      const next = new Date(Date.parse(`${day}T00:00:00.000Z`) + DAY_MS).toISOString().slice(0, 10);
      position = `${next}T00:00:00.000Z#`;
    }
  } catch (error) {
    if (error instanceof InvalidCursor) throw error;
    throw storeFailure(error, 'readChanges');
  }
  return { changes, position };
}
