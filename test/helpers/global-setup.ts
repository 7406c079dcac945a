import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { ensureTable } from '../../infra/local/bootstrap.ts';
import { startDynamoLocal } from '../../infra/local/dynamo.ts';
import { createDocumentClient } from '../../shared/store/client.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    dynamoEndpoint: string;
    tableName: string;
    dataDir: string;
  }
}

/**
 * One DynamoDB Local (in memory) for the whole run, one table, one secrets folder. Test files isolate
 * themselves by tenant. Stopped at the end of the run, also when tests fail.
 */
export default async function setup(project: TestProject) {
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
  project.provide('dynamoEndpoint', dynamo.endpoint);
  project.provide('tableName', tableName);
  project.provide('dataDir', dataDir);
  return async () => {
    await dynamo.stop();
    rmSync(dataDir, { recursive: true, force: true });
  };
}
