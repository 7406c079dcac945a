import { Duration } from 'aws-cdk-lib';
import type { HttpApi, HttpStage } from 'aws-cdk-lib/aws-apigatewayv2';
import { Alarm, ComparisonOperator, type IMetric, TreatMissingData } from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import { Operation, type Table } from 'aws-cdk-lib/aws-dynamodb';
import type { ITopic } from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import type { ConsentFunction } from './consent-function.ts';

export interface AlarmsProps {
  topic: ITopic;
  api: HttpApi;
  stage: HttpStage;
  table: Table;
  functions: readonly ConsentFunction[];
  /** Scheduled jobs: an alarm when a run fails. */
  jobs?: readonly ConsentFunction[];
  gate: ConsentFunction;
  gateLatencyP99: Duration;
}

/** The operations the service performs (SystemErrors and throttles are reported per operation). */
const TABLE_OPERATIONS = [
  Operation.GET_ITEM,
  Operation.BATCH_GET_ITEM,
  Operation.QUERY,
  Operation.SCAN,
  Operation.PUT_ITEM,
  Operation.UPDATE_ITEM,
  Operation.DELETE_ITEM,
  Operation.BATCH_WRITE_ITEM,
  Operation.TRANSACT_WRITE_ITEMS,
];

const FIVE_MINUTES = Duration.minutes(5);

/**
 * What pages someone: 5xx from the API (the gate fails closed with 503, so these mean messages are held),
 * Lambda throttles, DynamoDB errors and throttles, and a slow gate. All go to one SNS topic; a missing
 * data point is "no problem" (no traffic, no errors).
 */
export class Alarms extends Construct {
  readonly alarms: Alarm[] = [];

  constructor(scope: Construct, id: string, props: AlarmsProps) {
    super(scope, id);
    const action = new SnsAction(props.topic);
    const alarm = (name: string, metric: IMetric, threshold: number, description: string, periods = 1) => {
      const created = new Alarm(this, name, {
        metric,
        threshold,
        evaluationPeriods: periods,
        comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: TreatMissingData.NOT_BREACHING,
        alarmDescription: description,
      });
      created.addAlarmAction(action);
      created.addOkAction(action);
      this.alarms.push(created);
      return created;
    };

    alarm(
      'Api5xx',
      props.stage.metricServerError({ period: FIVE_MINUTES, statistic: 'Sum' }),
      5,
      'API answered 5xx (store unavailable, function errors): callers are not sending',
    );
    for (const fn of props.functions) {
      alarm(
        `Throttles-${fn.node.id}`,
        fn.function.metricThrottles({ period: FIVE_MINUTES, statistic: 'Sum' }),
        1,
        `${fn.node.id} was throttled (account or reserved concurrency)`,
      );
    }
    for (const job of props.jobs ?? []) {
      alarm(
        `JobErrors-${job.node.id}`,
        job.function.metricErrors({ period: FIVE_MINUTES, statistic: 'Sum' }),
        1,
        `the scheduled ${job.node.id} job failed (it runs again at its next schedule)`,
      );
    }
    alarm(
      'TableSystemErrors',
      props.table.metricSystemErrorsForOperations({ operations: TABLE_OPERATIONS, period: FIVE_MINUTES }),
      1,
      'DynamoDB returned 5xx to the service',
    );
    alarm(
      'TableThrottles',
      props.table.metricThrottledRequestsForOperations({ operations: TABLE_OPERATIONS, period: FIVE_MINUTES }),
      1,
      'DynamoDB throttled requests (hot partition or account limit)',
    );
    alarm(
      'GateLatencyP99',
      props.gate.function.metricDuration({ period: FIVE_MINUTES, statistic: 'p99' }),
      props.gateLatencyP99.toMilliseconds(),
      `Gate p99 duration at or above ${props.gateLatencyP99.toMilliseconds()} ms for 15 minutes`,
      3,
    );
  }
}
