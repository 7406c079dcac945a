// The verifiable log's sealer (README, "Verifiable log"): invoked every minute by an EventBridge Scheduler
// schedule, not a route. Seals every tenant with a log, signs a checkpoint per batch and anchors each one in
// the checkpoint bucket (S3 Object Lock, compliance mode), which only this function's role may write.
import type { Context } from 'aws-lambda';
import * as z from 'zod';
import { TenantSchema } from '#shared/auth/api-keys.ts';
import { anchorFromEnv } from '#shared/log/anchor.ts';
import { logSignerFromPem } from '#shared/log/note.ts';
import { logger } from '#shared/log.ts';
import { getSecrets } from '#shared/secrets.ts';
import { publishLogKeys } from '#shared/services/log-keys.ts';
import { SEAL_LAG_MS, sealAll, sealTotals } from '#shared/services/sealer.ts';
import { getDb } from '#store/db.ts';

/**
 * The schedule's input: `{}` seals every tenant with a log. By hand: `tenants` (a tenant from before the log
 * existed gets its log started from `since`, an ISO time before its first event).
 */
const InputSchema = z.strictObject({
  tenants: z.array(TenantSchema).min(1).max(1000).optional(),
  since: z.iso.datetime().optional(),
});

/** Time kept back from Lambda's timeout to finish the batch in flight and anchor its checkpoint. */
const RESERVE_MS = 15_000;
/** How far behind the watermark each run looks for late events (a schedule period and a half). */
const SWEEP_MS = 90_000;

let published: Promise<void> | undefined;

export async function handler(event: unknown, context?: Pick<Context, 'getRemainingTimeInMillis'>) {
  const input = InputSchema.parse(event ?? {});
  const { logKeys } = await getSecrets();
  if (logKeys.length === 0) throw new Error('no log signing key: LOG_KEYS_SECRET_ID is not set');
  const remaining = context?.getRemainingTimeInMillis?.() ?? 60_000;
  const anchor = anchorFromEnv();
  // Once per container: the public keys go to the anchor before any checkpoint they verify.
  published ??= publishLogKeys(anchor).catch((error) => {
    published = undefined;
    throw error;
  });
  await published;
  const result = await sealAll(getDb(), {
    signer: logSignerFromPem(logKeys[0]),
    anchor,
    lagMs: Number(process.env.SEAL_LAG_MS ?? SEAL_LAG_MS),
    deadline: Date.now() + Math.max(1_000, remaining - RESERVE_MS),
    sweepMs: SWEEP_MS,
    ...input,
  });
  const totals = sealTotals(result);
  logger.info('sealer run', totals);
  // A tenant that failed makes the run fail (the job alarm), after every other tenant was sealed.
  if (result.failed.length > 0) throw new Error(`${result.failed.length} tenant(s) could not be sealed`);
  return totals;
}
