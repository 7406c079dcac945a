// The verifiable log's figures for `npm run bench` (docs/performance.md, "Verifiable log"): sealer throughput,
// inclusion-proof (receipt) latency, and the time from a write to its receipt with the local sealer running.
import { LOCAL_SEAL, scheduleSealer } from '../infra/local/runtime.ts';
import { MemoryAnchor } from '../shared/log/anchor.ts';
import { logSignerFromPem } from '../shared/log/note.ts';
import { getSecrets } from '../shared/secrets.ts';
import { sealTenant } from '../shared/services/sealer.ts';
import type { Db } from '../shared/store/db.ts';
import { getHead, listLeaves } from '../shared/store/log.ts';
import { apiEvent, lambdaContext, median, percentile, phoneOf, round } from './lib.ts';

type Auth = { tenant: string; scopes: string; keyId: string };
type Handler = (event: unknown, context: unknown) => Promise<{ statusCode: number; body?: string }>;

const receiptEvent = (eventId: string, auth: Auth) => ({
  ...apiEvent('GET /v1/receipts/{eventId}', undefined, auth),
  rawPath: `/v1/receipts/${eventId}`,
  pathParameters: { eventId },
});

/**
 * Seals everything the tenant has written so far in one run (no lag: the events are all in the past) and
 * returns events per second; then times receipts (inclusion proof + checkpoint) of random sealed events
 * through the log function in-process; then, with the local runtime's sealer loop running at its own pace,
 * grants `writes` consents a few at a time and polls each one's receipt every 20 ms until it is served.
 */
export async function measureLog(db: Db, tenant: string, auth: Auth, writes: number) {
  const logHandler = (await import('../functions/log/handler.ts')).handler as Handler;
  const consents = (await import('../functions/consents/handler.ts')).handler as Handler;

  const signer = logSignerFromPem((await getSecrets()).logKeys[0]);
  const started = performance.now();
  const report = await sealTenant(db, tenant, { signer, anchor: new MemoryAnchor(), lagMs: 0 });
  const sealSeconds = (performance.now() - started) / 1000;

  const size = (await getHead(db, tenant))?.size ?? 0;
  const leaves = await listLeaves(db, tenant, 0, Math.min(size, 1000));
  const receiptMs: number[] = [];
  for (let i = 0; i < 1000 && leaves.length > 0; i++) {
    const leaf = leaves[(i * 7919) % leaves.length];
    const t = performance.now();
    const out = await logHandler(receiptEvent(leaf.eventId, auth), lambdaContext('log'));
    if (out.statusCode !== 200) throw new Error(`receipt answered ${out.statusCode}: ${out.body}`);
    receiptMs.push(performance.now() - t);
  }

  // Write → receipt, with the sealer loop of `npm start` (every 500 ms, events sealed 1 s after their time).
  const stopSealer = scheduleSealer(db, LOCAL_SEAL);
  const untilReceipt: number[] = [];
  try {
    for (let i = 0; i < writes; i += 5) {
      await Promise.all(
        Array.from({ length: Math.min(5, writes - i) }, async (_, j) => {
          const grant = apiEvent(
            'POST /v1/consents',
            {
              subject: { phone: phoneOf(50_000_000 + i + j) },
              channel: 'sms',
              purpose: 'marketing',
              source: 'web_form',
              noticeVersion: '2026-09-privacy-v3',
            },
            auth,
          );
          const res = await consents(grant, lambdaContext('consents'));
          if (res.statusCode !== 201) throw new Error(`grant answered ${res.statusCode}: ${res.body}`);
          const written = performance.now();
          const { eventId } = JSON.parse(res.body as string);
          for (;;) {
            const out = await logHandler(receiptEvent(eventId, auth), lambdaContext('log'));
            if (out.statusCode === 200) break;
            if (out.statusCode !== 409) throw new Error(`receipt answered ${out.statusCode}: ${out.body}`);
            await new Promise((resolve) => setTimeout(resolve, 20));
          }
          untilReceipt.push(performance.now() - written);
        }),
      );
    }
  } finally {
    await stopSealer();
  }

  return {
    seal_events: report.sealed,
    seal_batches: report.batches,
    seal_events_per_s: round(report.sealed / sealSeconds, 0),
    receipt_p50_ms: round(median(receiptMs)),
    receipt_p99_ms: round(percentile(receiptMs, 0.99)),
    write_to_receipt_p50_ms: round(median(untilReceipt), 0),
    write_to_receipt_p99_ms: round(percentile(untilReceipt, 0.99), 0),
    write_to_receipt_samples: untilReceipt.length,
  };
}
