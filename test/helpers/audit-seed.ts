import { randomBytes } from 'node:crypto';
import { BatchWriteCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { ulid } from 'ulid';
import type { LedgerEvent } from '#domain/ledger.ts';
import { emptyState, type SubjectState } from '#domain/subject-state.ts';
import { mapLimit } from '#shared/concurrency.ts';
import type { Db } from '#store/db.ts';
import { chainEvent, eventItem, stateItem } from '#store/subjects.ts';
import { keys } from '#store/table.ts';
import { testActor } from './factories.ts';

/** A subjectKey-shaped random key (43 base64url characters, like an HMAC-SHA-256). */
export const randomSubjectKey = () => randomBytes(32).toString('base64url');

const CHANNELS = ['whatsapp', 'sms', 'email'] as const;

/**
 * Writes items with BatchWriteItem (25 per call, a few calls in flight, unprocessed items retried). A call
 * that times out on a busy DynamoDB Local is sent again (puts of the same items: safe to repeat), a few times.
 */
export async function batchPut(db: Db, items: Record<string, unknown>[], inFlight = 4): Promise<void> {
  const chunks: Record<string, unknown>[][] = [];
  for (let i = 0; i < items.length; i += 25) chunks.push(items.slice(i, i + 25));
  await mapLimit(chunks, inFlight, async (chunk) => {
    let pending = chunk.map((Item) => ({ PutRequest: { Item } }));
    for (let timeouts = 0; pending.length; ) {
      try {
        const out = await db.client.send(new BatchWriteCommand({ RequestItems: { [db.table]: pending } }));
        pending = (out.UnprocessedItems?.[db.table] ?? []) as typeof pending;
      } catch (error) {
        if ((error as Error).name !== 'TimeoutError' || ++timeouts > 3) throw error;
      }
    }
  });
}

export interface Seeded {
  subjects: Map<string, LedgerEvent[]>;
  /** Every event with its subject, in time order (`at`, then eventId). */
  timeline: (LedgerEvent & { subjectKey: string })[];
}

/**
 * Seeds a ledger fast, straight into the table: `subjects` chains of `perSubject` correctly hashed events
 * (the real `chainEvent`/`eventItem`), their times spread over `[start, start + spanMs)`, plus each
 * subject's state item (seq, head, version) as `appendChange` would leave it.
 */
export async function seedLedger(
  db: Db,
  tenant: string,
  options: { subjects: number; perSubject: number; start: string; spanMs: number },
): Promise<Seeded> {
  const items: Record<string, unknown>[] = [];
  const subjects = new Map<string, LedgerEvent[]>();
  const timeline: Seeded['timeline'] = [];
  const start = Date.parse(options.start);
  for (let s = 0; s < options.subjects; s++) {
    const subjectKey = randomSubjectKey();
    let state: SubjectState = emptyState(subjectKey, 'phone');
    const times = Array.from({ length: options.perSubject }, () => start + Math.floor(Math.random() * options.spanMs))
      .sort((a, b) => a - b)
      .map((t) => new Date(t).toISOString());
    const chain: LedgerEvent[] = [];
    times.forEach((at, i) => {
      const channel = CHANNELS[(s + i) % CHANNELS.length];
      const event = chainEvent(
        state,
        { seq: state.seq + 1, eventId: ulid(Date.parse(at)) },
        i % 4 === 3
          ? { type: 'consent.withdrawn', at, channel, purpose: 'marketing', source: 'api', data: { scopes: [] } }
          : {
              type: 'consent.granted',
              at,
              channel,
              purpose: 'marketing',
              source: 'web_form',
              data: { noticeVersion: `v${i}`, grantedAt: at, expiresAt: null },
            },
        testActor,
        at,
      );
      state = { ...state, version: state.version + 1, seq: event.seq, head: event.hash };
      chain.push(event);
      items.push(eventItem(tenant, subjectKey, event));
      timeline.push({ ...event, subjectKey });
    });
    items.push(stateItem(tenant, subjectKey, state));
    subjects.set(subjectKey, chain);
  }
  await batchPut(db, items);
  // Byte order of `<at>#<eventId>`, as the index sorts (not localeCompare, which ignores punctuation).
  const key = (e: { at: string; eventId: string }) => `${e.at}#${e.eventId}`;
  timeline.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
  return { subjects, timeline };
}

/**
 * Edits one attribute of a stored ledger event directly in the table, as a tamperer with table access
 * would (`path` may be nested, e.g. ['data', 'noticeVersion']). The hash is left as it was.
 */
export async function tamperEvent(
  db: Db,
  tenant: string,
  subjectKey: string,
  seq: number,
  path: string[],
  value: unknown,
): Promise<void> {
  await db.client.send(
    new UpdateCommand({
      TableName: db.table,
      Key: { PK: keys.subject(tenant, subjectKey), SK: keys.event(seq) },
      UpdateExpression: `SET ${path.map((_, i) => `#p${i}`).join('.')} = :v`,
      ExpressionAttributeNames: Object.fromEntries(path.map((name, i) => [`#p${i}`, name])),
      ExpressionAttributeValues: { ':v': value },
    }),
  );
}
