import { type DynamoDBDocumentClient, QueryCommand, type QueryCommandInput } from '@aws-sdk/lib-dynamodb';
import { createDocumentClient, storeConfigFromEnv } from './client.ts';

/** A table and the client that reaches it. Store functions take one, so tests can hand in another. */
export interface Db {
  client: DynamoDBDocumentClient;
  table: string;
}

let shared: Db | undefined;

/** The container's store, built once from the environment on first use. */
export function getDb(): Db {
  if (!shared) {
    const config = storeConfigFromEnv();
    shared = { client: createDocumentClient(config), table: config.tableName };
  }
  return shared;
}

/** Replaces the container's store (local runtime and tests). */
export function setDb(db: Db | undefined): void {
  shared = db;
}

/** Every item a Query of the table returns, page after page (callers wrap failures with `storeFailure`). */
export async function queryAll(
  db: Db,
  input: Omit<QueryCommandInput, 'TableName' | 'ExclusiveStartKey'>,
): Promise<Record<string, unknown>[]> {
  const items: Record<string, unknown>[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const out = await db.client.send(new QueryCommand({ ...input, TableName: db.table, ExclusiveStartKey: start }));
    items.push(...(out.Items ?? []));
    start = out.LastEvaluatedKey;
  } while (start);
  return items;
}
