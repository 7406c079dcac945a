// The local runtime's delivery queue: what SQS FIFO does in the cloud, in process. Durability comes from the
// delivery log (every message's delivery is recorded `pending` before it is queued; after a restart the pending
// ones are queued again), order from one worker per group.
import { logger } from '#shared/log.ts';
import type { Db } from '#store/db.ts';
import { scanPendingDeliveries } from '#store/event-endpoints.ts';
import { type DeliveryMessage, type DeliveryOutcome, type DeliveryQueue, messageOf } from './change-delivery.ts';

/**
 * Messages by group (endpoint + subject), each group worked by one worker at a time: its head is delivered,
 * and a head to retry holds the group (as an invisible FIFO message does) until its delay is over. At most
 * `concurrency` groups are worked at once.
 */
export class LocalDeliveryQueue implements DeliveryQueue {
  private readonly groups = new Map<string, DeliveryMessage[]>();
  private readonly busy = new Set<string>();
  /** Groups whose head waits for its retry. */
  private readonly waiting = new Set<string>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly waiters: (() => void)[] = [];
  private stopped = false;

  constructor(
    private readonly process: (message: DeliveryMessage) => Promise<DeliveryOutcome>,
    private readonly concurrency = 16,
  ) {}

  async send(messages: DeliveryMessage[]): Promise<void> {
    for (const message of messages) {
      const queue = this.groups.get(message.group) ?? [];
      // A message queued twice (a dispatch repeated after a crash) is one delivery.
      if (!queue.some((m) => m.key === message.key && m.endpointId === message.endpointId && m.round === message.round))
        queue.push(message);
      this.groups.set(message.group, queue);
    }
    this.pump();
  }

  /** Messages waiting or in flight. */
  get size(): number {
    let n = 0;
    for (const queue of this.groups.values()) n += queue.length;
    return n;
  }

  /** Resolves once nothing is waiting or in flight (tests and the bench). */
  idle(): Promise<void> {
    if (this.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Stops working: timers cleared, deliveries in flight waited for; what is pending stays recorded. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    while (this.busy.size > 0) await new Promise((resolve) => setTimeout(resolve, 10));
  }

  private pump(): void {
    if (this.stopped) return;
    for (const group of this.groups.keys()) {
      if (this.busy.size >= this.concurrency) return;
      if (!this.busy.has(group) && !this.waiting.has(group)) this.work(group);
    }
  }

  private work(group: string): void {
    const head = this.groups.get(group)?.[0];
    if (!head || this.stopped) return;
    this.busy.add(group);
    this.process(head)
      .catch((error): DeliveryOutcome => {
        logger.warn('change event delivery errored', { errorName: (error as Error).name });
        return { kind: 'retry', delayMs: 1_000 };
      })
      .then((outcome) => {
        if (outcome.kind === 'retry') {
          // The group waits with its head (order per subject); the worker slot is freed meanwhile.
          this.busy.delete(group);
          this.waiting.add(group);
          const timer = setTimeout(() => {
            this.timers.delete(timer);
            this.waiting.delete(group);
            if (this.busy.size < this.concurrency) this.work(group);
            this.pump();
          }, outcome.delayMs);
          timer.unref();
          this.timers.add(timer);
          this.pump();
          return;
        }
        const queue = this.groups.get(group) ?? [];
        queue.shift();
        if (queue.length === 0) this.groups.delete(group);
        this.busy.delete(group);
        if (this.size === 0) for (const resolve of this.waiters.splice(0)) resolve();
        this.pump();
      });
  }
}

/** Queues again every delivery still pending in the table (the local runtime's start). */
export async function requeuePending(db: Db, queue: DeliveryQueue): Promise<number> {
  const pending = await scanPendingDeliveries(db);
  if (pending.length > 0) await queue.send(pending.map(messageOf));
  return pending.length;
}
