import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLocalServer } from '../../infra/local/server.ts';

/** A response as tests look at it. */
export interface TestResponse<T = any> {
  status: number;
  headers: Headers;
  body: T;
  text: string;
}

/** The local HTTP server (real handlers, real authorizer) on a free port, against the run's DynamoDB Local. */
export async function startServer(): Promise<{ url: string; close: () => Promise<void> }> {
  const server: Server = createLocalServer();
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

/** A small client for one base URL and key. */
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
  };
}
