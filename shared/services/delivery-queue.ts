// Which delivery queue this process uses: SQS FIFO in the cloud (DELIVERY_QUEUE_URL), the local runtime's
// in-process queue locally (registered at start).
import { createHash } from 'node:crypto';
import { SendMessageBatchCommand, type SendMessageBatchRequestEntry, SQSClient } from '@aws-sdk/client-sqs';
import type { DeliveryMessage, DeliveryQueue } from './change-delivery.ts';

/** SQS FIFO: group = endpoint + subject (order per subject), deduplication id = delivery + round. */
export class SqsDeliveryQueue implements DeliveryQueue {
  constructor(
    private readonly sqs: SQSClient,
    private readonly queueUrl: string,
  ) {}

  async send(messages: DeliveryMessage[]): Promise<void> {
    // Batches of 10, one after the other: SQS keeps the order of a group's messages as they are sent.
    for (let i = 0; i < messages.length; i += 10) {
      let entries: SendMessageBatchRequestEntry[] = messages.slice(i, i + 10).map((m, j) => ({
        Id: String(j),
        MessageBody: JSON.stringify(m),
        MessageGroupId: createHash('sha256').update(m.group).digest('hex'),
        MessageDeduplicationId: createHash('sha256').update(`${m.endpointId}|${m.key}|${m.round}`).digest('hex'),
      }));
      for (let round = 0; entries.length > 0; round++) {
        if (round >= 5) throw new Error(`SQS refused ${entries.length} message(s) after retries`);
        const out = await this.sqs.send(new SendMessageBatchCommand({ QueueUrl: this.queueUrl, Entries: entries }));
        const failed = new Set((out.Failed ?? []).map((f) => f.Id));
        // A failed entry is sent again with those after it of the batch (their order stays that of the batch).
        const firstFailed = entries.findIndex((e) => failed.has(e.Id));
        entries = firstFailed < 0 ? [] : entries.slice(firstFailed);
        if (entries.length > 0) await new Promise((resolve) => setTimeout(resolve, 100 * 2 ** round));
      }
    }
  }
}

let registered: DeliveryQueue | undefined;

/** Registers this process's queue (the local runtime, tests). */
export function setDeliveryQueue(queue: DeliveryQueue | undefined): void {
  registered = queue;
}

/**
 * The queue of this process: the registered one, else SQS when `DELIVERY_QUEUE_URL` is set, else none (the
 * deliveries stay recorded as pending; the local runtime queues them again when it starts).
 */
export function getDeliveryQueue(): DeliveryQueue | undefined {
  if (!registered && process.env.DELIVERY_QUEUE_URL) {
    registered = new SqsDeliveryQueue(new SQSClient({}), process.env.DELIVERY_QUEUE_URL);
  }
  return registered;
}
