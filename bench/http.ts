import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { freePort } from '../infra/local/dynamo.ts';

/** The local server (`npm start`) as a separate process, joined to the bench's DynamoDB Local. */
export interface ServerProcess {
  url: string;
  stop(): Promise<void>;
}

/**
 * Starts `infra/local/start.ts` in its own process (so autocannon and the server do not share an event
 * loop), with a known dev key. Waits for `/v1/health`; stops it by PID on failure.
 */
export async function startServerProcess(
  root: string,
  env: { endpoint: string; table: string; dataDir: string; tenant: string; apiKey: string },
  entry = 'infra/local/start.ts',
): Promise<ServerProcess> {
  const port = await freePort();
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', join(root, entry)], {
    cwd: root,
    env: {
      ...process.env,
      PORT: String(port),
      HOST: '127.0.0.1',
      DYNAMODB_ENDPOINT: env.endpoint,
      TABLE_NAME: env.table,
      DATA_DIR: env.dataDir,
      DEV_TENANT: env.tenant,
      DEV_API_KEY: env.apiKey,
      POWERTOOLS_LOG_LEVEL: 'ERROR',
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((done) => child.once('exit', () => done()));
    child.kill('SIGTERM');
    const killer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(killer);
  };
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`the local server exited with code ${child.exitCode}`);
    try {
      const res = await fetch(`${url}/v1/health`, { signal: AbortSignal.timeout(1000) });
      if (res.ok) return { url, stop };
    } catch {}
    await new Promise((r) => setTimeout(r, 200));
  }
  await stop();
  throw new Error('the local server did not answer /v1/health within 30 s');
}

/**
 * p50/p99 of one request at a time (keep-alive), the gate and the bare GetItem server interleaved request
 * by request, so both see the same machine load: `samples` pairs after `warmup` pairs.
 */
export async function interleavedLatency(
  gate: { url: string; apiKey: string },
  bare: { url: string },
  subjects: { phone: string; subjectKey: string }[],
  samples: number,
  warmup = 200,
) {
  const gateMs: number[] = [];
  const bareMs: number[] = [];
  const time = async (url: string, headers: Record<string, string>, body: string) => {
    const started = performance.now();
    const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
    await res.arrayBuffer();
    if (res.status !== 200) throw new Error(`${url} answered ${res.status}`);
    return performance.now() - started;
  };
  for (let i = 0; i < warmup + samples; i++) {
    const s = subjects[(i * 7919) % subjects.length];
    const runGate = () =>
      time(
        `${gate.url}/v1/gate/check`,
        { authorization: `Bearer ${gate.apiKey}` },
        JSON.stringify({ subject: { phone: s.phone }, channel: 'whatsapp' }),
      );
    const runBare = () => time(`${bare.url}/`, {}, JSON.stringify({ subjectKey: s.subjectKey }));
    // Alternate the order so neither side always runs on a warmer connection.
    const [g, b] = i % 2 ? [await runGate(), await runBare()] : [0, await runBare()];
    const gateRun = i % 2 ? g : await runGate();
    if (i >= warmup) {
      gateMs.push(gateRun);
      bareMs.push(b);
    }
  }
  return { gateMs, bareMs };
}

/** Bounded autocannon run of `POST /v1/gate/check` over a rotating set of subjects. */
export async function loadGate(url: string, apiKey: string, phones: string[], seconds: number) {
  const bodies = phones.map((phone) => JSON.stringify({ subject: { phone }, channel: 'whatsapp' }));
  let i = 0;
  const result = await autocannon({
    url,
    connections: 16,
    duration: seconds,
    timeout: 5,
    requests: [
      {
        method: 'POST',
        path: '/v1/gate/check',
        headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
        setupRequest: (request) => ({ ...request, body: bodies[i++ % bodies.length] }),
      },
    ],
  });
  return {
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    total: result.requests.total,
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
  };
}
