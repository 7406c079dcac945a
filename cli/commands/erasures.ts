import { parseArgs } from 'node:util';
import { TenantSchema } from '#shared/auth/api-keys.ts';
import { AuditErasuresQuerySchema } from '#shared/schemas/audit.ts';
import { erasureDeadlines } from '#shared/services/erasure-deadlines.ts';
import type { Db } from '#store/db.ts';
import { type CliIo, UsageError } from '../io.ts';

const USAGE = `consent-gate erasures due --tenant T [--within N] [--json]      received requests due within N days (default 7), overdue included
consent-gate erasures list --tenant T [--status received|overdue|pending|completed|cancelled] [--json]`;

/**
 * `erasures due|list` — erasure deadlines for the DPO (e.g. a daily cron). `due` exits 3 when a request
 * is overdue, so a scheduler can alert on it.
 */
export async function erasuresCommand(db: Db, args: string[], io: CliIo): Promise<number> {
  const [action, ...rest] = args;
  const { values } = parseArgs({
    args: rest,
    options: {
      tenant: { type: 'string' },
      within: { type: 'string', default: '7' },
      status: { type: 'string' },
      limit: { type: 'string', default: '500' },
      json: { type: 'boolean', default: false },
    },
  });
  if (action !== 'due' && action !== 'list') throw new UsageError(USAGE);
  const tenant = TenantSchema.safeParse(values.tenant);
  if (!tenant.success) throw new UsageError(`--tenant is required: ${tenant.error.issues[0].message}\n${USAGE}`);
  const query = AuditErasuresQuerySchema.safeParse({
    limit: values.limit,
    ...(action === 'due' ? { status: 'pending', dueWithinDays: values.within } : { status: values.status }),
  });
  if (!query.success) {
    const issue = query.error.issues[0];
    const flag = issue.path[0] === 'dueWithinDays' ? 'within' : String(issue.path[0]);
    throw new UsageError(`--${flag}: ${issue.message}\n${USAGE}`);
  }
  const now = Date.now();
  const requests = await erasureDeadlines(db, tenant.data, query.data, now);
  if (values.json) io.out(JSON.stringify({ now: new Date(now).toISOString(), requests }));
  else if (requests.length === 0) {
    io.out(action === 'due' ? `no erasure request due within ${query.data.dueWithinDays} days` : 'no erasure request');
  } else {
    for (const r of requests) {
      const left = r.daysLeft === null ? '' : r.daysLeft < 0 ? `${-r.daysLeft} days late` : `${r.daysLeft} days left`;
      io.out(
        `${r.status.toUpperCase().padEnd(9)} ${r.requestId}  due ${r.dueBy}  ${left}  (${r.subjectKeys.length} subjects, via ${r.requestedVia}${r.reference ? `, ${r.reference}` : ''})`,
      );
    }
  }
  return action === 'due' && requests.some((r) => r.status === 'overdue') ? 3 : 0;
}
