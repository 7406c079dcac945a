import type { AuditEvent } from './audit.ts';
import type { Actor } from './ledger.ts';

/** The CSV columns, in order (the export contract). `noticeVersion` comes from the event's data. */
export const CSV_COLUMNS = [
  'at',
  'eventId',
  'subjectKey',
  'type',
  'channel',
  'purpose',
  'source',
  'noticeVersion',
  'prevHash',
  'hash',
  'recordedAt',
  'actor',
] as const;

/** Columns whose values the service itself generates in a fixed alphabet: never formula-guarded, so they stay verifiable. */
const GENERATED = new Set(['at', 'eventId', 'subjectKey', 'type', 'prevHash', 'hash', 'recordedAt', 'actor']);

/** Cells a spreadsheet would run as a formula (OWASP "CSV injection"). */
const FORMULA_START = /^[=+\-@\t\r\n]/;

/**
 * One CSV cell (RFC 4180): quoted when it holds a comma, quote or line break, quotes doubled. A
 * caller-controlled value that a spreadsheet would evaluate (`=`, `+`, `-`, `@`, tab, CR or LF first) gets a
 * leading `'` so opening the export in Excel or LibreOffice cannot run it.
 */
export function csvCell(value: unknown, guard = true): string {
  let text = value === null || value === undefined ? '' : typeof value === 'string' ? value : JSON.stringify(value);
  if (guard && FORMULA_START.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** The CSV header line. */
export const csvHeader = () => `${CSV_COLUMNS.join(',')}\r\n`;

/** One event as a CSV line (CRLF-terminated, RFC 4180). */
export function csvRow(event: AuditEvent): string {
  const notice = event.data?.noticeVersion;
  const values: Record<(typeof CSV_COLUMNS)[number], unknown> = {
    at: event.at,
    eventId: event.eventId,
    subjectKey: event.subjectKey,
    type: event.type,
    channel: event.channel,
    purpose: event.purpose,
    source: event.source,
    noticeVersion: typeof notice === 'string' ? notice : null,
    prevHash: event.prevHash,
    hash: event.hash,
    recordedAt: event.recordedAt ?? null,
    actor: event.actor ? actorLabel(event.actor) : null,
  };
  return `${CSV_COLUMNS.map((c) => csvCell(values[c], !GENERATED.has(c))).join(',')}\r\n`;
}

/** An actor as one CSV cell: `api_key:key_…`, `self_service`, `webhook:whatsapp`, `system:retention`. */
export function actorLabel(actor: Actor): string {
  if (actor.type === 'api_key') return `api_key:${actor.keyId}`;
  if (actor.type === 'webhook') return `webhook:${actor.provider}`;
  if (actor.type === 'system') return `system:${actor.job}`;
  return actor.type;
}

/**
 * One event as an NDJSON line: everything its hash covers, plus its subject, so a reader can re-verify it.
 * Personal details stay out of the bulk export: their digest is enough to verify the hash.
 */
export function ndjsonLine(event: AuditEvent): string {
  const { at, eventId, subjectKey, seq, type, channel, purpose, source, data, prevHash, hash } = event;
  const v2 =
    event.v === 2
      ? { v: 2, recordedAt: event.recordedAt, actor: event.actor, detailsDigest: event.detailsDigest ?? null }
      : {};
  return `${JSON.stringify({ ...v2, at, eventId, subjectKey, seq, type, channel, purpose, source, data, prevHash, hash })}\n`;
}

export type ExportFormat = 'ndjson' | 'csv';

/** One event as a line of the given export format. */
export const exportLine = (format: ExportFormat, event: AuditEvent) =>
  format === 'csv' ? csvRow(event) : ndjsonLine(event);
