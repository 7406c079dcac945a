// A WhatsApp delivery of 1,000 statuses through the group commit (docs/performance.md, "Group commit").
import { withWellFormedStrings } from '../shared/http/validation.ts';
import { resolveSubject } from '../shared/identity/resolve.ts';
import { applyNotificationGroups, type NotificationGroup } from '../shared/services/webhook-batches.ts';
import type { Db } from '../shared/store/db.ts';
import { isInFuture } from '../shared/time.ts';
import { notificationsOf } from '../shared/whatsapp/payload.ts';
import { verifySignature } from '../shared/whatsapp/signature.ts';
import { median, round, timed } from './lib.ts';
import { DELIVERY_STATUSES, deliveryEvent, WHATSAPP_BENCH_SECRET } from './whatsapp.ts';

/**
 * What the webhook function does with a delivery, with `processNotifications` switched to the group commit:
 * the signature checked, the body parsed, the notifications resolved and grouped by tenant and subject in
 * the order they came (as shared/services/whatsapp-webhook.ts groups them), then applied in waves by
 * `applyNotificationGroups`.
 */
async function processDelivery(db: Db, body: string, signature: string, tenant: string) {
  const raw = Buffer.from(body);
  if (!verifySignature(raw, signature, WHATSAPP_BENCH_SECRET)) throw new Error('bad signature');
  const payload = withWellFormedStrings(JSON.parse(raw.toString('utf8')));
  const { notifications } = notificationsOf(payload, () => tenant);
  const bySubject = new Map<string, NotificationGroup>();
  for (const delivered of notifications) {
    const now = new Date().toISOString();
    const n = isInFuture(delivered.observedAt, now) ? { ...delivered, observedAt: now } : delivered;
    const resolved = await resolveSubject(n.tenant, n.subject, 'whatsapp');
    const key = `${n.tenant}\n${resolved.subjectKey}`;
    const group = bySubject.get(key) ?? { resolved, items: [] };
    group.items.push({ n, now });
    bySubject.set(key, group);
  }
  const report = { recorded: 0, replayed: 0, unchanged: 0 };
  await applyNotificationGroups(db, [...bySubject.values()], report, (n) => n.action.kind);
  return report;
}

/**
 * Wall time of a delivery of 1,000 `delivered` statuses for 1,000 consented subjects (each a ledger append
 * with its replay marker) through the group commit, in process against the bench's DynamoDB Local: the
 * median of `reps` deliveries after one warm-up, and a redelivery of the last one (all replays).
 */
export async function measureWhatsAppBatched(db: Db, tenant: string, phones: readonly string[], reps = 3) {
  const runs: number[] = [];
  const base = Date.now() - 3_500_000;
  let last: { body: string; signature: string } | undefined;
  for (let rep = 0; rep <= reps; rep++) {
    const event = deliveryEvent(phones.slice(0, DELIVERY_STATUSES), base + rep * 60_000);
    last = { body: String(event.body), signature: String(event.headers?.['x-hub-signature-256']) };
    const { ms, value } = await timed(() => processDelivery(db, last?.body ?? '', last?.signature ?? '', tenant));
    if (value.recorded !== Math.min(DELIVERY_STATUSES, phones.length)) {
      throw new Error(`the delivery recorded ${JSON.stringify(value)}`);
    }
    if (rep > 0) runs.push(ms);
  }
  const { ms: replayMs, value: replay } = await timed(() =>
    processDelivery(db, last?.body ?? '', last?.signature ?? '', tenant),
  );
  if (replay.replayed !== Math.min(DELIVERY_STATUSES, phones.length)) {
    throw new Error(`the redelivery gave ${JSON.stringify(replay)}`);
  }
  return {
    whatsapp_1000_statuses_ms: round(median(runs), 0),
    whatsapp_1000_statuses_max_ms: round(Math.max(...runs), 0),
    whatsapp_1000_redelivery_ms: round(replayMs, 0),
    whatsapp_runs: runs.length,
  };
}
