import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BatchWriteCommand, DeleteCommand, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { anchorFromEnv } from '#shared/log/anchor.ts';
import { logSignerFromPem } from '#shared/log/note.ts';
import { getSecrets } from '#shared/secrets.ts';
import { sealTenant } from '#shared/services/sealer.ts';
import { getDb } from '#store/db.ts';
import { keys } from '#store/table.ts';
import { cli } from '../helpers/cli.ts';
import { grantBody, tenantWithKey } from '../helpers/factories.ts';
import { client, describeLocal, startServer } from '../helpers/http.ts';

let server: Awaited<ReturnType<typeof startServer>>;
let dir: string;

/** Each case runs the CLI (a Node process with tsx) several times. */
const CLI_TIMEOUT = 180_000;

beforeAll(async () => {
  server = await startServer();
  dir = mkdtempSync(join(tmpdir(), 'cli-log-'));
});
afterAll(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

async function seal(tenant: string) {
  // A moment first: an event recorded in the very millisecond of the seal's cutoff waits for the next one.
  await new Promise((resolve) => setTimeout(resolve, 5));
  const signer = logSignerFromPem((await getSecrets()).logKeys[0]);
  return sealTenant(getDb(), tenant, { signer, anchor: anchorFromEnv(), lagMs: 0 });
}

/** A tenant with an admin and an audit:read key, and the log's public key written to a file. */
async function setup() {
  const owner = await tenantWithKey(['admin']);
  const auditKey = (await tenantWithKey(['audit:read'], owner.tenant)).key;
  const api = client(server.url, owner.key);
  const published = (await client(server.url).get('/v1/log/public-key')).body;
  const keyFile = join(dir, `${owner.tenant}.pem`);
  writeFileSync(keyFile, published.publicKeyPem);
  const vkeyFile = join(dir, `${owner.tenant}.vkey`);
  writeFileSync(vkeyFile, `${published.vkey}\n`);
  return { tenant: owner.tenant, api, auditKey, keyFile, vkeyFile };
}

/** The CLI with no store at all: an endpoint nothing listens on, no data folder. */
function offlineCli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = {
    PATH: process.env.PATH,
    DYNAMODB_ENDPOINT: 'http://127.0.0.1:9',
    TABLE_NAME: 'nowhere',
    DATA_DIR: join(dir, 'no-such-dir'),
    AWS_REGION: 'eu-west-3',
    AWS_ACCESS_KEY_ID: 'none',
    AWS_SECRET_ACCESS_KEY: 'none',
  };
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', 'cli/main.ts', ...args], { env }, (error, stdout, stderr) =>
      resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

const logPartition = async (tenant: string) =>
  (
    await getDb().client.send(
      new QueryCommand({
        TableName: getDb().table,
        KeyConditionExpression: 'PK = :pk',
        ExpressionAttributeValues: { ':pk': keys.log(tenant) },
        ConsistentRead: true,
      }),
    )
  ).Items ?? [];

/** Puts the tenant's log partition back as it was in `snapshot` (an insider's rollback). */
async function restoreLog(tenant: string, snapshot: Record<string, unknown>[]) {
  const db = getDb();
  const current = await logPartition(tenant);
  for (let i = 0; i < current.length; i += 25) {
    await db.client.send(
      new BatchWriteCommand({
        RequestItems: {
          [db.table]: current
            .slice(i, i + 25)
            .map((item) => ({ DeleteRequest: { Key: { PK: item.PK, SK: item.SK } } })),
        },
      }),
    );
  }
  for (const item of snapshot) await db.client.send(new PutCommand({ TableName: db.table, Item: item }));
}

describeLocal('consent-gate receipt verify', () => {
  it(
    'verifies a receipt offline (no store, no network) and fails after one byte of the event changes',
    async () => {
      const { api, keyFile, vkeyFile, tenant } = await setup();
      const grant = await api.post('/v1/consents', grantBody({ evidence: { text: 'I agree to offers on WhatsApp' } }));
      await seal(tenant);
      const receipt = await api.get(`/v1/receipts/${grant.body.eventId}`);
      expect(receipt.status).toBe(200);
      const file = join(dir, 'receipt.json');
      writeFileSync(file, receipt.text);

      const ok = await offlineCli('receipt', 'verify', file, '--key', keyFile);
      expect(ok.stderr).toBe('');
      expect(ok.code).toBe(0);
      expect(ok.stdout).toContain(`receipt valid: event ${grant.body.eventId}`);
      expect(ok.stdout).toContain(`of consent-gate/${tenant}`);
      expect((await offlineCli('receipt', 'verify', file, '--key', vkeyFile)).code).toBe(0);
      const json = await offlineCli('receipt', 'verify', file, '--key', keyFile, '--json');
      expect(JSON.parse(json.stdout)).toMatchObject({ valid: true, eventId: grant.body.eventId });

      // One byte of the event: its purpose, its time, a byte of its evidence.
      const text = readFileSync(file, 'utf8');
      for (const [from, to] of [
        ['"purpose":"marketing"', '"purpose":"marketinh"'],
        [
          `"at":"${receipt.body.event.at}"`,
          `"at":"${receipt.body.event.at.replace(/.Z$/, (m: string) => `${(Number(m[0]) + 1) % 10}Z`)}"`,
        ],
        ['I agree to offers', 'I agree to offerz'],
      ]) {
        expect(text).toContain(from);
        writeFileSync(file, text.replace(from, to));
        const bad = await offlineCli('receipt', 'verify', file, '--key', keyFile);
        expect(bad.code, from).toBe(1);
        expect(bad.stdout).toMatch(/^receipt INVALID: (event hash|details) mismatch/);
      }
      // A receipt checked with another key: invalid too.
      writeFileSync(file, text);
      const otherKey = join(dir, 'other.pem');
      const { generateKeyPairSync } = await import('node:crypto');
      writeFileSync(otherKey, generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }));
      const wrong = await offlineCli('receipt', 'verify', file, '--key', otherKey);
      expect(wrong.code).toBe(1);
      expect(wrong.stdout).toContain('checkpoint signature');
      // Bad usage: exit 2.
      expect((await offlineCli('receipt', 'verify', file)).code).toBe(2);
      expect((await offlineCli('receipt', 'verify', join(dir, 'absent.json'), '--key', keyFile)).code).toBe(2);
    },
    CLI_TIMEOUT,
  );
});

describeLocal('consent-gate log verify', () => {
  it(
    'exits 0 on an intact log and 1 naming the leaf, subject and reason once an event is deleted',
    async () => {
      const { api, tenant, keyFile } = await setup();
      const first = await api.post('/v1/consents', grantBody());
      await api.post('/v1/consents', grantBody());
      await seal(tenant);
      const intact = await cli('log', 'verify', '--tenant', tenant);
      expect(intact.stderr).toBe('');
      expect(intact.code).toBe(0);
      expect(intact.stdout).toMatch(
        /^log intact — tree of 2 leaves; 2 leaves and 2 events checked against 1 checkpoint\(s\), 1 anchored/,
      );
      // With the public key one fetched oneself rather than the service's secrets: the same.
      expect((await cli('log', 'verify', '--tenant', tenant, '--key', keyFile)).code).toBe(0);

      const db = getDb();
      await db.client.send(
        new DeleteCommand({
          TableName: db.table,
          Key: { PK: keys.subject(tenant, first.body.subjectKey), SK: keys.event(1) },
        }),
      );
      const leaf = (await api.get('/v1/log/leaves?start=0&end=2')).body.leaves.find(
        (l: { eventId: string }) => l.eventId === first.body.eventId,
      );
      const broken = await cli('log', 'verify', '--tenant', tenant);
      expect(broken.code).toBe(1);
      expect(broken.stdout).toContain(
        `BROKEN  leaf ${leaf.index}  ${first.body.subjectKey}  ${first.body.eventId}  missing  the event (seq 1) was deleted`,
      );
      expect(broken.stdout).toContain('log ALTERED: 1 break(s)');
      const json = await cli('log', 'verify', '--tenant', tenant, '--json');
      expect(JSON.parse(json.stdout)).toMatchObject({
        valid: false,
        broken: [
          { leafIndex: leaf.index, subjectKey: first.body.subjectKey, eventId: first.body.eventId, reason: 'missing' },
        ],
      });
      expect((await cli('log', 'verify')).code).toBe(2);
      expect((await cli('log', 'frobnicate')).code).toBe(2);
    },
    CLI_TIMEOUT,
  );
});

describeLocal('consent-gate log witness', () => {
  it(
    'keeps the checkpoints it sees, accepts consistent growth, and exits 1 on a rollback and on a fork',
    async () => {
      const { api, tenant, auditKey, keyFile } = await setup();
      const state = join(dir, `witness-${tenant}`);
      const witness = () => {
        process.env.CONSENT_GATE_API_KEY = auditKey;
        try {
          return cli('log', 'witness', '--url', server.url, '--key', keyFile, '--state', state);
        } finally {
          delete process.env.CONSENT_GATE_API_KEY;
        }
      };
      await api.post('/v1/consents', grantBody());
      await api.post('/v1/consents', grantBody());
      await seal(tenant);
      const older = await logPartition(tenant);

      const first = await witness();
      expect(first.stderr).toBe('');
      expect(first).toMatchObject({ code: 0 });
      expect(first.stdout).toContain(`OK: first checkpoint of consent-gate/${tenant} kept: size 2`);
      const later = [await api.post('/v1/consents', grantBody()), await api.post('/v1/consents', grantBody())];
      await seal(tenant);
      const grew = await witness();
      expect(grew.code).toBe(0);
      expect(grew.stdout).toContain('grew from 2 to 4 leaves, consistently; kept');
      expect((await witness()).stdout).toContain('unchanged at size 4');

      // The insider puts the tree back as it was at size 2 (HEAD, nodes, leaves, checkpoints): a rollback.
      const newer = await logPartition(tenant);
      await restoreLog(tenant, older);
      const rolledBack = await witness();
      expect(rolledBack.code).toBe(1);
      expect(rolledBack.stdout).toContain('ALARM: rollback: the service serves a tree of 2 leaves, smaller than the 4');

      // … then re-seals without one of the later events, plus new ones: a tree of size 5 that does not extend the 4 kept.
      const db = getDb();
      await db.client.send(
        new DeleteCommand({
          TableName: db.table,
          Key: { PK: keys.subject(tenant, later[0].body.subjectKey), SK: keys.event(1) },
        }),
      );
      await api.post('/v1/consents', grantBody());
      await api.post('/v1/consents', grantBody());
      await seal(tenant);
      const forked = await witness();
      expect(forked.code).toBe(1);
      expect(forked.stdout).toContain('ALARM: fork: the tree of size 5 does not extend the tree of size 4');
      // The witness kept what it had seen: once the service serves the honest tree again, it is happy.
      await restoreLog(tenant, newer);
      expect((await witness()).stdout).toContain('unchanged at size 4');
      // No API key: usage error.
      expect((await cli('log', 'witness', '--url', server.url, '--key', keyFile, '--state', state)).code).toBe(2);
    },
    CLI_TIMEOUT,
  );
});
