import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'vitest';
import { ensureTable } from '#infra/local/bootstrap.ts';
import { createLocalServer, type LocalServerOptions } from '#infra/local/server.ts';
import { type Db, setDb } from '#store/db.ts';
import { assertConforms } from './openapi-validator.ts';

/**
 * A deployed stage to test instead of the local server: `API_URL` (the stack's ApiUrl output) and
 * `API_KEY` (an admin key of a test tenant there). Unset: the local server in-process, as usual.
 */
export const deployed =
  process.env.API_URL && process.env.API_KEY
    ? { url: process.env.API_URL.replace(/\/+$/, ''), key: process.env.API_KEY }
    : undefined;

/** A suite that needs the local store (DynamoDB directly, several tenants or keys): skipped against a deployed stage. */
export const describeLocal = describe.skipIf(Boolean(deployed));
/** A test that needs the local store: skipped against a deployed stage. */
export const itLocal = it.skipIf(Boolean(deployed));

/** A response as tests look at it. */
export interface TestResponse<T = any> {
  status: number;
  headers: Headers;
  body: T;
  text: string;
}

/**
 * The local HTTP server (real handlers, real authorizer) on a free port, against the run's DynamoDB Local;
 * or, with `API_URL` and `API_KEY` set, the deployed stage (nothing to start or stop).
 */
export async function startServer(
  options: LocalServerOptions = {},
): Promise<{ url: string; close: () => Promise<void> }> {
  if (deployed) return { url: deployed.url, close: async () => {} };
  const server: Server = createLocalServer(options);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  process.env.PUBLIC_BASE_URL = url;
  return {
    url,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * The local server against a table of the test's own, created here (for tests that scan the whole table or
 * kill its store); `close` gives the process the run's table back.
 */
export async function startServerOnTable(db: Db): Promise<{ url: string; close: () => Promise<void> }> {
  await ensureTable(db);
  setDb(db);
  const server = await startServer();
  return {
    url: server.url,
    close: async () => {
      await server.close();
      setDb(undefined);
    },
  };
}

/** A small client for one base URL and key; every response is validated against the OpenAPI document. */
export function client(baseUrl: string, key?: string) {
  async function call<T = any>(
    method: string,
    path: string,
    body?: unknown,
    options: { headers?: Record<string, string>; raw?: string | Buffer } = {},
  ): Promise<TestResponse<T>> {
    const headers: Record<string, string> = { ...(key ? { authorization: `Bearer ${key}` } : {}) };
    let payload: string | Buffer | undefined = options.raw;
    if (body !== undefined) {
      payload = JSON.stringify(body);
      headers['content-type'] = 'application/json';
    }
    const res = await fetch(`${baseUrl}${path}`, {
      method,
      headers: { ...headers, ...options.headers },
      body: payload,
    });
    const text = await res.text();
    // Every response a test receives must be what the OpenAPI document says (a test fails otherwise).
    await assertConforms({ method, path, status: res.status, headers: res.headers, text });
    let parsed: unknown = text;
    if ((res.headers.get('content-type') ?? '').includes('json')) {
      try {
        parsed = JSON.parse(text);
      } catch {}
    }
    return { status: res.status, headers: res.headers, body: parsed as T, text };
  }
  return {
    call,
    get: <T = any>(path: string, options?: { headers?: Record<string, string> }) =>
      call<T>('GET', path, undefined, options),
    post: <T = any>(
      path: string,
      body?: unknown,
      options?: { headers?: Record<string, string>; raw?: string | Buffer },
    ) => call<T>('POST', path, body, options),
    put: <T = any>(path: string, body?: unknown, options?: { headers?: Record<string, string> }) =>
      call<T>('PUT', path, body, options),
    /** `POST /v1/gate/check` for one subject; `extra` adds `at`, `record`, `timezone`… */
    gateCheck: (subject: object, channel = 'whatsapp', extra: object = {}) =>
      call('POST', '/v1/gate/check', { subject, channel, ...extra }),
    /** `POST /v1/subjects/lookup`. */
    lookup: (subject: object) => call('POST', '/v1/subjects/lookup', { subject }),
    /** A subject's ledger events; none for an unknown subject (404). */
    events: async <E = any>(subjectKey: string): Promise<E[]> => {
      const res = await call('GET', `/v1/subjects/${subjectKey}/events?limit=1000`);
      return res.status === 404 ? [] : res.body.events;
    },
  };
}

/** `fetch` for tests that need the raw Response (forms, signed bodies, spawned servers): the response is validated against the OpenAPI document too. */
export async function validatedFetch(url: string, init?: RequestInit): Promise<Response> {
  const res = await fetch(url, init);
  const path = new URL(url).pathname;
  await assertConforms({
    method: init?.method ?? 'GET',
    path,
    status: res.status,
    headers: res.headers,
    text: await res.clone().text(),
  });
  return res;
}
