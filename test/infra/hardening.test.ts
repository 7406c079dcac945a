import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Runtime } from 'aws-cdk-lib/aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_RETENTION } from '#domain/policy.ts';
import { ESBUILD_TARGET, NODE_RUNTIME } from '#infra/constructs/consent-function.ts';
import { BACKUP_SCHEDULE } from '#infra/constructs/table-backup.ts';
import { JOB_GRANTS } from '#infra/stack.ts';
import { logicalId, type Resources, synthStack } from './stack-fixture.ts';

let synth: ReturnType<typeof synthStack>;
let resources: Resources;
const ofType = (type: string) => Object.entries(resources).filter(([, r]) => r.Type === type);
const only = (type: string) => {
  const found = ofType(type);
  expect(
    found.map(([id]) => id),
    type,
  ).toHaveLength(1);
  return found[0];
};
/** An IAM or key policy statement as the template has it. */
interface Statement {
  Effect: string;
  Principal?: unknown;
  Action: string | string[];
  Resource: unknown;
  Condition?: unknown;
}
const keyArn = () => ({ 'Fn::GetAtt': [logicalId(resources, 'AWS::KMS::Key', 'DataKey'), 'Arn'] });

/** The rows of a cdk-nag CSV report: rule id, resource path, compliance, exception reason. */
const report = (pack: string) =>
  readFileSync(join(synth.outdir, `${pack}--consent-gate-test-NagReport.csv`), 'utf8')
    .trim()
    .split('\n')
    .slice(1)
    .map((line) => {
      const [rule, resource, compliance, reason] = line.slice(1, -1).split('","');
      return { rule, resource, compliance, reason };
    });

beforeAll(() => {
  // Settings only: CDK skips bundling here (`aws:cdk:bundling-stacks`); the nag packs run as in `cdk synth`.
  synth = synthStack({ alarmEmail: 'dpo@example.org' }, { bundle: false });
  resources = synth.resources;
}, 120_000);
afterAll(() => synth?.cleanup());

describe('log groups', () => {
  it('encrypts every log group with the stack key, each with a retention', () => {
    const groups = ofType('AWS::Logs::LogGroup');
    // One per function (routes, authorizer, jobs, pipeline) and the API access logs.
    expect(groups.length).toBe(ofType('AWS::Lambda::Function').length + 1);
    for (const [id, group] of groups) {
      expect(group.Properties.KmsKeyId, id).toEqual(keyArn());
      expect(group.Properties.RetentionInDays, id).toBeGreaterThan(0);
    }
  });

  it("lets CloudWatch Logs of the stack's region use the key for this account's log groups only", () => {
    const [, key] = only('AWS::KMS::Key');
    const logs = (key.Properties.KeyPolicy.Statement as Statement[]).filter((s) =>
      JSON.stringify(s.Principal).includes('logs.'),
    );
    expect(logs).toHaveLength(1);
    expect(logs[0].Principal).toEqual({
      Service: { 'Fn::Join': ['', ['logs.', { Ref: 'AWS::Region' }, '.amazonaws.com']] },
    });
    expect(logs[0].Effect).toBe('Allow');
    expect(logs[0].Condition).toEqual({
      ArnLike: {
        'kms:EncryptionContext:aws:logs:arn': {
          'Fn::Join': [
            '',
            [
              'arn:',
              { Ref: 'AWS::Partition' },
              ':logs:',
              { Ref: 'AWS::Region' },
              ':',
              { Ref: 'AWS::AccountId' },
              ':log-group:*',
            ],
          ],
        },
      },
    });
  });
});

describe('table backups', () => {
  it('backs the table up daily into a vault encrypted with the stack key, kept at least the proof retention', () => {
    const [, plan] = only('AWS::Backup::BackupPlan');
    const rules = plan.Properties.BackupPlan.BackupPlanRule;
    expect(rules).toHaveLength(1);
    const [rule] = rules;
    // Every day at a fixed time (AWS cron: minute hour day-of-month month day-of-week year).
    expect(rule.ScheduleExpression).toBe(`cron(${BACKUP_SCHEDULE.minute} ${BACKUP_SCHEDULE.hour} * * ? *)`);
    expect(rule.Lifecycle.DeleteAfterDays).toBeGreaterThanOrEqual(DEFAULT_RETENTION.proofDays);
    // Cold storage only where AWS Backup allows it (90 days in cold before deletion).
    expect(rule.Lifecycle.DeleteAfterDays - rule.Lifecycle.MoveToColdStorageAfterDays).toBeGreaterThanOrEqual(90);

    const [vaultId, vault] = only('AWS::Backup::BackupVault');
    expect(rule.TargetBackupVault).toEqual({ 'Fn::GetAtt': [vaultId, 'BackupVaultName'] });
    expect(vault.Properties.EncryptionKeyArn).toEqual(keyArn());
    expect(vault.DeletionPolicy).toBe('Retain');
    // Governance-mode lock: no recovery point leaves before the proof retention, none stays much longer.
    expect(vault.Properties.LockConfiguration).toEqual({
      MinRetentionDays: rule.Lifecycle.DeleteAfterDays,
      MaxRetentionDays: rule.Lifecycle.DeleteAfterDays + 1,
    });
    expect(vault.Properties.LockConfiguration.ChangeableForDays).toBeUndefined();
  });

  it('selects the table, keeps its point-in-time recovery, and lets the backup role use the key', () => {
    const [planId] = only('AWS::Backup::BackupPlan');
    const [, selection] = only('AWS::Backup::BackupSelection');
    const tableId = logicalId(resources, 'AWS::DynamoDB::Table', 'DataTable');
    expect(selection.Properties.BackupPlanId).toEqual({ 'Fn::GetAtt': [planId, 'BackupPlanId'] });
    expect(selection.Properties.BackupSelection.Resources).toEqual([{ 'Fn::GetAtt': [tableId, 'Arn'] }]);
    expect(resources[tableId].Properties.PointInTimeRecoverySpecification).toEqual({
      PointInTimeRecoveryEnabled: true,
    });
    const roleId = selection.Properties.BackupSelection.IamRoleArn['Fn::GetAtt'][0];
    const keyGrants = ofType('AWS::IAM::Policy')
      .filter(([, p]) => (p.Properties.Roles as { Ref: string }[]).some((r) => r.Ref === roleId))
      .flatMap(([, p]) => p.Properties.PolicyDocument.Statement as Statement[])
      .filter((s) => JSON.stringify(s.Resource) === JSON.stringify(keyArn()));
    expect(keyGrants.flatMap((s) => [s.Action].flat())).toEqual(expect.arrayContaining(['kms:Decrypt']));
  });

  it('follows a longer proof retention for the backups, the vault lock and the checkpoint lock alike', () => {
    const longer = synthStack({ proofRetentionDays: 3650 }, { bundle: false });
    try {
      const of = (type: string) => {
        const found = Object.values(longer.resources).find((r) => r.Type === type);
        if (!found) throw new Error(`no ${type}`);
        return found;
      };
      const [rule] = of('AWS::Backup::BackupPlan').Properties.BackupPlan.BackupPlanRule;
      expect(rule.Lifecycle.DeleteAfterDays).toBe(3650);
      expect(of('AWS::Backup::BackupVault').Properties.LockConfiguration.MinRetentionDays).toBe(3650);
      expect(of('AWS::S3::Bucket').Properties.ObjectLockConfiguration.Rule.DefaultRetention).toEqual({
        Mode: 'COMPLIANCE',
        Days: 3650,
      });
    } finally {
      longer.cleanup();
    }
  });

  it('sends a failed, aborted or expired backup job of the vault to the alarm topic', () => {
    const [, rule] = only('AWS::Events::Rule');
    const [vaultId] = only('AWS::Backup::BackupVault');
    expect(rule.Properties.EventPattern).toEqual({
      source: ['aws.backup'],
      'detail-type': ['Backup Job State Change'],
      detail: {
        state: ['FAILED', 'ABORTED', 'EXPIRED'],
        backupVaultName: [{ 'Fn::GetAtt': [vaultId, 'BackupVaultName'] }],
      },
    });
    expect((rule.Properties.Targets as { Arn: unknown }[]).map((t) => t.Arn)).toEqual([
      { Ref: logicalId(resources, 'AWS::SNS::Topic', 'AlarmTopic') },
    ]);
  });
});

describe('Lambda runtime', () => {
  it('is the newest Node.js runtime this aws-cdk-lib knows, and esbuild targets it', () => {
    const versions = Object.getOwnPropertyNames(Runtime)
      .map((name) => /^NODEJS_(\d+)_X$/.exec(name)?.[1])
      .filter((v): v is string => v !== undefined)
      .map(Number);
    const newest = Math.max(...versions);
    expect(NODE_RUNTIME.name).toBe(`nodejs${newest}.x`);
    expect(ESBUILD_TARGET).toBe(`node${newest}`);
  });

  it('runs every function of the template on it (there is no CDK-provided function)', () => {
    const functions = ofType('AWS::Lambda::Function');
    expect(functions.length).toBeGreaterThan(15);
    for (const [id, fn] of functions) expect(fn.Properties.Runtime, id).toBe(NODE_RUNTIME.name);
  });

  it('gives each scheduled job a dead-letter queue for the runs that failed every retry', () => {
    for (const job of Object.keys(JOB_GRANTS)) {
      const fn = resources[logicalId(resources, 'AWS::Lambda::Function', `Fn${job}Function`)];
      const queueId = logicalId(resources, 'AWS::SQS::Queue', `Fn${job}DeadLetters`);
      expect(fn.Properties.DeadLetterConfig, job).toEqual({ TargetArn: { 'Fn::GetAtt': [queueId, 'Arn'] } });
    }
  });
});

describe('cdk-nag packs', () => {
  const PACKS = ['AwsSolutions', 'HIPAA.Security', 'NIST.800.53.R5'];

  it('runs AwsSolutions, HIPAA Security and NIST 800-53 rev. 5 with no finding left', () => {
    for (const pack of PACKS) {
      const rows = report(pack);
      expect(rows.length, pack).toBeGreaterThan(100);
      expect(
        rows.filter((r) => r.compliance === 'Non-Compliant').map((r) => `${r.rule} ${r.resource}`),
        pack,
      ).toEqual([]);
    }
  });

  it('passes the encryption, backup and dead-letter rules, not by suppressing them', () => {
    for (const pack of ['HIPAA.Security', 'NIST.800.53.R5']) {
      const rows = report(pack);
      const of = (rule: string) => rows.filter((r) => r.rule === `${pack}-${rule}`);
      for (const rule of ['CloudWatchLogGroupEncrypted', 'DynamoDBInBackupPlan']) {
        expect(of(rule).length, rule).toBeGreaterThan(0);
        expect(new Set(of(rule).map((r) => r.compliance)), rule).toEqual(new Set(['Compliant']));
      }
      for (const job of Object.keys(JOB_GRANTS)) {
        const dlq = of('LambdaDLQ').filter((r) => r.resource.includes(`/Fn-${job}/`));
        expect(dlq.length, job).toBeGreaterThan(0);
        expect(new Set(dlq.map((r) => r.compliance)), job).toEqual(new Set(['Compliant']));
      }
    }
  });

  it('suppresses findings only on the resources they concern, never stack-wide', () => {
    const template = synth.template.toJSON();
    expect(template.Metadata?.cdk_nag).toBeUndefined();
    // Each suppressed finding carries its reason in the report.
    for (const pack of PACKS)
      for (const row of report(pack).filter((r) => r.compliance === 'Suppressed'))
        expect(row.reason.length, `${row.rule} ${row.resource}`).toBeGreaterThan(30);
  });
});
