import { join } from 'node:path';
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import { Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Architecture, LoggingFormat, Runtime, Tracing } from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { ISecret } from 'aws-cdk-lib/aws-secretsmanager';
import { NagSuppressions } from 'cdk-nag';
import { Construct } from 'constructs';
import { DEFAULT_FUNCTION_TIMEOUT_SECONDS, FUNCTION_TIMEOUT_ENV } from '#shared/function-timeout.ts';
import type { ConsentTable, TableAccessLevel } from './consent-table.ts';

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
}

/**
 * One Lambda function of consent-gate with the defaults every function shares: Node.js 22 on arm64,
 * ESM bundled by esbuild (minified, with source maps), X-Ray tracing, JSON logs into its own log group
 * with a retention, and a role that starts empty — each grant is added with the env var it goes with.
 */
export class ConsentFunction extends Construct {
  readonly function: NodejsFunction;
  readonly logGroup: LogGroup;

  constructor(scope: Construct, id: string, props: ConsentFunctionProps) {
    super(scope, id);
    this.logGroup = new LogGroup(this, 'Logs', {
      retention: props.logRetention,
      // Logs carry no personal data; kept after a teardown they still expire with their retention.
      removalPolicy: RemovalPolicy.RETAIN,
    });
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
      runtime: Runtime.NODEJS_22_X,
      architecture: Architecture.ARM_64,
      memorySize: props.memorySize ?? 512,
      timeout,
      tracing: Tracing.ACTIVE,
      role,
      logGroup: this.logGroup,
      loggingFormat: LoggingFormat.JSON,
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
        target: 'node22',
        platform: 'node',
        mainFields: ['module', 'main'],
        minify: true,
        sourceMap: true,
        // Stack traces need the mappings, not the sources: keeps the bundle small.
        sourcesContent: false,
        // The Node.js 22 runtime ships AWS SDK v3; bundling it again would only grow every cold start.
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
          id: 'AwsSolutions-L1',
          reason: 'Node.js 22 (LTS) is the runtime the service is built and tested on; moving is a tested change.',
        },
        {
          id: 'AwsSolutions-IAM5',
          reason: 'X-Ray PutTraceSegments/PutTelemetryRecords support no resource-level permissions.',
          appliesTo: ['Resource::*'],
        },
      ],
      true,
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
