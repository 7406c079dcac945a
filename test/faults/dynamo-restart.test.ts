import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyChain } from '#domain/ledger.ts';
import { type EmbeddedDynamo, freePort, startDynamoLocal } from '#infra/local/dynamo.ts';
import { createDocumentClient } from '#store/client.ts';
import type { Db } from '#store/db.ts';
import { getState, listEvents } from '#store/subjects.ts';
import { grantBody, tenantWithKey } from '../helpers/factories.ts';
import { client, startServerOnTable } from '../helpers/http.ts';

/*
 * DynamoDB Local killed (SIGKILL, by PID) under a running server, then started again on the same port
 * with the same data folder: the gate answers 503 while the store is away (never an allow, never a
 * hang, never a 500), and answers again by itself once the store is back, with the data intact.
 */

const TABLE = 'consent-gate-restart';
let dataDir: string;
let port: number;
let dynamo: EmbeddedDynamo | undefined;
let db: Db;
let server: Awaited<ReturnType<typeof startServerOnTable>>;
let api: ReturnType<typeof client>;
let tenant: string;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'consent-gate-restart-'));
  port = await freePort();
  dynamo = await startDynamoLocal({ dataDir, port });
  db = { client: createDocumentClient({ tableName: TABLE, endpoint: dynamo.endpoint }), table: TABLE };
  server = await startServerOnTable(db);
  const key = await tenantWithKey(['admin']);
  tenant = key.tenant;
  api = client(server.url, key.key);
});

afterAll(async () => {
  await server?.close();
  await dynamo?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('DynamoDB Local killed and restarted under a running server', () => {
  it('fails closed while the store is away and recovers by itself', async () => {
    const body = grantBody();
    const granted = await api.post('/v1/consents', body);
    expect(granted.status).toBe(201);
    const check = () => api.gateCheck(body.subject);
    expect((await check()).body.decision).toBe('allow');

    // Traffic keeps flowing while the store dies and comes back: gate checks, and writes on other subjects
    // (a crash in the middle of a transaction must leave both of its items or neither).
    const seen: { status: number; decision?: string; code?: string }[] = [];
    const writers = Array.from({ length: 4 }, () => grantBody().subject);
    // Each acknowledged write, with when its answer arrived (to tell writes made before the kill from after).
    const acknowledged = new Map<string, { eventId: string; at: number }[]>();
    const writeStatuses: number[] = [];
    let running = true;
    const traffic = (async () => {
      while (running) {
        const res = await check();
        seen.push({ status: res.status, decision: res.body?.decision, code: res.body?.code });
        await sleep(20);
      }
    })();
    const writing = writers.map(async (subject, w) => {
      for (let i = 0; running; i++) {
        const res =
          i % 2 === 0
            ? await api.post('/v1/consents', grantBody({ subject, channel: w % 2 ? 'sms' : 'whatsapp' }))
            : await api.post('/v1/consents/withdraw', { subject });
        writeStatuses.push(res.status);
        if (res.status === 200 || res.status === 201) {
          acknowledged.set(res.body.subjectKey, [
            ...(acknowledged.get(res.body.subjectKey) ?? []),
            { eventId: res.body.eventId, at: Date.now() },
          ]);
        }
        await sleep(10);
      }
    });

    await sleep(200);
    process.kill((dynamo as EmbeddedDynamo).pid, 'SIGKILL');
    await (dynamo as EmbeddedDynamo).stop();
    dynamo = undefined;

    const down = await check();
    expect(down.status).toBe(503);
    expect(down.headers.get('content-type')).toBe('application/problem+json');
    expect(down.body.code).toBe('store_unavailable');
    const refused = await api.post('/v1/consents/withdraw', { subject: body.subject, channel: 'whatsapp' });
    expect(refused.status).toBe(503);
    await sleep(300);

    dynamo = await startDynamoLocal({ dataDir, port });
    const restartedAt = Date.now();
    const ackedAfterRestart = () => [...acknowledged.values()].flat().filter(({ at }) => at > restartedAt).length;
    // No restart of the server, no new client: the service must find the store again on its own.
    let recovered: Awaited<ReturnType<typeof check>> | undefined;
    for (let attempt = 0; attempt < 100 && recovered?.status !== 200; attempt++) {
      recovered = await check();
      if (recovered.status !== 200) await sleep(100);
    }
    // The writers go on until the restarted store has acknowledged one of their writes (or 10 s have passed).
    for (let waited = 0; waited < 100 && ackedAfterRestart() === 0; waited++) await sleep(100);
    running = false;
    await Promise.all([traffic, ...writing]);

    expect(recovered?.status).toBe(200);
    expect(recovered?.body.decision).toBe('allow');
    // Every answer during the outage was either the right decision or a fail-closed 503.
    expect(seen.length).toBeGreaterThan(0);
    for (const s of seen) {
      expect([200, 503]).toContain(s.status);
      if (s.status === 200) expect(s.decision).toBe('allow');
      else expect(s.code).toBe('store_unavailable');
    }
    expect(seen.some((s) => s.status === 503)).toBe(true);
    for (const status of writeStatuses) expect([200, 201, 503]).toContain(status);

    // No half-written change: every chain verifies, its state item points at its head, and every write
    // acknowledged by the restarted store is in it (a write answered 503 may or may not have landed; that is the
    // caller's retry). Writes acknowledged just before the SIGKILL are DynamoDB Local's to keep, and it does not
    // keep them all: bare TransactWriteItems acknowledged 1-4 ms before a SIGKILL were lost in 2 of 358 here
    // (whole, both items: chains stay valid). Real DynamoDB is durable on acknowledgement. The soak test checks
    // that no acknowledged write is lost when the store is not killed.
    let lostToTheKill = 0;
    for (const [subjectKey, acks] of acknowledged) {
      const ledger = await listEvents(db, tenant, subjectKey);
      const chain = verifyChain(ledger);
      expect(chain.valid).toBe(true);
      const state = await getState(db, tenant, subjectKey);
      expect(state?.seq).toBe(ledger.length);
      expect(state?.head).toBe(chain.head);
      const ids = new Set(ledger.map((e) => e.eventId));
      for (const { eventId, at } of acks) {
        if (at > restartedAt) expect(ids.has(eventId), `write acknowledged after the restart: ${eventId}`).toBe(true);
        else if (!ids.has(eventId)) lostToTheKill++;
      }
    }
    if (lostToTheKill > 0)
      console.info(`writes acknowledged just before the SIGKILL and lost by DynamoDB Local: ${lostToTheKill}`);
    expect(acknowledged.size).toBeGreaterThan(0);
    expect(ackedAfterRestart(), 'writes acknowledged after the restart').toBeGreaterThan(0);

    // Writes work again, the refused withdrawal left no trace, and the chain is intact.
    const withdrawn = await api.post('/v1/consents/withdraw', { subject: body.subject, channel: 'whatsapp' });
    expect(withdrawn.status).toBe(200);
    expect((await check()).body.decision).toBe('block');
    const events = await listEvents(db, tenant, granted.body.subjectKey);
    expect(events.map((e) => e.type)).toEqual(['consent.granted', 'consent.withdrawn']);
    expect(verifyChain(events).valid).toBe(true);
  }, 120_000);
});
