// Delivery of change events to a tenant's endpoints (docs/events.md): Standard Webhooks signatures, the retry
// schedule, the delivery log. The same code runs in the cloud's delivery function (SQS) and in the local runtime.
import { randomBytes } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { logger } from '#shared/log.ts';
import { safePost, type UrlPolicy, urlPolicyFromEnv } from '#shared/net/safe-url.ts';
import { openSecret, sealSecret } from '#shared/secret-box.ts';
import type { Db } from '#store/db.ts';
import {
  type Delivery,
  type DeliveryAttempt,
  type EventEndpoint,
  getDelivery,
  getEndpoint,
  recordAttempt,
  type SealedSecret,
} from '#store/event-endpoints.ts';
import { keys } from '#store/table.ts';

/** When a failed delivery is tried again: from `baseMs`, doubling, at most `capMs` apart, for `windowMs`. */
export interface RetrySchedule {
  baseMs: number;
  capMs: number;
  windowMs: number;
}

/** 5 s, 10 s, 20 s … capped at 1 h, for 72 h (then `failed`, replayable). */
export const RETRY_SCHEDULE: RetrySchedule = { baseMs: 5_000, capMs: 3_600_000, windowMs: 72 * 3_600_000 };

/**
 * The schedule of this process: the defaults, or `EVENT_RETRY_BASE_MS`, `EVENT_RETRY_CAP_MS`,
 * `EVENT_RETRY_WINDOW_MS` (development and tests: a receiver outage in seconds instead of days).
 */
export function retryScheduleFromEnv(env: NodeJS.ProcessEnv = process.env): RetrySchedule {
  const num = (name: string, fallback: number) => {
    const value = Number(env[name]);
    return env[name] && Number.isFinite(value) && value >= 0 ? value : fallback;
  };
  return {
    baseMs: num('EVENT_RETRY_BASE_MS', RETRY_SCHEDULE.baseMs),
    capMs: num('EVENT_RETRY_CAP_MS', RETRY_SCHEDULE.capMs),
    windowMs: num('EVENT_RETRY_WINDOW_MS', RETRY_SCHEDULE.windowMs),
  };
}

/** The wait before attempt `n + 1` after `n` failed attempts of a round (n ≥ 1). */
export const retryDelayMs = (failedAttempts: number, schedule: RetrySchedule) =>
  Math.min(schedule.capMs, schedule.baseMs * 2 ** Math.max(0, failedAttempts - 1));

/** A new signing secret, as Standard Webhooks spells them: `whsec_` + base64 of 32 random bytes. */
export const newSigningSecret = () => `whsec_${randomBytes(32).toString('base64')}`;

/** The secret-box context of an endpoint's secrets: bound to the endpoint item. */
export const secretContext = (tenant: string, endpointId: string) =>
  `${keys.endpoints(tenant)}/${keys.endpoint(endpointId)}`;

/** Seals a new secret for an endpoint. */
export const sealEndpointSecret = async (
  tenant: string,
  endpointId: string,
  secret: string,
  now: string,
): Promise<SealedSecret> => ({
  sealed: await sealSecret(tenant, secretContext(tenant, endpointId), secret),
  createdAt: now,
});

/**
 * The `webhook-signature` header: one `v1,<base64>` per secret that still signs (the current one and, during a
 * rotation's overlap, the retiring one), space-separated as Standard Webhooks allows.
 */
export async function signatureHeader(
  tenant: string,
  endpoint: EventEndpoint,
  webhookId: string,
  timestamp: Date,
  body: string,
): Promise<string> {
  const live = endpoint.secrets.filter((s) => !s.retiresAt || Date.parse(s.retiresAt) > timestamp.getTime());
  const signatures = await Promise.all(
    live.map(async (s) => {
      const secret = await openSecret(tenant, secretContext(tenant, endpoint.id), s.sealed);
      return new Webhook(secret).sign(webhookId, timestamp, body);
    }),
  );
  return signatures.join(' ');
}

/** One attempt: signs and POSTs the body under the URL rules (shared/net/safe-url.ts). */
export async function attemptOnce(
  tenant: string,
  endpoint: EventEndpoint,
  webhookId: string,
  body: string,
  options: { policy: UrlPolicy; timeoutMs?: number; now?: Date },
): Promise<DeliveryAttempt> {
  const now = options.now ?? new Date();
  const headers = {
    'content-type': 'application/json',
    'user-agent': 'consent-gate-webhooks/1',
    'webhook-id': webhookId,
    'webhook-timestamp': String(Math.floor(now.getTime() / 1000)),
    'webhook-signature': await signatureHeader(tenant, endpoint, webhookId, now, body),
  };
  const result = await safePost(endpoint.url, { headers, body, policy: options.policy, timeoutMs: options.timeoutMs });
  const ok = result.httpStatus !== null && result.httpStatus >= 200 && result.httpStatus < 300;
  return {
    at: now.toISOString(),
    httpStatus: result.httpStatus,
    error: ok ? null : (result.error ?? `HTTP ${result.httpStatus}`),
  };
}

/** What a queue carries: which delivery to make. The body travels in the delivery item, not the message. */
export interface DeliveryMessage {
  tenant: string;
  endpointId: string;
  /** The delivery's sort key in the endpoint's log. */
  key: string;
  webhookId: string;
  /** Deliveries of one group are made in order (FIFO: endpoint + subject). */
  group: string;
  /** Distinguishes a replay's message from the first (FIFO deduplication). */
  round: number;
}

/** The message that makes a delivery. */
export const messageOf = (delivery: Delivery): DeliveryMessage => ({
  tenant: delivery.tenant,
  endpointId: delivery.endpointId,
  key: delivery.key,
  webhookId: delivery.webhookId,
  group: `${delivery.endpointId}:${delivery.subjectKey}`,
  round: delivery.replays,
});

/** Where deliveries are queued: SQS FIFO in the cloud, an in-process queue locally. */
export interface DeliveryQueue {
  /** Queues messages durably, in the order given (the order within a group is kept). */
  send(messages: DeliveryMessage[]): Promise<void>;
}

/** How one message went: done (delivered, failed for good, or nothing to do) or to be tried again later. */
export type DeliveryOutcome = { kind: 'delivered' | 'failed' | 'skipped' } | { kind: 'retry'; delayMs: number };

export interface DeliverOptions {
  schedule: RetrySchedule;
  policy: UrlPolicy;
  timeoutMs?: number;
  now?: () => Date;
}

/** The options of this process (environment). */
export const deliverOptionsFromEnv = (env: NodeJS.ProcessEnv = process.env): DeliverOptions => ({
  schedule: retryScheduleFromEnv(env),
  policy: urlPolicyFromEnv(env),
  timeoutMs: Number(env.EVENT_DELIVERY_TIMEOUT_MS) || 10_000,
});

/**
 * Makes one delivery attempt for a message and records it. A delivery already delivered or failed (a queue's
 * duplicate), or whose endpoint is gone, is skipped. A failure within the retry window → retry after the
 * schedule's delay; an attempt that fails once the window is over → `failed` (replayable).
 */
export async function deliver(db: Db, message: DeliveryMessage, options: DeliverOptions): Promise<DeliveryOutcome> {
  const delivery = await getDelivery(db, message.tenant, message.endpointId, message.key);
  if (delivery?.status !== 'pending') return { kind: 'skipped' };
  const endpoint = await getEndpoint(db, message.tenant, message.endpointId);
  if (!endpoint) return { kind: 'skipped' };
  const now = options.now?.() ?? new Date();
  const attempt = await attemptOnce(message.tenant, endpoint, delivery.webhookId, delivery.body, {
    policy: options.policy,
    timeoutMs: options.timeoutMs,
    now,
  });
  if (attempt.error === null) {
    await recordAttempt(db, delivery, attempt, 'delivered');
    return { kind: 'delivered' };
  }
  const failedAttempts = delivery.roundAttempts + 1;
  const delayMs = retryDelayMs(failedAttempts, options.schedule);
  // The last attempt is made at or after the window's end: retries last at least `windowMs`.
  const giveUp = now.getTime() - Date.parse(delivery.roundStartedAt) >= options.schedule.windowMs;
  await recordAttempt(db, delivery, attempt, giveUp ? 'failed' : 'pending');
  if (giveUp) {
    logger.warn('change event delivery failed for good', { endpointId: endpoint.id, webhookId: delivery.webhookId });
    return { kind: 'failed' };
  }
  return { kind: 'retry', delayMs };
}
