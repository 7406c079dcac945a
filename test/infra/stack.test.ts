import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Annotations, Match } from 'aws-cdk-lib/assertions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_RETENTION } from '#domain/policy.ts';
import { grantConsent } from '#domain/subject-state.ts';
import { answersHead, FUNCTIONS, ROUTES, routeKey } from '#http/routes.ts';
import { NODE_RUNTIME } from '#infra/constructs/consent-function.ts';
import { TABLE_ACCESS } from '#infra/constructs/consent-table.ts';
import { AUTHORIZER_GRANT, FUNCTION_GRANTS, JOB_GRANTS, PIPELINE_GRANTS } from '#infra/stack.ts';
import { getDb } from '#store/db.ts';
import { getCheckpoint, getHead } from '#store/log.ts';
import { appendChange } from '#store/subjects.ts';
import { TABLE } from '#store/table.ts';
import { phone, tenantWithKey, testActor } from '../helpers/factories.ts';
import { logicalId, type Resources, roleGrants, synthStack } from './stack-fixture.ts';

let synth: ReturnType<typeof synthStack>;
let resources: Resources;

/** The functions a route needs, plus docs (the `$default` route). */
const deployed = FUNCTIONS.filter((fn) => fn === 'docs' || ROUTES.some((r) => r.fn === fn));
/** Functions run by a schedule, not a route. */
const jobs = Object.keys(JOB_GRANTS);
/** Functions run by the table's stream and the delivery queue (change events). */
const pipeline = Object.keys(PIPELINE_GRANTS);
const STREAM_ACTIONS = [
  'dynamodb:ListStreams',
  'dynamodb:DescribeStream',
  'dynamodb:GetRecords',
  'dynamodb:GetShardIterator',
];
const fnId = (name: string) => logicalId(resources, 'AWS::Lambda::Function', `Fn${name}Function`);
const roleId = (name: string) => logicalId(resources, 'AWS::IAM::Role', `Fn${name}Role`);
const ofType = (type: string) => Object.entries(resources).filter(([, r]) => r.Type === type);
const refTo = (value: unknown): string | undefined =>
  (value as { Ref?: string })?.Ref ?? (value as { 'Fn::GetAtt'?: string[] })?.['Fn::GetAtt']?.[0];

beforeAll(() => {
  // One real synthesis for the file: every function bundled by esbuild, the AwsSolutions pack applied.
  synth = synthStack({ alarmEmail: 'dpo@example.org' });
  resources = synth.resources;
}, 240_000);
afterAll(() => synth?.cleanup());

describe('routes and functions come from the route table', () => {
  it('declares every route of the route table (public GETs with their HEAD), and nothing else but $default', () => {
    const keys = ofType('AWS::ApiGatewayV2::Route').map(([, r]) => r.Properties.RouteKey);
    const heads = ROUTES.filter(answersHead).map((r) => `HEAD ${r.path}`);
    expect(keys.sort()).toEqual([...ROUTES.map(routeKey), ...heads, '$default'].sort());
  });

  it('puts the API-key authorizer on every scoped route and none on public ones', () => {
    const authorizerId = logicalId(resources, 'AWS::ApiGatewayV2::Authorizer', 'Api');
    for (const [, route] of ofType('AWS::ApiGatewayV2::Route')) {
      const declared = ROUTES.find((r) => routeKey(r) === route.Properties.RouteKey);
      if (declared?.scope) {
        expect(route.Properties.AuthorizationType, route.Properties.RouteKey).toBe('CUSTOM');
        expect(route.Properties.AuthorizerId).toEqual({ Ref: authorizerId });
      } else {
        expect(route.Properties.AuthorizationType ?? 'NONE', route.Properties.RouteKey).toBe('NONE');
      }
    }
  });

  it('sends each route to its own function, and $default to docs (problem+json 404/405)', () => {
    const integrationTarget = (integrationRef: string) => {
      const uri = resources[integrationRef].Properties.IntegrationUri;
      return refTo(uri);
    };
    for (const [, route] of ofType('AWS::ApiGatewayV2::Route')) {
      const target = route.Properties.Target['Fn::Join'][1][1].Ref as string;
      // A HEAD route goes to its GET's function.
      const key = String(route.Properties.RouteKey).replace(/^HEAD /, 'GET ');
      const declared = ROUTES.find((r) => routeKey(r) === key);
      expect(integrationTarget(target), route.Properties.RouteKey).toBe(fnId(declared?.fn ?? 'docs'));
    }
  });

  it('builds one function per capability plus the authorizer and the jobs, all on the newest Node.js runtime on arm64 with tracing and JSON logs', () => {
    const functions = ofType('AWS::Lambda::Function');
    expect(functions).toHaveLength(deployed.length + 1 + jobs.length + pipeline.length);
    for (const name of [...deployed, 'authorizer', ...jobs, ...pipeline]) {
      const fn = resources[fnId(name)].Properties;
      expect(fn.Runtime).toBe(NODE_RUNTIME.name);
      expect(fn.Architectures).toEqual(['arm64']);
      expect(fn.Handler).toBe('index.handler');
      expect(fn.TracingConfig).toEqual({ Mode: 'Active' });
      expect(fn.LoggingConfig.LogFormat).toBe('JSON');
      const logGroup = resources[refTo(fn.LoggingConfig.LogGroup) as string];
      expect(logGroup.Type).toBe('AWS::Logs::LogGroup');
      expect(logGroup.Properties.RetentionInDays).toBeGreaterThan(0);
      expect(fn.Environment.Variables).toMatchObject({
        POWERTOOLS_SERVICE_NAME: 'consent-gate',
        POWERTOOLS_METRICS_NAMESPACE: 'ConsentGate',
        NODE_OPTIONS: '--enable-source-maps',
      });
    }
  });

  it('bundles each function as minified ESM with a source map, the gate on its own', () => {
    const sizes: Record<string, number> = {};
    for (const name of [...deployed, 'authorizer', ...jobs, ...pipeline]) {
      const asset = resources[fnId(name)].Metadata['aws:asset:path'] as string;
      const dir = join(synth.outdir, asset);
      const code = readFileSync(join(dir, 'index.mjs'), 'utf8');
      expect(existsSync(join(dir, 'index.mjs.map')), name).toBe(true);
      expect(code, name).toMatch(/sourceMappingURL=index\.mjs\.map/);
      // ESM with the createRequire shim; minified = long lines (only template literals keep their newlines).
      expect(code.startsWith('import{createRequire as __cgRequire}'), name).toBe(true);
      expect(code.length / code.split('\n').length, name).toBeGreaterThan(1000);
      // The AWS SDK comes from the runtime, not the bundle.
      expect(code).not.toMatch(/DynamoDBClient\s*=\s*class/);
      sizes[name] = statSync(join(dir, 'index.mjs')).size;
    }
    // The gate bundle has only gate code: no pages, no dashboard, no ledger export.
    const gate = readFileSync(
      join(synth.outdir, resources[fnId('gate')].Metadata['aws:asset:path'], 'index.mjs'),
      'utf8',
    );
    // (The route table with its summaries is in every bundle: dispatch answers 404/405 from it.)
    expect(gate).not.toMatch(/<!doctype html>|application\/x-ndjson|text\/csv/i);
    console.info('bundle sizes (bytes):', JSON.stringify(sizes));
  });

  it('ships the dashboard files beside the audit bundle, where DASHBOARD_ASSETS_DIR points', async () => {
    const { DASHBOARD_ASSETS } = await import('#shared/pages/dashboard/page.ts');
    const audit = resources[fnId('audit')];
    const dir = join(synth.outdir, audit.Metadata['aws:asset:path']);
    const assetsDir = audit.Properties.Environment.Variables.DASHBOARD_ASSETS_DIR as string;
    expect(assetsDir.startsWith('/var/task/')).toBe(true);
    const shipped = readdirSync(join(dir, assetsDir.slice('/var/task/'.length)));
    expect(shipped.sort()).toEqual([...DASHBOARD_ASSETS].sort());
  });
});

describe('API key authorizer', () => {
  it('uses simple responses, payload 2.0, the Authorization header, and caches results at most 60 s', () => {
    const authorizer = ofType('AWS::ApiGatewayV2::Authorizer')[0][1].Properties;
    expect(authorizer).toMatchObject({
      AuthorizerType: 'REQUEST',
      EnableSimpleResponses: true,
      AuthorizerPayloadFormatVersion: '2.0',
      IdentitySource: ['$request.header.Authorization'],
    });
    expect(authorizer.AuthorizerResultTtlInSeconds).toBeGreaterThan(0);
    expect(authorizer.AuthorizerResultTtlInSeconds).toBeLessThanOrEqual(60);
    expect(refTo(authorizer.AuthorizerUri['Fn::Join'][1][5])).toBe(fnId('authorizer'));
  });
});

describe('the table', () => {
  it('is on-demand, recoverable, protected, retained, KMS-encrypted, with TTL and the GSIs of the data model', () => {
    const [, table] = ofType('AWS::DynamoDB::Table')[0];
    expect(table.DeletionPolicy).toBe('Retain');
    expect(table.UpdateReplacePolicy).toBe('Retain');
    const p = table.Properties;
    expect(p.BillingMode).toBe('PAY_PER_REQUEST');
    expect(p.PointInTimeRecoverySpecification).toEqual({ PointInTimeRecoveryEnabled: true });
    expect(p.DeletionProtectionEnabled).toBe(true);
    expect(p.SSESpecification).toMatchObject({ SSEEnabled: true, SSEType: 'KMS' });
    const key = resources[refTo(p.SSESpecification.KMSMasterKeyId) as string];
    expect(key.Properties.EnableKeyRotation).toBe(true);
    expect(key.DeletionPolicy).toBe('Retain');
    expect(p.TimeToLiveSpecification).toEqual({ AttributeName: TABLE.ttlAttribute, Enabled: true });
    expect(p.KeySchema).toEqual([
      { AttributeName: TABLE.partitionKey, KeyType: 'HASH' },
      { AttributeName: TABLE.sortKey, KeyType: 'RANGE' },
    ]);
    expect(
      p.GlobalSecondaryIndexes.map((i: any) => ({
        name: i.IndexName,
        keys: i.KeySchema.map((k: any) => k.AttributeName),
      })),
    ).toEqual(TABLE.indexes.map((i) => ({ name: i.name, keys: [i.partitionKey, i.sortKey] })));
  });
});

describe('least privilege', () => {
  const tableArnOf = (grant: { resource: string }) => grant.resource;

  it('grants each function exactly the table actions and indexes of its access level', () => {
    const tableId = logicalId(resources, 'AWS::DynamoDB::Table', 'Data');
    const grants: Record<string, { table: keyof typeof TABLE_ACCESS }> = {
      ...Object.fromEntries(deployed.map((fn) => [fn, FUNCTION_GRANTS[fn]])),
      authorizer: AUTHORIZER_GRANT,
      ...JOB_GRANTS,
      ...PIPELINE_GRANTS,
    };
    for (const [name, grant] of Object.entries(grants)) {
      // (The dispatcher's stream reads come with its event source: test/infra/change-events.test.ts.)
      const dynamo = roleGrants(resources, roleId(name)).filter(
        (g) => g.action.startsWith('dynamodb:') && !STREAM_ACTIONS.includes(g.action),
      );
      const onTable = dynamo.filter((g) => tableArnOf(g) === JSON.stringify({ 'Fn::GetAtt': [tableId, 'Arn'] }));
      const onIndexes = dynamo.filter((g) => !onTable.includes(g));
      expect(onTable.map((g) => g.action).sort(), name).toEqual([...TABLE_ACCESS[grant.table].actions].sort());
      const indexes = onIndexes.map((g) => {
        expect(g.action, name).toBe('dynamodb:Query');
        return /\/index\/(\w+)/.exec(g.resource)?.[1];
      });
      expect(indexes.sort(), name).toEqual([...TABLE_ACCESS[grant.table].indexes].sort());
    }
  });

  it('gives no function table management or a wildcard action, and Scan to the retention job only', () => {
    for (const [id] of ofType('AWS::IAM::Role')) {
      for (const { action } of roleGrants(resources, id)) {
        expect(action).not.toMatch(/^dynamodb:(\*|Create|Delete(Table|Backup)|Update(Table|TimeToLive)|DescribeTable)/);
        if (id !== roleId('retention')) expect(action).not.toBe('dynamodb:Scan');
        expect(action).not.toMatch(/^(\*|logs:\*|secretsmanager:\*|kms:\*)$/);
      }
    }
  });

  it('lets only the functions that need a secret read it, and puts no secret value in any environment', () => {
    const secretIds = Object.fromEntries(
      ofType('AWS::SecretsManager::Secret').map(([id]) => [id.replace(/^Secrets/, '').replace(/[0-9A-F]{8}$/, ''), id]),
    );
    expect(Object.keys(secretIds).sort()).toEqual(['Identifier', 'LinkKeys', 'LogKeys', 'WhatsApp']);
    const readers = (secretId: string) =>
      [...deployed, 'authorizer', ...jobs].filter((name) =>
        roleGrants(resources, roleId(name)).some(
          (g) => g.action === 'secretsmanager:GetSecretValue' && g.resource === JSON.stringify({ Ref: secretId }),
        ),
      );
    const expected = (secret: string) =>
      deployed.filter((fn) => (FUNCTION_GRANTS[fn].secrets as readonly string[]).includes(secret));
    expect(readers(secretIds.Identifier).sort()).toEqual(expected('identifier').sort());
    expect(readers(secretIds.LinkKeys).sort()).toEqual(expected('linkKeys').sort());
    expect(readers(secretIds.WhatsApp)).toEqual(expected('whatsapp'));
    // The checkpoint-signing key: the sealer, and what publishes its public half.
    expect(readers(secretIds.LogKeys).sort()).toEqual([...expected('logKeys'), 'sealer'].sort());
    expect(readers(secretIds.Identifier)).not.toContain('authorizer');
    expect(readers(secretIds.Identifier)).not.toContain('sealer');
    for (const name of [...deployed, 'authorizer']) {
      const env = resources[fnId(name)].Properties.Environment.Variables as Record<string, unknown>;
      for (const [key, value] of Object.entries(env)) {
        if (key.endsWith('SECRET_ID') || key === 'SECRETS_ID') expect(refTo(value), key).toMatch(/Secret/);
        else expect(JSON.stringify(value), key).not.toMatch(/Secret[0-9A-F]{8}/);
      }
    }
  });

  it('writes logs only to the function’s own log group (no AWSLambdaBasicExecutionRole)', () => {
    for (const name of [...deployed, 'authorizer', ...jobs]) {
      const role = resources[roleId(name)].Properties;
      expect(role.ManagedPolicyArns ?? []).toEqual([]);
      const logGrants = roleGrants(resources, roleId(name)).filter((g) => g.action.startsWith('logs:'));
      const logGroupId = refTo(resources[fnId(name)].Properties.LoggingConfig.LogGroup);
      expect(logGrants.map((g) => g.action).sort()).toEqual(['logs:CreateLogStream', 'logs:PutLogEvents']);
      for (const g of logGrants) expect(g.resource).toBe(JSON.stringify({ 'Fn::GetAtt': [logGroupId, 'Arn'] }));
    }
  });

  it('generates the identifier and link keys in Secrets Manager, encrypted with the stack key, retained', () => {
    for (const [id, secret] of ofType('AWS::SecretsManager::Secret')) {
      expect(secret.Properties.KmsKeyId, id).toBeDefined();
      expect(secret.Properties.SecretString, id).toBeUndefined();
      expect(secret.Properties.GenerateSecretString.ExcludePunctuation, id).toBe(true);
    }
    const generated = (prefix: string) => resources[logicalId(resources, 'AWS::SecretsManager::Secret', prefix)];
    expect(generated('SecretsIdentifier').Properties.GenerateSecretString).toMatchObject({
      GenerateStringKey: 'identifierKey',
      PasswordLength: 64,
    });
    expect(generated('SecretsIdentifier').DeletionPolicy).toBe('Retain');
    expect(generated('SecretsLinkKeys').Properties.GenerateSecretString.GenerateStringKey).toBe('key');
    expect(generated('SecretsLinkKeys').DeletionPolicy).toBe('Retain');
  });
});

describe('operations', () => {
  const alarms = () => ofType('AWS::CloudWatch::Alarm').map(([, a]) => a.Properties);
  const topicId = () => logicalId(resources, 'AWS::SNS::Topic', 'AlarmTopic');

  it('alarms on 5xx, throttles of every function, DynamoDB errors and throttles, and gate p99 — all to the SNS topic', () => {
    const all = alarms();
    const byMetric = (name: string) => all.filter((a) => a.MetricName === name);
    expect(byMetric('5xx')).toHaveLength(1);
    expect(byMetric('Throttles')).toHaveLength(deployed.length + 1 + jobs.length);
    // Each job's failures, and the change-event delivery function's.
    expect(byMetric('Errors').map((a) => a.Dimensions)).toEqual(
      [...jobs, 'delivery'].map((fn) => [{ Name: 'FunctionName', Value: { Ref: fnId(fn) } }]),
    );
    const gateLatency = byMetric('Duration');
    expect(gateLatency).toHaveLength(1);
    expect(gateLatency[0].ExtendedStatistic).toBe('p99');
    expect(gateLatency[0].Dimensions).toEqual([{ Name: 'FunctionName', Value: { Ref: fnId('gate') } }]);
    const math = all.filter((a) => a.Metrics);
    const mathMetrics = math.flatMap((a) =>
      a.Metrics.filter((m: any) => m.MetricStat).map((m: any) => m.MetricStat.Metric.MetricName),
    );
    expect(new Set(mathMetrics)).toEqual(new Set(['SystemErrors', 'ThrottledRequests']));
    for (const alarm of all) {
      expect(alarm.AlarmActions).toEqual([{ Ref: topicId() }]);
      expect(alarm.TreatMissingData).toBe('notBreaching');
    }
  });

  it('encrypts the alarm topic, enforces TLS on it, and subscribes the alarm e-mail from context', () => {
    const topic = resources[topicId()].Properties;
    expect(topic.KmsMasterKeyId).toBeDefined();
    synth.template.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: 'dpo@example.org' });
    synth.template.hasResourceProperties('AWS::SNS::TopicPolicy', {
      PolicyDocument: Match.objectLike({
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      }),
    });
  });

  it('throttles the API stage and writes access logs without IP addresses', () => {
    const [, stage] = ofType('AWS::ApiGatewayV2::Stage')[0];
    expect(stage.Properties.StageName).toBe('$default');
    expect(stage.Properties.DefaultRouteSettings.ThrottlingRateLimit).toBeGreaterThan(0);
    expect(stage.Properties.DefaultRouteSettings.ThrottlingBurstLimit).toBeGreaterThan(0);
    const format = stage.Properties.AccessLogSettings.Format as string;
    expect(JSON.parse(format)).toHaveProperty('requestId', '$context.requestId');
    expect(format).not.toMatch(/sourceIp|userAgent/);
    expect(resources[refTo(stage.Properties.AccessLogSettings.DestinationArn) as string].Type).toBe(
      'AWS::Logs::LogGroup',
    );
  });

  it('gives every function the public base URL of the API', () => {
    const apiId = logicalId(resources, 'AWS::ApiGatewayV2::Api', 'Api');
    for (const name of deployed) {
      expect(resources[fnId(name)].Properties.Environment.Variables.PUBLIC_BASE_URL).toEqual({
        'Fn::GetAtt': [apiId, 'ApiEndpoint'],
      });
    }
  });
});

/** The schedule that invokes a job function. */
const scheduleOf = (job: string) => {
  const found = ofType('AWS::Scheduler::Schedule').filter(([, s]) => refTo(s.Properties.Target.Arn) === fnId(job));
  expect(found).toHaveLength(1);
  return found[0][1].Properties;
};

describe('the daily retention job', () => {
  const schedule = () => scheduleOf('retention');

  it('is one of the jobs, each with a schedule of its own', () => {
    expect(ofType('AWS::Scheduler::Schedule')).toHaveLength(jobs.length);
  });

  it('is a function of its own, reachable by no route, run every day by an EventBridge Scheduler schedule', () => {
    const s = schedule();
    expect(s.ScheduleExpression).toBe('cron(15 3 * * ? *)');
    expect(s.State).toBe('ENABLED');
    expect(refTo(s.Target.Arn)).toBe(fnId('retention'));
    expect(JSON.parse(s.Target.Input)).toEqual({});
    expect(s.Target.RetryPolicy.MaximumRetryAttempts).toBe(2);
    const integrations = ofType('AWS::ApiGatewayV2::Integration').map(([, i]) => refTo(i.Properties.IntegrationUri));
    expect(integrations).not.toContain(fnId('retention'));
    expect(resources[fnId('retention')].Properties.Timeout).toBe(900);
  });

  it('runs as a role that EventBridge Scheduler assumes, allowed only to invoke the retention function', () => {
    const roleRef = refTo(schedule().Target.RoleArn) as string;
    const role = resources[roleRef].Properties;
    const principals = role.AssumeRolePolicyDocument.Statement.map(
      (st: { Principal: { Service: string } }) => st.Principal.Service,
    );
    expect(principals).toEqual(['scheduler.amazonaws.com']);
    expect(role.AssumeRolePolicyDocument.Statement[0].Condition).toEqual({
      StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } },
    });
    const grants = roleGrants(resources, roleRef);
    expect(new Set(grants.map((g) => g.action))).toEqual(new Set(['lambda:InvokeFunction']));
    for (const { resource } of grants) expect(resource).toContain(fnId('retention'));
  });
});

/** A policy statement as the template has it. */
interface PolicyStatementJson {
  Sid?: string;
  Effect: string;
  Action: string | string[];
  Resource?: unknown;
  Principal?: unknown;
  Condition?: unknown;
}

describe('the verifiable log: the sealer and the checkpoint bucket', () => {
  const bucketId = () => logicalId(resources, 'AWS::S3::Bucket', 'CheckpointsBucket');
  const bucketPolicy = () =>
    ofType('AWS::S3::BucketPolicy').find(([, p]) => refTo(p.Properties.Bucket) === bucketId())?.[1].Properties
      .PolicyDocument.Statement as PolicyStatementJson[];

  it('anchors checkpoints in a bucket with Object Lock in compliance mode for the proof retention (1825 days)', () => {
    const bucket = resources[bucketId()];
    expect(bucket.DeletionPolicy).toBe('Retain');
    const p = bucket.Properties;
    expect(p.ObjectLockEnabled).toBe(true);
    expect(p.ObjectLockConfiguration).toEqual({
      ObjectLockEnabled: 'Enabled',
      Rule: { DefaultRetention: { Mode: 'COMPLIANCE', Days: DEFAULT_RETENTION.proofDays } },
    });
    expect(p.VersioningConfiguration).toEqual({ Status: 'Enabled' });
    expect(p.PublicAccessBlockConfiguration).toEqual({
      BlockPublicAcls: true,
      BlockPublicPolicy: true,
      IgnorePublicAcls: true,
      RestrictPublicBuckets: true,
    });
    expect(p.BucketEncryption.ServerSideEncryptionConfiguration[0].ServerSideEncryptionByDefault.SSEAlgorithm).toBe(
      'AES256',
    );
  });

  it('refuses plain HTTP, deletes, and every writer but the sealer role, in its bucket policy', () => {
    const statements = bucketPolicy();
    const sealerRole = { 'Fn::GetAtt': [roleId('sealer'), 'Arn'] };
    expect(statements).toContainEqual(
      expect.objectContaining({
        Effect: 'Deny',
        Action: 's3:*',
        Condition: { Bool: { 'aws:SecureTransport': 'false' } },
      }),
    );
    const onlySealer = statements.find((st) => st.Sid === 'OnlyTheSealerWritesCheckpoints');
    expect(onlySealer).toMatchObject({
      Effect: 'Deny',
      Principal: { AWS: '*' },
      Condition: { ArnNotEquals: { 'aws:PrincipalArn': sealerRole } },
    });
    expect(onlySealer?.Action).toEqual(expect.arrayContaining(['s3:PutObject', 's3:PutObjectRetention']));
    const noDelete = statements.find((st) => st.Sid === 'NoPrincipalDeletesCheckpoints');
    expect(noDelete).toMatchObject({ Effect: 'Deny', Principal: { AWS: '*' } });
    expect(noDelete?.Condition).toBeUndefined();
    expect(noDelete?.Action).toEqual(expect.arrayContaining(['s3:DeleteObject', 's3:DeleteObjectVersion']));
  });

  it('lets only the sealer role put objects (no other role is granted an S3 write)', () => {
    for (const [id] of ofType('AWS::IAM::Role')) {
      const writes = roleGrants(resources, id).filter((g) => /^s3:(Put|Delete|\*)/.test(g.action));
      if (id === roleId('sealer')) {
        expect(writes.map((g) => g.action)).toEqual(['s3:PutObject', 's3:PutObject']);
        for (const write of writes) expect(write.resource).toContain(bucketId());
        expect(writes.map((g) => g.resource.match(/\/(checkpoints|keys)\/\*/)?.[1]).sort()).toEqual([
          'checkpoints',
          'keys',
        ]);
      } else expect(writes, id).toEqual([]);
    }
    expect(resources[fnId('sealer')].Properties.Environment.Variables.CHECKPOINT_BUCKET).toEqual({ Ref: bucketId() });
  });

  it('runs the sealer every minute from its own schedule, on no route, within a minute', () => {
    const s = scheduleOf('sealer');
    expect(s.ScheduleExpression).toBe('rate(1 minute)');
    expect(s.State).toBe('ENABLED');
    expect(JSON.parse(s.Target.Input)).toEqual({});
    const integrations = ofType('AWS::ApiGatewayV2::Integration').map(([, i]) => refTo(i.Properties.IntegrationUri));
    expect(integrations).not.toContain(fnId('sealer'));
    expect(resources[fnId('sealer')].Properties.Timeout).toBeLessThanOrEqual(60);
  });

  it("lets the sealer write only the tenants' log partitions, and read the audit and head indexes", () => {
    const tableId = logicalId(resources, 'AWS::DynamoDB::Table', 'Data');
    const statements = Object.values(resources)
      .filter(
        (r) =>
          r.Type === 'AWS::IAM::Policy' && r.Properties.Roles.some((x: { Ref?: string }) => x.Ref === roleId('sealer')),
      )
      .flatMap((r) => r.Properties.PolicyDocument.Statement as PolicyStatementJson[])
      .filter((st) => [st.Action].flat().some((a) => a.startsWith('dynamodb:')));
    const writes = ['dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem', 'dynamodb:BatchWriteItem'];
    for (const st of statements) {
      const actions = [st.Action].flat() as string[];
      if (actions.some((a) => writes.includes(a))) {
        expect(st.Resource).toEqual({ 'Fn::GetAtt': [tableId, 'Arn'] });
        expect(st.Condition).toEqual({ 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['T#*#LOG'] } });
      }
    }
    expect(statements.flatMap((st) => [st.Action].flat())).not.toContain('dynamodb:Scan');
  });

  it('lets the audit and log functions read the anchored checkpoints and public keys, and nothing more', () => {
    for (const name of ['audit', 'log']) {
      const grants = roleGrants(resources, roleId(name)).filter((g) => g.action.startsWith('s3:'));
      expect(grants.map((g) => g.action).sort(), name).toEqual(['s3:GetObject', 's3:GetObject', 's3:ListBucket']);
      const variables = resources[fnId(name)].Properties.Environment.Variables;
      expect(variables.CHECKPOINT_BUCKET, name).toEqual({ Ref: bucketId() });
      // They verify with the published public keys: no private log key reaches them.
      expect(variables.LOG_KEYS_SECRET_ID, name).toBeUndefined();
    }
    expect(resources[fnId('sealer')].Properties.Environment.Variables.LOG_KEYS_SECRET_ID).toBeDefined();
  });

  it('deletes each checkpoint a day after its lock ends (nothing is kept forever), never the public keys', () => {
    const rules = resources[bucketId()].Properties.LifecycleConfiguration.Rules;
    expect(rules).toEqual([
      expect.objectContaining({
        Prefix: 'checkpoints/',
        Status: 'Enabled',
        ExpirationInDays: DEFAULT_RETENTION.proofDays + 1,
        NoncurrentVersionExpiration: { NoncurrentDays: 1 },
      }),
    ]);
  });
});

describe('cdk-nag AwsSolutions, HIPAA Security, NIST 800-53 rev. 5', () => {
  it('reports no unsuppressed error or warning', () => {
    const annotations = Annotations.fromStack(synth.stack);
    const finding = Match.stringLikeRegexp('(AwsSolutions|HIPAA\\.Security|NIST\\.800\\.53\\.R5)-.*');
    const errors = annotations.findError('*', finding);
    const warnings = annotations.findWarning('*', finding);
    expect(errors.map((e) => `${e.id}: ${String(e.entry.data).slice(0, 60)}`)).toEqual([]);
    expect(warnings.map((e) => `${e.id}: ${String(e.entry.data).slice(0, 60)}`)).toEqual([]);
  });

  it('justifies every suppression in one line', () => {
    const suppressions = Object.values(resources).flatMap(
      (r) => (r.Metadata?.cdk_nag?.rules_to_suppress ?? []) as { id: string; reason: string }[],
    );
    expect(suppressions.length).toBeGreaterThan(0);
    for (const { id, reason } of suppressions) {
      expect(reason, id).not.toMatch(/\n/);
      expect(reason.length, id).toBeGreaterThan(30);
      expect(reason.length, id).toBeLessThan(200);
    }
  });
});

describe('the bundles run', () => {
  type Handler = (event: unknown, context?: unknown) => Promise<any>;
  const bundle = (name: string) => join(synth.outdir, resources[fnId(name)].Metadata['aws:asset:path'], 'index.mjs');
  const externals = (name: string) =>
    // `from "x"`, `import "x"`, `import("x")` — not a call such as `Buffer.from("…")`.
    [...readFileSync(bundle(name), 'utf8').matchAll(/(?:\bfrom\s*|\bimport\s*\(?\s*)"([^".][^"]*)"/g)]
      .map((m) => m[1])
      // Only what reads as a module specifier (a minified string literal can end in `from`).
      .filter((pkg) => /^(@[a-z0-9][\w.-]*\/)?[a-z0-9][\w.-]*(\/[\w./-]+)?$/.test(pkg))
      .filter((pkg) => !pkg.startsWith('node:') && !builtinModules.includes(pkg.split('/')[0]));
  const load = async (name: string): Promise<Handler> => (await import(pathToFileURL(bundle(name)).href)).handler;
  const event = (method: string, path: string, routeKey: string, extra: object = {}) => ({
    version: '2.0',
    routeKey,
    rawPath: path,
    rawQueryString: '',
    headers: { 'content-type': 'application/json' },
    isBase64Encoded: false,
    requestContext: { http: { method, path, sourceIp: '0.0.0.0' }, requestId: 'r', routeKey, stage: '$default' },
    ...extra,
  });

  it('leaves only the AWS SDK v3 (which the runtime provides) outside the bundles', () => {
    for (const name of [...deployed, 'authorizer', ...jobs, ...pipeline]) {
      for (const pkg of externals(name))
        expect(pkg, name).toMatch(
          /^@aws-sdk\/(client-dynamodb|lib-dynamodb|client-secrets-manager|client-s3|client-sqs|client-dynamodb-streams|util-dynamodb)$/,
        );
    }
  });

  it('every bundle loads as ESM and exports its handler', async () => {
    for (const name of [...deployed, 'authorizer', ...jobs, ...pipeline])
      expect(typeof (await load(name)), name).toBe('function');
  });

  it('the bundled docs function answers $default with a problem+json 404', async () => {
    const res = await (await load('docs'))(event('GET', '/nowhere', '$default'));
    expect(res.statusCode).toBe(404);
    expect(res.headers['content-type']).toMatch(/application\/problem\+json/);
  });

  it('the bundled authorizer resolves a key against DynamoDB Local, and passes an empty tenant for a bad one', async () => {
    const { tenant, key } = await tenantWithKey(['gate:check']);
    const authorize = await load('authorizer');
    expect(await authorize({ headers: { authorization: `Bearer ${key}` } })).toEqual({
      isAuthorized: true,
      context: expect.objectContaining({ tenant, scopes: 'gate:check' }),
    });
    expect(await authorize({ headers: { authorization: 'Bearer cg_not-a-key-at-all' } })).toEqual({
      isAuthorized: true,
      context: expect.objectContaining({ tenant: '' }),
    });
  });

  it('the bundled gate decides against DynamoDB Local, and answers 401 for an empty tenant', async () => {
    const { tenant } = await tenantWithKey(['gate:check']);
    const gate = await load('gate');
    const check = (lambda: object) =>
      gate(
        event('POST', '/v1/gate/check', 'POST /v1/gate/check', {
          body: JSON.stringify({ subject: { phone: phone() }, channel: 'whatsapp' }),
          requestContext: {
            http: { method: 'POST', path: '/v1/gate/check', sourceIp: '0.0.0.0' },
            requestId: 'r',
            routeKey: 'POST /v1/gate/check',
            stage: '$default',
            authorizer: { lambda },
          },
        }),
      );
    const decided = await check({ tenant, scopes: 'gate:check', keyId: 'k' });
    expect(decided.statusCode).toBe(200);
    expect(JSON.parse(decided.body)).toMatchObject({ decision: 'block', reasons: [{ code: 'no_consent' }] });
    expect((await check({ tenant: '', scopes: '', keyId: '' })).statusCode).toBe(401);
  });

  it('the bundled retention job runs against DynamoDB Local and refuses an input it does not know', async () => {
    const { tenant } = await tenantWithKey(['gate:check']);
    const retention = await load('retention');
    expect(await retention({ tenant, dryRun: true })).toEqual({
      tenants: 1,
      inactivePurged: 0,
      proofPurged: 0,
      redactedEvents: 0,
      expiredConsents: 0,
      failed: 0,
    });
    await expect(retention({ tenant, days: 3 })).rejects.toThrow();
  });

  it('the bundled sealer seals a tenant against DynamoDB Local and anchors its checkpoint in DATA_DIR', async () => {
    const { tenant } = await tenantWithKey(['gate:check']);
    const grant = { channel: 'sms', purpose: 'marketing', source: 'web_form', noticeVersion: 'v1' } as const;
    for (let i = 0; i < 3; i++) {
      const at = new Date().toISOString();
      await appendChange(
        getDb(),
        tenant,
        `subject-${i}`,
        (c, n) => grantConsent(c, { ...grant, grantedAt: at }, n, at),
        {
          actor: testActor,
        },
      );
    }
    const sealer = await load('sealer');
    process.env.SEAL_LAG_MS = '0';
    try {
      const totals = await sealer({ tenants: [tenant] }, { getRemainingTimeInMillis: () => 60_000 });
      expect(totals).toMatchObject({ tenants: 1, sealed: 3, anchored: 1, failed: 0 });
    } finally {
      delete process.env.SEAL_LAG_MS;
    }
    expect(await getHead(getDb(), tenant)).toMatchObject({ size: 3, anchored: 3 });
    const note = readFileSync(join(process.env.DATA_DIR as string, 'checkpoints', tenant, '3.note'), 'utf8');
    expect(note).toBe((await getCheckpoint(getDb(), tenant))?.note);
    await expect(sealer({ tenants: ['Not A Tenant'] })).rejects.toThrow();
  });
});
