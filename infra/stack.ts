import { Aws, CfnOutput, Duration, RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
import { AccessLogFormat } from 'aws-cdk-lib/aws-apigateway';
import {
  CorsHttpMethod,
  DomainName,
  HttpApi,
  HttpMethod,
  HttpRoute,
  HttpRouteKey,
  HttpStage,
  LogGroupLogDestination,
} from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpLambdaAuthorizer, HttpLambdaResponseType } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import { Certificate } from 'aws-cdk-lib/aws-certificatemanager';
import { type IRole, PolicyStatement, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Key } from 'aws-cdk-lib/aws-kms';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { ScheduleExpression } from 'aws-cdk-lib/aws-scheduler';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import { NagSuppressions } from 'cdk-nag';
import type { Construct } from 'constructs';
import { CORS_ALLOW_HEADERS, CORS_ALLOW_METHODS, CORS_EXPOSE_HEADERS, CORS_MAX_AGE_SECONDS } from '#http/cors.ts';
import { answersHead, FUNCTIONS, type FunctionName, ROUTES, type Route } from '#http/routes.ts';
import { AUTHORIZER_CACHE_TTL_SECONDS } from '#shared/auth/api-keys.ts';
import { Alarms } from './constructs/alarms.ts';
import { ChangeEvents, DELIVERY_TIMEOUT } from './constructs/change-events.ts';
import { CheckpointBucket } from './constructs/checkpoint-bucket.ts';
import { ConsentFunction, type Invocation, type ShippedFile } from './constructs/consent-function.ts';
import { ConsentTable, type TableAccessLevel } from './constructs/consent-table.ts';
import { JobSchedule } from './constructs/job-schedule.ts';
import { type SecretName, ServiceSecrets } from './constructs/service-secrets.ts';
import { TableBackup } from './constructs/table-backup.ts';

/** What one function is given: table access, secrets, size, and files it reads at run time. */
export interface FunctionGrant {
  table: TableAccessLevel;
  secrets: readonly SecretName[];
  memorySize?: number;
  timeout?: Duration;
  files?: readonly ShippedFile[];
  /** Extra environment (settings, never secrets). */
  environment?: Readonly<Record<string, string>>;
}

/** Where Lambda unpacks a function's asset (`LAMBDA_TASK_ROOT`). */
const TASK_ROOT = '/var/task';
const DASHBOARD_DIR = 'dashboard-assets';

/**
 * Least privilege, in one place: each function gets only what its handlers touch.
 * - `identifier`: the subjectKey HMAC key — every function that turns a phone/e-mail into a subjectKey.
 * - `linkKeys`: signing keys of opt-out/preference links — only what signs or verifies links.
 * - `whatsapp`: the app secret and verify token — only the webhook.
 */
export const FUNCTION_GRANTS = {
  health: { table: 'lookup', secrets: [] },
  // Reads states and the policy; `record: true` appends a send event (conditional Puts), idempotency records.
  gate: { table: 'write', secrets: ['identifier'], memorySize: 1024 },
  consents: { table: 'write', secrets: ['identifier'] },
  // Reads a subject's ledger; the access copy appends its `access.provided` event.
  subjects: { table: 'write', secrets: ['identifier'] },
  erasure: { table: 'erase', secrets: ['identifier'], timeout: Duration.seconds(29) },
  signals: { table: 'write', secrets: ['identifier'] },
  webhooks: { table: 'write', secrets: ['identifier', 'whatsapp'] },
  policy: { table: 'write', secrets: [] },
  // Registers notices (a transaction of two conditional Puts), reads them by key and by Query.
  notices: { table: 'write', secrets: [] },
  selfservice: { table: 'write', secrets: ['identifier', 'linkKeys'] },
  // Exports and chain verification walk many events: more memory (CPU) and API Gateway's full 29 s.
  // The dashboard page serves its script, styles and chart.js from files shipped beside the bundle.
  // Verification checks the log's checkpoints with the public keys the sealer published in the checkpoint bucket.
  audit: {
    table: 'audit',
    secrets: [],
    memorySize: 1024,
    timeout: Duration.seconds(29),
    environment: { DASHBOARD_ASSETS_DIR: `${TASK_ROOT}/${DASHBOARD_DIR}` },
    files: [
      { from: 'shared/pages/dashboard/assets/dashboard.js', to: `${DASHBOARD_DIR}/dashboard.js` },
      { from: 'shared/pages/dashboard/assets/dashboard.css', to: `${DASHBOARD_DIR}/dashboard.css` },
      { from: 'node_modules/chart.js/dist/chart.umd.min.js', to: `${DASHBOARD_DIR}/chart.umd.min.js` },
    ],
  },
  // The verifiable log's read side: checkpoints, proofs, leaves and receipts from the log partition; the audit
  // index only to tell an event not sealed yet (409) from an unknown one (404); the public keys from the
  // checkpoint bucket (`GET /v1/log/public-key`), never the private key. It never writes: the sealer is the
  // log's only writer.
  log: { table: 'audit', secrets: [] },
  // Provider connectors: their items and the ledger appends of the events they bring; `identifier` for the
  // subjectKeys and the secret box that seals the providers' secrets. Up to 29 s: an SNS certificate fetch and
  // a large SendGrid batch.
  connectors: { table: 'write', secrets: ['identifier'], timeout: Duration.seconds(29) },
  docs: { table: 'none', secrets: [] },
  // Change-event endpoints (docs/events.md): seals and opens signing secrets (a key derived from the identifier
  // key), sends `/test` events itself, reads the change feed; it also queues replays (SQS, granted by ChangeEvents).
  events: { table: 'events', secrets: ['identifier'], timeout: Duration.seconds(29) },
} as const satisfies Record<FunctionName, FunctionGrant>;

/**
 * Jobs: functions run by a schedule, not by a route (`functions/<name>/handler.ts` all the same), and when.
 * - `retention` (docs/dpo.md, "Retention"): daily; walks every subject (a Scan), erases the inactive ones,
 *   ends expired proof and deletes old signal details. Up to Lambda's 15 minutes; no secret.
 */
export const JOB_GRANTS = {
  retention: { table: 'retention', secrets: [], memorySize: 1024, timeout: Duration.minutes(15) },
  // - `sealer` (README, "Verifiable log"): every minute; appends the tenants' new events to their Merkle trees
  //   (writes only the log partitions), signs checkpoints with the log key and anchors them in the checkpoint
  //   bucket, whose only writer it is. A run stops starting batches 15 s before its timeout.
  sealer: { table: 'seal', secrets: ['logKeys'], memorySize: 1024, timeout: Duration.seconds(60) },
} as const satisfies Record<string, FunctionGrant>;
export type JobName = keyof typeof JOB_GRANTS;

/** When each job runs (UTC): retention at night, away from business hours in Europe; the sealer every minute. */
export const JOB_SCHEDULES: Record<JobName, { schedule: ScheduleExpression; what: string }> = {
  retention: { schedule: ScheduleExpression.cron({ minute: '15', hour: '3' }), what: 'the daily retention job' },
  sealer: { schedule: ScheduleExpression.rate(Duration.minutes(1)), what: "the log's sealer, every minute" },
};

/**
 * The change-event pipeline (docs/events.md): functions run by the table's stream and by the delivery queue.
 * - `dispatcher`: stream records → delivery log items → the queue. No secret.
 * - `delivery`: the queue → signed HTTP calls; opens the endpoints' signing secrets (identifier key).
 */
export const PIPELINE_GRANTS = {
  dispatcher: { table: 'deliveries', secrets: [], timeout: Duration.seconds(60) },
  delivery: { table: 'deliveries', secrets: ['identifier'], timeout: DELIVERY_TIMEOUT },
} as const satisfies Record<string, FunctionGrant>;
export type PipelineName = keyof typeof PIPELINE_GRANTS;

/** The authorizer reads one API-key item by its hash; it needs no secret (keys are stored hashed). */
export const AUTHORIZER_GRANT: FunctionGrant = { table: 'lookup', secrets: [] };

/** Authorizer results are cached per Authorization header: a revoked key stops working within this (the local server's TTL too). */
export const AUTHORIZER_CACHE_TTL = Duration.seconds(AUTHORIZER_CACHE_TTL_SECONDS);

export interface ConsentGateStackProps extends StackProps {
  /** Deployment stage (`dev`, `prod`): names the stack and its resources. */
  stage: string;
  /** Custom domain (with an ACM certificate in the stack's region); else the execute-api URL. */
  domainName?: string;
  certificateArn?: string;
  /** Where alarms are e-mailed (the subscription must be confirmed from the e-mail). */
  alarmEmail?: string;
  /** Steady-state requests per second and burst for the whole API (API Gateway stage throttling). */
  throttle?: { rateLimit: number; burstLimit: number };
  /** Gate latency alarm threshold (p99 of the gate function's duration). */
  gateLatencyP99?: Duration;
  /** `phoneNumberId:tenant,...` routing of WhatsApp webhooks. */
  whatsappPhoneNumberTenants?: string;
  /**
   * Browser origins allowed to call the API (`CORS_ORIGINS`, parsed by `parseCorsOrigins`): the HTTP API's
   * CORS configuration answers their preflights and adds the headers to every response, authorizer
   * refusals included. Empty: no CORS.
   */
  corsOrigins?: readonly string[];
  logRetention?: RetentionDays;
  /**
   * How long proof must outlive an erasure, in days: the checkpoint bucket's lock and the table backups'
   * retention. The default policy's `retention.proofDays`; raise it when tenants' policies keep proof longer.
   */
  proofRetentionDays?: number;
}

// API Gateway access logs: who called what and how it went, never the caller's IP address or user agent.
const ACCESS_LOG_FORMAT = AccessLogFormat.custom(
  JSON.stringify({
    requestId: '$context.requestId',
    requestTime: '$context.requestTime',
    routeKey: '$context.routeKey',
    status: '$context.status',
    responseLength: '$context.responseLength',
    responseLatency: '$context.responseLatency',
    integrationLatency: '$context.integrationLatency',
    integrationError: '$context.integrationErrorMessage',
    authorizerError: '$context.authorizer.error',
    tenant: '$context.authorizer.tenant',
    keyId: '$context.authorizer.keyId',
  }),
);

/**
 * consent-gate on AWS: an HTTP API whose routes and functions are generated from the route table, a
 * Lambda authorizer for API keys, one DynamoDB table, secrets in Secrets Manager, alarms to SNS.
 */
export class ConsentGateStack extends Stack {
  readonly api: HttpApi;
  readonly table: ConsentTable;
  readonly functions: Partial<Record<FunctionName, ConsentFunction>>;
  readonly authorizer: ConsentFunction;
  readonly jobs: Record<JobName, ConsentFunction>;
  readonly checkpoints: CheckpointBucket;
  readonly alarmTopic: Topic;
  readonly pipeline: Record<PipelineName, ConsentFunction>;
  readonly changeEvents: ChangeEvents;
  readonly backup: TableBackup;

  constructor(scope: Construct, id: string, props: ConsentGateStackProps) {
    super(scope, id, props);
    const logRetention = props.logRetention ?? RetentionDays.THREE_MONTHS;

    // One customer-managed key for the table, its backups, the secrets, the log groups and the alarm topic: key
    // use shows in CloudTrail, access is granted per role, and disabling it makes the data unreadable
    // (crypto-shredding at end of life).
    const key = new Key(this, 'DataKey', {
      description: `consent-gate ${props.stage}: table, backups, secrets, log groups and alarm topic`,
      enableKeyRotation: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    // CloudWatch Logs encrypts the stack's log groups with it: the regional service, for this account's log
    // groups only (the encryption context names the log group), as AWS documents for KMS-encrypted logs.
    key.addToResourcePolicy(
      new PolicyStatement({
        sid: 'CloudWatchLogsEncryptsThisAccountsLogGroups',
        principals: [new ServicePrincipal(`logs.${Aws.REGION}.amazonaws.com`)],
        actions: ['kms:Encrypt*', 'kms:Decrypt*', 'kms:ReEncrypt*', 'kms:GenerateDataKey*', 'kms:Describe*'],
        resources: ['*'],
        conditions: {
          ArnLike: {
            'kms:EncryptionContext:aws:logs:arn': `arn:${Aws.PARTITION}:logs:${Aws.REGION}:${Aws.ACCOUNT_ID}:log-group:*`,
          },
        },
      }),
    );
    this.table = new ConsentTable(this, 'Data', key);

    const secrets = new ServiceSecrets(this, 'Secrets', key);

    this.api = new HttpApi(this, 'Api', {
      apiName: `consent-gate-${props.stage}`,
      description: 'consent-gate HTTP API (routes generated from shared/http/routes.ts)',
      createDefaultStage: false,
      // With a custom domain, it is the only way in (one TLS policy, one place to put a WAF).
      disableExecuteApiEndpoint: Boolean(props.domainName),
      // The same rules as the local server (shared/http/cors.ts); API Gateway then answers every preflight
      // itself and replaces any CORS header a function would set.
      ...(props.corsOrigins?.length
        ? {
            corsPreflight: {
              allowOrigins: [...props.corsOrigins],
              allowHeaders: [...CORS_ALLOW_HEADERS],
              allowMethods: CORS_ALLOW_METHODS.map((m) => CorsHttpMethod[m]),
              exposeHeaders: [...CORS_EXPOSE_HEADERS],
              maxAge: Duration.seconds(CORS_MAX_AGE_SECONDS),
              allowCredentials: false,
            },
          }
        : {}),
    });
    const publicBaseUrl = props.domainName ? `https://${props.domainName}` : this.api.apiEndpoint;

    const common = {
      PUBLIC_BASE_URL: publicBaseUrl,
      ...(props.whatsappPhoneNumberTenants ? { WHATSAPP_PHONE_NUMBER_TENANTS: props.whatsappPhoneNumberTenants } : {}),
    };
    const build = (name: string, grant: FunctionGrant, invocation: Invocation = 'api') => {
      const fn = new ConsentFunction(this, `Fn-${name}`, {
        name,
        logRetention,
        logKey: key,
        invocation,
        environment: { ...common, ...grant.environment },
        memorySize: grant.memorySize,
        timeout: grant.timeout,
        files: grant.files,
      });
      fn.bind(this.table, grant.table);
      secrets.grant(fn, grant.secrets);
      return fn;
    };
    // A function exists when a route needs it (docs also serves `$default`): the route table drives the stack.
    const deployed = FUNCTIONS.filter((name) => name === 'docs' || ROUTES.some((route) => route.fn === name));
    this.functions = Object.fromEntries(deployed.map((name) => [name, build(name, FUNCTION_GRANTS[name])]));
    this.authorizer = build('authorizer', AUTHORIZER_GRANT);
    this.jobs = {
      retention: build('retention', JOB_GRANTS.retention, 'schedule'),
      sealer: build('sealer', JOB_GRANTS.sealer, 'schedule'),
    };
    for (const [name, job] of Object.entries(this.jobs)) {
      new JobSchedule(this, `Schedule-${name}`, {
        job,
        schedule: JOB_SCHEDULES[name as JobName].schedule,
        description: `consent-gate ${props.stage}: ${JOB_SCHEDULES[name as JobName].what}`,
      });
    }

    // Every signed checkpoint is anchored outside the table, where its writers cannot reach: Object Lock in
    // compliance mode for the proof retention. The sealer writes it; the audit function reads it to verify.
    this.checkpoints = new CheckpointBucket(this, 'Checkpoints', { retentionDays: props.proofRetentionDays });
    const sealer = this.jobs.sealer.function;
    this.checkpoints.allowWriter(sealer.role as IRole);
    sealer.addEnvironment('CHECKPOINT_BUCKET', this.checkpoints.bucket.bucketName);
    // The verifying functions read the checkpoints and the published public keys, never the private key.
    for (const name of ['audit', 'log'] as const) {
      const reader = this.functions[name]?.function;
      if (!reader) continue;
      this.checkpoints.allowReader(reader);
      reader.addEnvironment('CHECKPOINT_BUCKET', this.checkpoints.bucket.bucketName);
    }

    const authorizer = new HttpLambdaAuthorizer('ApiKeyAuthorizer', this.authorizer.function, {
      authorizerName: 'api-key',
      responseTypes: [HttpLambdaResponseType.SIMPLE],
      identitySource: ['$request.header.Authorization'],
      resultsCacheTtl: AUTHORIZER_CACHE_TTL,
    });
    const integrations = new Map<FunctionName, HttpLambdaIntegration>();
    const integration = (fn: FunctionName) => {
      let found = integrations.get(fn);
      if (!found) {
        found = new HttpLambdaIntegration(`Integration-${fn}`, (this.functions[fn] as ConsentFunction).function);
        integrations.set(fn, found);
      }
      return found;
    };
    for (const route of ROUTES) {
      const created = this.api.addRoutes({
        path: route.path,
        // Public GETs answer HEAD too (pages probed by link checkers): the function serves it as its GET.
        methods: answersHead(route) ? [HttpMethod.GET, HttpMethod.HEAD] : [HttpMethod[route.method]],
        integration: integration(route.fn),
        // Protected routes go through the key authorizer (the function then checks the route's scope);
        // public ones (health, pages, the signed WhatsApp webhook) do not.
        ...(route.scope ? { authorizer } : {}),
      });
      if (!route.scope) {
        NagSuppressions.addResourceSuppressions(
          created,
          [{ id: 'AwsSolutions-APIG4', reason: publicRouteReason(route) }],
          true,
        );
      }
    }
    // Unknown paths and wrong methods reach a function, whose dispatch answers our problem+json 404/405.
    const defaultRoute = new HttpRoute(this, 'DefaultRoute', {
      httpApi: this.api,
      routeKey: HttpRouteKey.DEFAULT,
      integration: integration('docs'),
    });
    NagSuppressions.addResourceSuppressions(defaultRoute, [
      { id: 'AwsSolutions-APIG4', reason: 'Unmatched requests only get a problem+json 404/405; no data is reachable.' },
    ]);

    const domain =
      props.domainName && props.certificateArn
        ? new DomainName(this, 'Domain', {
            domainName: props.domainName,
            certificate: Certificate.fromCertificateArn(this, 'Certificate', props.certificateArn),
          })
        : undefined;
    const accessLogs = new LogGroup(this, 'AccessLogs', {
      retention: logRetention,
      encryptionKey: key,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    const stage = new HttpStage(this, 'Stage', {
      httpApi: this.api,
      stageName: '$default',
      autoDeploy: true,
      throttle: props.throttle ?? { rateLimit: 200, burstLimit: 400 },
      accessLogSettings: { destination: new LogGroupLogDestination(accessLogs), format: ACCESS_LOG_FORMAT },
      ...(domain ? { domainMapping: { domainName: domain } } : {}),
    });
    if (domain) {
      new CfnOutput(this, 'DomainTarget', {
        value: domain.regionalDomainName,
        description: `DNS: point ${props.domainName} here (CNAME or alias)`,
      });
    }

    this.alarmTopic = new Topic(this, 'AlarmTopic', {
      displayName: `consent-gate ${props.stage} alarms`,
      masterKey: key,
      enforceSSL: true,
    });
    // CloudWatch publishes to the encrypted topic: it needs to use the key, nothing more.
    key.grant(new ServicePrincipal('cloudwatch.amazonaws.com'), 'kms:Decrypt', 'kms:GenerateDataKey*');
    if (props.alarmEmail) this.alarmTopic.addSubscription(new EmailSubscription(props.alarmEmail));

    new Alarms(this, 'Alarms', {
      topic: this.alarmTopic,
      api: this.api,
      stage,
      table: this.table.table,
      functions: [...Object.values(this.functions), this.authorizer, ...Object.values(this.jobs)],
      jobs: Object.values(this.jobs),
      gate: this.functions.gate as ConsentFunction,
      gateLatencyP99: props.gateLatencyP99 ?? Duration.millis(500),
    });

    // Change events out: stream → dispatcher → SQS FIFO → delivery (docs/events.md, "Cloud wiring").
    this.pipeline = {
      dispatcher: build('dispatcher', PIPELINE_GRANTS.dispatcher, 'stream'),
      delivery: build('delivery', PIPELINE_GRANTS.delivery, 'queue'),
    };
    this.changeEvents = new ChangeEvents(this, 'ChangeEvents', {
      table: this.table,
      dispatcher: this.pipeline.dispatcher,
      delivery: this.pipeline.delivery,
      senders: this.functions.events ? [this.functions.events] : [],
      alarmTopic: this.alarmTopic,
    });

    // Daily backups of the table kept as long as the proof they hold (docs/deploy.md, "Backups and restore").
    this.backup = new TableBackup(this, 'Backup', {
      planName: `consent-gate-${props.stage}-table`,
      table: this.table,
      key,
      retentionDays: this.checkpoints.retentionDays,
      alarmTopic: this.alarmTopic,
    });

    new CfnOutput(this, 'ApiUrl', { value: publicBaseUrl, description: 'Base URL of the API (API_URL)' });
    new CfnOutput(this, 'TableName', { value: this.table.table.tableName, description: 'TABLE_NAME for the CLI' });
    new CfnOutput(this, 'WhatsAppSecretArn', { value: secrets.secrets.whatsapp.secret.secretArn });
    new CfnOutput(this, 'LinkKeysSecretArn', { value: secrets.secrets.linkKeys.secret.secretArn });
    new CfnOutput(this, 'AlarmTopicArn', { value: this.alarmTopic.topicArn });
    new CfnOutput(this, 'CheckpointBucketName', {
      value: this.checkpoints.bucket.bucketName,
      description: 'Where every signed checkpoint is anchored (S3 Object Lock, compliance mode)',
    });
  }
}

/** Why a route may be public: the protection it has instead of an API key (cdk-nag APIG4). */
export function publicRouteReason(route: Route): string {
  if (route.path.startsWith('/optout/') || route.path.startsWith('/preferences/'))
    return 'Self-service page for the person: authorised by the HMAC-signed, expiring link token in the path.';
  if (route.path.startsWith('/v1/webhooks/'))
    return "Meta's webhook: POST is authenticated by the X-Hub-Signature-256 HMAC, GET by the verify token.";
  if (route.path.startsWith('/v1/connectors/'))
    return "A provider's webhook: authenticated by the provider's own signature (Twilio, SendGrid, SNS), checked per connector.";
  if (route.path.startsWith('/dashboard'))
    return 'Static dashboard page and assets; every data call it makes carries an audit:read API key.';
  return `Public by design, no tenant data: ${route.summary}.`;
}
