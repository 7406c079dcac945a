import { GetCommand, ScanCommand, type ScanCommandOutput, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { REDACTED_TYPES } from '#domain/retention.ts';
import type { SubjectState } from '#domain/subject-state.ts';
import { mapLimit } from '#shared/concurrency.ts';
import type { Db } from './db.ts';
import { storeFailure } from './errors.ts';
import { decodeState } from './state-codec.ts';
import { keys } from './table.ts';

/** A subject's state as the retention job reads it (the fields its decision needs). */
export interface RetentionSubject {
  tenant: string;
  subjectKey: string;
  state: SubjectState;
}

/** A signal or send event that still holds its personal details. */
export interface DetailedEvent {
  tenant: string;
  subjectKey: string;
  key: { PK: string; SK: string };
  type: string;
  at: string;
}

/** One page of the retention scan. */
export interface RetentionPage {
  subjects: RetentionSubject[];
  events: DetailedEvent[];
}

const SUBJECT_PK = /^T#([^#]+)#S#(.+)$/;
const names = {
  '#pk': 'PK',
  '#sk': 'SK',
  '#type': 'type',
  '#at': 'at',
  '#details': 'details',
  '#scopes': 'scopes',
  '#erasure': 'erasure',
  '#own': 'lastOwnActionAt',
  '#n': 'n',
  '#b': 'b',
};

/**
 * Walks the subjects of one tenant (or of every tenant) for the retention job: a paged parallel Scan
 * (an offline daily job, never a request path) that returns each subject's state item and every
 * signal/send event still holding `details`, page by page: `onPage` runs before the segment reads on, so
 * memory stays bounded by a page.
 */
export async function scanForRetention(
  db: Db,
  tenant: string | undefined,
  onPage: (page: RetentionPage) => Promise<void>,
  segments = 4,
): Promise<void> {
  const types = Object.fromEntries(REDACTED_TYPES.map((type, i) => [`:t${i}`, type]));
  await Promise.all(
    Array.from({ length: segments }, async (_, segment) => {
      let start: Record<string, unknown> | undefined;
      do {
        let out: ScanCommandOutput;
        try {
          out = await db.client.send(
            new ScanCommand({
              TableName: db.table,
              Segment: segment,
              TotalSegments: segments,
              FilterExpression: `begins_with(#pk, :prefix) AND (#sk = :state OR (begins_with(#sk, :ev) AND #type IN (${Object.keys(types).join(', ')}) AND attribute_exists(#details)))`,
              ExpressionAttributeNames: names,
              ExpressionAttributeValues: {
                ':prefix': tenant ? keys.subject(tenant, '') : 'T#',
                ':state': keys.state,
                ':ev': 'EV#',
                ...types,
              },
              // The state in either layout (state-codec.ts): compact (`n`, `b`) or that of earlier releases.
              ProjectionExpression: '#pk, #sk, #type, #at, #n, #b, #scopes, #erasure, #own',
              ExclusiveStartKey: start,
            }),
          );
        } catch (error) {
          throw storeFailure(error, 'scanForRetention');
        }
        const page: RetentionPage = { subjects: [], events: [] };
        for (const item of out.Items ?? []) {
          const match = SUBJECT_PK.exec(item.PK as string);
          if (!match) continue;
          const [, owner, subjectKey] = match;
          if (item.SK === keys.state) {
            page.subjects.push({ tenant: owner, subjectKey, state: decodeState(item, subjectKey) });
          } else {
            const key = { PK: item.PK as string, SK: item.SK as string };
            page.events.push({ tenant: owner, subjectKey, key, type: item.type as string, at: item.at as string });
          }
        }
        await onPage(page);
        start = out.LastEvaluatedKey;
      } while (start);
    }),
  );
}

/** When the subject's first event was recorded (undefined: it has none). */
export async function firstRecordedAt(db: Db, tenant: string, subjectKey: string): Promise<string | undefined> {
  try {
    const out = await db.client.send(
      new GetCommand({
        TableName: db.table,
        Key: { PK: keys.subject(tenant, subjectKey), SK: keys.event(1) },
        ProjectionExpression: '#at, recordedAt',
        ExpressionAttributeNames: { '#at': 'at' },
      }),
    );
    return (out.Item?.recordedAt ?? out.Item?.at) as string | undefined;
  } catch (error) {
    throw storeFailure(error, 'firstRecordedAt');
  }
}

/**
 * Deletes the personal details of events (`details` and `detailsSalt`): one UpdateItem each, on condition
 * that the item still has them (an event erased or redacted meanwhile is left alone). The public part and
 * the hash stay, and the chain still verifies (its hash commits to the details' salted digest).
 * Returns how many events were redacted.
 */
export async function redactDetails(db: Db, eventKeys: readonly { PK: string; SK: string }[]): Promise<number> {
  const done = await mapLimit(eventKeys, 8, async (Key) => {
    try {
      await db.client.send(
        new UpdateCommand({
          TableName: db.table,
          Key,
          UpdateExpression: 'REMOVE #details, detailsSalt',
          ConditionExpression: 'attribute_exists(#pk) AND attribute_exists(#details)',
          ExpressionAttributeNames: { '#pk': 'PK', '#details': 'details' },
        }),
      );
      return 1;
    } catch (error) {
      if ((error as Error).name === 'ConditionalCheckFailedException') return 0;
      throw storeFailure(error, 'redactDetails');
    }
  });
  return done.reduce<number>((sum, n) => sum + n, 0);
}
