import { parseArgs } from 'node:util';
import { TenantSchema } from '#shared/auth/api-keys.ts';
import { runRetention } from '#shared/services/retention.ts';
import type { Db } from '#store/db.ts';
import { type CliIo, UsageError } from '../io.ts';

const USAGE = `consent-gate retention run [--tenant T] [--dry-run] [--json]
  purges inactive subjects and expired proof, deletes old signal and send details (the daily job, by hand);
  without --tenant: every tenant, each under its own policy. --dry-run reports and changes nothing.
  --json: one line per tenant {"tenant","dryRun","purged":[{"subjectKey","reason"}],"redactedEvents","expiredConsents","failed"}.
  exit code 1 when a subject could not be purged (the next run tries again).`;

/** `retention run` — the retention job by hand: what it purged (or, dry, would purge) per tenant. */
export async function retentionCommand(db: Db, args: string[], io: CliIo): Promise<number> {
  const [action, ...rest] = args;
  const { values } = parseArgs({
    args: rest,
    options: {
      tenant: { type: 'string' },
      'dry-run': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    },
  });
  if (action !== 'run') throw new UsageError(USAGE);
  let tenant: string | undefined;
  if (values.tenant !== undefined) {
    const parsed = TenantSchema.safeParse(values.tenant);
    if (!parsed.success) throw new UsageError(`--tenant: ${parsed.error.issues[0].message}\n${USAGE}`);
    tenant = parsed.data;
  }
  const dryRun = values['dry-run'];
  const reports = await runRetention(db, { tenant, dryRun, now: new Date().toISOString() });
  for (const r of reports) {
    if (values.json) {
      io.out(JSON.stringify(r));
      continue;
    }
    for (const p of r.purged) io.out(`${dryRun ? 'WOULD PURGE' : 'PURGED'}  ${r.tenant}  ${p.subjectKey}  ${p.reason}`);
    io.out(
      `${r.tenant}: ${r.purged.length} subject(s) ${dryRun ? 'would be purged' : 'purged'}, ${r.redactedEvents} event detail(s) ${dryRun ? 'would be deleted' : 'deleted'}${r.expiredConsents ? `, ${r.expiredConsents} expired consent(s) ${dryRun ? 'to record' : 'recorded'}` : ''}${r.failed ? `, ${r.failed} failed` : ''}${dryRun ? ' (dry run: nothing changed)' : ''}`,
    );
  }
  if (reports.length === 0 && !values.json) io.out('no subject in the store');
  return reports.some((r) => r.failed > 0) ? 1 : 0;
}
