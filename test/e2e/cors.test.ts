import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCorsOrigins } from '#http/cors.ts';
import { tenantWithKey } from '../helpers/factories.ts';
import { describeLocal, startServer } from '../helpers/http.ts';

const APP = 'https://app.example.org';
const previous = process.env.CORS_ORIGINS;
let server: Awaited<ReturnType<typeof startServer>>;
let key: string;

beforeAll(async () => {
  process.env.CORS_ORIGINS = `${APP}, http://localhost:5173`;
  server = await startServer();
  key = (await tenantWithKey()).key;
});
afterAll(async () => {
  await server.close();
  if (previous === undefined) delete process.env.CORS_ORIGINS;
  else process.env.CORS_ORIGINS = previous;
});

const preflight = (path: string, origin: string, method = 'POST') =>
  fetch(`${server.url}${path}`, {
    method: 'OPTIONS',
    headers: {
      origin,
      'access-control-request-method': method,
      'access-control-request-headers': 'authorization, content-type, idempotency-key',
    },
  });

describeLocal('CORS (CORS_ORIGINS)', () => {
  it('answers a preflight from a listed origin for /v1/* and /openapi.json', async () => {
    for (const [path, method] of [
      ['/v1/gate/check', 'POST'],
      ['/v1/subjects/abc/events', 'GET'],
      ['/openapi.json', 'GET'],
    ]) {
      const res = await preflight(path, APP, method);
      expect(res.status, path).toBe(204);
      expect(res.headers.get('access-control-allow-origin')).toBe(APP);
      expect(res.headers.get('access-control-allow-methods')).toContain(method);
      const allowed = res.headers.get('access-control-allow-headers')?.split(/,\s*/);
      expect(allowed).toEqual(expect.arrayContaining(['authorization', 'content-type', 'idempotency-key']));
      expect(res.headers.get('access-control-allow-credentials')).toBeNull();
      expect(res.headers.get('vary')).toContain('Origin');
    }
  });

  it('gives an origin that is not listed no CORS header', async () => {
    const res = await preflight('/v1/gate/check', 'https://evil.example');
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
    const get = await fetch(`${server.url}/v1/health`, { headers: { origin: 'https://evil.example' } });
    expect(get.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('puts the CORS headers on errors too: 401, 403-less 404, 405, and on successes', async () => {
    const headers = { origin: APP };
    const unauthorized = await fetch(`${server.url}/v1/policy`, { headers });
    const notFound = await fetch(`${server.url}/v1/nothing-here`, { headers });
    const notAllowed = await fetch(`${server.url}/v1/gate/check`, { headers });
    const ok = await fetch(`${server.url}/v1/policy`, { headers: { ...headers, authorization: `Bearer ${key}` } });
    for (const [res, status] of [
      [unauthorized, 401],
      [notFound, 404],
      [notAllowed, 405],
      [ok, 200],
    ] as const) {
      expect(res.status).toBe(status);
      expect(res.headers.get('access-control-allow-origin')).toBe(APP);
      expect(res.headers.get('access-control-expose-headers')).toBe('x-next-cursor, retry-after');
    }
  });
});

describeLocal('without CORS_ORIGINS', () => {
  it('answers no preflight and sends no CORS header', async () => {
    delete process.env.CORS_ORIGINS;
    const plain = await startServer();
    try {
      const res = await fetch(`${plain.url}/v1/gate/check`, {
        method: 'OPTIONS',
        headers: { origin: APP, 'access-control-request-method': 'POST' },
      });
      expect(res.status).toBe(405);
      expect(res.headers.get('access-control-allow-origin')).toBeNull();
    } finally {
      await plain.close();
      process.env.CORS_ORIGINS = `${APP}, http://localhost:5173`;
    }
  });
});

describe('parseCorsOrigins', () => {
  it('takes a comma-separated list, or *, and refuses what is not an origin', () => {
    expect(parseCorsOrigins(undefined)).toEqual([]);
    expect(parseCorsOrigins(' https://a.example , http://localhost:3000,')).toEqual([
      'https://a.example',
      'http://localhost:3000',
    ]);
    expect(parseCorsOrigins('*')).toEqual(['*']);
    for (const bad of ['https://a.example/', 'a.example', 'https://a.example/path', '*,https://a.example', 'ftp://x']) {
      expect(() => parseCorsOrigins(bad), bad).toThrow(/CORS_ORIGINS/);
    }
  });
});
