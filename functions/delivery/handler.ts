// Change-event delivery (docs/events.md): invoked by the SQS FIFO delivery queue, not a route. Each group
// (endpoint + subject) is delivered in order; a delivery to retry is made invisible for its backoff and
// reported failed with every later message of its group, so the group waits behind it.
import { ChangeMessageVisibilityCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { logger } from '#shared/log.ts';
import { type DeliveryMessage, deliver, deliverOptionsFromEnv } from '#shared/services/change-delivery.ts';
import { getDb } from '#store/db.ts';

const sqs = new SQSClient({});
const options = deliverOptionsFromEnv();
/** SQS's longest visibility timeout (12 h); the backoff is capped at 1 h anyway. */
const MAX_VISIBILITY_S = 43_200;

export async function handler(event: SQSEvent): Promise<SQSBatchResponse> {
  const groups = new Map<string, SQSRecord[]>();
  for (const record of event.Records) {
    const group = record.attributes.MessageGroupId ?? record.messageId;
    groups.set(group, [...(groups.get(group) ?? []), record]);
  }
  const failed: string[] = [];
  await Promise.all(
    [...groups.values()].map(async (records) => {
      for (const [i, record] of records.entries()) {
        try {
          const outcome = await deliver(getDb(), JSON.parse(record.body) as DeliveryMessage, options);
          if (outcome.kind !== 'retry') continue;
          await sqs.send(
            new ChangeMessageVisibilityCommand({
              QueueUrl: process.env.DELIVERY_QUEUE_URL,
              ReceiptHandle: record.receiptHandle,
              VisibilityTimeout: Math.min(MAX_VISIBILITY_S, Math.ceil(outcome.delayMs / 1000)),
            }),
          );
        } catch (error) {
          logger.warn('change event delivery errored', { errorName: (error as Error).name });
        }
        // This one is to be tried again: it and the rest of its group go back, in order.
        failed.push(...records.slice(i).map((r) => r.messageId));
        return;
      }
    }),
  );
  return { batchItemFailures: failed.map((itemIdentifier) => ({ itemIdentifier })) };
}
