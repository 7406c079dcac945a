import { randomBytes } from 'node:crypto';
import { ChangeMessageVisibilityCommand, SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import { marshall } from '@aws-sdk/util-dynamodb';
import type { SQSEvent } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { changeFromEventItem } from '#domain/changes.ts';
import { grantConsent } from '#domain/subject-state.ts';
import { handler as dispatcherHandler } from '#functions/dispatcher/handler.ts';
import { type DeliveryMessage, deliver, messageOf, RETRY_SCHEDULE } from '#shared/services/change-delivery.ts';
import { newDelivery } from '#shared/services/change-dispatch.ts';
import { SqsDeliveryQueue, setDeliveryQueue } from '#shared/services/delivery-queue.ts';
import { createEndpoint } from '#shared/services/event-endpoints.ts';
import { getDb } from '#store/db.ts';
import {
  type EventEndpoint,
  getDelivery,
  getEndpoint,
  recordDelivery,
  restartDelivery,
} from '#store/event-endpoints.ts';
import { appendChange } from '#store/subjects.ts';
import { testActor } from '../helpers/factories.ts';
import { startReceiver } from '../helpers/receiver.ts';

// The delivery side and the cloud's two functions against DynamoDB Local and a real receiver; SQS (which has no
// local twin here) is mocked with aws-sdk-client-mock, the only thing faked.
const sqs = mockClient(SQSClient);
let receiver: Awaited<ReturnType<typeof startReceiver>>;
let secret = '';
let endpoint: EventEndpoint;
const tenant = `pipe-${randomBytes(4).toString('hex')}`;
const policy = { allowInsecure: true };

let deliveryHandler: typeof import('#functions/delivery/handler.ts').handler;

beforeAll(async () => {
  // The delivery function reads its settings at cold start: loopback receivers need insecure endpoints allowed.
  process.env.ALLOW_INSECURE_ENDPOINTS = 'true';
  deliveryHandler = (await import('#functions/delivery/handler.ts')).handler;
  receiver = await startReceiver(() => [secret]);
  const created = await createEndpoint(
    getDb(),
    tenant,
    { url: receiver.url, types: ['consent.granted'] },
    new Date().toISOString(),
  );
  secret = created.secret;
  endpoint = (await getEndpoint(getDb(), tenant, created.id)) as EventEndpoint;
  process.env.DELIVERY_QUEUE_URL = 'https://sqs.eu-west-3.amazonaws.com/123456789012/deliveries.fifo';
});
afterEach(() => sqs.reset());
afterAll(async () => {
  await receiver.close();
  sqs.restore();
  setDeliveryQueue(undefined);
  delete process.env.DELIVERY_QUEUE_URL;
  delete process.env.ALLOW_INSECURE_ENDPOINTS;
});

/** A grant in the ledger, and its stored event item (as the stream carries it). */
async function grantItem(subjectKey: string) {
  const at = new Date().toISOString();
  const { event } = await appendChange(
    getDb(),
    tenant,
    subjectKey,
    (current, next) =>
      grantConsent(
        current,
        { channel: 'sms', purpose: 'marketing', source: 'web_form', noticeVersion: 'v1', grantedAt: at },
        next,
        at,
      ),
    { actor: testActor },
  );
  return { PK: `T#${tenant}#S#${subjectKey}`, SK: `EV#${String(event.seq).padStart(12, '0')}`, subjectKey, ...event };
}

async function pendingDelivery(subjectKey: string, startedAt = new Date().toISOString()) {
  const change = changeFromEventItem(await grantItem(subjectKey));
  if (!change) throw new Error('a grant is a change');
  const { delivery } = await recordDelivery(getDb(), newDelivery(change, endpoint, startedAt), startedAt);
  return delivery;
}

describe('a delivery', () => {
  it('is retried on failure from 5 s, marked failed once 72 h have passed, and delivered again when replayed', async () => {
    const start = new Date();
    const delivery = await pendingDelivery(`s-${randomBytes(3).toString('hex')}`, start.toISOString());
    const message = messageOf(delivery);
    await receiver.setMode('error');
    const at = (ms: number) => () => new Date(start.getTime() + ms);
    expect(await deliver(getDb(), message, { schedule: RETRY_SCHEDULE, policy, now: at(0) })).toEqual({
      kind: 'retry',
      delayMs: 5_000,
    });
    expect(await deliver(getDb(), message, { schedule: RETRY_SCHEDULE, policy, now: at(5_000) })).toEqual({
      kind: 'retry',
      delayMs: 10_000,
    });
    // Still within 72 h: retried (the delay follows the number of attempts).
    expect(await deliver(getDb(), message, { schedule: RETRY_SCHEDULE, policy, now: at(71 * 3_600_000) })).toEqual({
      kind: 'retry',
      delayMs: 20_000,
    });
    expect(await deliver(getDb(), message, { schedule: RETRY_SCHEDULE, policy, now: at(72 * 3_600_000) })).toEqual({
      kind: 'failed',
    });
    const failed = await getDelivery(getDb(), tenant, endpoint.id, delivery.key);
    expect(failed?.status).toBe('failed');
    expect(failed?.attempts).toHaveLength(4);
    expect(failed?.attempts.every((a) => a.httpStatus === 500 && a.error === 'HTTP 500')).toBe(true);
    // A duplicate of the message changes nothing more.
    expect(await deliver(getDb(), message, { schedule: RETRY_SCHEDULE, policy })).toEqual({ kind: 'skipped' });
    await receiver.setMode('ok');
    const replayed = await restartDelivery(getDb(), failed as NonNullable<typeof failed>, new Date().toISOString());
    expect(await deliver(getDb(), messageOf(replayed), { schedule: RETRY_SCHEDULE, policy })).toEqual({
      kind: 'delivered',
    });
    const sent = receiver.received.filter((r) => r.id === delivery.webhookId);
    expect(sent).toHaveLength(5);
    // Signed every time (the attempts dated 72 h ahead fail the receiver's 5-minute timestamp window, as they should).
    expect(sent.every((r) => r.signature.startsWith('v1,'))).toBe(true);
    expect(sent.at(-1)?.verifiedWith).toEqual([secret]);
  });
});

describe('the delivery function (SQS FIFO)', () => {
  const record = (message: DeliveryMessage, id: string): SQSEvent['Records'][number] =>
    ({
      messageId: id,
      receiptHandle: `rh-${id}`,
      body: JSON.stringify(message),
      attributes: { MessageGroupId: message.group },
    }) as unknown as SQSEvent['Records'][number];

  it('delivers each group in order, and holds a group behind a delivery to retry with its backoff', async () => {
    const [a1, a2, b1] = [
      await pendingDelivery('subject-a'),
      await pendingDelivery('subject-a'),
      await pendingDelivery('subject-b'),
    ];
    const original = receiver.received.length;
    sqs.on(ChangeMessageVisibilityCommand).resolves({});
    // The receiver answers 500 for the first run.
    await receiver.setMode('error');
    const firstRun = await deliveryHandler({
      Records: [record(messageOf(a1), 'a1'), record(messageOf(a2), 'a2')],
    } as SQSEvent);
    expect(firstRun.batchItemFailures.map((f) => f.itemIdentifier)).toEqual(['a1', 'a2']);
    const visibility = sqs.commandCalls(ChangeMessageVisibilityCommand);
    expect(visibility).toHaveLength(1);
    expect(visibility[0].args[0].input).toMatchObject({ ReceiptHandle: 'rh-a1', VisibilityTimeout: 5 });
    // a2 was not attempted: it waits behind a1.
    expect((await getDelivery(getDb(), tenant, endpoint.id, a2.key))?.attempts).toEqual([]);
    expect(receiver.received.slice(original).map((r) => r.id)).toEqual([a1.webhookId]);
    await receiver.setMode('ok');
    const secondRun = await deliveryHandler({
      Records: [record(messageOf(a1), 'a1'), record(messageOf(a2), 'a2'), record(messageOf(b1), 'b1')],
    } as SQSEvent);
    expect(secondRun.batchItemFailures).toEqual([]);
    const accepted = receiver.received
      .slice(original)
      .filter((r) => r.answered === 200)
      .map((r) => r.id);
    expect(accepted.filter((id) => id !== b1.webhookId)).toEqual([a1.webhookId, a2.webhookId]);
    expect(accepted).toContain(b1.webhookId);
  });
});

describe('the dispatcher function (DynamoDB stream)', () => {
  it('records each change once and sends it to the FIFO queue grouped by endpoint and subject, in stream order', async () => {
    sqs.on(SendMessageBatchCommand).resolves({ Successful: [], Failed: [] });
    setDeliveryQueue(
      new SqsDeliveryQueue(new SQSClient({ region: 'eu-west-3' }), process.env.DELIVERY_QUEUE_URL as string),
    );
    const items = [await grantItem('subject-c'), await grantItem('subject-c'), await grantItem('subject-d')];
    const event = {
      Records: items.map((item, i) => ({
        eventName: 'INSERT',
        dynamodb: { NewImage: marshall(item, { removeUndefinedValues: true }), SequenceNumber: String(i + 1) },
      })),
    };
    expect(await dispatcherHandler(event as never)).toEqual({ changes: 3, queued: 3 });
    // Again (a retried batch): nothing new recorded; what is still pending is queued again.
    expect(await dispatcherHandler(event as never)).toEqual({ changes: 3, queued: 3 });
    const sends = sqs.commandCalls(SendMessageBatchCommand).map((c) => c.args[0].input.Entries ?? []);
    const first = sends[0].map((e) => JSON.parse(e.MessageBody as string) as DeliveryMessage);
    expect(first.map((m) => m.webhookId)).toEqual(items.map((i) => `msg_${i.eventId}`));
    expect(sends[0][0].MessageGroupId).toBe(sends[0][1].MessageGroupId);
    expect(sends[0][0].MessageGroupId).not.toBe(sends[0][2].MessageGroupId);
    // The same deduplication ids the second time: SQS drops the repeats within its 5-minute window.
    expect(sends[1].map((e) => e.MessageDeduplicationId)).toEqual(sends[0].map((e) => e.MessageDeduplicationId));
    setDeliveryQueue(undefined);
  });
});
