import type { Writable } from 'node:stream';
import { QueryCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import {
  type AuditEvent,
  type AuditRange,
  type BlockLevel,
  csvHeader,
  csvRow,
  erasureDeadline,
  levelShare,
  ndjsonLine,
  SummaryBuilder,
  type VerifyReport,
  verifySubject,
} from '#domain/audit.ts';
import type { SubjectState } from '#domain/subject-state.ts';
import { ValidationError } from '#http/errors.ts';
import type { Db } from './db.ts';
import { listErasureRequests } from './erasure.ts';
import { storeFailure } from './errors.ts';
import { getState, getStates, listEvents } from './subjects.ts';
import { AUDIT_SHARDS, keys } from './table.ts';

/**
 * Items per shard query page. A merge holds at most 2 days (the current one and the one read ahead) ×
 * 8 shards × 2 pages (one being merged, one prefetched): bounded whatever the size of the range.
 */
const SHARD_PAGE = 500;
const DAY_MS = 86_400_000;

/** The audit-index sort key of an event: `<at>#<eventId>`, unique and in time order. */
export const auditSortKey = (event: { at: string; eventId: string }) => `${event.at}#${event.eventId}`;

/**
 * An opaque resume point: the sort key of the last event handed out. The sort key starts with the
 * event's time, so it also names the day (index partition) to resume in; the next page starts strictly
 * after it, so a resumed export neither repeats nor skips an event.
 */
export function encodeCursor(sortKey: string): string {
  return Buffer.from(JSON.stringify({ v: 1, k: sortKey })).toString('base64url');
}

/** Decodes a cursor, or throws a 400 `invalid_cursor`. */
export function decodeCursor(cursor: string, range: AuditRange): string {
  let key: unknown;
  try {
    const parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    key = parsed?.v === 1 ? parsed.k : undefined;
  } catch {
    key = undefined;
  }
  if (typeof key !== 'string' || !/^\d{4}-\d{2}-\d{2}T[^#]+#[0-9A-Z]+$/.test(key)) {
    throw new ValidationError('cursor is not one this service handed out (X-Next-Cursor)', undefined, 'invalid_cursor');
  }
  if (key < range.from || key >= range.to) {
    throw new ValidationError('cursor does not belong to this from/to range', undefined, 'invalid_cursor');
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

/** The export shape of an index item. */
export function toAuditEvent(item: Item): AuditEvent {
  const { at, eventId, subjectKey, seq, type, channel, purpose, source, data, prevHash, hash } =
    item as unknown as AuditEvent;
  return {
    at,
    eventId,
    subjectKey,
    seq,
    type,
    channel: channel ?? null,
    purpose: purpose ?? null,
    source: source ?? null,
    data: data ?? {},
    prevHash,
    hash,
  };
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

export type ExportFormat = 'ndjson' | 'csv';

/** One page of an export: the body and the cursor of the next page (absent on the last page). */
export interface AuditPage {
  body: string;
  count: number;
  nextCursor?: string;
}

/**
 * Builds one page: at most `limit` events and about `maxBytes` of body (a Lambda response is buffered
 * and capped at 6 MB). One event is read ahead to know whether another page follows.
 */
export async function auditPage(
  db: Db,
  tenant: string,
  range: AuditRange,
  options: { format: ExportFormat; limit: number; after?: string; header?: boolean; maxBytes?: number },
): Promise<AuditPage> {
  const maxBytes = options.maxBytes ?? 4 * 1024 * 1024;
  const parts: string[] = options.format === 'csv' && options.header !== false ? [csvHeader()] : [];
  let bytes = parts.join('').length;
  let count = 0;
  let lastKey: string | undefined;
  let more = false;
  for await (const event of auditEvents(db, tenant, range, { after: options.after })) {
    if (count >= options.limit || bytes >= maxBytes) {
      more = true;
      break;
    }
    const line = options.format === 'csv' ? csvRow(event) : ndjsonLine(event);
    parts.push(line);
    bytes += Buffer.byteLength(line);
    count++;
    lastKey = auditSortKey(event);
  }
  return { body: parts.join(''), count, ...(more && lastKey ? { nextCursor: encodeCursor(lastKey) } : {}) };
}

/** What an export reports as it goes: events written so far and the cursor to resume after them. */
export interface ExportProgress {
  count: number;
  cursor?: string;
  at?: string;
}

/**
 * Streams every event of `[from, to)` to a writable (a file, stdout) with bounded memory: each line is
 * written as it comes off the merge, and writing waits when the stream asks for it (backpressure).
 * `after` resumes after a cursor's event. Used by the CLI `export` and the benchmark.
 */
export async function exportEvents(
  db: Db,
  tenant: string,
  range: AuditRange,
  format: ExportFormat,
  out: Writable,
  options: { after?: string; header?: boolean; onProgress?: (p: ExportProgress) => void; signal?: AbortSignal } = {},
): Promise<ExportProgress> {
  const write = (chunk: string) =>
    out.write(chunk) ? undefined : new Promise<void>((resolve) => out.once('drain', () => resolve()));
  if (format === 'csv' && options.header !== false) await write(csvHeader());
  const progress: ExportProgress = { count: 0 };
  for await (const event of auditEvents(db, tenant, range, { after: options.after })) {
    if (options.signal?.aborted) break;
    await write(format === 'csv' ? csvRow(event) : ndjsonLine(event));
    progress.count++;
    progress.cursor = encodeCursor(auditSortKey(event));
    progress.at = event.at;
    if (progress.count % 500 === 0) options.onProgress?.(progress);
  }
  options.onProgress?.(progress);
  return progress;
}

/** Distinct subjects with at least one event in the range (read from the index, keys only). */
export async function subjectsTouched(db: Db, tenant: string, range: AuditRange): Promise<Set<string>> {
  const seen = new Set<string>();
  for await (const item of auditItems(db, tenant, range, { projection: 'subjectKey, GSI1SK', pageSize: 1000 })) {
    seen.add(item.subjectKey as string);
  }
  return seen;
}

/** Runs `fn` over items with at most `limit` in flight (verification of many subjects). */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/** Subjects verified at once: enough to overlap round trips, few enough to stay within read capacity. */
const VERIFY_CONCURRENCY = 16;
const VERIFY_CHUNK = 100;

/**
 * Verifies the chains of the given subjects, in chunks of 100 (one BatchGetItem for their states) with
 * 16 chains read at once. The events are read before the state; a state that moved on meanwhile (a
 * live write) is read again once before anything is reported.
 */
export async function verifySubjects(db: Db, tenant: string, subjectKeys: Iterable<string>): Promise<VerifyReport> {
  const all = [...subjectKeys].sort();
  const report: VerifyReport = { subjects: all.length, events: 0, valid: true, broken: [] };
  for (let i = 0; i < all.length; i += VERIFY_CHUNK) {
    const chunk = all.slice(i, i + VERIFY_CHUNK);
    const checked = await mapLimit(chunk, VERIFY_CONCURRENCY, async (subjectKey) => {
      let events = await listEvents(db, tenant, subjectKey);
      let state = await getState(db, tenant, subjectKey);
      if (state && state.seq > (events.at(-1)?.seq ?? 0)) {
        events = await listEvents(db, tenant, subjectKey);
        state = await getState(db, tenant, subjectKey);
      }
      return { count: events.length, breaks: verifySubject(subjectKey, events, state) };
    });
    for (const c of checked) {
      report.events += c.count;
      report.broken.push(...c.breaks);
    }
  }
  report.valid = report.broken.length === 0;
  return report;
}

/** Verifies every chain touched by an event in the range. */
export async function verifyRange(db: Db, tenant: string, range: AuditRange): Promise<VerifyReport> {
  return verifySubjects(db, tenant, await subjectsTouched(db, tenant, range));
}

/**
 * Every subject of the tenant, from its state items: a parallel Scan (CLI `verify` without a range,
 * an offline job; never on a request path).
 */
export async function allSubjects(db: Db, tenant: string, segments = 4): Promise<Set<string>> {
  const seen = new Set<string>();
  const prefix = keys.subject(tenant, '');
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
              FilterExpression: 'begins_with(PK, :prefix) AND SK = :state',
              ExpressionAttributeValues: { ':prefix': prefix, ':state': keys.state },
              ProjectionExpression: 'subjectKey',
              ExclusiveStartKey: start,
            }),
          );
          for (const item of out.Items ?? []) seen.add(item.subjectKey as string);
          start = out.LastEvaluatedKey;
        } while (start);
      } catch (error) {
        throw storeFailure(error, 'allSubjects');
      }
    }),
  );
  return seen;
}

/**
 * Counts per day × type × channel over the range, and the distinct contacts seen. `level` (when given)
 * classifies each contact by block level from its state item, for the dashboard's share.
 */
export async function summarise(
  db: Db,
  tenant: string,
  range: AuditRange,
  level?: (state: SubjectState) => BlockLevel,
) {
  const builder = new SummaryBuilder(daysOf(range));
  const contacts = new Set<string>();
  for await (const item of auditItems(db, tenant, range, {
    projection: 'GSI1SK, at, type, channel, subjectKey',
    pageSize: 1000,
  })) {
    builder.add(item as unknown as AuditEvent);
    contacts.add(item.subjectKey as string);
  }
  const summary = builder.result(range);
  if (!level) return { ...summary, contacts: { total: contacts.size } };
  const levels: BlockLevel[] = [];
  const all = [...contacts];
  for (let i = 0; i < all.length; i += 1000) {
    const states = await getStates(db, tenant, all.slice(i, i + 1000));
    for (const state of states.values()) levels.push(level(state));
  }
  return { ...summary, contacts: { total: contacts.size, blockLevels: levelShare(levels) } };
}

/**
 * Erasure requests with their deadlines: `pending` = every received one (overdue first, as they are in
 * due-date order); `overdue` = received and past `dueBy`; `dueWithinDays` = received and due before
 * now + N days (overdue ones included: they are due too).
 */
export async function erasureDeadlines(
  db: Db,
  tenant: string,
  query: { status?: 'received' | 'completed' | 'overdue' | 'pending'; dueWithinDays?: number; limit: number },
  now: number,
) {
  const received = query.status !== 'completed';
  const dueBefore =
    query.dueWithinDays !== undefined
      ? new Date(now + query.dueWithinDays * 86_400_000).toISOString()
      : query.status === 'overdue'
        ? new Date(now).toISOString()
        : undefined;
  const requests = received
    ? await listErasureRequests(db, tenant, 'received', { limit: query.limit, ...(dueBefore ? { dueBefore } : {}) })
    : [];
  if (query.status === undefined && query.dueWithinDays === undefined) {
    requests.push(...(await listErasureRequests(db, tenant, 'completed', { limit: query.limit })));
  }
  if (query.status === 'completed') {
    requests.push(...(await listErasureRequests(db, tenant, 'completed', { limit: query.limit })));
  }
  const shown = requests.slice(0, query.limit).map((r) => erasureDeadline(r, now));
  return query.status === 'received' ? shown.filter((r) => r.status === 'received') : shown;
}
