import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';

/** How the receiver answers: 200, 500, never (a timeout), or it is not listening at all (`down`). */
export type ReceiverMode = 'ok' | 'error' | 'hang' | 'down';

/** One request the receiver got, and whether its signature verified with each secret it knows. */
export interface Received {
  id: string;
  timestamp: string;
  signature: string;
  body: string;
  json: { type: string; timestamp: string; data: Record<string, any> };
  /** The secrets its signature verifies with (standardwebhooks' own `verify`). */
  verifiedWith: string[];
  answered: number | null;
}

/**
 * A real HTTP receiver on loopback, as a customer would write one: it verifies each request's Standard
 * Webhooks signature with the `standardwebhooks` package against the secrets it is given, and answers as told.
 */
export async function startReceiver(secrets: () => string[]) {
  const received: Received[] = [];
  let mode: ReceiverMode = 'ok';
  const hanging = new Set<ServerResponse>();
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const headers = {
        'webhook-id': String(req.headers['webhook-id']),
        'webhook-timestamp': String(req.headers['webhook-timestamp']),
        'webhook-signature': String(req.headers['webhook-signature']),
      };
      const verifiedWith = secrets().filter((secret) => {
        try {
          new Webhook(secret).verify(body, headers);
          return true;
        } catch {
          return false;
        }
      });
      const answered = mode === 'ok' ? 200 : mode === 'error' ? 500 : null;
      received.push({
        id: headers['webhook-id'],
        timestamp: headers['webhook-timestamp'],
        signature: headers['webhook-signature'],
        body,
        json: JSON.parse(body),
        verifiedWith,
        answered,
      });
      if (answered === null) {
        hanging.add(res);
        return;
      }
      res.writeHead(answered, { 'content-type': 'text/plain' }).end(answered === 200 ? 'ok' : 'boom');
    });
  };
  let server: Server = createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as AddressInfo).port;
  const close = async () => {
    for (const res of hanging) res.destroy();
    hanging.clear();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return {
    url: `http://127.0.0.1:${port}/hooks/consent`,
    port,
    received,
    /** Changes how it answers; `down` stops listening, leaving `down` listens again on the same port. */
    async setMode(next: ReceiverMode) {
      if (mode === 'down' && next !== 'down') {
        server = createServer(handle);
        await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', () => resolve()));
      }
      if (next === 'down' && mode !== 'down') await close();
      if (next !== 'hang') {
        for (const res of hanging) res.destroy();
        hanging.clear();
      }
      mode = next;
    },
    close: async () => {
      if (mode !== 'down') await close();
    },
  };
}

/** Waits until `done()` is true, checking every 25 ms; fails after `withinMs` (a bound, not an assertion on speed). */
export async function until(
  done: () => boolean | Promise<boolean>,
  withinMs = 30_000,
  what = 'condition',
): Promise<void> {
  const deadline = Date.now() + withinMs;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
