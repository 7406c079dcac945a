import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import { AnyPrincipal, Effect, type IGrantable, type IRole, PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { BlockPublicAccess, Bucket, BucketEncryption, ObjectLockRetention, ObjectOwnership } from 'aws-cdk-lib/aws-s3';
import { NagSuppressions } from 'cdk-nag';
import { Construct, type IConstruct } from 'constructs';
import { DEFAULT_RETENTION } from '#domain/policy.ts';
import { compliance, suppress } from '../nag.ts';

/**
 * What the bucket holds (shared/log/anchor.ts): `checkpoints/<tenant>/<treeSize>.note`, and `keys/<keyId>.json`,
 * the public keys that verify them (published by the sealer, read by the verifying functions).
 */
const PREFIXES = ['checkpoints/', 'keys/'];

export interface CheckpointBucketProps {
  /** How long every checkpoint is locked: the default proof retention (policy `retention.proofDays`). */
  retentionDays?: number;
}

/**
 * Where every signed checkpoint of the verifiable log is anchored, outside the table: an S3 bucket with Object
 * Lock in compliance mode, so no one — not the table's writers, not an administrator, not the account's root —
 * can overwrite or delete a checkpoint before its retention ends. Versioned (Object Lock needs it), private,
 * TLS only, encrypted at rest (S3-managed keys: a checkpoint is a signed tree hash, no personal data), and
 * written by one role only: {@link allowWriter} names it, the bucket policy refuses every other principal's put.
 */
export class CheckpointBucket extends Construct {
  readonly bucket: Bucket;
  readonly retentionDays: number;
  /** The role allowed to write (set by {@link allowWriter}). */
  writer?: IRole;

  constructor(scope: Construct, id: string, props: CheckpointBucketProps = {}) {
    super(scope, id);
    this.retentionDays = props.retentionDays ?? DEFAULT_RETENTION.proofDays;
    this.bucket = new Bucket(this, 'Bucket', {
      objectLockEnabled: true,
      objectLockDefaultRetention: ObjectLockRetention.compliance(Duration.days(this.retentionDays)),
      versioned: true,
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      objectOwnership: ObjectOwnership.BUCKET_OWNER_ENFORCED,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      encryption: BucketEncryption.S3_MANAGED,
      // Nothing is kept forever: a checkpoint is deleted a day after its lock ends (a delete marker, then the
      // version). The public keys stay: a key verifies checkpoints signed until its retirement, years later.
      lifecycleRules: [
        {
          id: 'checkpoints-end-with-their-retention',
          prefix: 'checkpoints/',
          expiration: Duration.days(this.retentionDays + 1),
          noncurrentVersionExpiration: Duration.days(1),
        },
      ],
      // Locked objects outlive the stack anyway; the bucket stays with them (delete it by hand once empty).
      removalPolicy: RemovalPolicy.RETAIN,
    });
    suppress(
      this.bucket,
      ['AwsSolutions-S1', ...compliance('S3BucketLoggingEnabled')],
      'Holds public signed tree heads, written by one role only and locked; CloudTrail S3 data events audit it.',
    );
    suppress(
      this.bucket,
      compliance('S3DefaultEncryptionKMS'),
      'Signed tree heads, no personal data: S3-managed keys keep the anchors readable apart from the data key (crypto-shredding).',
    );
    suppress(
      this.bucket,
      compliance('S3BucketReplicationEnabled'),
      'Single-region stack: replication needs a locked bucket in a second region, a deploy-time choice (docs/deploy.md).',
    );
  }

  /**
   * Makes `role` the bucket's only writer: it may put (and read and list) checkpoints; the bucket policy denies
   * puts and changes of an object's lock to every other principal, and deletes to everyone.
   */
  allowWriter(role: IRole): void {
    this.writer = role;
    role.addToPrincipalPolicy(
      new PolicyStatement({
        actions: ['s3:PutObject'],
        resources: PREFIXES.map((prefix) => this.bucket.arnForObjects(`${prefix}*`)),
      }),
    );
    this.allowReader(role);
    this.bucket.addToResourcePolicy(
      new PolicyStatement({
        sid: 'OnlyTheSealerWritesCheckpoints',
        effect: Effect.DENY,
        principals: [new AnyPrincipal()],
        actions: ['s3:PutObject', 's3:PutObjectRetention', 's3:PutObjectLegalHold', 's3:BypassGovernanceRetention'],
        resources: [this.bucket.arnForObjects('*')],
        conditions: { ArnNotEquals: { 'aws:PrincipalArn': role.roleArn } },
      }),
    );
    this.bucket.addToResourcePolicy(
      new PolicyStatement({
        // No principal deletes (the lifecycle rule does, once the lock ended).
        sid: 'NoPrincipalDeletesCheckpoints',
        effect: Effect.DENY,
        principals: [new AnyPrincipal()],
        actions: ['s3:DeleteObject', 's3:DeleteObjectVersion'],
        resources: [this.bucket.arnForObjects('*')],
      }),
    );
  }

  /** Lets a principal read and list the anchored checkpoints (a verifier). */
  allowReader(grantee: IGrantable): void {
    grantee.grantPrincipal.addToPrincipalPolicy(
      new PolicyStatement({
        actions: ['s3:GetObject'],
        resources: PREFIXES.map((prefix) => this.bucket.arnForObjects(`${prefix}*`)),
      }),
    );
    grantee.grantPrincipal.addToPrincipalPolicy(
      new PolicyStatement({
        actions: ['s3:ListBucket'],
        resources: [this.bucket.bucketArn],
        conditions: { StringLike: { 's3:prefix': PREFIXES.map((prefix) => `${prefix}*`) } },
      }),
    );
    NagSuppressions.addResourceSuppressions(
      grantee.grantPrincipal as unknown as IConstruct,
      [
        {
          id: 'AwsSolutions-IAM5',
          reason:
            'Checkpoints are one object per tenant and tree size under checkpoints/, public keys one per key id under keys/: the prefix is the scope.',
          // cdk-nag reads the pattern between slashes: `.` stands for the `/` of the key prefix.
          appliesTo: [{ regex: '/^Resource::<CheckpointsBucket[0-9A-F]+\\.Arn>.(checkpoints|keys).\\*$/g' }],
        },
      ],
      true,
    );
  }
}
