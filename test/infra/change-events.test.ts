import { Annotations, Match } from 'aws-cdk-lib/assertions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { logicalId, type Resources, roleGrants, synthStack } from './stack-fixture.ts';

// The change-event pipeline as CloudFormation has it (docs/events.md, "Cloud wiring"). Settings only: CDK skips
// bundling here; the bundles are loaded in stack.test.ts.
let synth: ReturnType<typeof synthStack>;
let resources: Resources;
const ofType = (type: string) => Object.entries(resources).filter(([, r]) => r.Type === type);
const fnId = (name: string) => logicalId(resources, 'AWS::Lambda::Function', `Fn${name}Function`);
const roleId = (name: string) => logicalId(resources, 'AWS::IAM::Role', `Fn${name}Role`);
const queueId = (name: string) => logicalId(resources, 'AWS::SQS::Queue', `ChangeEvents${name}`);
const arnOf = (id: string) => JSON.stringify({ 'Fn::GetAtt': [id, 'Arn'] });

beforeAll(() => {
  synth = synthStack({}, { bundle: false });
  resources = synth.resources;
}, 120_000);
afterAll(() => synth?.cleanup());

describe('change events in the cloud', () => {
  it('turns the table’s stream on, with new images', () => {
    const table = resources[logicalId(resources, 'AWS::DynamoDB::Table', 'Data')];
    expect(table.Properties.StreamSpecification).toEqual({ StreamViewType: 'NEW_IMAGE' });
  });

  it('queues deliveries in an encrypted FIFO queue kept 14 days, with a dead-letter queue', () => {
    const deliveries = resources[queueId('Deliveries')].Properties;
    expect(deliveries).toMatchObject({
      FifoQueue: true,
      MessageRetentionPeriod: 14 * 86_400,
      VisibilityTimeout: 360,
      SqsManagedSseEnabled: true,
      RedrivePolicy: { maxReceiveCount: 1000, deadLetterTargetArn: { 'Fn::GetAtt': [queueId('DeadLetters'), 'Arn'] } },
    });
    expect(resources[queueId('DeadLetters')].Properties.FifoQueue).toBe(true);
    // TLS only, on every queue.
    for (const [id] of ofType('AWS::SQS::Queue')) {
      const policy = ofType('AWS::SQS::QueuePolicy').find(([, p]) => JSON.stringify(p.Properties.Queues).includes(id));
      expect(JSON.stringify(policy?.[1].Properties.PolicyDocument), id).toContain('aws:SecureTransport');
    }
  });

  it('runs the dispatcher from the stream: inserts of ledger events and expiry records only, retried, failures kept', () => {
    const mapping = ofType('AWS::Lambda::EventSourceMapping').find(
      ([, m]) => m.Properties.FunctionName.Ref === fnId('dispatcher'),
    )?.[1].Properties;
    expect(mapping).toMatchObject({
      StartingPosition: 'TRIM_HORIZON',
      BisectBatchOnFunctionError: true,
      MaximumRetryAttempts: 10_000,
      DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': [queueId('StreamFailures'), 'Arn'] } } },
    });
    const patterns = mapping.FilterCriteria.Filters.map((f: { Pattern: string }) => JSON.parse(f.Pattern));
    expect(patterns).toEqual([
      { eventName: ['INSERT'], dynamodb: { Keys: { SK: { S: [{ prefix: 'EV#' }] } } } },
      { eventName: ['INSERT'], dynamodb: { Keys: { SK: { S: [{ prefix: 'EXP#' }] } } } },
    ]);
  });

  it('runs the delivery function from the queue with partial batch failures', () => {
    const mapping = ofType('AWS::Lambda::EventSourceMapping').find(
      ([, m]) => m.Properties.FunctionName.Ref === fnId('delivery'),
    )?.[1].Properties;
    expect(mapping).toMatchObject({
      EventSourceArn: { 'Fn::GetAtt': [queueId('Deliveries'), 'Arn'] },
      BatchSize: 10,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
    });
  });

  it('gives each function of the pipeline least privilege', () => {
    const sqs = (name: string) =>
      roleGrants(resources, roleId(name)).filter(
        (g) => g.action.startsWith('sqs:') && g.resource === arnOf(queueId('Deliveries')),
      );
    const actions = (name: string) =>
      sqs(name)
        .map((g) => g.action)
        .sort();
    // The dispatcher and the endpoints API send; only the delivery function receives and changes visibility.
    expect(actions('dispatcher')).toEqual(['sqs:GetQueueAttributes', 'sqs:GetQueueUrl', 'sqs:SendMessage']);
    expect(actions('events')).toEqual(['sqs:GetQueueAttributes', 'sqs:GetQueueUrl', 'sqs:SendMessage']);
    expect(actions('delivery')).toEqual(
      [
        'sqs:ChangeMessageVisibility',
        'sqs:DeleteMessage',
        'sqs:GetQueueAttributes',
        'sqs:GetQueueUrl',
        'sqs:ReceiveMessage',
      ].sort(),
    );
    for (const name of ['gate', 'consents', 'retention', 'sealer']) expect(actions(name), name).toEqual([]);
    // Table writes only in the delivery logs (dispatcher, delivery) or the endpoints' own partitions (API).
    const writeConditions = (name: string) =>
      ofType('AWS::IAM::Policy')
        .filter(([, p]) => p.Properties.Roles.some((r: { Ref: string }) => r.Ref === roleId(name)))
        .flatMap(([, p]) => p.Properties.PolicyDocument.Statement)
        .filter((s: { Action: string | string[] }) => [s.Action].flat().includes('dynamodb:PutItem'))
        .map((s: { Condition?: unknown }) => s.Condition);
    expect(writeConditions('dispatcher')).toEqual([
      { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['T#*#EP#*'] } },
    ]);
    expect(writeConditions('delivery')).toEqual([
      { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['T#*#EP#*'] } },
    ]);
    expect(writeConditions('events')).toEqual([
      { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['T#*#EPS', 'T#*#EP#*', 'T#*#IDEM#*'] } },
    ]);
    // Stream reads for the dispatcher only.
    for (const [id] of ofType('AWS::IAM::Role')) {
      const reads = roleGrants(resources, id).some((g) => g.action === 'dynamodb:GetRecords');
      expect(reads, id).toBe(id === roleId('dispatcher'));
    }
    expect(resources[fnId('delivery')].Properties.Environment.Variables.DELIVERY_QUEUE_URL).toEqual({
      Ref: queueId('Deliveries'),
    });
  });

  it('alarms on dead letters, stream failures, a dispatcher that falls behind and delivery errors', () => {
    const alarms = ofType('AWS::CloudWatch::Alarm')
      .map(([id]) => id)
      .filter((id) => id.startsWith('ChangeEvents'));
    expect(alarms.map((id) => id.replace(/[0-9A-F]{8}$/, '')).sort()).toEqual(
      [
        'ChangeEventsDeadLettersAlarm',
        'ChangeEventsDeliveryErrorsAlarm',
        'ChangeEventsDispatcherBehindAlarm',
        'ChangeEventsStreamFailuresAlarm',
      ].sort(),
    );
  });

  it('passes the AwsSolutions checks', () => {
    const errors = Annotations.fromStack(synth.stack).findError('*', Match.stringLikeRegexp('AwsSolutions-.*'));
    expect(errors.map((e) => `${e.id}: ${e.entry.data}`)).toEqual([]);
  });
});
