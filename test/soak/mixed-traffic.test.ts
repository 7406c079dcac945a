import { randomInt } from 'node:crypto';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyChain } from '#domain/ledger.ts';
import { ROUTES } from '#http/routes.ts';
import { type Db, getDb } from '#store/db.ts';
import { getState, listEvents } from '#store/subjects.ts';
import { phone, tenantId, tenantWithKey } from '../helpers/factories.ts';
import { client, startServerOnTable } from '../helpers/http.ts';

/*
 * A bounded soak: mixed gate checks, batch checks, grants, withdrawals and signals from concurrent
 * clients, as fast as the machine goes, for SOAK_SECONDS (short in CI, `SOAK_SECONDS=60` by hand).
 * Afterwards every touched ledger chain is valid and agrees with its state item, every acknowledged
 * write is in the ledger, and the heap after GC has not kept growing. Rates and memory are printed,
 * never asserted as timings.
 */

const SECONDS = Number(process.env.SOAK_SECONDS ?? 10);
const CLIENTS = Number(process.env.SOAK_CLIENTS ?? 12);
const SUBJECTS = 150;

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

let server: Awaited<ReturnType<typeof startServerOnTable>>;
let db: Db;
let tenant: string;
let api: ReturnType<typeof client>;

beforeAll(async () => {
  db = { client: getDb().client, table: `consent-gate-soak-${tenantId('t')}` };
  server = await startServerOnTable(db);
  const key = await tenantWithKey(['admin']);
  tenant = key.tenant;
  api = client(server.url, key.key);
});

afterAll(() => server?.close());

const heapAfterGc = () => {
  gc();
  return process.memoryUsage().heapUsed / 2 ** 20;
};

describe('soak', () => {
  it(
    `mixed traffic for ${SECONDS} s keeps every chain valid and every acknowledged write`,
    async () => {
      const phones = Array.from({ length: SUBJECTS }, () => phone());
      const hasSignals = ROUTES.some((r) => r.method === 'POST' && r.path === '/v1/signals');
      const acked = new Map<string, { subjectKey: string; type: string }>();
      const touched = new Set<string>();
      const counts: Record<string, number> = {};
      const unexpected: string[] = [];
      const count = (name: string) => {
        counts[name] = (counts[name] ?? 0) + 1;
      };
      const pick = () => phones[Math.random() < 0.3 ? randomInt(0, 10) : randomInt(0, SUBJECTS)];
      const channel = () => (Math.random() < 0.8 ? 'whatsapp' : 'sms');

      // DynamoDB Local throttles when the whole suite runs beside the soak: a read then fails closed (503
      // store_unavailable with Retry-After, what a client retries), which is right; counted, and bounded below.
      let readsFailedClosed = 0;
      let reads = 0;
      const failedClosed = (res: { status: number; body?: { code?: string }; headers: Headers }) => {
        const closed = res.status === 503 && res.body?.code === 'store_unavailable' && !!res.headers.get('retry-after');
        if (closed) readsFailedClosed++;
        return closed;
      };

      const once = async () => {
        const roll = Math.random();
        const subject = { phone: pick() };
        if (roll < 0.45) {
          reads++;
          const res = await api.gateCheck(subject, channel());
          count(`gate ${res.status}`);
          if (res.status !== 200 && !failedClosed(res)) unexpected.push(`gate ${res.status} ${res.body?.code}`);
        } else if (roll < 0.5) {
          reads++;
          const items = Array.from({ length: 50 }, () => ({ subject: { phone: pick() } }));
          const res = await api.post('/v1/gate/check-batch', { channel: 'whatsapp', items });
          count(`batch ${res.status}`);
          if (res.status !== 200 && !failedClosed(res)) unexpected.push(`batch ${res.status} ${res.body?.code}`);
        } else if (roll < 0.72) {
          const res = await api.post('/v1/consents', {
            subject,
            channel: channel(),
            purpose: 'marketing',
            source: 'web_form',
            noticeVersion: 'soak-v1',
          });
          count(`grant ${res.status}`);
          if (res.status === 201) {
            acked.set(res.body.eventId, { subjectKey: res.body.subjectKey, type: 'consent.granted' });
            touched.add(res.body.subjectKey);
          } else if (res.status === 409 && res.body?.code === 'stale_consent') {
            // A grant timed before a concurrent withdrawal that committed first: the withdrawal wins.
          } else if (!(res.status === 503 && res.body?.code === 'write_contention')) {
            unexpected.push(`grant ${res.status} ${res.body?.code}`);
          }
        } else if (roll < 0.85 || !hasSignals) {
          const res = await api.post('/v1/consents/withdraw', { subject, channel: channel() });
          count(`withdraw ${res.status}`);
          if (res.status === 200) {
            acked.set(res.body.eventId, { subjectKey: res.body.subjectKey, type: 'consent.withdrawn' });
            touched.add(res.body.subjectKey);
          } else if (!(res.status === 503 && res.body?.code === 'write_contention')) {
            unexpected.push(`withdraw ${res.status} ${res.body?.code}`);
          }
        } else {
          const type = ['message_sent', 'message_delivered', 'message_read', 'message_undelivered'][randomInt(0, 4)];
          const res = await api.post('/v1/signals', {
            subject,
            channel: 'whatsapp',
            type,
            observedAt: new Date().toISOString(),
            messageId: `wamid.soak${randomInt(0, 1e9)}`,
          });
          count(`signal ${res.status}`);
          if (res.status === 202) touched.add(res.body.subjectKey);
          else if (!(res.status === 503 && res.body?.code === 'write_contention')) {
            unexpected.push(`signal ${res.status} ${res.body?.code}`);
          }
        }
      };

      const heap: number[] = [];
      const rss: number[] = [];
      const started = Date.now();
      const deadline = started + SECONDS * 1000;
      let requests = 0;
      const sampler = setInterval(() => {
        heap.push(process.memoryUsage().heapUsed / 2 ** 20);
        rss.push(process.memoryUsage().rss / 2 ** 20);
      }, 500);
      let heapAfterWarmup = 0;
      const warmupEnds = started + (SECONDS * 1000) / 4;
      await Promise.all(
        Array.from({ length: CLIENTS }, async () => {
          while (Date.now() < deadline) {
            await once();
            requests++;
            if (!heapAfterWarmup && Date.now() >= warmupEnds) heapAfterWarmup = heapAfterGc();
          }
        }),
      );
      clearInterval(sampler);
      const elapsed = (Date.now() - started) / 1000;
      const heapAtEnd = heapAfterGc();

      // Every touched chain is valid and the state item points at its head.
      let events = 0;
      for (const subjectKey of touched) {
        const ledger = await listEvents(db, tenant, subjectKey);
        const chain = verifyChain(ledger);
        expect(chain.valid, `chain of ${subjectKey}: ${JSON.stringify(chain.breaks)}`).toBe(true);
        const state = await getState(db, tenant, subjectKey);
        expect(state?.seq).toBe(ledger.length);
        expect(state?.head).toBe(chain.head);
        const found = new Map(ledger.map((e) => [e.eventId, e.type]));
        for (const [eventId, ack] of acked) {
          if (ack.subjectKey === subjectKey) expect(found.get(eventId), `acknowledged ${eventId}`).toBe(ack.type);
        }
        events += ledger.length;
      }
      expect(new Set([...acked.values()].map((a) => a.subjectKey)).size).toBeGreaterThan(0);
      expect(unexpected).toEqual([]);
      // Failing closed under overload is allowed, as the exception: a store that failed reads broadly fails here.
      expect(readsFailedClosed, `${readsFailedClosed} of ${reads} reads failed closed`).toBeLessThanOrEqual(
        Math.ceil(reads * 0.02),
      );

      const summary = {
        seconds: Math.round(elapsed),
        clients: CLIENTS,
        requests,
        rps: Math.round(requests / elapsed),
        acknowledgedWrites: acked.size,
        subjects: touched.size,
        events,
        counts,
        heapAfterGcMb: { afterWarmup: Math.round(heapAfterWarmup), atEnd: Math.round(heapAtEnd) },
        heapMaxMb: Math.round(Math.max(...heap)),
        rssMb: { min: Math.round(Math.min(...rss)), max: Math.round(Math.max(...rss)) },
      };
      console.info(`soak: ${JSON.stringify(summary)}`);
      // Stable memory: what survives a GC after the run is not far above what survived it after warm-up.
      // A coarse guard against a per-request leak (10 KB a request fails it at CI rates); the printed
      // figures of a 60 s run are the finer measure (docs/performance.md).
      expect(heapAtEnd - heapAfterWarmup).toBeLessThan(32);
    },
    (SECONDS + 120) * 1000,
  );
});
