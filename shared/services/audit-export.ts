// The audit export, shared by `GET /v1/audit/events` (one page per request) and the CLI `export` (a
// stream to a file): events off the index merge, as NDJSON or CSV lines, with resume cursors.
import type { Writable } from 'node:stream';
import type { AuditRange } from '#domain/audit.ts';
import { csvHeader, type ExportFormat, exportLine } from '#domain/audit-export.ts';
import { auditEvents, auditSortKey, encodeCursor } from '#store/audit-index.ts';
import type { Db } from '#store/db.ts';

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
    const line = exportLine(options.format, event);
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
    await write(exportLine(format, event));
    progress.count++;
    progress.cursor = encodeCursor(auditSortKey(event));
    progress.at = event.at;
    if (progress.count % 500 === 0) options.onProgress?.(progress);
  }
  options.onProgress?.(progress);
  return progress;
}
