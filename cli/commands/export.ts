import { createWriteStream, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { SingleBar } from 'cli-progress';
import type { ExportFormat } from '#domain/audit-export.ts';
import { TenantSchema } from '#shared/auth/api-keys.ts';
import { AuditRangeQuerySchema } from '#shared/schemas/audit.ts';
import { type ExportProgress, exportEvents } from '#shared/services/audit-export.ts';
import { decodeCursor } from '#store/audit-index.ts';
import type { Db } from '#store/db.ts';
import { type CliIo, UsageError } from '../io.ts';

const USAGE = `consent-gate export --tenant T --from D --to D [--format ndjson|csv] [--out FILE] [--cursor C | --resume] [--no-progress]
  D is a day (2026-11-01, its midnight UTC) or an ISO time with a zone; the range is [from, to), at most 366 days.
  --out FILE writes the file and keeps FILE.cursor while it runs; --resume continues an interrupted export from it.`;

/** The tenant and `[from, to)` of a command line, validated like the API's query (2 on a mistake). */
export function parseRange(values: { tenant?: string; from?: string; to?: string }, usage: string) {
  const tenant = TenantSchema.safeParse(values.tenant);
  if (!tenant.success) throw new UsageError(`--tenant is required: ${tenant.error.issues[0].message}\n${usage}`);
  const range = AuditRangeQuerySchema.safeParse({ from: values.from, to: values.to });
  if (!range.success) {
    const issue = range.error.issues[0];
    throw new UsageError(`--${String(issue.path[0] ?? 'from')}: ${issue.message}\n${usage}`);
  }
  return { tenant: tenant.data, range: range.data };
}

/**
 * `export` — every event of `[from, to)` in time order, streamed to a file or stdout with bounded memory,
 * progress (share of the time range covered, events written) on stderr. Ctrl-C stops after the current
 * event and prints the cursor to resume from; with `--out` the cursor is also kept in `FILE.cursor`.
 */
export async function exportCommand(db: Db, args: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      tenant: { type: 'string' },
      from: { type: 'string' },
      to: { type: 'string' },
      format: { type: 'string', default: 'ndjson' },
      out: { type: 'string' },
      cursor: { type: 'string' },
      resume: { type: 'boolean', default: false },
      'no-progress': { type: 'boolean', default: false },
    },
  });
  const { tenant, range } = parseRange(values, USAGE);
  if (values.format !== 'ndjson' && values.format !== 'csv')
    throw new UsageError(`--format is ndjson or csv\n${USAGE}`);
  const format = values.format as ExportFormat;
  const cursorFile = values.out ? `${values.out}.cursor` : undefined;
  let cursor = values.cursor;
  if (values.resume) {
    if (!cursorFile) throw new UsageError(`--resume needs --out (the cursor is kept next to the file)\n${USAGE}`);
    if (!existsSync(cursorFile)) throw new UsageError(`nothing to resume: ${cursorFile} does not exist`);
    cursor = readFileSync(cursorFile, 'utf8').trim();
  }
  let after: string | undefined;
  try {
    after = cursor ? decodeCursor(cursor, range) : undefined;
  } catch (error) {
    throw new UsageError(`--cursor: ${(error as Error).message}`);
  }
  // A resumed export appends to the file it continues, without a second CSV header.
  const out: Writable = values.out ? createWriteStream(values.out, { flags: after ? 'a' : 'w' }) : process.stdout;
  const from = Date.parse(range.from);
  const span = Date.parse(range.to) - from;
  const bar =
    values['no-progress'] || !process.stderr.isTTY
      ? undefined
      : new SingleBar({
          stream: process.stderr,
          format: 'export [{bar}] {percentage}% of the period | {count} events | {at}',
          hideCursor: true,
        });
  bar?.start(span, 0, { count: 0, at: range.from });
  const abort = new AbortController();
  const stop = () => abort.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  let last: ExportProgress = { count: 0, ...(cursor ? { cursor } : {}) };
  try {
    last = await exportEvents(db, tenant, range, format, out, {
      after,
      header: !after,
      signal: abort.signal,
      onProgress: (p) => {
        last = { ...p };
        bar?.update(p.at ? Date.parse(p.at) - from : 0, { count: p.count, at: p.at ?? '' });
        if (cursorFile && p.cursor) writeFileSync(cursorFile, p.cursor);
      },
    });
    // The whole period is covered, whenever its last event was.
    if (!abort.signal.aborted) bar?.update(span, { count: last.count, at: range.to });
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    bar?.stop();
    if (out !== process.stdout) {
      out.end();
      await finished(out);
    }
  }
  if (abort.signal.aborted) {
    if (cursorFile && last.cursor) writeFileSync(cursorFile, last.cursor);
    io.err(`interrupted after ${last.count} events; resume with --cursor ${last.cursor ?? '(none: start again)'}`);
    return 130;
  }
  if (cursorFile) rmSync(cursorFile, { force: true });
  io.err(`exported ${last.count} events (${range.from} to ${range.to})${values.out ? ` to ${values.out}` : ''}`);
  return 0;
}
