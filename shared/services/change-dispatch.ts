// The change-event dispatcher (docs/events.md): stored items from the table's stream → changes → one pending
// delivery per subscribed endpoint, recorded, then queued. The cloud's dispatcher function and the local
// runtime's stream poller run this same code.
import { changeFromItem, type DerivedChange } from '#domain/changes.ts';
import { mapLimit } from '#shared/concurrency.ts';
import type { Db } from '#store/db.ts';
import { type Delivery, type EventEndpoint, listEndpoints, recordDelivery } from '#store/event-endpoints.ts';
import { type DeliveryMessage, type DeliveryQueue, messageOf } from './change-delivery.ts';

/** A delivery's key in its endpoint's log: the change's feed position, so the log reads in feed order. */
export const deliveryKey = (change: Pick<DerivedChange, 'sortKey'>) => `DLV#${change.sortKey}`;

/** Whether an endpoint takes a change type. */
export const subscribes = (endpoint: EventEndpoint, type: string) => endpoint.types.includes(type);

/** A new pending delivery of a change to an endpoint. */
export function newDelivery(change: DerivedChange, endpoint: EventEndpoint, now: string): Delivery {
  return {
    tenant: change.tenant,
    endpointId: endpoint.id,
    key: deliveryKey(change),
    webhookId: change.webhookId,
    type: change.body.type,
    eventId: change.body.data.eventId,
    subjectKey: change.body.data.subjectKey,
    status: 'pending',
    attempts: [],
    body: JSON.stringify(change.body),
    roundStartedAt: now,
    roundAttempts: 0,
    replays: 0,
  };
}

/** What a dispatch did. */
export interface DispatchResult {
  changes: number;
  queued: number;
}

/**
 * Dispatches a batch of stored items (stream order): each change goes to every endpoint of its tenant that
 * takes its type, as a delivery recorded `pending` (once: a repeat finds it) and then queued. Idempotent per
 * `webhook-id` and endpoint, so a batch may be dispatched again after a crash: a delivery already made is not
 * queued again, one still pending is (the queue or the delivery side drops duplicates). Returns only once
 * everything is recorded and queued: the caller may then move its stream position on.
 */
export async function dispatchChanges(
  db: Db,
  items: readonly Record<string, unknown>[],
  queue: DeliveryQueue,
  now = new Date().toISOString(),
): Promise<DispatchResult> {
  const changes = items.map(changeFromItem).filter((c): c is DerivedChange => c !== undefined);
  if (changes.length === 0) return { changes: 0, queued: 0 };
  const endpoints = new Map<string, EventEndpoint[]>();
  for (const tenant of new Set(changes.map((c) => c.tenant))) endpoints.set(tenant, await listEndpoints(db, tenant));
  const wanted = changes.flatMap((change) =>
    (endpoints.get(change.tenant) ?? [])
      .filter((endpoint) => subscribes(endpoint, change.body.type))
      .map((endpoint) => newDelivery(change, endpoint, now)),
  );
  // Recorded in parallel, queued in stream order (mapLimit keeps the order of its results).
  const recorded = await mapLimit(wanted, 16, (delivery) => recordDelivery(db, delivery, now));
  const messages: DeliveryMessage[] = recorded
    .filter(({ delivery }) => delivery.status === 'pending')
    .map(({ delivery }) => messageOf(delivery));
  if (messages.length > 0) await queue.send(messages);
  return { changes: changes.length, queued: messages.length };
}
