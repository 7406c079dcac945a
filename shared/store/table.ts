/**
 * The one table, described once: the local runtime creates it from this and the CDK stack declares it
 * from this, so the two cannot drift.
 */
export const TABLE = {
  partitionKey: 'PK',
  sortKey: 'SK',
  ttlAttribute: 'expiresAtEpoch',
  /**
   * The table's change stream (DynamoDB Streams, new images): ledger events and expiry records flow from it to
   * the change-event dispatcher (docs/events.md). DynamoDB Local implements Streams too.
   */
  streamViewType: 'NEW_IMAGE',
  indexes: [
    /** Audit index: events by tenant, day and shard, in time order; also API keys by tenant. */
    { name: 'GSI1', partitionKey: 'GSI1PK', sortKey: 'GSI1SK' },
    /** Erasure requests by tenant and status, in due-date order. */
    { name: 'GSI2', partitionKey: 'GSI2PK', sortKey: 'GSI2SK' },
  ],
} as const;

/** Shards per day in the audit index (README, "Data model"). */
export const AUDIT_SHARDS = 8;

/** CreateTable input for DynamoDB (Local): on-demand, every key attribute a string. */
export function createTableInput(tableName: string) {
  const attributes = [TABLE.partitionKey, TABLE.sortKey, ...TABLE.indexes.flatMap((i) => [i.partitionKey, i.sortKey])];
  return {
    TableName: tableName,
    BillingMode: 'PAY_PER_REQUEST' as const,
    StreamSpecification: { StreamEnabled: true, StreamViewType: TABLE.streamViewType },
    AttributeDefinitions: attributes.map((name) => ({ AttributeName: name, AttributeType: 'S' as const })),
    KeySchema: [
      { AttributeName: TABLE.partitionKey, KeyType: 'HASH' as const },
      { AttributeName: TABLE.sortKey, KeyType: 'RANGE' as const },
    ],
    GlobalSecondaryIndexes: TABLE.indexes.map((i) => ({
      IndexName: i.name,
      KeySchema: [
        { AttributeName: i.partitionKey, KeyType: 'HASH' as const },
        { AttributeName: i.sortKey, KeyType: 'RANGE' as const },
      ],
      Projection: { ProjectionType: 'ALL' as const },
    })),
  };
}

/** Item keys: see the README, "Data model". */
export const keys = {
  subject: (tenant: string, subjectKey: string) => `T#${tenant}#S#${subjectKey}`,
  state: 'STATE',
  event: (seq: number) => `EV#${String(seq).padStart(12, '0')}`,
  tenant: (tenant: string) => `T#${tenant}`,
  policy: 'POLICY',
  /**
   * A notice's summary (no texts) and the full notice, in the tenant partition. The policy and the summaries
   * are read in one Query (`SK BETWEEN 'NOTICE#' AND 'POLICY'`): nothing else may sort in that range.
   */
  notice: (version: string) => `NOTICE#${version}`,
  noticeText: (version: string) => `TEXT#NOTICE#${version}`,
  apiKey: (keyHash: string) => `KEY#${keyHash}`,
  apiKeyId: (keyId: string) => `KEYID#${keyId}`,
  apiKeysOfTenant: (tenant: string) => `T#${tenant}#KEYS`,
  erasure: (tenant: string, requestId: string) => `T#${tenant}#ER#${requestId}`,
  erasuresByStatus: (tenant: string, status: string) => `T#${tenant}#ER#${status}`,
  idempotency: (tenant: string, keyHash: string) => `T#${tenant}#IDEM#${keyHash}`,
  auditDay: (tenant: string, day: string, shard: number) => `T#${tenant}#D#${day}#${shard}`,
  /** The tenant's change-event endpoints (docs/events.md): their own partition, so their writers' IAM can name it. */
  endpoints: (tenant: string) => `T#${tenant}#EPS`,
  endpoint: (endpointId: string) => `EP#${endpointId}`,
  /** An endpoint's delivery log. */
  deliveries: (tenant: string, endpointId: string) => `T#${tenant}#EP#${endpointId}`,
  /** The tenant's change records that are no ledger event (`consent.expired`), by recording day (GSI2). */
  changesDay: (tenant: string, day: string) => `T#${tenant}#CHG#${day}`,
  /** The tenant's verifiable log (Merkle tree, checkpoints): `shared/store/log.ts`. */
  log: (tenant: string) => `T#${tenant}#LOG`,
  /**
   * A provider connector, found by its id alone (the provider's calls carry no tenant), and its listing entry in
   * the tenant partition (`T#<tenant>`, `CONNECTOR#<id>`: sorts before `NOTICE#`): `shared/store/connectors.ts`.
   */
  connector: (id: string) => `CONNECTOR#${id}`,
};
