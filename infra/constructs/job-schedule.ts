import { Duration, Stack } from 'aws-cdk-lib';
import { Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Schedule, type ScheduleExpression, ScheduleTargetInput } from 'aws-cdk-lib/aws-scheduler';
import { LambdaInvoke } from 'aws-cdk-lib/aws-scheduler-targets';
import { NagSuppressions } from 'cdk-nag';
import { Construct } from 'constructs';
import { compliance, suppress } from '../nag.ts';
import type { ConsentFunction } from './consent-function.ts';

export interface JobScheduleProps {
  job: ConsentFunction;
  schedule: ScheduleExpression;
  description: string;
}

/**
 * Runs a job function on a schedule (EventBridge Scheduler): an empty input, a few retries, and a role of
 * its own that may only invoke that function.
 */
export class JobSchedule extends Construct {
  readonly schedule: Schedule;

  constructor(scope: Construct, id: string, props: JobScheduleProps) {
    super(scope, id);
    // Its own role (not CDK's shared one): this schedule's account only, and nothing but this function.
    const role = new Role(this, 'Role', {
      assumedBy: new ServicePrincipal('scheduler.amazonaws.com', {
        conditions: { StringEquals: { 'aws:SourceAccount': Stack.of(this).account } },
      }),
      description: `consent-gate: invokes the ${props.job.node.id} job`,
    });
    this.schedule = new Schedule(this, 'Schedule', {
      schedule: props.schedule,
      description: props.description,
      target: new LambdaInvoke(props.job.function, {
        role,
        input: ScheduleTargetInput.fromObject({}),
        retryAttempts: 2,
        maxEventAge: Duration.hours(6),
      }),
    });
    NagSuppressions.addResourceSuppressions(
      this,
      [
        {
          id: 'AwsSolutions-IAM5',
          reason:
            "CDK's grantInvoke adds the function's own versions (ARN:*): the role invokes that one function only.",
          appliesTo: [{ regex: '/^Resource::<.*\\.Arn>:\\*$/g' }],
        },
      ],
      true,
    );
    suppress(
      role,
      compliance('IAMNoInlinePolicy'),
      "Generated for this one schedule's role (invoke one function): one-to-one with it, as IAM advises inline policies for.",
      { children: true },
    );
  }
}
