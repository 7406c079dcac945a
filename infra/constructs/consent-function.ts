import { join } from 'node:path';
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import { Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import { Architecture, LoggingFormat, Runtime, Tracing } from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { ISecret } from 'aws-cdk-lib/aws-secretsmanager';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { NagSuppressions } from 'cdk-nag';
import { Construct } from 'constructs';
import { DEFAULT_FUNCTION_TIMEOUT_SECONDS, FUNCTION_TIMEOUT_ENV } from '#shared/function-timeout.ts';
import { compliance, suppress } from '../nag.ts';
import type { ConsentTable, TableAccessLevel } from './consent-table.ts';

/**
 * The newest Node.js runtime this aws-cdk-lib knows (test/infra/hardening.test.ts fails when a newer one
 * appears). The code itself stays Node 20 compatible: that is what runs it locally.
 */
export const NODE_RUNTIME = Runtime.NODEJS_24_X;
/** esbuild's target for {@link NODE_RUNTIME}: `nodejs24.x` → `node24`. */
export const ESBUILD_TARGET = NODE_RUNTIME.name.replace(/^nodejs(\d+)\.x$/, 'node$1');

/** What invokes a function: it decides where failed events go and what bounds its concurrency. */
export type Invocation = 'api' | 'schedule' | 'stream' | 'queue';

/**
 * Why a function has no Lambda dead-letter queue (a DLQ only receives failed *asynchronous* invocations), by
 * invoker; scheduled jobs are invoked asynchronously and get one.
 */
const NO_DLQ: Record<Exclude<Invocation, 'schedule'>, string> = {
  api: 'Invoked synchronously by API Gateway: the caller gets the error. A Lambda DLQ only receives failed async events.',
  stream:
    'Invoked synchronously by its DynamoDB stream mapping, whose on-failure destination (StreamFailures queue) keeps failed batches.',
  queue:
    "Invoked synchronously by its SQS mapping: the Deliveries queue's redrive policy moves a failing message to its DeadLetters queue.",
};

/** Why a function has no reserved concurrency (a reservation takes from the account pool), by invoker. */
const NO_RESERVED_CONCURRENCY: Record<Invocation, string> = {
  api: "Bounded by the API stage's rate and burst throttle; a reservation would take from the account pool and turn bursts into 503s.",
  schedule:
    'Started only by its EventBridge schedule (one run per period, plus retries); a reservation would take from the account pool.',
  stream: 'One concurrent batch per stream shard (parallelization factor 1): the table stream bounds it.',
  queue: "Bounded by its SQS event source's maximum concurrency (ChangeEvents); no reservation needed on top.",
};

/** The repository root: entries, the lockfile and shipped files are found from here. */
export const PROJECT_ROOT = join(import.meta.dirname, '..', '..');

/** A file a function reads at run time (a page's script, a browser library), copied into its asset. */
export interface ShippedFile {
  /** Path relative to the repository root, e.g. `node_modules/chart.js/dist/chart.umd.min.js`. */
  from: string;
  /** Path inside the asset; the function finds it under `LAMBDA_TASK_ROOT` (`/var/task`). */
  to: string;
}

export interface ConsentFunctionProps {
  /** The folder under `functions/` whose `handler.ts` exports `handler`. */
  name: string;
  logRetention: RetentionDays;
  environment?: Record<string, string>;
  memorySize?: number;
  timeout?: Duration;
  /** Extra files read at run time; copied into the asset after bundling. */
  files?: readonly ShippedFile[];
  /** The stack's customer-managed key: the function's log group is encrypted with it. */
  logKey: IKey;
  /** What invokes it (API Gateway unless told). */
  invocation?: Invocation;
}

/**
 * One Lambda function of consent-gate with the defaults every function shares: the newest Node.js runtime on
 * arm64, ESM bundled by esbuild (minified, with source maps), X-Ray tracing, JSON logs into its own log group
 * (a retention, encrypted with the stack key), and a role that starts empty — each grant is added with the
 * env var it goes with. A scheduled job also gets a dead-letter queue for the runs that failed every retry.
 */
export class ConsentFunction extends Construct {
  readonly function: NodejsFunction;
  readonly logGroup: LogGroup;
  /** Where a scheduled job's failed runs end (after Lambda's two retries); none for other invokers. */
  readonly deadLetters?: Queue;

  constructor(scope: Construct, id: string, props: ConsentFunctionProps) {
    super(scope, id);
    const invocation = props.invocation ?? 'api';
    this.logGroup = new LogGroup(this, 'Logs', {
      retention: props.logRetention,
      encryptionKey: props.logKey,
      // Logs carry no personal data; kept after a teardown they still expire with their retention.
      removalPolicy: RemovalPolicy.RETAIN,
    });
    if (invocation === 'schedule') {
      // The event is the schedule's empty input: the message records that a run failed, and its error.
      this.deadLetters = new Queue(this, 'DeadLetters', {
        retentionPeriod: Duration.days(14),
        encryption: QueueEncryption.SQS_MANAGED,
        enforceSSL: true,
      });
      suppress(this.deadLetters, ['AwsSolutions-SQS3'], 'This is a dead-letter queue: it needs none of its own.');
    }
    // Our own role instead of AWSLambdaBasicExecutionRole (logs:* on every log group): this log group only.
    const role = new Role(this, 'Role', {
      assumedBy: new ServicePrincipal('lambda.amazonaws.com'),
      description: `consent-gate ${props.name} function`,
    });
    this.logGroup.grantWrite(role);
    const files = props.files ?? [];
    const timeout = props.timeout ?? Duration.seconds(DEFAULT_FUNCTION_TIMEOUT_SECONDS);
    this.function = new NodejsFunction(this, 'Function', {
      entry: join(PROJECT_ROOT, 'functions', props.name, 'handler.ts'),
      handler: 'handler',
      projectRoot: PROJECT_ROOT,
      depsLockFilePath: join(PROJECT_ROOT, 'package-lock.json'),
      runtime: NODE_RUNTIME,
      architecture: Architecture.ARM_64,
      memorySize: props.memorySize ?? 512,
      timeout,
      tracing: Tracing.ACTIVE,
      role,
      logGroup: this.logGroup,
      loggingFormat: LoggingFormat.JSON,
      deadLetterQueue: this.deadLetters,
      environment: {
        NODE_OPTIONS: '--enable-source-maps',
        POWERTOOLS_SERVICE_NAME: 'consent-gate',
        POWERTOOLS_METRICS_NAMESPACE: 'ConsentGate',
        // The same value as the Lambda timeout: the idempotency lease is counted from it.
        [FUNCTION_TIMEOUT_ENV]: String(timeout.toSeconds()),
        ...props.environment,
      },
      bundling: {
        format: OutputFormat.ESM,
        target: ESBUILD_TARGET,
        platform: 'node',
        mainFields: ['module', 'main'],
        minify: true,
        sourceMap: true,
        // Stack traces need the mappings, not the sources: keeps the bundle small.
        sourcesContent: false,
        // The Node.js runtime ships AWS SDK v3; bundling it again would only grow every cold start.
        externalModules: ['@aws-sdk/*'],
        // Some CommonJS dependencies call `require` (node:crypto, …): give the ESM bundle one.
        banner: "import{createRequire as __cgRequire}from'module';const require=__cgRequire(import.meta.url);",
        ...(files.length > 0
          ? {
              commandHooks: {
                beforeBundling: () => [],
                beforeInstall: () => [],
                afterBundling: (inputDir: string, outputDir: string) =>
                  files.flatMap(({ from, to }) => [
                    `mkdir -p "${join(outputDir, to, '..')}"`,
                    `cp "${join(inputDir, from)}" "${join(outputDir, to)}"`,
                  ]),
              },
            }
          : {}),
      },
    });
    NagSuppressions.addResourceSuppressions(
      this,
      [
        {
          id: 'AwsSolutions-IAM5',
          reason: 'X-Ray PutTraceSegments/PutTelemetryRecords support no resource-level permissions.',
          appliesTo: ['Resource::*'],
        },
      ],
      true,
    );
    const fn = this.function;
    suppress(
      fn,
      compliance('LambdaInsideVPC'),
      "Reaches only AWS APIs (TLS, IAM-signed) and, for change events, tenants' HTTPS webhooks: a VPC would add NAT and endpoints, not protection.",
    );
    suppress(fn, compliance('LambdaConcurrency'), NO_RESERVED_CONCURRENCY[invocation]);
    if (invocation !== 'schedule') suppress(fn, compliance('LambdaDLQ'), NO_DLQ[invocation]);
    // AWS's own guidance: inline policies keep "a strict one-to-one relationship between a policy and the
    // identity" — each role's policy is generated for this one function and lives and dies with it.
    suppress(
      role,
      compliance('IAMNoInlinePolicy'),
      "Least-privilege policy generated for this one function's role: one-to-one with it, as IAM advises inline policies for.",
      { children: true },
    );
  }

  /** Gives the function the table: its name in `TABLE_NAME` and exactly the access level it needs. */
  bind(table: ConsentTable, level: TableAccessLevel): this {
    this.function.addEnvironment('TABLE_NAME', table.table.tableName);
    table.grant(this.function, level);
    NagSuppressions.addResourceSuppressions(
      this,
      [
        {
          id: 'AwsSolutions-IAM5',
          reason:
            "CDK's encrypt/decrypt grant on the table's KMS key: the wildcards are action families on that one key.",
          appliesTo: ['Action::kms:GenerateDataKey*', 'Action::kms:ReEncrypt*'],
        },
      ],
      true,
    );
    return this;
  }

  /** Gives the function read access to one secret, whose ARN it finds in `envName` (never the value). */
  useSecret(secret: ISecret, envName: string): this {
    this.function.addEnvironment(envName, secret.secretArn);
    secret.grantRead(this.function);
    return this;
  }
}
