import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
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
