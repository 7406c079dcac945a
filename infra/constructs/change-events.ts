import { Duration } from 'aws-cdk-lib';
import { Alarm, ComparisonOperator, TreatMissingData } from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import { FilterCriteria, FilterRule, StartingPosition } from 'aws-cdk-lib/aws-lambda';
import { DynamoEventSource, SqsDlq, SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import type { ITopic } from 'aws-cdk-lib/aws-sns';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { NagSuppressions } from 'cdk-nag';
import { Construct } from 'constructs';
import type { ConsentFunction } from './consent-function.ts';
import type { ConsentTable } from './consent-table.ts';

export interface ChangeEventsProps {
  table: ConsentTable;
  /** Reads the table's stream, records deliveries, queues them. */
  dispatcher: ConsentFunction;
  /** Takes deliveries from the queue and makes them. */
  delivery: ConsentFunction;
  /** Functions that queue deliveries too (the endpoints API's replay). */
  senders: readonly ConsentFunction[];
  alarmTopic: ITopic;
}

/** How long a delivery function may run (each attempt is bounded by its own 10 s timeout). */
export const DELIVERY_TIMEOUT = Duration.seconds(60);

/**
 * Change events out (docs/events.md, "Cloud wiring"): the table's stream → the dispatcher function → an SQS
 * FIFO queue (group = endpoint + subject: order per subject; a failed delivery is made invisible for its
 * backoff with ChangeMessageVisibility, which holds its group) → the delivery function (partial batch
 * failures). Messages a function cannot handle at all end in dead-letter queues, which alarm.
 */
export class ChangeEvents extends Construct {
  readonly queue: Queue;
  readonly deadLetters: Queue;
  readonly streamFailures: Queue;

  constructor(scope: Construct, id: string, props: ChangeEventsProps) {
    super(scope, id);
    // Nothing personal travels in a message (endpoint id, delivery key, webhook id, subjectKey); SQS-managed
    // encryption at rest, TLS enforced.
    this.deadLetters = new Queue(this, 'DeadLetters', {
      fifo: true,
      retentionPeriod: Duration.days(14),
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
    });
    this.queue = new Queue(this, 'Deliveries', {
      fifo: true,
      // Retries last 72 h; a group waits behind its head, so the queue keeps messages for its maximum.
      retentionPeriod: Duration.days(14),
      // Six times the function's timeout (AWS's advice for SQS event sources); retries set their own.
      visibilityTimeout: Duration.seconds(DELIVERY_TIMEOUT.toSeconds() * 6),
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      // A message is received once per attempt (about 80 in 72 h) and again each time the head of its group
      // fails before it: only a message no function can handle at all reaches the maximum.
      deadLetterQueue: { queue: this.deadLetters, maxReceiveCount: 1000 },
    });
    this.streamFailures = new Queue(this, 'StreamFailures', {
      retentionPeriod: Duration.days(14),
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
    });
    NagSuppressions.addResourceSuppressions(
      [this.deadLetters, this.streamFailures],
      [{ id: 'AwsSolutions-SQS3', reason: 'This is a dead-letter queue (alarmed), it needs none of its own.' }],
    );

    const dispatcher = props.dispatcher.function;
    dispatcher.addEnvironment('DELIVERY_QUEUE_URL', this.queue.queueUrl);
    this.queue.grantSendMessages(dispatcher);
    dispatcher.addEventSource(
      new DynamoEventSource(props.table.table, {
        startingPosition: StartingPosition.TRIM_HORIZON,
        batchSize: 100,
        // Records are retried until they succeed or leave the stream (24 h): nothing is skipped; bisecting
        // isolates a record that keeps failing, which finally goes to the failure queue (replay it by hand).
        bisectBatchOnError: true,
        retryAttempts: 10_000,
        reportBatchItemFailures: false,
        onFailure: new SqsDlq(this.streamFailures),
        // Only inserts of ledger events and expiry records can be changes: the rest never invokes it.
        filters: [
          FilterCriteria.filter({
            eventName: FilterRule.isEqual('INSERT'),
            dynamodb: { Keys: { SK: { S: FilterRule.beginsWith('EV#') } } },
          }),
          FilterCriteria.filter({
            eventName: FilterRule.isEqual('INSERT'),
            dynamodb: { Keys: { SK: { S: FilterRule.beginsWith('EXP#') } } },
          }),
        ],
      }),
    );

    const delivery = props.delivery.function;
    delivery.addEnvironment('DELIVERY_QUEUE_URL', this.queue.queueUrl);
    delivery.addEventSource(
      new SqsEventSource(this.queue, { batchSize: 10, reportBatchItemFailures: true, maxConcurrency: 20 }),
    );
    for (const sender of props.senders) {
      sender.function.addEnvironment('DELIVERY_QUEUE_URL', this.queue.queueUrl);
      this.queue.grantSendMessages(sender.function);
    }

    const action = new SnsAction(props.alarmTopic);
    const alarm = (name: string, metric: Alarm['metric'], threshold: number, description: string) => {
      const created = new Alarm(this, name, {
        metric,
        threshold,
        evaluationPeriods: 1,
        comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: TreatMissingData.NOT_BREACHING,
        alarmDescription: description,
      });
      created.addAlarmAction(action);
      created.addOkAction(action);
    };
    const period = Duration.minutes(5);
    alarm(
      'DeadLettersAlarm',
      this.deadLetters.metricApproximateNumberOfMessagesVisible({ period }),
      1,
      'change-event deliveries no function could handle',
    );
    alarm(
      'StreamFailuresAlarm',
      this.streamFailures.metricApproximateNumberOfMessagesVisible({ period }),
      1,
      'stream records the dispatcher gave up on: replay them',
    );
    alarm(
      'DispatcherBehindAlarm',
      dispatcher.metric('IteratorAge', { period, statistic: 'Maximum' }),
      Duration.minutes(5).toMilliseconds(),
      'the dispatcher is more than 5 minutes behind the table stream',
    );
    alarm(
      'DeliveryErrorsAlarm',
      delivery.metricErrors({ period, statistic: 'Sum' }),
      1,
      'the delivery function failed',
    );
  }
}
