import { ensureTable, runningEndpoint } from '#infra/local/bootstrap.ts';
import { type EmbeddedDynamo, startDynamoLocal } from '#infra/local/dynamo.ts';
import { createDocumentClient } from '#store/client.ts';
import { type Db, setDb } from '#store/db.ts';

/**
 * The store the CLI works on: `DYNAMODB_ENDPOINT` + `TABLE_NAME` when set (DynamoDB Local, or a real
 * table with the usual AWS credentials and region when the endpoint is AWS's), else the local store in
 * `DATA_DIR` (an embedded DynamoDB Local is started for the command and stopped after it).
 */
export async function openStore(): Promise<{ db: Db; close: () => Promise<void> }> {
  const table = process.env.TABLE_NAME || 'consent-gate';
  let dynamo: EmbeddedDynamo | undefined;
  let endpoint = process.env.DYNAMODB_ENDPOINT || undefined;
  const cloud = !endpoint && Boolean(process.env.AWS_REGION && process.env.CONSENT_GATE_CLOUD === '1');
  if (!endpoint && !cloud) {
    const dataDir = process.env.DATA_DIR || '.data';
    // A running `npm start` owns the data folder: talk to its DynamoDB Local rather than open the files twice.
    endpoint = runningEndpoint(dataDir);
    if (!endpoint) {
      if (dataDir === 'memory')
        throw new Error('DATA_DIR=memory keeps no data: point DYNAMODB_ENDPOINT at a running store');
      dynamo = await startDynamoLocal({ dataDir });
      endpoint = dynamo.endpoint;
    }
    process.env.DYNAMODB_ENDPOINT = endpoint;
  }
  const db: Db = { client: createDocumentClient({ tableName: table, endpoint }), table };
  setDb(db);
  const close = async () => {
    db.client.destroy();
    await dynamo?.stop();
  };
  try {
    if (endpoint) await ensureTable(db);
  } catch (error) {
    await close();
    throw error;
  }
  return { db, close };
}
