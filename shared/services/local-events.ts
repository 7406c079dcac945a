// Change events in the local runtime (docs/events.md, "Local runtime"): the table's stream read from DynamoDB
// Local by the same dispatcher code as the cloud's, deliveries made by the same delivery code from an
// in-process queue.
import { DynamoDBStreamsClient } from '@aws-sdk/client-dynamodb-streams';
import { logger } from '#shared/log.ts';
import type { Db } from '#store/db.ts';
import { type DeliverOptions, deliver, deliverOptionsFromEnv } from './change-delivery.ts';
import { dispatchChanges } from './change-dispatch.ts';
import { setDeliveryQueue } from './delivery-queue.ts';
import { LocalDeliveryQueue, requeuePending } from './local-delivery-queue.ts';
import { memoryCheckpoint, type StreamCheckpoint, StreamPoller, schedulePoller } from './stream-poller.ts';

export interface LocalChangeEventsOptions {
  /** DynamoDB Local's URL (its stream API is on the same endpoint). */
  endpoint: string;
  checkpoint?: StreamCheckpoint;
  /** How often the stream is read (default 200 ms). */
  everyMs?: number;
  deliver?: DeliverOptions;
}

/** A running local change-event pipeline. */
export interface LocalChangeEvents {
  queue: LocalDeliveryQueue;
  poller: StreamPoller;
  /** Reads the stream now (tests, the bench). */
  pollNow(): Promise<number>;
  stop(): Promise<void>;
}

/** A DynamoDB Streams client for DynamoDB Local. */
export const localStreamsClient = (endpoint: string) =>
  new DynamoDBStreamsClient({
    endpoint,
    region: process.env.AWS_REGION ?? 'eu-west-3',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });

/**
 * Starts the pipeline: pending deliveries of an earlier run queued again (in the background, retried until
 * done), and the stream polled every `everyMs` into the dispatcher. The queue is this process's delivery queue (replays use it). What it returns
 * stops it all: the poll timer, a pass in flight, the queue's deliveries in flight.
 */
export async function startLocalChangeEvents(db: Db, options: LocalChangeEventsOptions): Promise<LocalChangeEvents> {
  const settings = options.deliver ?? deliverOptionsFromEnv();
  const queue = new LocalDeliveryQueue((message) => deliver(db, message, settings));
  setDeliveryQueue(queue);
  // The deliveries an earlier run left pending are queued again in the background: a scan of the table, which
  // on a big `.data` (or a store busy with the retention run at start) must neither delay nor fail the start.
  let stopping = false;
  void (async () => {
    for (let attempt = 0; !stopping; attempt++) {
      try {
        await requeuePending(db, queue);
        return;
      } catch (error) {
        if (attempt === 0)
          logger.warn('re-queueing pending deliveries failed; retrying', { errorName: (error as Error).name });
        await new Promise((resolve) => setTimeout(resolve, Math.min(30_000, 1_000 * 2 ** attempt)).unref());
      }
    }
  })();
  const poller = new StreamPoller(
    db,
    localStreamsClient(options.endpoint),
    options.checkpoint ?? memoryCheckpoint(),
    async (items) => {
      await dispatchChanges(db, items, queue);
    },
  );
  let lastError: string | undefined;
  const scheduled = schedulePoller(poller, options.everyMs ?? 200, (error) => {
    if (error.name !== lastError) logger.warn('change stream poll failed', { errorName: error.name });
    lastError = error.name;
  });
  return {
    queue,
    poller,
    pollNow: () => poller.pollOnce(),
    stop: async () => {
      stopping = true;
      await scheduled.stop();
      await queue.stop();
      setDeliveryQueue(undefined);
    },
  };
}
