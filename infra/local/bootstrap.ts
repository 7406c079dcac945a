import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  CreateTableCommand,
  DescribeTableCommand,
  UpdateTableCommand,
  UpdateTimeToLiveCommand,
} from '@aws-sdk/client-dynamodb';
import { createApiKey } from '#shared/auth/api-keys.ts';
import type { Db } from '#store/db.ts';
import { createTableInput, TABLE } from '#store/table.ts';

/**
 * Creates the table from the shared definition when it is missing, and waits until it is active. A table
 * created before change events (no stream) gets its stream turned on here.
 */
export async function ensureTable(db: Db): Promise<'created' | 'existed'> {
  try {
    const out = await db.client.send(new DescribeTableCommand({ TableName: db.table }));
    if (!out.Table?.StreamSpecification?.StreamEnabled) await enableStream(db);
    return 'existed';
  } catch (error) {
    if ((error as Error).name !== 'ResourceNotFoundException') throw error;
  }
  try {
    await db.client.send(new CreateTableCommand(createTableInput(db.table)));
  } catch (error) {
    // Another process created it meanwhile.
    if ((error as Error).name !== 'ResourceInUseException') throw error;
  }
  for (let i = 0; i < 100; i++) {
    const out = await db.client.send(new DescribeTableCommand({ TableName: db.table }));
    if (out.Table?.TableStatus === 'ACTIVE') break;
    await new Promise((r) => setTimeout(r, 100));
  }
  await db.client.send(
    new UpdateTimeToLiveCommand({
      TableName: db.table,
      TimeToLiveSpecification: { AttributeName: TABLE.ttlAttribute, Enabled: true },
    }),
  );
  return 'created';
}

/** Turns on the table's change stream (an existing `.data` table from before change events). */
async function enableStream(db: Db): Promise<void> {
  try {
    await db.client.send(
      new UpdateTableCommand({
        TableName: db.table,
        StreamSpecification: { StreamEnabled: true, StreamViewType: TABLE.streamViewType },
      }),
    );
  } catch (error) {
    // Another process turned it on meanwhile.
    if ((error as Error).name !== 'ValidationException' && (error as Error).name !== 'ResourceInUseException')
      throw error;
  }
}

/**
 * The dev tenant's all-scopes key: exactly DEV_API_KEY when set (idempotent across restarts), else one
 * generated on first start and kept in DATA_DIR (or generated per run with DATA_DIR=memory).
 */
export async function ensureDevKey(db: Db, options: { tenant: string; dataDir: string; devApiKey?: string }) {
  if (options.devApiKey) {
    return {
      ...(await createApiKey(db, { tenant: options.tenant, scopes: ['admin'], name: 'dev', key: options.devApiKey })),
      created: false,
    };
  }
  const file = options.dataDir === 'memory' ? undefined : join(options.dataDir, 'dev-key.json');
  if (file && existsSync(file)) {
    const saved = JSON.parse(readFileSync(file, 'utf8')) as { key: string; tenant: string };
    if (saved.tenant === options.tenant) {
      const key = await createApiKey(db, { tenant: options.tenant, scopes: ['admin'], name: 'dev', key: saved.key });
      return { ...key, created: false };
    }
  }
  const key = await createApiKey(db, { tenant: options.tenant, scopes: ['admin'], name: 'dev' });
  if (file) {
    mkdirSync(options.dataDir, { recursive: true });
    writeFileSync(file, JSON.stringify({ tenant: options.tenant, key: key.key }), { mode: 0o600 });
  }
  return { ...key, created: true };
}

const serverFile = (dataDir: string) => join(dataDir, 'server.json');

/** Records which DynamoDB Local serves DATA_DIR while `npm start` runs, so the CLI can join it. */
export function announceEndpoint(dataDir: string, endpoint: string): () => void {
  if (dataDir === 'memory') return () => {};
  writeFileSync(serverFile(dataDir), JSON.stringify({ endpoint, pid: process.pid }), { mode: 0o600 });
  return () => rmSync(serverFile(dataDir), { force: true });
}

/** The endpoint of the `npm start` that serves DATA_DIR, if one is running. */
export function runningEndpoint(dataDir: string): string | undefined {
  if (dataDir === 'memory' || !existsSync(serverFile(dataDir))) return undefined;
  try {
    const { endpoint, pid } = JSON.parse(readFileSync(serverFile(dataDir), 'utf8')) as {
      endpoint: string;
      pid: number;
    };
    process.kill(pid, 0);
    return endpoint;
  } catch {
    return undefined;
  }
}
