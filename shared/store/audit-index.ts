import { QueryCommand } from '@aws-sdk/lib-dynamodb';
import type { AuditEvent, AuditRange } from '#domain/audit.ts';
import { DAY_MS } from '#shared/time.ts';
import type { Db } from './db.ts';
import { InvalidCursor, storeFailure } from './errors.ts';
import { toEvent } from './subjects.ts';
import { AUDIT_SHARDS, keys } from './table.ts';

/**
 * Items per shard query page. A merge holds at most 2 days (the current one and the one read ahead) ×
 * 8 shards × 2 pages (one being merged, one prefetched): bounded whatever the size of the range.
 */
const SHARD_PAGE = 500;

/** The audit-index sort key of an event: `<at>#<eventId>`, unique and in time order. */
export const auditSortKey = (event: { at: string; recordedAt?: string; eventId: string }) =>
  `${event.recordedAt ?? event.at}#${event.eventId}`;

/**
 * An opaque resume point: the sort key of the last event handed out. The sort key starts with the
 * event's time, so it also names the day (index partition) to resume in; the next page starts strictly
 * after it, so a resumed export neither repeats nor skips an event.
 */
export function encodeCursor(sortKey: string): string {
  return Buffer.from(JSON.stringify({ v: 1, k: sortKey })).toString('base64url');
}

/** Decodes a cursor, or throws {@link InvalidCursor}. */
export function decodeCursor(cursor: string, range: AuditRange): string {
  let key: unknown;
  try {
    const parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    key = parsed?.v === 1 ? parsed.k : undefined;
  } catch {
    key = undefined;
  }
  if (typeof key !== 'string' || !/^\d{4}-\d{2}-\d{2}T[^#]+#[0-9A-Z]+$/.test(key)) {
    throw new InvalidCursor('cursor is not one this service handed out (X-Next-Cursor)');
  }
  if (key < range.from || key >= range.to) {
    throw new InvalidCursor('cursor does not belong to this from/to range');
  }
  return key;
}

/** The UTC days `[from, to)` touches, in order. */
export function daysOf(range: AuditRange): string[] {
  const days: string[] = [];
  const last = new Date(Date.parse(range.to) - 1).toISOString().slice(0, 10);
  for (let t = Date.parse(`${range.from.slice(0, 10)}T00:00:00.000Z`); ; t += DAY_MS) {
    const day = new Date(t).toISOString().slice(0, 10);
    if (day > last) break;
    days.push(day);
  }
  return days;
}

type Item = Record<string, unknown>;

/** A projection of plain attribute names, each behind a placeholder (`at`, `type`… are reserved words). */
function projectionOf(attributes: string | undefined) {
  if (!attributes) return {};
  const names = attributes.split(',').map((a) => a.trim());
  return {
    ProjectionExpression: names.map((_, i) => `#p${i}`).join(', '),
    ExpressionAttributeNames: Object.fromEntries(names.map((n, i) => [`#p${i}`, n])),
  };
}

/** One shard of one day, read page by page with the next page prefetched while the current one is merged. */
class ShardReader {
  private buffer: Item[] = [];
  private index = 0;
  private next: Promise<{ items: Item[]; last?: Item }> | undefined;

  constructor(
    private readonly db: Db,
    private readonly pk: string,
    private readonly lower: string,
    private readonly upper: string,
    private readonly pageSize: number,
    private readonly projection?: string,
  ) {
    this.next = this.prefetch(undefined);
  }

  /**
   * Starts reading a page. A consumer may stop before awaiting it (a full page, an interrupted export):
   * the no-op catch keeps such an abandoned read from becoming an unhandled rejection; a consumer that
   * does await it still gets the error.
   */
  private prefetch(start: Item | undefined) {
    const page = this.fetch(start);
    page.catch(() => undefined);
    return page;
  }

  private async fetch(start: Item | undefined) {
    try {
      const out = await this.db.client.send(
        new QueryCommand({
          TableName: this.db.table,
          IndexName: 'GSI1',
          KeyConditionExpression: 'GSI1PK = :pk AND GSI1SK BETWEEN :lower AND :upper',
          ExpressionAttributeValues: { ':pk': this.pk, ':lower': this.lower, ':upper': this.upper },
          ...projectionOf(this.projection),
          ExclusiveStartKey: start,
          Limit: this.pageSize,
        }),
      );
      return { items: out.Items ?? [], last: out.LastEvaluatedKey };
    } catch (error) {
      throw storeFailure(error, 'auditQuery');
    }
  }

  /** The current head item (loads the next page when needed), or undefined when the shard is done. */
  async peek(): Promise<Item | undefined> {
    while (this.index >= this.buffer.length) {
      if (!this.next) return undefined;
      const page = await this.next;
      this.buffer = page.items;
      this.index = 0;
      this.next = page.last ? this.prefetch(page.last) : undefined;
    }
    return this.buffer[this.index];
  }

  shift(): void {
    this.index++;
  }
}

export interface AuditReadOptions {
  /** Resume strictly after this sort key (a decoded cursor). */
  after?: string;
  /** Only these attributes (e.g. `subjectKey, GSI1SK` for verification). */
  projection?: string;
  pageSize?: number;
}

/**
 * Every event of a tenant in `[from, to)`, in time order: the 8 shards of each day are queried in
 * parallel and k-way merged by sort key (`<at>#<eventId>`). Memory stays bounded by the shard pages,
 * whatever the size of the range.
 */
export async function* auditItems(
  db: Db,
  tenant: string,
  range: AuditRange,
  options: AuditReadOptions = {},
): AsyncGenerator<Item> {
  const start = options.after ?? range.from;
  // `to` itself is excluded: a key at `to` reads `<to>#<id>`, which sorts after the bare `to`.
  const upper = range.to;
  const days = daysOf({ from: start, to: range.to });
  const open = (day: string | undefined) =>
    day === undefined
      ? undefined
      : Array.from(
          { length: AUDIT_SHARDS },
          (_, shard) =>
            new ShardReader(
              db,
              keys.auditDay(tenant, day, shard),
              day === start.slice(0, 10) ? start : `${day}T00:00:00.000Z`,
              upper,
              options.pageSize ?? SHARD_PAGE,
              options.projection,
            ),
        );
  // The next day's first pages are read while this day is merged (one day ahead: memory stays bounded).
  let readers = open(days[0]);
  let ahead = open(days[1]);
  for (let d = 0; readers; d++) {
    for (;;) {
      const heads = await Promise.all(readers.map((r) => r.peek()));
      let best = -1;
      for (let i = 0; i < heads.length; i++) {
        const head = heads[i];
        if (head && (best < 0 || (head.GSI1SK as string) < (heads[best]!.GSI1SK as string))) best = i;
      }
      if (best < 0) break;
      readers[best].shift();
      const item = heads[best]!;
      if (options.after && item.GSI1SK === options.after) continue;
      yield item;
    }
    readers = ahead;
    ahead = open(days[d + 2]);
  }
}

/** The export shape of an index item: the stored event (details included; the export leaves them out) and its subject. */
export function toAuditEvent(item: Item): AuditEvent {
  return { ...toEvent(item), subjectKey: item.subjectKey as string };
}

/** Audit events in time order (see {@link auditItems}). */
export async function* auditEvents(
  db: Db,
  tenant: string,
  range: AuditRange,
  options: AuditReadOptions = {},
): AsyncGenerator<AuditEvent> {
  for await (const item of auditItems(db, tenant, range, options)) yield toAuditEvent(item);
}

/** Distinct subjects with at least one event in the range (read from the index, keys only). */
export async function subjectsTouched(db: Db, tenant: string, range: AuditRange): Promise<Set<string>> {
  const seen = new Set<string>();
  for await (const item of auditItems(db, tenant, range, { projection: 'subjectKey, GSI1SK', pageSize: 1000 })) {
    seen.add(item.subjectKey as string);
  }
  return seen;
}
