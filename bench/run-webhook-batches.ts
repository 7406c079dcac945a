// `npm run bench:batches`: only the webhook batch figures of `npm run bench` (a WhatsApp delivery of 1,000
// statuses, through the group commit and through the handler as wired; a signed 1,000-event SendGrid
// batch), on a DynamoDB Local of their own. A minute on 2 cores; prints the figures as JSON.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
process.env.POWERTOOLS_LOG_LEVEL ??= 'ERROR';

import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureTable } from '../infra/local/bootstrap.ts';
import { type EmbeddedDynamo, startDynamoLocal } from '../infra/local/dynamo.ts';
import { mapLimit } from '../shared/concurrency.ts';
import { measureSendGridBatch } from './connectors.ts';
import { apiEvent, lambdaContext, phoneOf, round } from './lib.ts';
import { measureWhatsAppBatched } from './webhook-batches.ts';
import { DELIVERY_STATUSES, measureWhatsAppDelivery } from './whatsapp.ts';

const TENANT = 'bench';
const TABLE = 'consent-gate-bench-batches';
const log = (line: string) => process.stderr.write(`${line}\n`);

let dynamo: EmbeddedDynamo | undefined;
const dataDir = mkdtempSync(join(tmpdir(), 'consent-gate-bench-batches-'));
async function cleanup() {
  await dynamo?.stop().catch(() => {});
  rmSync(dataDir, { recursive: true, force: true });
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => void cleanup().finally(() => process.exit(130)));
}

async function main() {
  const loadavgAtStart = loadavg().map((l) => round(l, 1));
  log('starting DynamoDB Local (in memory)…');
  dynamo = await startDynamoLocal({ dataDir: 'memory' });
  process.env.DYNAMODB_ENDPOINT = dynamo.endpoint;
  process.env.TABLE_NAME = TABLE;
  process.env.DATA_DIR = dataDir;
  process.env.AWS_REGION = 'eu-west-3';
  const { createDocumentClient } = await import('../shared/store/client.ts');
  const { setDb } = await import('../shared/store/db.ts');
  const db = { client: createDocumentClient({ tableName: TABLE, endpoint: dynamo.endpoint }), table: TABLE };
  setDb(db);
  await ensureTable(db);
  const consents = (await import('../functions/consents/handler.ts')).handler;
  const auth = { tenant: TENANT, scopes: 'admin', keyId: 'key_bench' };

  log(`seeding ${DELIVERY_STATUSES} consented WhatsApp contacts…`);
  const phones = Array.from({ length: DELIVERY_STATUSES }, (_, i) => phoneOf(i));
  await mapLimit(phones, 16, async (phone) => {
    const body = {
      subject: { phone },
      channel: 'whatsapp',
      purpose: 'marketing',
      source: 'web_form',
      noticeVersion: '2026-09-privacy-v3',
    };
    const out = await consents(apiEvent('POST /v1/consents', body, auth), lambdaContext('consents'));
    if (out.statusCode !== 201) throw new Error(`grant answered ${out.statusCode}: ${out.body}`);
  });

  log('whatsapp: 1,000 statuses through the group commit, 3 deliveries and a redelivery…');
  const batched = await measureWhatsAppBatched(db, TENANT, phones);
  log('whatsapp: 1,000 statuses through the webhook handler as wired, 3 deliveries…');
  const handler = await measureWhatsAppDelivery(TENANT, phones);
  log('connectors: a signed 1,000-event SendGrid batch, 3 runs…');
  const sendgrid = await measureSendGridBatch('bench-connectors');
  const figures = {
    measuredAt: new Date().toISOString(),
    machine: {
      node: process.version,
      cpus: cpus().length,
      loadavgAtStart,
      loadavgAtEnd: loadavg().map((l) => round(l, 1)),
    },
    ...batched,
    ...handler,
    ...sendgrid,
  };
  process.stdout.write(`${JSON.stringify(figures, null, 2)}\n`);
}

try {
  await main();
} catch (error) {
  log(`bench failed: ${(error as Error).stack ?? error}`);
  process.exitCode = 1;
} finally {
  await cleanup();
}
