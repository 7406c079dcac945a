import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { safePost } from '#shared/net/safe-url.ts';

// Outgoing calls to a tenant's URL against real loopback receivers (docs/events.md, "Security of endpoints").
const strict = { allowInsecure: false };
const insecure = { allowInsecure: true };

describe('a call', () => {
  const receiver = async (handler: Parameters<typeof createServer>[1]) => {
    const server = createServer(handler);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    const port = (server.address() as AddressInfo).port;
    return { port, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
  };
  const post = (url: string, policy = insecure, extra = {}) =>
    safePost(url, { headers: { 'content-type': 'application/json' }, body: '{}', policy, ...extra });

  it('refuses a name that resolves to loopback unless insecure endpoints are allowed', async () => {
    const r = await receiver((_, res) => res.end('ok'));
    try {
      const refused = await post(`https://localhost:${r.port}/x`, strict);
      expect(refused).toEqual({
        httpStatus: null,
        error: expect.stringMatching(/^refused: the name resolves to a loopback address/),
      });
      expect(await post(`http://localhost:${r.port}/x`, insecure)).toEqual({ httpStatus: 200, error: null });
    } finally {
      await r.close();
    }
  });

  it('follows no redirect, and gives up on a receiver that does not answer', async () => {
    const r = await receiver((req, res) => {
      if (req.url === '/redirect') res.writeHead(302, { location: 'http://169.254.169.254/' }).end();
      // else: never answers
    });
    try {
      expect(await post(`http://127.0.0.1:${r.port}/redirect`)).toEqual({
        httpStatus: 302,
        error: 'redirect not followed',
      });
      expect(await post(`http://127.0.0.1:${r.port}/hang`, insecure, { timeoutMs: 100 })).toEqual({
        httpStatus: null,
        error: 'timed out after 100 ms',
      });
    } finally {
      await r.close();
    }
  });

  it('reads no more of an answer than the cap', async () => {
    let written = 0;
    const r = await receiver((_, res) => {
      res.writeHead(200);
      const chunk = Buffer.alloc(64 * 1024, 'x');
      const pump = () => {
        while (written < 50 * 1024 * 1024 && res.write(chunk)) written += chunk.length;
        if (written < 50 * 1024 * 1024) res.once('drain', pump);
        else res.end();
      };
      res.on('close', () => undefined);
      pump();
    });
    try {
      const result = await post(`http://127.0.0.1:${r.port}/big`, insecure, { maxResponseBytes: 1024 });
      expect(result.httpStatus).toBe(200);
      expect(written).toBeLessThan(50 * 1024 * 1024);
    } finally {
      await r.close();
    }
  });
});
