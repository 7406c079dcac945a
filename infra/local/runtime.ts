import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { anchorFromEnv } from '#shared/log/anchor.ts';
import { logSignerFromPem } from '#shared/log/note.ts';
import { logger } from '#shared/log.ts';
import { getSecrets } from '#shared/secrets.ts';
import { startLocalChangeEvents } from '#shared/services/local-events.ts';
import { publishLogKeys } from '#shared/services/log-keys.ts';
import { logRetention, runRetention } from '#shared/services/retention.ts';
import { sealAll } from '#shared/services/sealer.ts';
import { fileCheckpoint, memoryCheckpoint } from '#shared/services/stream-poller.ts';
import { DAY_MS } from '#shared/time.ts';
import { createDocumentClient } from '#store/client.ts';
import { type Db, setDb } from '#store/db.ts';
import { announceEndpoint, ensureDevKey, ensureTable } from './bootstrap.ts';
import { type EmbeddedDynamo, startDynamoLocal } from './dynamo.ts';
import { createLocalServer } from './server.ts';

/** Settings of the local runtime (README, "Configuration (local runtime)"). */
export interface LocalSettings {
  host: string;
  port: number;
  dataDir: string;
  tenant: string;
  devApiKey?: string;
  endpoint?: string;
  tableName: string;
  publicBaseUrl?: string;
}

export function settingsFromEnv(env: NodeJS.ProcessEnv = process.env): LocalSettings {
  const port = Number(env.PORT ?? 3000);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error(`PORT must be a port number, not "${env.PORT}"`);
  return {
    host: env.HOST || '127.0.0.1',
    port,
    dataDir: env.DATA_DIR || '.data',
    tenant: env.DEV_TENANT || 'demo',
    devApiKey: env.DEV_API_KEY || undefined,
    endpoint: env.DYNAMODB_ENDPOINT || undefined,
    tableName: env.TABLE_NAME || 'consent-gate',
    publicBaseUrl: env.PUBLIC_BASE_URL || undefined,
  };
}

/**
 * The daily retention job of the cloud's schedule, locally: a run at start, then one every `everyMs`, each
 * logged as one summary line (counts, no identifier). Returns what stops it: the timer is cleared (it is
 * unref'd, so it never keeps the process alive) and a run in flight is waited for.
 */
export function scheduleRetention(db: Db, everyMs = DAY_MS): () => Promise<void> {
  let running: Promise<void> | undefined;
  const run = () => {
    running ??= runRetention(db, { dryRun: false, now: new Date().toISOString() })
      .then((reports) => logRetention(reports, false))
      .catch((error) => logger.warn('retention run failed', { errorName: (error as Error).name }))
      .finally(() => {
        running = undefined;
      });
  };
  run();
  const timer = setInterval(run, everyMs).unref();
  return async () => {
    clearInterval(timer);
    await running;
  };
}

/** The local sealer's pace: a run every 500 ms, events sealed 1 s after their time (README, "Verifiable log"). */
export const LOCAL_SEAL = { everyMs: 500, lagMs: 1_000, sweepEvery: 20, sweepMs: 30_000 };

/**
 * The verifiable log's sealer, locally: a run now, then one every `everyMs` over every tenant with a log, and
 * every `sweepEvery`-th run a look `sweepMs` back for late events. Like the retention timer it is unref'd,
 * and what it returns stops it: the timer is cleared and a run in flight is waited for. A failing run is
 * logged once per error kind (not every 500 ms) and the next run tries again.
 */
export function scheduleSealer(db: Db, pace = LOCAL_SEAL): () => Promise<void> {
  let running: Promise<void> | undefined;
  let runs = 0;
  let lastError: string | undefined;
  const anchor = anchorFromEnv();
  // The public keys are published in the anchor before the first checkpoint they verify.
  const signer = publishLogKeys(anchor)
    .then(() => getSecrets())
    .then(({ logKeys }) => logSignerFromPem(logKeys[0]));
  signer.catch(() => undefined);
  const run = () => {
    if (running) return;
    const sweep = runs++ % pace.sweepEvery === 0;
    // A run stops starting batches after a few seconds (a big backlog goes on in the next runs): stop stays quick.
    const deadline = Date.now() + 5_000;
    running = signer
      .then((key) =>
        sealAll(db, { signer: key, anchor, lagMs: pace.lagMs, deadline, ...(sweep ? { sweepMs: pace.sweepMs } : {}) }),
      )
      .then(({ failed }) => {
        if (failed.length === 0) lastError = undefined;
      })
      .catch((error) => {
        const name = (error as Error).name;
        if (name !== lastError) logger.warn('sealer run failed', { errorName: name });
        lastError = name;
      })
      .finally(() => {
        running = undefined;
      });
  };
  run();
  const timer = setInterval(run, pace.everyMs).unref();
  return async () => {
    clearInterval(timer);
    await running;
  };
}

/** A started local runtime. */
export interface LocalRuntime {
  url: string;
  endpoint: string;
  devKey: { key: string; keyId: string; tenant: string; created: boolean };
  server: Server;
  dynamo?: EmbeddedDynamo;
  stop(): Promise<void>;
}

/**
 * Starts the local runtime: DynamoDB Local (unless an endpoint is given), the table, the dev key, then
 * the HTTP server. Whatever was started is stopped again if a later step fails.
 */
export async function startLocal(settings: LocalSettings): Promise<LocalRuntime> {
  let dynamo: EmbeddedDynamo | undefined;
  let server: Server | undefined;
  let withdraw = () => {};
  let stopRetention = async () => {};
  let stopSealer = async () => {};
  let stopEvents = async () => {};
  const stop = async () => {
    withdraw();
    await Promise.all([stopRetention(), stopSealer(), stopEvents()]);
    if (server?.listening) {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server?.close(() => resolve()));
    }
    await dynamo?.stop();
  };
  try {
    if (!settings.endpoint) dynamo = await startDynamoLocal({ dataDir: settings.dataDir });
    const endpoint = settings.endpoint ?? (dynamo as EmbeddedDynamo).endpoint;
    // The handlers read these when they first need the store or the secrets.
    process.env.DYNAMODB_ENDPOINT = endpoint;
    process.env.TABLE_NAME = settings.tableName;
    process.env.DATA_DIR = settings.dataDir;
    process.env.DEV_TENANT = settings.tenant;
    const db: Db = {
      client: createDocumentClient({ tableName: settings.tableName, endpoint }),
      table: settings.tableName,
    };
    setDb(db);
    await ensureTable(db);
    if (dynamo) withdraw = announceEndpoint(settings.dataDir, endpoint);
    const devKey = await ensureDevKey(db, settings);
    server = createLocalServer();
    await new Promise<void>((resolve, reject) => {
      server?.once('error', reject);
      server?.listen(settings.port, settings.host, () => resolve());
    });
    stopRetention = scheduleRetention(db);
    stopSealer = scheduleSealer(db);
    // Change events: the table's stream → dispatcher → in-process queue → signed deliveries (docs/events.md).
    const events = await startLocalChangeEvents(db, {
      endpoint,
      checkpoint:
        settings.dataDir === 'memory'
          ? memoryCheckpoint()
          : fileCheckpoint(join(settings.dataDir, 'stream-positions.json')),
    });
    stopEvents = events.stop;
    const { port } = server.address() as AddressInfo;
    const url = `http://${settings.host.includes(':') ? `[${settings.host}]` : settings.host}:${port}`;
    process.env.PUBLIC_BASE_URL = settings.publicBaseUrl ?? url;
    return { url, endpoint, devKey, server, dynamo, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
