import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { ensureTable } from '#infra/local/bootstrap.ts';
import { startDynamoLocal } from '#infra/local/dynamo.ts';
import { createDocumentClient } from '#store/client.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    dynamoEndpoint: string;
    tableName: string;
    dataDir: string;
  }
}

interface Store {
  context: { dynamoEndpoint: string; tableName: string; dataDir: string };
  stop: () => Promise<void>;
}

async function startStore(): Promise<Store> {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
  const dataDir = mkdtempSync(join(tmpdir(), 'consent-gate-test-'));
  const dynamo = await startDynamoLocal({ dataDir: 'memory' });
  const tableName = 'consent-gate-test';
  try {
    await ensureTable({ client: createDocumentClient({ tableName, endpoint: dynamo.endpoint }), table: tableName });
  } catch (error) {
    await dynamo.stop();
    throw error;
  }
  return {
    context: { dynamoEndpoint: dynamo.endpoint, tableName, dataDir },
    stop: async () => {
      await dynamo.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

// Each project loads this file anew, all in vitest's own process: the store is kept here, counted per project.
const shared = globalThis as { consentGateStore?: { projects: number; store: Promise<Store> } };

/**
 * One DynamoDB Local (in memory) for the whole run, one table, one secrets folder, whichever projects run
 * (only those that need it set it up). Test files isolate themselves by tenant. Stopped at the end of the
 * run, also when tests fail.
 */
export default async function setup(project: TestProject) {
  shared.consentGateStore ??= { projects: 0, store: startStore() };
  const entry = shared.consentGateStore;
  entry.projects++;
  const { context, stop } = await entry.store;
  project.provide('dynamoEndpoint', context.dynamoEndpoint);
  project.provide('tableName', context.tableName);
  project.provide('dataDir', context.dataDir);
  return async () => {
    if (--entry.projects > 0) return;
    shared.consentGateStore = undefined;
    await stop();
  };
}
