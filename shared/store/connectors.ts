import { GetCommand, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import type { Provider } from '#shared/connectors/actions.ts';
import { type Db, queryAll } from './db.ts';
import { storeFailure } from './errors.ts';
import { keys } from './table.ts';

/*
 * Provider connectors (docs/connectors.md): the connector item, keyed by its id alone because the provider's
 * calls name only the id (`CONNECTOR#<id>`, `CONNECTOR`), holding the provider secrets sealed
 * (shared/secret-box.ts, bound to the tenant and the id), and a listing entry without secrets in the tenant
 * partition (`T#<tenant>`, `CONNECTOR#<id>`), written and deleted together in one transaction. Listing is a
 * Query of the tenant partition: no index, so the function needs no access to the audit index.
 */

/** A connector as stored. `sealedSecrets` opens (JSON) with the tenant and {@link connectorSecretContext}. */
export interface ConnectorRecord {
  id: string;
  tenant: string;
  provider: Provider;
  purposeMap: Record<string, string>;
  createdAt: string;
  sealedSecrets: string;
}

/** A connector as listed: everything but its secrets. */
export type ConnectorSummary = Omit<ConnectorRecord, 'sealedSecrets'>;

/** What binds a connector's sealed secrets to its item: a sealed value copied onto another connector does not open. */
export const connectorSecretContext = (id: string) => `connector:${id}`;

const SK = 'CONNECTOR';
const itemKey = (id: string) => ({ PK: keys.connector(id), SK });
const entryKey = (tenant: string, id: string) => ({ PK: keys.tenant(tenant), SK: keys.connector(id) });

const summaryOf = (item: Record<string, unknown>): ConnectorSummary => ({
  id: item.id as string,
  tenant: item.tenant as string,
  provider: item.provider as Provider,
  purposeMap: (item.purposeMap as Record<string, string>) ?? {},
  createdAt: item.createdAt as string,
});

const cancelledByCondition = (error: unknown) =>
  (error as { name?: string }).name === 'TransactionCanceledException' &&
  ((error as { CancellationReasons?: { Code?: string }[] }).CancellationReasons ?? []).some(
    (r) => r.Code === 'ConditionalCheckFailed',
  );

/** Stores a new connector and its listing entry (its id is new: both puts are conditional). */
export async function putConnector(db: Db, record: ConnectorRecord): Promise<void> {
  const { sealedSecrets: _secrets, ...summary } = record;
  try {
    await db.client.send(
      new TransactWriteCommand({
        TransactItems: [
          {
            Put: {
              TableName: db.table,
              Item: { ...itemKey(record.id), ...record },
              ConditionExpression: 'attribute_not_exists(PK)',
            },
          },
          {
            Put: {
              TableName: db.table,
              Item: { ...entryKey(record.tenant, record.id), ...summary },
              ConditionExpression: 'attribute_not_exists(PK)',
            },
          },
        ],
      }),
    );
  } catch (error) {
    throw storeFailure(error, 'putConnector');
  }
}

/** A connector by id, whatever its tenant (the provider's calls); undefined when there is none. */
export async function getConnector(db: Db, id: string): Promise<ConnectorRecord | undefined> {
  try {
    const out = await db.client.send(new GetCommand({ TableName: db.table, Key: itemKey(id), ConsistentRead: true }));
    return out.Item ? { ...summaryOf(out.Item), sealedSecrets: out.Item.sealedSecrets as string } : undefined;
  } catch (error) {
    throw storeFailure(error, 'getConnector');
  }
}

/** The tenant's connectors without their secrets, oldest first. */
export async function listConnectors(db: Db, tenant: string): Promise<ConnectorSummary[]> {
  try {
    const items = await queryAll(db, {
      KeyConditionExpression: 'PK = :pk AND begins_with(SK, :prefix)',
      ExpressionAttributeValues: { ':pk': keys.tenant(tenant), ':prefix': keys.connector('') },
      ConsistentRead: true,
    });
    return items.map(summaryOf).sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
  } catch (error) {
    throw storeFailure(error, 'listConnectors');
  }
}

/** Deletes a tenant's connector and its listing entry; false when the tenant has no such connector. */
export async function deleteConnector(db: Db, tenant: string, id: string): Promise<boolean> {
  try {
    await db.client.send(
      new TransactWriteCommand({
        TransactItems: [
          {
            Delete: {
              TableName: db.table,
              Key: itemKey(id),
              ConditionExpression: 'tenant = :tenant',
              ExpressionAttributeValues: { ':tenant': tenant },
            },
          },
          { Delete: { TableName: db.table, Key: entryKey(tenant, id) } },
        ],
      }),
    );
    return true;
  } catch (error) {
    if (cancelledByCondition(error)) return false;
    throw storeFailure(error, 'deleteConnector');
  }
}
