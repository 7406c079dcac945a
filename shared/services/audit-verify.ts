// Ledger verification, shared by `GET /v1/audit/verify` and the CLI `verify`: each subject's chain
// re-computed and checked against the head its state records, and the verifiable log checked against the
// events (shared/services/log-verify.ts).
import type { AuditRange } from '#domain/audit.ts';
import { type VerifyReport, verifySubject } from '#domain/audit-verify.ts';
import { mapLimit } from '#shared/concurrency.ts';
import { anchorFromEnv } from '#shared/log/anchor.ts';
import { subjectsTouched } from '#store/audit-index.ts';
import type { Db } from '#store/db.ts';
import { allSubjects, getState, listEvents } from '#store/subjects.ts';
import { logVerifierKeys } from './log-keys.ts';
import { type LogReport, type LogVerifyOptions, verifyLog, verifyLogRange } from './log-verify.ts';

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

/** The log's side of a verification added to the chains' (README, "Verifiable log"). */
function withLog(report: VerifyReport, log: LogReport): VerifyReport {
  const broken = [...report.broken, ...log.broken];
  const { treeSize, checkpoint, checkpoints, anchored, leaves } = log;
  return {
    ...report,
    valid: broken.length === 0,
    broken,
    log: { treeSize, checkpoint, checkpoints, anchored, leaves },
  };
}

/** The log's public keys and anchored checkpoints of this runtime. */
export async function logVerifyOptions(): Promise<LogVerifyOptions> {
  const anchor = anchorFromEnv();
  return { keys: await logVerifierKeys(anchor), anchor };
}

/**
 * Verifies every chain touched by an event in the range, and the log for that range: the leaves of its
 * events recomputed from them, its sealed events present as leaves, the tree against every checkpoint.
 */
export async function verifyRange(
  db: Db,
  tenant: string,
  range: AuditRange,
  options?: LogVerifyOptions,
): Promise<VerifyReport> {
  const [chains, log] = await Promise.all([
    verifySubjects(db, tenant, await subjectsTouched(db, tenant, range)),
    options ?? logVerifyOptions(),
  ]);
  return withLog(chains, await verifyLogRange(db, tenant, range, log));
}

/** Verifies every chain of the tenant and its whole log (an offline job: see {@link allSubjects}). */
export async function verifyTenant(db: Db, tenant: string, options?: LogVerifyOptions): Promise<VerifyReport> {
  const [chains, log] = await Promise.all([
    verifySubjects(db, tenant, await allSubjects(db, tenant)),
    options ?? logVerifyOptions(),
  ]);
  return withLog(chains, await verifyLog(db, tenant, log));
}
