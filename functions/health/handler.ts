import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { publicRoute } from '#http/api.ts';
import { dispatch } from '#http/dispatch.ts';
import { jsonResponse } from '#http/problem.ts';
import { getDb } from '#store/db.ts';
import { storeFailure } from '#store/errors.ts';

/** GET /v1/health — 200 only when the store answers a read. */
export const health = publicRoute('GET /v1/health', async () => {
  const db = getDb();
  try {
    await db.client.send(new GetCommand({ TableName: db.table, Key: { PK: 'HEALTH', SK: 'HEALTH' } }));
  } catch (error) {
    throw storeFailure(error, 'health');
  }
  return jsonResponse(200, { status: 'ok' });
});

export const handler = dispatch('health', [health]);
