import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { logSignerFromPem, openCheckpoint, signCheckpoint, verifierKey } from '#shared/log/note.ts';
import { type FetchSecret, loadCloud, loadLocal, logKeyPem } from '#shared/secrets.ts';

const dirs: string[] = [];
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'cg-log-keys-'));
  dirs.push(dir);
  return dir;
};
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const identifierKey = `${'A'.repeat(40)}bcdefghijklmnopqrstuvwx`;
const store =
  (secrets: Record<string, Record<string, unknown>>): FetchSecret =>
  async (id) =>
    secrets[id];

describe('log keys in the service secrets', () => {
  it('are generated with the other secrets on first local start, kept, and sign checkpoints', () => {
    const dir = tempDir();
    const first = loadLocal(dir);
    expect(first.logKeys).toHaveLength(1);
    expect(first.logKeys[0]).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    expect(loadLocal(dir).logKeys).toEqual(first.logKeys);
    expect(statSync(join(dir, 'secrets.json')).mode & 0o777).toBe(0o600);
    const signer = logSignerFromPem(first.logKeys[0]);
    const note = signCheckpoint({ origin: 'consent-gate/demo', treeSize: 1, rootHash: Buffer.alloc(32) }, signer);
    expect(openCheckpoint(note, [verifierKey(signer.name, signer.publicKey)])).toHaveProperty('checkpoint');
  });

  it('are added once to a secrets.json written before the verifiable log, keeping the other secrets', () => {
    const dir = tempDir();
    const path = join(dir, 'secrets.json');
    const before = { identifierKey, linkKeys: [{ kid: 'k1', key: 'N'.repeat(44) }] };
    writeFileSync(path, JSON.stringify(before), { mode: 0o600 });
    const secrets = loadLocal(dir);
    expect(secrets.logKeys).toHaveLength(1);
    expect(secrets.identifierKey).toEqual(Buffer.from(identifierKey, 'base64'));
    expect(JSON.parse(readFileSync(path, 'utf8'))).toEqual({ ...before, logKeys: secrets.logKeys });
    expect(loadLocal(dir).logKeys).toEqual(secrets.logKeys);
    expect(statSync(path).mode & 0o777).toBe(0o600);
  });

  it('keep the order of a rotated local list (newest first)', () => {
    const dir = tempDir();
    const [newest, older] = [loadLocal(tempDir()).logKeys[0], loadLocal(tempDir()).logKeys[0]];
    writeFileSync(join(dir, 'secrets.json'), JSON.stringify({ identifierKey, linkKeys: [], logKeys: [newest, older] }));
    expect(loadLocal(dir).logKeys).toEqual([newest, older]);
  });

  it('come from Secrets Manager newest first; generated seed material becomes a stable Ed25519 key', async () => {
    const seedNew = 'n'.repeat(64);
    const pem = loadLocal('memory').logKeys[0];
    const secrets = await loadCloud(
      { SECRETS_ID: 'main', LOG_KEYS_SECRET_ID: 'log' },
      store({ main: { identifierKey }, log: { key: seedNew, previousKeys: [pem] } }),
    );
    expect(secrets.logKeys).toEqual([logKeyPem(seedNew), pem]);
    expect(logKeyPem(seedNew)).toBe(logKeyPem(seedNew));
    expect(logSignerFromPem(secrets.logKeys[0]).keyId).toMatch(/^[0-9a-f]{8}$/);
    expect(logSignerFromPem(secrets.logKeys[0]).keyId).not.toBe(logSignerFromPem(logKeyPem('m'.repeat(64))).keyId);
  });

  it('are empty for a function not given them, and refuse what is not a key', async () => {
    expect((await loadCloud({ SECRETS_ID: 'main' }, store({ main: { identifierKey } }))).logKeys).toEqual([]);
    await expect(
      loadCloud({ SECRETS_ID: 'main', LOG_KEYS_SECRET_ID: 'log' }, store({ main: { identifierKey }, log: {} })),
    ).rejects.toThrow(/log key/);
    expect(() => logKeyPem('short')).toThrow(/log key/);
  });
});
