// The daily retention job, shared by the scheduled function, the local runtime and the CLI `retention run`.
import { expiredGrants } from '#domain/changes.ts';
import type { Actor } from '#domain/ledger.ts';
import { kindOf, type Policy } from '#domain/policy.ts';
import { detailsExpired, needsFirstRecorded, retentionDecision } from '#domain/retention.ts';
import { mapLimit } from '#shared/concurrency.ts';
import { logger } from '#shared/log.ts';
import { DAY_MS } from '#shared/time.ts';
import { expiryWatermark, recordExpiry, setExpiryWatermark } from '#store/changes.ts';
import type { Db } from '#store/db.ts';
import { eraseSubject, purgeProof } from '#store/erasure.ts';
import { getPolicy } from '#store/policy.ts';
import { firstRecordedAt, type RetentionPage, redactDetails, scanForRetention } from '#store/retention.ts';

/** Why a subject was purged: inactive for `inactiveSubjectDays`, or its proof kept for `proofDays` already. */
export type PurgeReason = 'inactive' | 'proof_expired';

/** What one run did (or, dry, would do) in one tenant. */
export interface RetentionReport {
  tenant: string;
  dryRun: boolean;
  purged: { subjectKey: string; reason: PurgeReason }[];
  /** Signal and send events whose personal details were (would be) deleted. */
  redactedEvents: number;
  /** Consents whose `expiresAt` passed since the last run, recorded (would be) for `consent.expired`. */
  expiredConsents: number;
  /** Subjects whose purge failed this time (a store error); the next run tries again. */
  failed: number;
}

export interface RetentionOptions {
  /** One tenant; every tenant when absent, each under its own policy. */
  tenant?: string;
  /** Report what would be purged and redacted, change nothing. */
  dryRun: boolean;
  now: string;
}

/** The actor the ledger records for what the job writes. */
export const RETENTION_ACTOR: Actor = { type: 'system', job: 'retention' };

/**
 * Runs retention (docs/dpo.md, "Retention"; the rules: `shared/domain/retention.ts`): walks every subject
 * of the tenant(s) once, erases the inactive ones (reason `retention`, the tombstone stays), deletes the
 * proof of erased subjects past `proofDays`, and deletes the details of signal and send events older than
 * `signalDays`. A failure on one subject is logged (its subjectKey, the error name) and counted, and the
 * run goes on. Returns one report per tenant met, in tenant order.
 */
export async function runRetention(db: Db, options: RetentionOptions): Promise<RetentionReport[]> {
  const { dryRun, now } = options;
  const reports = new Map<string, RetentionReport>();
  const policies = new Map<string, Promise<Policy>>();
  const report = (tenant: string) => {
    let found = reports.get(tenant);
    if (!found) {
      found = { tenant, dryRun, purged: [], redactedEvents: 0, expiredConsents: 0, failed: 0 };
      reports.set(tenant, found);
    }
    return found;
  };
  const policyOf = (tenant: string) => {
    let found = policies.get(tenant);
    if (!found) {
      found = getPolicy(db, tenant);
      policies.set(tenant, found);
    }
    return found;
  };
  if (options.tenant) report(options.tenant);
  // Subjects purged in this run: their events go with them, so they are not redacted (nor counted) too.
  const purged = new Set<string>();
  // Expired consents: those whose `expiresAt` fell since the last complete run (a first run looks one day
  // back), each recorded once (docs/events.md, "consent.expired").
  const checkedTo = await expiryWatermark(db);
  const since = checkedTo ?? new Date(Date.parse(now) - DAY_MS).toISOString();
  let expiryFailed = false;

  const onPage = async (page: RetentionPage) => {
    await mapLimit(page.subjects, 4, async ({ tenant, subjectKey, state }) => {
      const counts = report(tenant);
      const policy = await policyOf(tenant);
      const first = needsFirstRecorded(state) ? await firstRecordedAt(db, tenant, subjectKey) : undefined;
      const decision = retentionDecision(state, policy, now, first);
      if (!state.erasure) {
        for (const grant of expiredGrants(state, since, now, kindOf(policy))) {
          try {
            if (dryRun || (await recordExpiry(db, { tenant, subjectKey, ...grant, recordedAt: now })))
              counts.expiredConsents++;
          } catch (error) {
            expiryFailed = true;
            logger.warn('retention could not record an expired consent', {
              subjectKey,
              errorName: (error as Error).name,
            });
          }
        }
      }
      if (decision === 'keep') return;
      try {
        if (!dryRun && decision === 'inactive') {
          const { proofDays } = policy.retention;
          await eraseSubject(db, tenant, subjectKey, { reason: 'retention', now, actor: RETENTION_ACTOR, proofDays });
        } else if (!dryRun) await purgeProof(db, tenant, subjectKey, now);
        counts.purged.push({ subjectKey, reason: decision });
        purged.add(`${tenant}/${subjectKey}`);
      } catch (error) {
        counts.failed++;
        logger.warn('retention could not purge a subject', { subjectKey, errorName: (error as Error).name });
      }
    });
    const expired = new Map<string, RetentionPage['events'][number]['key'][]>();
    for (const event of page.events) {
      if (purged.has(`${event.tenant}/${event.subjectKey}`)) continue;
      if (!detailsExpired(event, await policyOf(event.tenant), now)) continue;
      const list = expired.get(event.tenant) ?? [];
      list.push(event.key);
      expired.set(event.tenant, list);
    }
    for (const [tenant, eventKeys] of expired) {
      report(tenant).redactedEvents += dryRun ? eventKeys.length : await redactDetails(db, eventKeys);
    }
  };

  await scanForRetention(db, options.tenant, onPage);
  // Only a complete run over every tenant moves the watermark: a one-tenant run or a failure looks again next time.
  if (!dryRun && !options.tenant && !expiryFailed) await setExpiryWatermark(db, now);
  const all = [...reports.values()].sort((a, b) => a.tenant.localeCompare(b.tenant));
  for (const r of all) r.purged.sort((a, b) => a.subjectKey.localeCompare(b.subjectKey));
  return all;
}

/** A run's counts over every tenant (never a subjectKey). */
export function retentionTotals(reports: readonly RetentionReport[]) {
  const sum = (f: (r: RetentionReport) => number) => reports.reduce((n, r) => n + f(r), 0);
  return {
    tenants: reports.length,
    inactivePurged: sum((r) => r.purged.filter((p) => p.reason === 'inactive').length),
    proofPurged: sum((r) => r.purged.filter((p) => p.reason === 'proof_expired').length),
    redactedEvents: sum((r) => r.redactedEvents),
    expiredConsents: sum((r) => r.expiredConsents),
    failed: sum((r) => r.failed),
  };
}

/** The run's one log line: counts only. */
export function logRetention(reports: readonly RetentionReport[], dryRun: boolean): void {
  logger.info(dryRun ? 'retention dry run' : 'retention run', retentionTotals(reports));
}
