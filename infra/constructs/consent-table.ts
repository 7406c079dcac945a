import { RemovalPolicy } from 'aws-cdk-lib';
import { AttributeType, BillingMode, StreamViewType, Table, TableEncryption } from 'aws-cdk-lib/aws-dynamodb';
import { type IGrantable, PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';
import { TABLE } from '#store/table.ts';

type IndexName = (typeof TABLE.indexes)[number]['name'];

/** What a function may do to the table: DynamoDB actions on the base table, plus queries on named indexes. */
export interface TableAccess {
  actions: readonly string[];
  indexes: readonly IndexName[];
  /**
   * Only in partitions whose key matches one of these patterns (`dynamodb:LeadingKeys`) may the actions that
   * write be used; reads stay table-wide.
   */
  writesIn?: readonly string[];
}

const LOOKUP = ['dynamodb:GetItem'] as const;
const READ = [...LOOKUP, 'dynamodb:BatchGetItem', 'dynamodb:Query'] as const;
// A ledger append is a TransactWriteItems of conditional Puts; IAM authorises each item's own action.
const WRITE = [
  ...READ,
  'dynamodb:PutItem',
  'dynamodb:UpdateItem',
  'dynamodb:DeleteItem',
  'dynamodb:ConditionCheckItem',
];

/**
 * The access levels functions are granted, smallest first. No API function gets `Scan`, `DescribeTable` or
 * table management: none needs them, and a leaked role cannot dump the table. Only the retention job, run
 * by a schedule and reachable by no route, scans (it visits every subject once a day).
 */
export const TABLE_ACCESS = {
  /** No table access (the OpenAPI document). */
  none: { actions: [], indexes: [] },
  /** Single-item reads: an API key, the health probe. */
  lookup: { actions: LOOKUP, indexes: [] },
  /** Reads of subjects and their ledger, by key. */
  read: { actions: READ, indexes: [] },
  /** Reads plus ledger appends, policy and idempotency records. */
  write: { actions: WRITE, indexes: [] },
  /** Reads plus the audit index (events by day) and the erasure index (deadlines): the DPO's views. */
  audit: { actions: READ, indexes: ['GSI1', 'GSI2'] },
  /** Writes plus deleting a subject's partition (BatchWriteItem) and the erasure-request index. */
  erase: { actions: [...WRITE, 'dynamodb:BatchWriteItem'], indexes: ['GSI2'] },
  /** The retention job: a Scan of the subjects, erasures (no request index) and redaction of old details. */
  retention: { actions: [...WRITE, 'dynamodb:BatchWriteItem', 'dynamodb:Scan'], indexes: [] },
  /**
   * The log's sealer: reads the audit index (events by day) and the log heads (GSI2), and writes only the
   * tenants' log partitions `T#<tenant>#LOG`, never a subject's ledger or state.
   */
  seal: { actions: [...WRITE, 'dynamodb:BatchWriteItem'], indexes: ['GSI1', 'GSI2'], writesIn: ['T#*#LOG'] },
  /**
   * The change-event endpoints API: the tenant's endpoints (`T#<tenant>#EPS`), their delivery logs
   * (`T#<tenant>#EP#<id>`) and its idempotency records are all it writes; it reads the audit index and the
   * changes' day index (GSI1, GSI2) for `GET /v1/changes` and replays.
   */
  events: { actions: WRITE, indexes: ['GSI1', 'GSI2'], writesIn: ['T#*#EPS', 'T#*#EP#*', 'T#*#IDEM#*'] },
  /** The change-event dispatcher and delivery functions: they read endpoints and write delivery logs only. */
  deliveries: { actions: WRITE, indexes: [], writesIn: ['T#*#EP#*'] },
} as const satisfies Record<string, TableAccess>;
export type TableAccessLevel = keyof typeof TABLE_ACCESS;

/**
 * The one table (README, "Data model"), declared from the same `TABLE` definition the local runtime
 * creates. It holds personal data and the legal proof of consent, so it is retained on stack deletion,
 * protected against deletion, point-in-time recoverable and encrypted with the stack's own KMS key.
 */
export class ConsentTable extends Construct {
  readonly table: Table;

  constructor(
    scope: Construct,
    id: string,
    readonly key: IKey,
  ) {
    super(scope, id);
    this.table = new Table(this, 'Table', {
      partitionKey: { name: TABLE.partitionKey, type: AttributeType.STRING },
      sortKey: { name: TABLE.sortKey, type: AttributeType.STRING },
      billingMode: BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      deletionProtection: true,
      removalPolicy: RemovalPolicy.RETAIN,
      encryption: TableEncryption.CUSTOMER_MANAGED,
      encryptionKey: key,
      timeToLiveAttribute: TABLE.ttlAttribute,
      // Ledger events flow from here to the change-event dispatcher (docs/events.md).
      stream: StreamViewType[TABLE.streamViewType],
    });
    for (const index of TABLE.indexes) {
      this.table.addGlobalSecondaryIndex({
        indexName: index.name,
        partitionKey: { name: index.partitionKey, type: AttributeType.STRING },
        sortKey: { name: index.sortKey, type: AttributeType.STRING },
      });
    }
  }

  /** Grants one access level: the table actions, queries on its named indexes, and the key use they need. */
  grant(grantee: IGrantable, level: TableAccessLevel): void {
    const access: TableAccess = TABLE_ACCESS[level];
    if (access.actions.length === 0) return;
    // Written out rather than `table.grant()`, which adds `index/*`: the audit function may query the audit
    // index and nothing else, the erasure function the erasure index.
    const isRead = (action: string) => (READ as readonly string[]).includes(action);
    if (access.writesIn) {
      grantee.grantPrincipal.addToPrincipalPolicy(
        new PolicyStatement({ actions: access.actions.filter(isRead), resources: [this.table.tableArn] }),
      );
      grantee.grantPrincipal.addToPrincipalPolicy(
        new PolicyStatement({
          actions: access.actions.filter((action) => !isRead(action)),
          resources: [this.table.tableArn],
          conditions: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': [...access.writesIn] } },
        }),
      );
    } else {
      grantee.grantPrincipal.addToPrincipalPolicy(
        new PolicyStatement({ actions: [...access.actions], resources: [this.table.tableArn] }),
      );
    }
    if (access.indexes.length > 0) {
      grantee.grantPrincipal.addToPrincipalPolicy(
        new PolicyStatement({
          actions: ['dynamodb:Query'],
          resources: access.indexes.map((index) => `${this.table.tableArn}/index/${index}`),
        }),
      );
    }
    const writes = access.actions.some((action) => !isRead(action));
    if (writes) this.key.grantEncryptDecrypt(grantee);
    else this.key.grantDecrypt(grantee);
  }
}
