import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import { BackupPlan, BackupPlanRule, BackupResource, BackupVault } from 'aws-cdk-lib/aws-backup';
import { Rule, Schedule } from 'aws-cdk-lib/aws-events';
import { SnsTopic } from 'aws-cdk-lib/aws-events-targets';
import { ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import type { ITopic } from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import { compliance, suppress } from '../nag.ts';
import type { ConsentTable } from './consent-table.ts';

export interface TableBackupProps {
  /** The backup plan's name (unique in the account and region). */
  planName: string;
  table: ConsentTable;
  /** The stack key: the vault encrypts every recovery point with it. */
  key: IKey;
  /** How long each daily backup is kept: at least the proof retention (policy `retention.proofDays`). */
  retentionDays: number;
  /** Where failed, aborted or expired backup jobs are reported. */
  alarmTopic: ITopic;
}

/** When the daily backup starts (UTC): after the retention job (03:15, up to 15 minutes) has run. */
export const BACKUP_SCHEDULE = { hour: '5', minute: '0' } as const;
/**
 * Backups older than this move to cold storage (about a third of the price; AWS Backup's advanced DynamoDB
 * features must be on, otherwise the setting is ignored): the newest five weeks stay warm, point-in-time
 * recovery covers the same window to the second.
 */
export const COLD_AFTER_DAYS = 35;
/** AWS Backup keeps a recovery point in cold storage at least this long. */
const MIN_COLD_DAYS = 90;

/**
 * The table in AWS Backup (docs/deploy.md, "Backups and restore"): a daily backup kept `retentionDays` — the
 * proof retention, so a consent proof the ledger must still show can be restored for as long as it must exist —
 * in a vault encrypted with the stack key and locked in governance mode: no recovery point can be deleted or
 * given another retention before its end, except by someone allowed to remove the lock (a deliberate, logged
 * act). Point-in-time recovery on the table (35 days) stays on beside it. A failed backup job is e-mailed.
 */
export class TableBackup extends Construct {
  readonly vault: BackupVault;
  readonly plan: BackupPlan;
  readonly retentionDays: number;

  constructor(scope: Construct, id: string, props: TableBackupProps) {
    super(scope, id);
    this.retentionDays = props.retentionDays;
    const retention = Duration.days(props.retentionDays);
    this.vault = new BackupVault(this, 'Vault', {
      encryptionKey: props.key,
      // Recovery points outlive the stack: the vault stays with them (delete it by hand once empty).
      removalPolicy: RemovalPolicy.RETAIN,
      // Governance mode (no `changeableFor`): every recovery point lives the proof retention — no earlier
      // deletion, and no longer keeping of personal data than documented (the maximum must exceed the minimum:
      // one day more). Compliance mode would make the lock irrevocable for years: too strong for a setting a
      // deployer may need to correct.
      lockConfiguration: { minRetention: retention, maxRetention: retention.plus(Duration.days(1)) },
    });
    this.plan = new BackupPlan(this, 'Plan', {
      backupPlanName: props.planName,
      backupVault: this.vault,
      backupPlanRules: [
        new BackupPlanRule({
          ruleName: 'daily',
          scheduleExpression: Schedule.cron(BACKUP_SCHEDULE),
          startWindow: Duration.hours(1),
          deleteAfter: retention,
          ...(props.retentionDays >= COLD_AFTER_DAYS + MIN_COLD_DAYS
            ? { moveToColdStorageAfter: Duration.days(COLD_AFTER_DAYS) }
            : {}),
        }),
      ],
    });
    const selection = this.plan.addSelection('Table', {
      resources: [BackupResource.fromDynamoDbTable(props.table.table)],
    });
    // The table and the vault are encrypted with the stack key: AWS Backup's role reads one and writes the other.
    props.key.grantEncryptDecrypt(selection.grantPrincipal);
    suppress(
      selection,
      ['AwsSolutions-IAM4'],
      "AWS Backup's own service-role policy, maintained by AWS for the backup jobs; the selection names this table only.",
      {
        appliesTo: ['Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForBackup'],
        children: true,
      },
    );
    suppress(
      selection,
      ['AwsSolutions-IAM5'],
      "CDK's encrypt/decrypt grant on the stack key for AWS Backup's role: the wildcards are action families on that one key.",
      { appliesTo: ['Action::kms:GenerateDataKey*', 'Action::kms:ReEncrypt*'], children: true },
    );
    suppress(
      selection,
      compliance('IAMNoInlinePolicy'),
      "The key grant of AWS Backup's role for this one selection: one-to-one with the role, as IAM advises inline policies for.",
      { children: true },
    );

    // AWS Backup reports job state changes to EventBridge; a backup that did not complete reaches the alarm topic.
    new Rule(this, 'JobFailed', {
      description: 'consent-gate: a backup job of the table failed, was aborted or expired',
      eventPattern: {
        source: ['aws.backup'],
        detailType: ['Backup Job State Change'],
        detail: { state: ['FAILED', 'ABORTED', 'EXPIRED'], backupVaultName: [this.vault.backupVaultName] },
      },
      targets: [new SnsTopic(props.alarmTopic)],
    });
    // The alarm topic is encrypted with the stack key: EventBridge needs to use it to publish.
    props.key.grant(new ServicePrincipal('events.amazonaws.com'), 'kms:Decrypt', 'kms:GenerateDataKey*');
  }
}
