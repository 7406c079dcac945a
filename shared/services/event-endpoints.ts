// The endpoints API's orchestration (docs/events.md): register, rotate a secret, replay, test.
import { type DerivedChange, TEST_TYPE } from '#domain/changes.ts';
import { newUlid } from '#shared/ids.ts';
import type { UrlPolicy } from '#shared/net/safe-url.ts';
import { decodeChangeCursor, encodeChangeCursor, positionBefore, readChanges } from '#store/changes.ts';
import type { Db } from '#store/db.ts';
import {
  type EventEndpoint,
  putEndpoint,
  recordAttempt,
  recordDelivery,
  restartDelivery,
  setEndpointSecrets,
} from '#store/event-endpoints.ts';
import {
  attemptOnce,
  type DeliveryMessage,
  messageOf,
  newSigningSecret,
  sealEndpointSecret,
} from './change-delivery.ts';
import { newDelivery, subscribes } from './change-dispatch.ts';
import { getDeliveryQueue } from './delivery-queue.ts';

/** An endpoint as the API shows it: never a secret (those are shown once, when made). */
export function endpointView(endpoint: EventEndpoint, now = new Date().toISOString()) {
  const retiring = endpoint.secrets.find((s) => s.retiresAt && s.retiresAt > now);
  return {
    id: endpoint.id,
    url: endpoint.url,
    types: endpoint.types,
    ...(endpoint.description ? { description: endpoint.description } : {}),
    createdAt: endpoint.createdAt,
    secretCreatedAt: endpoint.secrets[0]?.createdAt,
    ...(retiring ? { previousSecretRetiresAt: retiring.retiresAt } : {}),
  };
}

/** Registers an endpoint with a new signing secret; returns it with the secret (shown this once). */
export async function createEndpoint(
  db: Db,
  tenant: string,
  input: { url: string; types: string[]; description?: string },
  now: string,
) {
  const id = `ep_${newUlid()}`;
  const secret = newSigningSecret();
  const endpoint: EventEndpoint = {
    id,
    url: input.url,
    types: input.types,
    ...(input.description ? { description: input.description } : {}),
    createdAt: now,
    secrets: [await sealEndpointSecret(tenant, id, secret, now)],
  };
  await putEndpoint(db, tenant, endpoint);
  return { ...endpointView(endpoint, now), secret };
}

/**
 * A new signing secret; the current one goes on signing (both signatures are sent) for `overlapHours`, then
 * retires. A secret still retiring from an earlier rotation is dropped. Undefined when the endpoint is gone.
 */
export async function rotateSecret(db: Db, tenant: string, endpoint: EventEndpoint, overlapHours: number, now: string) {
  const secret = newSigningSecret();
  const retiresAt = new Date(Date.parse(now) + overlapHours * 3_600_000).toISOString();
  const secrets = [
    await sealEndpointSecret(tenant, endpoint.id, secret, now),
    ...(overlapHours > 0 ? [{ ...endpoint.secrets[0], retiresAt }] : []),
  ];
  if (!(await setEndpointSecrets(db, tenant, endpoint.id, secrets))) return undefined;
  return { ...endpointView({ ...endpoint, secrets }, now), secret };
}

/** At most this many changes are replayed by one call (the answer says where to go on from). */
export const REPLAY_MAX = 10_000;

/**
 * Sends again every change recorded since `since` that the endpoint takes: a delivery not made yet is made, a
 * made or failed one starts a new round of attempts with the same `webhook-id` (receivers deduplicate by it).
 */
export async function replay(db: Db, tenant: string, endpoint: EventEndpoint, since: string, now: string) {
  let position = positionBefore(since);
  let replayed = 0;
  const queue = getDeliveryQueue();
  for (;;) {
    const { changes, position: next } = await readChanges(db, tenant, {
      after: position,
      until: now,
      limit: 500,
      maxDays: 400,
    });
    const messages: DeliveryMessage[] = [];
    for (const change of changes.filter((c) => subscribes(endpoint, c.body.type))) {
      const { delivery, created } = await recordDelivery(db, newDelivery(change, endpoint, now), now);
      const queued = created ? delivery : await restartDelivery(db, delivery, now);
      messages.push(messageOf(queued));
    }
    if (messages.length > 0) await queue?.send(messages);
    replayed += messages.length;
    if (next === position || replayed >= REPLAY_MAX) {
      return { replayed, ...(replayed >= REPLAY_MAX ? { continueSince: next.split('#')[0] } : {}) };
    }
    position = next;
  }
}

/** Sends one `endpoint.test` change now and records it in the delivery log; answers how it went. */
export async function testEndpoint(db: Db, tenant: string, endpoint: EventEndpoint, policy: UrlPolicy, now: string) {
  const id = `test_${newUlid()}`;
  const change: DerivedChange = {
    tenant,
    webhookId: `msg_${id}`,
    sortKey: `${now}#${id}`,
    body: {
      type: TEST_TYPE,
      timestamp: now,
      data: {
        eventId: id,
        subjectKey: 'test',
        channel: null,
        purpose: null,
        source: null,
        at: now,
        recordedAt: now,
        actor: null,
        scopes: [],
        endpointId: endpoint.id,
      },
    },
  };
  const { delivery } = await recordDelivery(db, newDelivery(change, endpoint, now), now);
  const attempt = await attemptOnce(tenant, endpoint, delivery.webhookId, delivery.body, { policy });
  const status = attempt.error === null ? 'delivered' : 'failed';
  await recordAttempt(db, delivery, attempt, status);
  return { webhookId: delivery.webhookId, status, attempt };
}

/** The change feed of `GET /v1/changes`: a page after the cursor (or from `since`), and the cursor to go on from. */
export async function changesPage(
  db: Db,
  tenant: string,
  query: { after?: string; since?: string; limit: number },
  now: Date,
  settleMs = 2_000,
) {
  const start = query.after
    ? decodeChangeCursor(query.after)
    : positionBefore(query.since ?? new Date(now.getTime() - 30 * 86_400_000).toISOString());
  const until = new Date(now.getTime() - settleMs).toISOString();
  const { changes, position } = await readChanges(db, tenant, { after: start, until, limit: query.limit, maxDays: 31 });
  return { changes: changes.map((c) => c.body), next: encodeChangeCursor(position) };
}
