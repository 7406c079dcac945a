import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, expect, inject, it } from 'vitest';
import { freePort } from '#infra/local/dynamo.ts';
import { getDb } from '#store/db.ts';
import { describeLocal, validatedFetch } from '../helpers/http.ts';

const started: ChildProcess[] = [];
const dirs: string[] = [];

afterAll(() => {
  for (const child of started) {
    if (child.exitCode !== null) continue;
    try {
      if (child.spawnargs[0] === 'npm') process.kill(-(child.pid as number), 'SIGKILL');
      else child.kill('SIGKILL');
    } catch {}
  }
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** PIDs of DynamoDB Local processes working on this data folder (looked up by their -dbPath, not by name). */
function dynamoPids(dataDir: string): number[] {
  const out = execFileSync('ps', ['-eo', 'pid,args'], { encoding: 'utf8' });
  return out
    .split('\n')
    .filter((line) => line.includes('DynamoDBLocal.jar') && line.includes(dataDir))
    .map((line) => Number(line.trim().split(/\s+/)[0]));
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function until(condition: () => boolean | Promise<boolean>, what: string, ms = 20_000) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await condition()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/**
 * `npm start`'s program (`node --import tsx infra/local/start.ts`, or `npm start` itself in its own process
 * group, as a terminal runs it), with its output collected. Resolves once it prints its URL.
 */
async function start(env: Record<string, string>, viaNpm = false) {
  const command = viaNpm ? ['npm', ['start']] : [process.execPath, ['--import', 'tsx', 'infra/local/start.ts']];
  const child = spawn(command[0] as string, command[1] as string[], {
    env: { ...process.env, DYNAMODB_ENDPOINT: '', TABLE_NAME: '', POWERTOOLS_LOG_LEVEL: 'INFO', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: viaNpm,
  });
  started.push(child);
  let output = '';
  child.stdout?.on('data', (d) => {
    output += d;
  });
  child.stderr?.on('data', (d) => {
    output += d;
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  await Promise.race([until(() => output.includes('is listening on'), 'the server', 120_000), exited]);
  const url = /listening on (\S+)/.exec(output)?.[1];
  const key = /API key: (\S+)/.exec(output)?.[1];
  return { child, url, key, output: () => output, exited };
}

const json = { 'content-type': 'application/json' };

// Each test starts real processes (Node + a JVM): give them time on a busy 2-core machine.
describeLocal('npm start (the local runtime)', { timeout: 180_000 }, () => {
  it('serves the real handlers, keeps data across restarts, and stops DynamoDB Local on SIGINT', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'cg-start-'));
    dirs.push(dataDir);
    const port = String(await freePort());
    const first = await start({ DATA_DIR: dataDir, PORT: port, DEV_TENANT: 'acme' });
    expect(first.url).toBe(`http://127.0.0.1:${port}`);
    expect(first.output()).toContain('tenant:  acme');
    const auth = { authorization: `Bearer ${first.key}`, ...json };
    expect(await (await validatedFetch(`${first.url}/v1/health`)).json()).toEqual({ status: 'ok' });
    const subject = { phone: '+33612345678' };
    const secretEmail = 'private.person@example.org';
    const granted = await validatedFetch(`${first.url}/v1/consents`, {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({
        subject,
        channel: 'sms',
        source: 'web_form',
        noticeVersion: 'v1',
        evidence: { ipAddress: '198.51.100.23', text: 'yes please' },
      }),
    });
    expect(granted.status).toBe(201);
    await validatedFetch(`${first.url}/v1/consents`, {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({ subject: { email: secretEmail }, channel: 'email', source: 'api', noticeVersion: 'v1' }),
    });
    await validatedFetch(`${first.url}/v1/consents`, {
      method: 'POST',
      headers: auth,
      body: '{"subject":{"phone":"+33699999999"',
    });

    const javaPids = dynamoPids(dataDir);
    expect(javaPids).toHaveLength(1);
    first.child.kill('SIGINT');
    expect(await first.exited).toBe(0);
    await until(() => !alive(javaPids[0]), 'DynamoDB Local to stop', 10_000);

    // No identifier nor IP in any log line.
    for (const raw of ['+33612345678', '0612345678', secretEmail, '198.51.100.23', '+33699999999']) {
      expect(first.output()).not.toContain(raw);
    }
    expect(first.output()).toContain('"path":"/v1/consents"');

    // Nor in the stored data (DynamoDB Local keeps it in a SQLite file in DATA_DIR).
    const stored = execFileSync('sh', ['-c', `cat ${dataDir}/*.db`], { maxBuffer: 64 * 1024 * 1024 }).toString(
      'latin1',
    );
    expect(stored).toContain('consent.granted');
    for (const raw of ['+33612345678', '33612345678', secretEmail, '198.51.100.23']) expect(stored).not.toContain(raw);

    // Restart on the same data: same key, same consent.
    const second = await start({ DATA_DIR: dataDir, PORT: port, DEV_TENANT: 'acme' });
    expect(second.key).toBe(first.key);
    const gate = await validatedFetch(`${second.url}/v1/gate/check`, {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({ subject, channel: 'sms' }),
    });
    expect(((await gate.json()) as { decision: string }).decision).toBe('allow');
    const pid = dynamoPids(dataDir)[0];
    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0);
    await until(() => !alive(pid), 'DynamoDB Local to stop', 10_000);
  });

  it('stops on Ctrl-C in a terminal (SIGINT to the process group), and when npm alone is killed', async () => {
    for (const stopBy of ['ctrl-c', 'kill npm'] as const) {
      const dataDir = mkdtempSync(join(tmpdir(), 'cg-npm-'));
      dirs.push(dataDir);
      const run = await start({ DATA_DIR: dataDir, PORT: String(await freePort()) }, true);
      expect(run.url).toBeTruthy();
      const [java] = dynamoPids(dataDir);
      const { pid: server } = JSON.parse(readFileSync(join(dataDir, 'server.json'), 'utf8')) as { pid: number };
      if (stopBy === 'ctrl-c') process.kill(-(run.child.pid as number), 'SIGINT');
      else process.kill(run.child.pid as number, 'SIGTERM');
      await until(() => !alive(server) && !alive(java), `the server and DynamoDB Local to stop (${stopBy})`, 15_000);
    }
  });

  it('takes DEV_API_KEY as the key and keeps everything in memory with DATA_DIR=memory', async () => {
    const port = String(await freePort());
    const run = await start({ DATA_DIR: 'memory', PORT: port, DEV_API_KEY: 'dev-key-for-tests-0001' });
    expect(run.key).toBe('dev-key-for-tests-0001');
    const res = await validatedFetch(`${run.url}/v1/gate/check`, {
      method: 'POST',
      headers: { authorization: 'Bearer dev-key-for-tests-0001', ...json },
      body: JSON.stringify({ subject: { phone: '+33612345678' }, channel: 'whatsapp' }),
    });
    const body = (await res.json()) as { reasons: { code: string }[] };
    expect(res.status, JSON.stringify(body)).toBe(200);
    expect(body.reasons[0].code).toBe('no_consent');
    run.child.kill('SIGINT');
    expect(await run.exited).toBe(0);
  });

  it('uses an already-running DynamoDB with DYNAMODB_ENDPOINT and creates TABLE_NAME there', async () => {
    const table = `runtime-${Date.now()}`;
    const run = await start({
      DATA_DIR: 'memory',
      PORT: String(await freePort()),
      HOST: '127.0.0.1',
      DYNAMODB_ENDPOINT: inject('dynamoEndpoint'),
      TABLE_NAME: table,
      DEV_API_KEY: 'dev-key-endpoint-0001',
    });
    expect(run.output()).toContain(`DynamoDB at ${inject('dynamoEndpoint')}, table ${table}`);
    const tables = await getDb().client.send(new ListTablesCommand({}));
    expect(tables.TableNames).toContain(table);
    const res = await validatedFetch(`${run.url}/v1/consents`, {
      method: 'POST',
      headers: { authorization: 'Bearer dev-key-endpoint-0001', ...json },
      body: JSON.stringify({ subject: { externalId: 'crm-1' }, channel: 'push', source: 'api', noticeVersion: 'v1' }),
    });
    expect(res.status).toBe(201);
    run.child.kill('SIGINT');
    expect(await run.exited).toBe(0);
    // Nothing of ours to stop: the external store keeps running.
    expect((await getDb().client.send(new ListTablesCommand({}))).TableNames).toContain(table);
  });

  it('stops DynamoDB Local when starting fails half-way (port taken)', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'cg-fail-'));
    dirs.push(dataDir);
    const blocker: Server = createServer();
    const port = await freePort();
    await new Promise<void>((r) => blocker.listen(port, '127.0.0.1', () => r()));
    try {
      const run = await start({ DATA_DIR: dataDir, PORT: String(port) });
      expect(await run.exited).toBe(1);
      expect(run.output()).toContain('could not start');
      await until(() => dynamoPids(dataDir).length === 0, 'no DynamoDB Local left', 10_000);
    } finally {
      blocker.close();
    }
  });

  it('a watchdog stops DynamoDB Local when the server is killed with SIGKILL', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'cg-kill-'));
    dirs.push(dataDir);
    const run = await start({ DATA_DIR: dataDir, PORT: String(await freePort()) });
    const server = JSON.parse(readFileSync(join(dataDir, 'server.json'), 'utf8')) as { pid: number };
    const [java] = dynamoPids(dataDir);
    expect(java).toBeGreaterThan(0);
    process.kill(server.pid, 'SIGKILL');
    await until(() => !alive(java), 'the watchdog to stop DynamoDB Local', 30_000);
    run.child.kill('SIGKILL');
  });
});
