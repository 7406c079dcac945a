import { parseArgs } from 'node:util';
import { TenantSchema } from '#shared/auth/api-keys.ts';
import { verifyRange, verifyTenant } from '#shared/services/audit-verify.ts';
import type { Db } from '#store/db.ts';
import { type CliIo, UsageError } from '../io.ts';
import { parseRange } from './export.ts';

const USAGE = `consent-gate verify --tenant T [--from D --to D] [--json]
  with a range: every chain touched by an event in [from, to); without: every subject of the tenant.
  exit code 1 when any chain is broken.`;

/** `verify` — re-computes the hash chains; prints each break (subject, seq, reason) and exits 1 if any. */
export async function verifyCommand(db: Db, args: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      tenant: { type: 'string' },
      from: { type: 'string' },
      to: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  let report: Awaited<ReturnType<typeof verifyRange>>;
  let scope: string;
  if (values.from !== undefined || values.to !== undefined) {
    const { tenant, range } = parseRange(values, USAGE);
    report = await verifyRange(db, tenant, range);
    scope = `events from ${range.from} to ${range.to}`;
  } else {
    const tenant = TenantSchema.safeParse(values.tenant);
    if (!tenant.success) throw new UsageError(`--tenant is required: ${tenant.error.issues[0].message}\n${USAGE}`);
    report = await verifyTenant(db, tenant.data);
    scope = 'every subject';
  }
  if (values.json) io.out(JSON.stringify(report));
  else {
    for (const b of report.broken) {
      if ('seq' in b) io.out(`BROKEN  ${b.subjectKey}  seq ${b.seq}  ${b.reason}`);
      else io.out(`BROKEN  ${b.subjectKey ?? '-'}  leaf ${b.leafIndex ?? '-'}  ${b.reason}  ${b.detail}`);
    }
    io.out(
      `${report.valid ? 'ledger intact' : `ledger ALTERED: ${report.broken.length} break(s)`} — ${report.subjects} subjects, ${report.events} events verified (${scope})`,
    );
  }
  return report.valid ? 0 : 1;
}
