// The change-event dispatcher (docs/events.md): invoked by the table's stream (inserts of ledger events and
// expiry records only, by the event source's filters), not a route. Records each change's deliveries and
// queues them; a failure fails the batch, which the stream retries (the dispatch is idempotent).
import type { DynamoDBStreamEvent } from 'aws-lambda';
import { logger } from '#shared/log.ts';
import { dispatchChanges } from '#shared/services/change-dispatch.ts';
import { getDeliveryQueue } from '#shared/services/delivery-queue.ts';
import { insertedItems } from '#shared/services/stream-poller.ts';
import { getDb } from '#store/db.ts';

export async function handler(event: DynamoDBStreamEvent) {
  const queue = getDeliveryQueue();
  if (!queue) throw new Error('DELIVERY_QUEUE_URL is not set');
  const items = insertedItems((event.Records ?? []) as Parameters<typeof insertedItems>[0]);
  const result = await dispatchChanges(getDb(), items, queue);
  if (result.changes > 0) logger.info('changes dispatched', { ...result });
  return result;
}
