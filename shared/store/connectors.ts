import { DeleteCommand, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import type { Provider } from '#shared/connectors/actions.ts';
import { type Db, queryAll } from './db.ts';
import { storeFailure } from './errors.ts';
import { keys } from './table.ts';

/*
 * Provider connectors (docs/connectors.md): one item per connector, keyed by its id alone because the
 * provider's calls name only the id (`CONNECTOR#<id>`, `CONNECTOR`), listed per tenant through GSI1
 * (`T#<tenant>#CONNECTORS`, `<createdAt>#<id>`). The provider secrets are stored sealed (shared/secret-box.ts,
 * bound to the tenant and the connector id), never in clear.
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

/** What binds a connector's sealed secrets to its item: a sealed value copied onto another connector does not open. */
export const connectorSecretContext = (id: string) => `connector:${id}`;

const SK = 'CONNECTOR';

const recordOf = (item: Record<string, unknown>): ConnectorRecord => ({
  id: item.id as string,
  tenant: item.tenant as string,
  provider: item.provider as Provider,
  purposeMap: (item.purposeMap as Record<string, string>) ?? {},
  createdAt: item.createdAt as string,
  sealedSecrets: item.sealedSecrets as string,
});

/** Stores a new connector (its id is new: the put is conditional). */
export async function putConnector(db: Db, record: ConnectorRecord): Promise<void> {
  try {
    await db.client.send(
      new PutCommand({
        TableName: db.table,
        Item: {
          PK: keys.connector(record.id),
          SK,
          ...record,
          GSI1PK: keys.connectorsOfTenant(record.tenant),
          GSI1SK: `${record.createdAt}#${record.id}`,
        },
        ConditionExpression: 'attribute_not_exists(PK)',
      }),
    );
  } catch (error) {
    throw storeFailure(error, 'putConnector');
  }
}

/** A connector by id, whatever its tenant (the provider's calls); undefined when there is none. */
export async function getConnector(db: Db, id: string): Promise<ConnectorRecord | undefined> {
  try {
    const out = await db.client.send(
      new GetCommand({ TableName: db.table, Key: { PK: keys.connector(id), SK }, ConsistentRead: true }),
    );
    return out.Item ? recordOf(out.Item) : undefined;
  } catch (error) {
    throw storeFailure(error, 'getConnector');
  }
}

/** The tenant's connectors, oldest first. */
export async function listConnectors(db: Db, tenant: string): Promise<ConnectorRecord[]> {
  try {
    const items = await queryAll(db, {
      IndexName: 'GSI1',
      KeyConditionExpression: 'GSI1PK = :pk',
      ExpressionAttributeValues: { ':pk': keys.connectorsOfTenant(tenant) },
    });
    return items.map(recordOf);
  } catch (error) {
    throw storeFailure(error, 'listConnectors');
  }
}

/** Deletes a tenant's connector; false when the tenant has no such connector. */
export async function deleteConnector(db: Db, tenant: string, id: string): Promise<boolean> {
  try {
    await db.client.send(
      new DeleteCommand({
        TableName: db.table,
        Key: { PK: keys.connector(id), SK },
        ConditionExpression: 'tenant = :tenant',
        ExpressionAttributeValues: { ':tenant': tenant },
      }),
    );
    return true;
  } catch (error) {
    if ((error as { name?: string }).name === 'ConditionalCheckFailedException') return false;
    throw storeFailure(error, 'deleteConnector');
  }
}
