// Change events out, measured (docs/performance.md, "Change events"): a withdrawal through the real consents
// handler → the table's stream (DynamoDB Local) → the local poller and dispatcher → the delivery queue → a signed
// POST to a real receiver on loopback that verifies the signature with `standardwebhooks`.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';
import { ensureTable } from '../infra/local/bootstrap.ts';
import { mapLimit } from '../shared/concurrency.ts';
import { apiEvent, lambdaContext, median, percentile, phoneOf, round } from './lib.ts';

const TENANT = 'bench-events';

export interface EventFigures {
  /** Withdrawal request sent → its signed delivery received and verified, one at a time. */
  event_delivery_p50_ms: number | null;
  event_delivery_p99_ms: number | null;
  /** Deliveries per second to one endpoint, many subjects at once (pipeline start to the last arrival). */
  event_deliveries_per_s: number | null;
  event_samples: number;
  event_burst: number;
}

/** A receiver that verifies each call and notes when each change arrived. */
async function receiver(secret: () => string) {
  const arrived = new Map<string, { at: number; type: string; subjectKey: string }>();
  let bad = 0;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const at = performance.now();
      const body = Buffer.concat(chunks).toString('utf8');
      try {
        const change = new Webhook(secret()).verify(body, req.headers as Record<string, string>) as {
          type: string;
          data: { subjectKey: string };
        };
        arrived.set(String(req.headers['webhook-id']), { at, type: change.type, subjectKey: change.data.subjectKey });
        res.writeHead(204).end();
      } catch {
        bad++;
        res.writeHead(400).end();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/consent`,
    arrived,
    bad: () => bad,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const until = async (done: () => boolean, withinMs: number) => {
  const deadline = Date.now() + withinMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error('change events: a delivery did not arrive');
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
};

/**
 * Runs on its own table of the bench's DynamoDB Local (its stream holds only these changes), with the local
 * runtime's pipeline as `npm start` runs it (stream read every 200 ms, 16 groups delivered at once).
 */
export async function measureChangeEvents(endpoint: string, samples: number, burst: number): Promise<EventFigures> {
  process.env.ALLOW_INSECURE_ENDPOINTS = 'true';
  const { createDocumentClient } = await import('../shared/store/client.ts');
  const { getDb, setDb } = await import('../shared/store/db.ts');
  const { createEndpoint } = await import('../shared/services/event-endpoints.ts');
  const { startLocalChangeEvents } = await import('../shared/services/local-events.ts');
  const { deliverOptionsFromEnv } = await import('../shared/services/change-delivery.ts');
  const consents = (await import('../functions/consents/handler.ts')).handler;
  const table = 'consent-gate-bench-events';
  const db = { client: createDocumentClient({ tableName: table, endpoint }), table };
  const previous = getDb();
  setDb(db);
  await ensureTable(db);
  let secret = '';
  const rx = await receiver(() => secret);
  const { memoryCheckpoint } = await import('../shared/services/stream-poller.ts');
  const checkpoint = memoryCheckpoint();
  let events = await startLocalChangeEvents(db, { endpoint, checkpoint, deliver: deliverOptionsFromEnv() });
  const auth = { tenant: TENANT, scopes: 'admin', keyId: 'key_bench' };
  // As a client does: a 503 (DynamoDB Local throttling the burst) is retried after its Retry-After, a few times.
  const call = async (route: 'POST /v1/consents' | 'POST /v1/consents/withdraw', body: object) => {
    for (let attempt = 1; ; attempt++) {
      const res = await consents(apiEvent(route, body, auth), lambdaContext('consents'));
      if (res.statusCode === 503 && attempt < 5) {
        await new Promise((r) => setTimeout(r, Number(res.headers?.['retry-after'] ?? 1) * 1000));
        continue;
      }
      if (res.statusCode >= 300) throw new Error(`${route} answered ${res.statusCode}: ${res.body}`);
      return JSON.parse(res.body as string) as { subjectKey: string };
    }
  };
  const grant = (n: number) =>
    call('POST /v1/consents', {
      subject: { phone: phoneOf(n) },
      channel: 'sms',
      purpose: 'marketing',
      source: 'web_form',
      noticeVersion: '2026-09-privacy-v3',
    });
  const withdraw = (n: number) =>
    call('POST /v1/consents/withdraw', { subject: { phone: phoneOf(n) }, channel: 'sms', source: 'keyword' });
  const withdrawals = () => [...rx.arrived.values()].filter((a) => a.type === 'consent.withdrawn');
  try {
    const created = await createEndpoint(
      db,
      TENANT,
      { url: rx.url, types: ['consent.withdrawn'] },
      new Date().toISOString(),
    );
    secret = created.secret;
    // Latency: one withdrawal at a time, from the request to its verified delivery.
    const latencies: number[] = [];
    for (let i = 0; i < samples; i++) {
      await grant(50_000_000 + i);
      const before = withdrawals().length;
      const started = performance.now();
      const { subjectKey } = await withdraw(50_000_000 + i);
      await until(() => withdrawals().length > before, 30_000);
      const got = withdrawals().find((a) => a.subjectKey === subjectKey);
      if (!got) throw new Error('change events: the delivery was for another subject');
      latencies.push(got.at - started);
    }
    // Throughput: a burst of withdrawals of many subjects written while the pipeline is stopped, then the
    // pipeline started again from where it was: stream read, dispatch and deliveries, without the writes.
    await events.stop();
    const subjects = Array.from({ length: burst }, (_, i) => 60_000_000 + i);
    await mapLimit(subjects, 16, grant);
    await mapLimit(subjects, 16, withdraw);
    const before = withdrawals().length;
    const t0 = performance.now();
    events = await startLocalChangeEvents(db, { endpoint, checkpoint, deliver: deliverOptionsFromEnv() });
    await until(() => withdrawals().length >= before + burst, 600_000);
    const arrivals = withdrawals()
      .slice(before)
      .map((a) => a.at);
    const seconds = (Math.max(...arrivals) - t0) / 1000;
    if (rx.bad() > 0) throw new Error(`change events: ${rx.bad()} deliveries failed verification`);
    return {
      event_delivery_p50_ms: round(median(latencies), 1),
      event_delivery_p99_ms: round(percentile(latencies, 0.99), 1),
      event_deliveries_per_s: round(burst / seconds, 0),
      event_samples: samples,
      event_burst: burst,
    };
  } finally {
    await events.stop();
    await rx.close();
    setDb(previous);
  }
}
