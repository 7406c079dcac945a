// The daily retention job (docs/dpo.md, "Retention"): invoked by an EventBridge Scheduler schedule, not a route.
import * as z from 'zod';
import { TenantSchema } from '#shared/auth/api-keys.ts';
import { logRetention, retentionTotals, runRetention } from '#shared/services/retention.ts';
import { getDb } from '#store/db.ts';

/** The schedule's input: `{}` runs every tenant; a tenant or a dry run can be asked for by hand. */
const InputSchema = z.strictObject({ tenant: TenantSchema.optional(), dryRun: z.boolean().default(false) });

/** Runs retention over the store; returns the run's counts (never a subjectKey). */
export async function handler(event: unknown) {
  const input = InputSchema.parse(event ?? {});
  const reports = await runRetention(getDb(), { ...input, now: new Date().toISOString() });
  logRetention(reports, input.dryRun);
  return retentionTotals(reports);
}
