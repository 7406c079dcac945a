// `npm run bench`: the figures of docs/performance.md, measured in one run on one DynamoDB Local.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
process.env.POWERTOOLS_LOG_LEVEL ??= 'ERROR';

import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { BatchGetItemCommand, DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { ensureTable } from '../infra/local/bootstrap.ts';
import { type EmbeddedDynamo, startDynamoLocal } from '../infra/local/dynamo.ts';
import { mapLimit } from '../shared/concurrency.ts';
import { SIGNAL_TYPES } from '../shared/domain/policy.ts';
import { ROUTES } from '../shared/http/routes.ts';
import type { Db } from '../shared/store/db.ts';
import { measureBundles } from './bundles.ts';
import { measureSendGridBatch } from './connectors.ts';
import { measureChangeEvents } from './events.ts';
import { interleavedLatency, loadGate, type ServerProcess, startServerProcess } from './http.ts';
import { apiEvent, itemBytes, lambdaContext, median, percentile, phoneOf, round, timed } from './lib.ts';
import { measureLog } from './log.ts';
import { measureWhatsAppBatched } from './webhook-batches.ts';
import { DELIVERY_STATUSES, measureWhatsAppDelivery } from './whatsapp.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const TENANT = 'bench';
const TABLE = 'consent-gate-bench';
const API_KEY = 'cg_bench_0123456789abcdefghijklmnopqrstuvwxyz';
/** Sizes: bounded so the whole run takes a few minutes on 2 cores. */
const N = {
  contacts: Number(process.env.BENCH_CONTACTS ?? 10_000),
  writers: 16,
  gateWarmup: 300,
  gateSamples: Number(process.env.BENCH_GATE_SAMPLES ?? 3000),
  batchReps: 3,
  signals: Number(process.env.BENCH_SIGNALS ?? 10_000),
  httpSeconds: Number(process.env.BENCH_HTTP_SECONDS ?? 10),
  httpSamples: Number(process.env.BENCH_HTTP_SAMPLES ?? 2000),
  exportEvents: Number(process.env.BENCH_EXPORT_EVENTS ?? 100_000),
  receiptWrites: Number(process.env.BENCH_RECEIPT_WRITES ?? 200),
  eventSamples: Number(process.env.BENCH_EVENT_SAMPLES ?? 100),
  eventBurst: Number(process.env.BENCH_EVENT_BURST ?? 1000),
};

const log = (line: string) => process.stderr.write(`${line}\n`);
const run = promisify(execFile);

let dynamo: EmbeddedDynamo | undefined;
let server: ServerProcess | undefined;
let bareServer: ServerProcess | undefined;
const dataDir = mkdtempSync(join(tmpdir(), 'consent-gate-bench-'));

async function cleanup() {
  await server?.stop().catch(() => {});
  await bareServer?.stop().catch(() => {});
  await dynamo?.stop().catch(() => {});
  rmSync(dataDir, { recursive: true, force: true });
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    log(`\n${signal}: stopping DynamoDB Local and the server…`);
    void cleanup().finally(() => process.exit(130));
  });
}

async function main() {
  const started = Date.now();
  const loadavgAtStart = loadavg().map((l) => round(l, 1));
  log('starting DynamoDB Local (in memory)…');
  dynamo = await startDynamoLocal({ dataDir: 'memory' });
  // The handlers read these on first use: set them before importing anything that builds a client.
  process.env.DYNAMODB_ENDPOINT = dynamo.endpoint;
  process.env.TABLE_NAME = TABLE;
  process.env.DATA_DIR = dataDir;
  process.env.AWS_REGION = 'eu-west-3';
  const { createDocumentClient } = await import('../shared/store/client.ts');
  const { setDb } = await import('../shared/store/db.ts');
  const { keys } = await import('../shared/store/table.ts');
  const { createApiKey } = await import('../shared/auth/api-keys.ts');
  const db = { client: createDocumentClient({ tableName: TABLE, endpoint: dynamo.endpoint }), table: TABLE };
  setDb(db);
  await ensureTable(db);
  await createApiKey(db, { tenant: TENANT, scopes: ['admin'], name: 'bench', key: API_KEY });
  const gate = (await import('../functions/gate/handler.ts')).handler;
  const consents = (await import('../functions/consents/handler.ts')).handler;
  const auth = { tenant: TENANT, scopes: 'admin', keyId: 'key_bench' };
  const gateAuth = { tenant: TENANT, scopes: 'gate:check', keyId: 'key_bench' };

  // A bare client, configured like the service's, for the floor figures.
  const bare = new DynamoDBClient({
    region: 'eu-west-3',
    endpoint: dynamo.endpoint,
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    maxAttempts: 3,
    requestHandler: new NodeHttpHandler({ connectionTimeout: 1000, requestTimeout: 3000 }),
  });

  // --- Writes: consent grants from concurrent writers (also seeds the contacts used below). ---
  log(`writes: ${N.contacts} consent grants, ${N.writers} concurrent writers…`);
  const subjectKeys: string[] = new Array(N.contacts);
  const writeMs: number[] = [];
  const writeStarted = performance.now();
  await mapLimit(range(0, N.contacts), N.writers, async (i) => {
    const event = apiEvent(
      'POST /v1/consents',
      {
        subject: { phone: phoneOf(i) },
        channel: 'whatsapp',
        purpose: 'marketing',
        source: 'web_form',
        noticeVersion: '2026-09-privacy-v3',
        evidence: { formId: 'newsletter-footer', ipAddress: '203.0.113.7' },
      },
      auth,
    );
    const { ms, value } = await timed(() => consents(event, lambdaContext('consents')));
    if (value.statusCode !== 201) throw new Error(`grant answered ${value.statusCode}: ${value.body}`);
    subjectKeys[i] = JSON.parse(value.body as string).subjectKey;
    writeMs.push(ms);
  });
  const writeSeconds = (performance.now() - writeStarted) / 1000;

  // --- The verifiable log: seal the grants, time receipts, then write → receipt with the sealer loop. ---
  log(`log: sealing ${N.contacts} events, ${N.receiptWrites} writes until their receipt…`);
  const logFigures = await measureLog(db, TENANT, auth, N.receiptWrites);

  // --- Gate in-process vs a bare strongly consistent GetItem of the same item, interleaved. ---
  log(`gate: ${N.gateSamples} checks interleaved with bare GetItem…`);
  const gateMs: number[] = [];
  const rawMs: number[] = [];
  for (let i = 0; i < N.gateWarmup + N.gateSamples; i++) {
    const n = (i * 7919) % N.contacts;
    const event = apiEvent('POST /v1/gate/check', { subject: { phone: phoneOf(n) }, channel: 'whatsapp' }, gateAuth);
    const get = new GetItemCommand({
      TableName: TABLE,
      Key: { PK: { S: keys.subject(TENANT, subjectKeys[n]) }, SK: { S: keys.state } },
      ConsistentRead: true,
    });
    const runGate = () => timed(() => gate(event, lambdaContext('gate')));
    const runRaw = () => timed(() => bare.send(get));
    // Alternate the order so neither side always runs on a warmer connection.
    const [g, r] = i % 2 ? [await runGate(), await runRaw()] : [undefined, await runRaw()];
    const gateRun = g ?? (await runGate());
    if (gateRun.value.statusCode !== 200) throw new Error(`gate answered ${gateRun.value.statusCode}`);
    if (i >= N.gateWarmup) {
      gateMs.push(gateRun.ms);
      rawMs.push(r.ms);
    }
  }

  // --- Capacity of one check: count ConsumedCapacity of every read the gate makes. ---
  const consumed: number[] = [];
  db.client.middlewareStack.add(
    (next) => async (args) => {
      const input = args.input as { ReturnConsumedCapacity?: string };
      input.ReturnConsumedCapacity = 'TOTAL';
      const out = await next(args);
      const cc = (out.output as { ConsumedCapacity?: { CapacityUnits?: number } | { CapacityUnits?: number }[] })
        .ConsumedCapacity;
      for (const c of Array.isArray(cc) ? cc : cc ? [cc] : []) consumed.push(c.CapacityUnits ?? 0);
      return out;
    },
    { step: 'initialize', name: 'benchConsumedCapacity' },
  );
  const capacityChecks = 100;
  for (let i = 0; i < capacityChecks; i++) {
    await gate(
      apiEvent('POST /v1/gate/check', { subject: { phone: phoneOf(i) }, channel: 'whatsapp' }, gateAuth),
      lambdaContext('gate'),
    );
  }
  const rcuPerCheck = consumed.reduce((a, b) => a + b, 0) / capacityChecks;
  db.client.middlewareStack.remove('benchConsumedCapacity');

  // --- Batch pre-flight of all contacts in chunks of 1000 vs bare BatchGetItem of the same keys. ---
  log(`batch: ${N.contacts} contacts in chunks of 1000, ${N.batchReps} repetitions…`);
  const chunks: number[][] = [];
  for (let i = 0; i < N.contacts; i += 1000) chunks.push(range(i, Math.min(N.contacts, i + 1000)));
  const batchRuns: number[] = [];
  const rawBatchRuns: number[] = [];
  for (let rep = 0; rep < N.batchReps + 1; rep++) {
    const batch = await timed(async () => {
      for (const chunk of chunks) {
        const event = apiEvent(
          'POST /v1/gate/check-batch',
          { channel: 'whatsapp', items: chunk.map((n) => ({ subject: { phone: phoneOf(n) } })) },
          gateAuth,
        );
        const res = await gate(event, lambdaContext('gate'));
        if (res.statusCode !== 200) throw new Error(`check-batch answered ${res.statusCode}`);
      }
    });
    // The same keys, the same shape: per 1000, ten BatchGetItem of 100 in parallel.
    const raw = await timed(async () => {
      for (const chunk of chunks) {
        const groups: number[][] = [];
        for (let i = 0; i < chunk.length; i += 100) groups.push(chunk.slice(i, i + 100));
        await Promise.all(groups.map((g) => bareBatchGet(g.map((n) => subjectKeys[n]))));
      }
    });
    if (rep > 0) {
      batchRuns.push(batch.ms);
      rawBatchRuns.push(raw.ms);
    }
  }

  async function bareBatchGet(sks: string[]) {
    let pending = sks.map((sk) => ({ PK: { S: keys.subject(TENANT, sk) }, SK: { S: keys.state } }));
    while (pending.length) {
      const out = await bare.send(
        new BatchGetItemCommand({ RequestItems: { [TABLE]: { Keys: pending, ConsistentRead: true } } }),
      );
      pending = (out.UnprocessedKeys?.[TABLE]?.Keys as typeof pending | undefined) ?? [];
    }
  }

  // --- State item size after many signals (when the signals route exists). ---
  let maxStateBytes: number | null = null;
  let maxStateNote = '';
  let signalSubjectKey: string | undefined;
  const signalsRoute = ROUTES.find((r) => r.method === 'POST' && r.path === '/v1/signals');
  if (signalsRoute && existsSync(join(ROOT, 'functions/signals/handler.ts'))) {
    log(`signals: ${N.signals} signals on one subject…`);
    const signals = (await import('../functions/signals/handler.ts')).handler;
    // Every signal type of the contract (the extension `read_receipts_missing` included).
    const types = SIGNAL_TYPES;
    const base = Date.now() - N.signals * 1000;
    for (let i = 0; i < N.signals; i++) {
      const event = apiEvent(
        'POST /v1/signals',
        {
          subject: { phone: phoneOf(0) },
          channel: 'whatsapp',
          type: types[i % types.length],
          observedAt: new Date(base + i * 1000).toISOString(),
          messageId: `wamid.bench${i}`,
        },
        auth,
      );
      const res = await signals(event, lambdaContext('signals'));
      if (res.statusCode >= 300) throw new Error(`signal answered ${res.statusCode}: ${res.body}`);
    }
    signalSubjectKey = subjectKeys[0];
  } else {
    maxStateNote = 'POST /v1/signals does not exist yet: measured on consented subjects without signals';
  }
  const sizeSample = [signalSubjectKey ?? subjectKeys[0], ...subjectKeys.slice(1, 50)];
  let stateRcu = 0;
  maxStateBytes = 0;
  for (const sk of sizeSample) {
    const out = await bare.send(
      new GetItemCommand({
        TableName: TABLE,
        Key: { PK: { S: keys.subject(TENANT, sk) }, SK: { S: keys.state } },
        ConsistentRead: true,
        ReturnConsumedCapacity: 'TOTAL',
      }),
    );
    if (!out.Item) continue;
    const bytes = itemBytes(out.Item);
    if (bytes > maxStateBytes) {
      maxStateBytes = bytes;
      stateRcu = out.ConsumedCapacity?.CapacityUnits ?? 0;
    }
  }

  // --- A signed 1,000-event SendGrid delivery through its connector (goal ≤ 2 s). ---
  log('connectors: a signed 1,000-event SendGrid batch, 3 runs…');
  const connectorFigures = await measureSendGridBatch('bench-connectors');

  // --- HTTP through the local server, in its own process. ---
  log(`http: autocannon ${N.httpSeconds} s, 16 connections…`);
  server = await startServerProcess(ROOT, {
    endpoint: dynamo.endpoint,
    table: TABLE,
    dataDir,
    tenant: TENANT,
    apiKey: API_KEY,
  });
  const http = await loadGate(server.url, API_KEY, range(0, 1000).map(phoneOf), N.httpSeconds);

  // --- HTTP gate vs a bare GetItem behind the same HTTP stack shape (own process, JSON in and out). ---
  log(`http: ${N.httpSamples} gate checks interleaved with a bare GetItem server, one at a time…`);
  bareServer = await startServerProcess(
    ROOT,
    { endpoint: dynamo.endpoint, table: TABLE, dataDir, tenant: TENANT, apiKey: API_KEY },
    'bench/bare-getitem-server.ts',
  );
  const pairs = range(0, Math.min(1000, N.contacts)).map((n) => ({ phone: phoneOf(n), subjectKey: subjectKeys[n] }));
  const latency = await interleavedLatency({ url: server.url, apiKey: API_KEY }, bareServer, pairs, N.httpSamples);
  await bareServer.stop();
  bareServer = undefined;
  await server.stop();
  server = undefined;

  // --- A WhatsApp delivery of 1,000 statuses (Meta's maximum), in process. ---
  log(`whatsapp: deliveries of ${DELIVERY_STATUSES} statuses, group commit and handler…`);
  const whatsappPhones = range(0, Math.min(DELIVERY_STATUSES, N.contacts)).map(phoneOf);
  const whatsapp = {
    ...(await measureWhatsAppBatched(db, TENANT, whatsappPhones)),
    ...(await measureWhatsAppDelivery(TENANT, whatsappPhones)),
  };

  // --- Bundles and cold import. ---
  log('bundles: esbuild + cold import of every function…');
  const bundles = await measureBundles(ROOT);
  // The other choice for the gate, for comparison: the AWS SDK bundled in (tree-shaken, one file).
  const [gateSdkBundled] = await measureBundles(ROOT, { sdk: 'bundled', only: ['gate'] });

  // --- Change events: withdrawal → signed delivery at a local receiver (its own table and stream). Before the
  // export's 100,000 events: with them in memory, DynamoDB Local timed out under the burst of grants. ---
  log(`events: ${N.eventSamples} withdrawals one at a time, then a burst of ${N.eventBurst}…`);
  const eventFigures = await measureChangeEvents(dynamo.endpoint, N.eventSamples, N.eventBurst);

  // --- Audit export of 100k events, in its own process (the CLI, as a DPO runs it). ---
  let exportFigures = { export_100k_s: null as number | null, export_100k_peak_rss_mb: null as number | null };
  let exportNote = 'the audit export (cli/commands/export.ts) does not exist yet';
  if (existsSync(join(ROOT, 'cli/commands/export.ts'))) {
    log(`export: seeding ${N.exportEvents} events, then the CLI export…`);
    exportFigures = await measureExport(db, N.exportEvents);
    exportNote = `npm run cli -- export --format ndjson --out FILE of ${N.exportEvents} events (1000 subjects, 10 days), peak RSS of the whole CLI process (tsx included)`;
  }

  const gateP50 = median(gateMs);
  const rawP50 = median(rawMs);
  const batchMs = median(batchRuns);
  const rawBatchMs = median(rawBatchRuns);
  const results = {
    measuredAt: new Date().toISOString(),
    machine: {
      node: process.version,
      cpus: cpus().length,
      loadavgAtStart,
      loadavgAtEnd: loadavg().map((l) => round(l, 1)),
      store: 'DynamoDB Local (in memory), same machine',
    },
    gate_p50_ms: round(gateP50),
    gate_p99_ms: round(percentile(gateMs, 0.99)),
    raw_getitem_p50_ms: round(rawP50),
    raw_getitem_p99_ms: round(percentile(rawMs, 0.99)),
    gate_vs_getitem_p50: round(gateP50 / rawP50, 2),
    http_gate_rps: round(http.rps, 0),
    http_gate_p50_ms: http.p50,
    http_gate_p99_ms: http.p99,
    http_gate_non2xx: http.non2xx + http.errors,
    http_gate_single_p50_ms: round(median(latency.gateMs)),
    http_gate_single_p99_ms: round(percentile(latency.gateMs, 0.99)),
    http_bare_getitem_p50_ms: round(median(latency.bareMs)),
    http_bare_getitem_p99_ms: round(percentile(latency.bareMs, 0.99)),
    http_gate_vs_getitem_p50: round(median(latency.gateMs) / median(latency.bareMs), 2),
    ...whatsapp,
    batch10k_ms: round(batchMs, 0),
    raw_batchget10k_ms: round(rawBatchMs, 0),
    batch_vs_batchget: round(batchMs / rawBatchMs, 2),
    write_rps: round(N.contacts / writeSeconds, 0),
    write_p50_ms: round(median(writeMs)),
    write_p99_ms: round(percentile(writeMs, 0.99)),
    rcu_per_check: round(rcuPerCheck, 2),
    ...logFigures,
    ...connectorFigures,
    max_state_item_bytes: maxStateBytes,
    max_state_item_rcu: stateRcu,
    ...(maxStateNote ? { max_state_item_note: maxStateNote } : {}),
    bundling: 'esbuild like infra/constructs/consent-function.ts: esm, node24, minify, @aws-sdk/* external',
    bundles,
    gate_sdk_bundled: { bundle_kb: gateSdkBundled.bundle_kb, init_ms: gateSdkBundled.init_ms },
    ...exportFigures,
    export_note: exportNote,
    ...eventFigures,
    samples: {
      gate: gateMs.length,
      batchReps: batchRuns.length,
      writes: N.contacts,
      writers: N.writers,
      signals: signalSubjectKey ? N.signals : 0,
      httpSeconds: N.httpSeconds,
      httpPairs: latency.gateMs.length,
    },
    benchSeconds: 0,
  };
  results.benchSeconds = Math.round((Date.now() - started) / 1000);
  writeFileSync(join(ROOT, 'bench/results.json'), `${JSON.stringify(results, null, 2)}\n`);
  printTable(results);
}

/** Seeds a tenant's ledger straight into the table, then times `consent-gate export` and reads its peak RSS. */
async function measureExport(db: Db, events: number) {
  const { seedLedger } = await import('../test/helpers/audit-seed.ts');
  const tenant = 'bench-export';
  const subjects = 1000;
  await seedLedger(db, tenant, {
    subjects,
    perSubject: Math.ceil(events / subjects),
    start: '2026-10-01T00:00:00Z',
    spanMs: 10 * 86_400_000,
  });
  const out = join(dataDir, 'export.ndjson');
  const { stderr } = await run(
    '/usr/bin/time',
    [
      '-f',
      'bench-time %M %e',
      process.execPath,
      '--import',
      'tsx',
      join(ROOT, 'cli/main.ts'),
      'export',
      '--tenant',
      tenant,
      '--from',
      '2026-10-01',
      '--to',
      '2026-10-11',
      '--format',
      'ndjson',
      '--out',
      out,
      '--no-progress',
    ],
    {
      cwd: ROOT,
      env: { ...process.env, DYNAMODB_ENDPOINT: process.env.DYNAMODB_ENDPOINT, TABLE_NAME: db.table },
      maxBuffer: 16 * 2 ** 20,
    },
  );
  const [, rssKb, seconds] = /bench-time (\d+) ([\d.]+)/.exec(stderr) ?? [];
  const lines = readFileSync(out, 'utf8').split('\n').filter(Boolean).length;
  if (lines < events) throw new Error(`the export wrote ${lines} events, expected ${events}: ${stderr.slice(-500)}`);
  return { export_100k_s: round(Number(seconds), 1), export_100k_peak_rss_mb: round(Number(rssKb) / 1024, 0) };
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from }, (_, i) => from + i);
}

function printTable(r: Record<string, unknown>) {
  const rows: [string, unknown, string][] = [
    ['gate_p50_ms', r.gate_p50_ms, ''],
    ['gate_p99_ms', r.gate_p99_ms, ''],
    ['raw_getitem_p50_ms', r.raw_getitem_p50_ms, ''],
    ['gate_vs_getitem_p50', r.gate_vs_getitem_p50, 'target ≤ 1.3'],
    ['http_gate_rps', r.http_gate_rps, ''],
    ['http_gate_p99_ms', r.http_gate_p99_ms, ''],
    ['http_gate_single_p50_ms', r.http_gate_single_p50_ms, ''],
    ['http_bare_getitem_p50_ms', r.http_bare_getitem_p50_ms, ''],
    ['http_gate_vs_getitem_p50', r.http_gate_vs_getitem_p50, 'target ≤ 1.3'],
    ['whatsapp_1000_statuses_ms', r.whatsapp_1000_statuses_ms, 'target ≤ 1500'],
    ['whatsapp_1000_statuses_handler_ms', r.whatsapp_1000_statuses_handler_ms, ''],
    ['batch10k_ms', r.batch10k_ms, ''],
    ['raw_batchget10k_ms', r.raw_batchget10k_ms, ''],
    ['batch_vs_batchget', r.batch_vs_batchget, 'target ≤ 1.3'],
    ['write_rps', r.write_rps, ''],
    ['write_p99_ms', r.write_p99_ms, ''],
    ['rcu_per_check', r.rcu_per_check, 'target 1'],
    ['sendgrid_batch_1000_ms', r.sendgrid_batch_1000_ms, 'target ≤ 2000'],
    ['sendgrid_batch_vs_appends', r.sendgrid_batch_vs_appends, ''],
    ['max_state_item_bytes', r.max_state_item_bytes, 'target < 4096'],
    ['seal_events_per_s', r.seal_events_per_s, 'goal ≥ 2000'],
    ['receipt_p50_ms', r.receipt_p50_ms, ''],
    ['receipt_p99_ms', r.receipt_p99_ms, ''],
    ['write_to_receipt_p50_ms', r.write_to_receipt_p50_ms, ''],
    ['write_to_receipt_p99_ms', r.write_to_receipt_p99_ms, 'goal ≤ 2000'],
    ['export_100k_s', r.export_100k_s, ''],
    ['export_100k_peak_rss_mb', r.export_100k_peak_rss_mb, ''],
    ['event_delivery_p50_ms', r.event_delivery_p50_ms, ''],
    ['event_delivery_p99_ms', r.event_delivery_p99_ms, 'target ≤ 2000'],
    ['event_deliveries_per_s', r.event_deliveries_per_s, ''],
  ];
  const lines = ['| figure | value | target |', '|---|---:|---|', ...rows.map(([k, v, t]) => `| ${k} | ${v} | ${t} |`)];
  lines.push('', '| function | bundle_kb | init_ms |', '|---|---:|---:|');
  for (const b of r.bundles as { fn: string; bundle_kb: number; init_ms: number }[]) {
    lines.push(`| ${b.fn} | ${b.bundle_kb} | ${b.init_ms} |`);
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

try {
  await main();
} catch (error) {
  log(`bench failed: ${(error as Error).stack ?? error}`);
  process.exitCode = 1;
} finally {
  await cleanup();
}
