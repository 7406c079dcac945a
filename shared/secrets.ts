import { createHmac, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Service secrets: never in code, never in the table, never logged. */
export interface Secrets {
  /** Master key for subjectKeys and evidence hashes (per-tenant keys are derived from it). */
  identifierKey: Buffer;
  /** Link-signing keys, newest first: new links use the first, old links verify while any key matches their kid. */
  linkKeys: { kid: string; key: Buffer }[];
}

interface SecretsFile {
  identifierKey: string;
  linkKeys: { kid: string; key: string }[];
}

function decode(file: SecretsFile): Secrets {
  return {
    identifierKey: Buffer.from(file.identifierKey, 'base64'),
    linkKeys: file.linkKeys.map((k) => ({ kid: k.kid, key: Buffer.from(k.key, 'base64') })),
  };
}

function generate(): SecretsFile {
  return {
    identifierKey: randomBytes(32).toString('base64'),
    linkKeys: [{ kid: randomBytes(3).toString('hex'), key: randomBytes(32).toString('base64') }],
  };
}

/** Local secrets live in `DATA_DIR/secrets.json` (mode 0600), created once; `memory` keeps them in-process. */
function loadLocal(dataDir: string): Secrets {
  if (dataDir === 'memory') return decode(generate());
  const path = join(dataDir, 'secrets.json');
  try {
    return decode(JSON.parse(readFileSync(path, 'utf8')));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  mkdirSync(dataDir, { recursive: true });
  try {
    writeFileSync(path, JSON.stringify(generate(), null, 2), { mode: 0o600, flag: 'wx' });
  } catch (error) {
    // Another process created it first: use theirs.
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  return decode(JSON.parse(readFileSync(path, 'utf8')));
}

/** Cloud secrets: one Secrets Manager secret (JSON), read once per container through Powertools Parameters. */
async function loadCloud(secretId: string): Promise<Secrets> {
  const { getSecret } = await import('@aws-lambda-powertools/parameters/secrets');
  const value = await getSecret<SecretsFile>(secretId, { transform: 'json', maxAge: 300 });
  if (!value?.identifierKey || !value.linkKeys?.length) throw new Error('secret is missing identifierKey or linkKeys');
  return decode(value);
}

let cached: Promise<Secrets> | undefined;

/** The container's secrets, loaded on first use. */
export function getSecrets(): Promise<Secrets> {
  if (!cached) {
    const secretId = process.env.SECRETS_ID;
    cached = secretId ? loadCloud(secretId) : Promise.resolve(loadLocal(process.env.DATA_DIR || '.data'));
    cached.catch(() => {
      cached = undefined;
    });
  }
  return cached;
}

/** Forgets loaded secrets (tests, key rotation). */
export function resetSecrets(): void {
  cached = undefined;
}

/** The per-tenant key for subjectKeys: HMAC(master, tenant), so tenants never share a key space. */
export function tenantKey(secrets: Secrets, tenant: string, use = 'subject'): Buffer {
  return createHmac('sha256', secrets.identifierKey).update(`${use}:${tenant}`).digest();
}
