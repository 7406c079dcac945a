import { createHash, createHmac, createPrivateKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { privateKeyFromSeed } from './log/note.ts';

/** Service secrets: never in code, never in the table, never logged. */
export interface Secrets {
  /**
   * Master key for subjectKeys and evidence hashes (per-tenant keys are derived from it). Empty for a cloud
   * function that was not given it (the sealer): deriving a key from it then throws.
   */
  identifierKey: Buffer;
  /** Link-signing keys, newest first: new links use the first, old links verify while any key matches their kid. */
  linkKeys: { kid: string; key: Buffer }[];
  /** WhatsApp app secret that signs webhooks (cloud; locally the WHATSAPP_APP_SECRET env var wins). */
  whatsappAppSecret?: string;
  /** Token of Meta's webhook verification handshake (cloud; locally WHATSAPP_VERIFY_TOKEN wins). */
  whatsappVerifyToken?: string;
  /**
   * The verifiable log's checkpoint-signing keys, PKCS#8 PEM Ed25519, newest first: new checkpoints are
   * signed with the first; the public keys of the others stay published so old checkpoints keep verifying.
   * Empty for a function that was not given them.
   */
  logKeys: string[];
}

interface SecretsFile {
  identifierKey: string;
  linkKeys: { kid: string; key: string }[];
  whatsappAppSecret?: string;
  whatsappVerifyToken?: string;
  /** Absent in a secrets.json written before the verifiable log: added on the next start. */
  logKeys?: string[];
}

function decode(file: SecretsFile): Secrets {
  return {
    identifierKey: Buffer.from(file.identifierKey, 'base64'),
    linkKeys: file.linkKeys.map((k) => ({ kid: k.kid, key: Buffer.from(k.key, 'base64') })),
    ...(file.whatsappAppSecret ? { whatsappAppSecret: file.whatsappAppSecret } : {}),
    ...(file.whatsappVerifyToken ? { whatsappVerifyToken: file.whatsappVerifyToken } : {}),
    logKeys: file.logKeys ?? [],
  };
}

/** A new checkpoint-signing key: Ed25519, PKCS#8 PEM. */
export const generateLogKey = (): string =>
  generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;

function generate(): SecretsFile {
  return {
    identifierKey: randomBytes(32).toString('base64'),
    linkKeys: [{ kid: randomBytes(3).toString('hex'), key: randomBytes(32).toString('base64') }],
    logKeys: [generateLogKey()],
  };
}

const sleep = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

/**
 * A secrets.json written before the verifiable log has no log key: add one, once. Under a lock file, so the
 * server and a CLI started together agree on a single key (a key that lost the race would sign checkpoints
 * nobody can verify). A lock older than 10 s is left over from a crash and is taken over.
 */
function withLogKeys(path: string, file: SecretsFile): SecretsFile {
  if (file.logKeys?.length) return file;
  const read = (): SecretsFile => JSON.parse(readFileSync(path, 'utf8'));
  const lock = `${path}.lock`;
  for (let attempt = 0; attempt < 250; attempt++) {
    try {
      writeFileSync(lock, String(process.pid), { flag: 'wx' });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      try {
        if (Date.now() - statSync(lock).mtimeMs > 10_000) rmSync(lock, { force: true });
      } catch {
        // Removed meanwhile: try again.
      }
      sleep(20);
      const current = read();
      if (current.logKeys?.length) return current;
      continue;
    }
    try {
      const current = read();
      if (current.logKeys?.length) return current;
      const updated: SecretsFile = { ...current, logKeys: [generateLogKey()] };
      writeFileSync(`${path}.tmp`, JSON.stringify(updated, null, 2), { mode: 0o600 });
      renameSync(`${path}.tmp`, path);
      return updated;
    } finally {
      rmSync(lock, { force: true });
    }
  }
  throw new Error(`${lock} is held by another process`);
}

/** Local secrets live in `DATA_DIR/secrets.json` (mode 0600), created once; `memory` keeps them in-process. */
export function loadLocal(dataDir: string): Secrets {
  if (dataDir === 'memory') return decode(generate());
  const path = join(dataDir, 'secrets.json');
  try {
    return decode(withLogKeys(path, JSON.parse(readFileSync(path, 'utf8'))));
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

/** Reads one JSON secret by id or ARN. */
export type FetchSecret = (secretId: string) => Promise<Record<string, unknown> | undefined>;

const fromSecretsManager: FetchSecret = async (secretId) => {
  const { getSecret } = await import('@aws-lambda-powertools/parameters/secrets');
  return getSecret<Record<string, unknown>>(secretId, { transform: 'json', maxAge: 300 });
};

/**
 * A log key from Secrets Manager as a PKCS#8 PEM: a PEM is taken as it is (an Ed25519 key made elsewhere);
 * any other string of at least 32 characters (what the stack's secret generator makes) is the seed material,
 * the key being Ed25519 with seed SHA-256(string).
 */
export function logKeyPem(value: unknown): string {
  if (typeof value !== 'string') throw new Error('secret is missing a log key');
  if (value.startsWith('-----BEGIN')) {
    if (createPrivateKey(value).asymmetricKeyType !== 'ed25519') throw new Error('a log key must be Ed25519');
    return value;
  }
  if (value.length < 32) throw new Error('secret is missing a log key');
  const seed = createHash('sha256').update(value).digest();
  return privateKeyFromSeed(seed).export({ format: 'pem', type: 'pkcs8' }) as string;
}

/** The kid of a link key: a short hash of the key, so the secret needs no kid of its own. */
export const linkKeyId = (key: Buffer): string => createHash('sha256').update(key).digest('hex').slice(0, 8);

const base64Key = (value: unknown, what: string): Buffer => {
  if (typeof value !== 'string' || value.length < 32) throw new Error(`secret is missing ${what}`);
  return Buffer.from(value, 'base64');
};

/**
 * Cloud secrets from Secrets Manager, fetched in parallel once per container. One secret per use, so each
 * function is granted only what it uses:
 * - `SECRETS_ID`: `{"identifierKey": base64}` (a `linkKeys` array of the one-secret layout is still read),
 * - `LINK_KEYS_SECRET_ID`: `{"key": base64, "previousKeys": [base64, ...]}`, newest first; kid = hash prefix,
 * - `WHATSAPP_SECRET_ID`: `{"appSecret": "...", "verifyToken": "..."}`,
 * - `LOG_KEYS_SECRET_ID`: `{"key": ..., "previousKeys": [...]}`, newest first, each a PEM or generated seed
 *   material ({@link logKeyPem}); rotation prepends a key and keeps the old ones listed.
 * An id that is not set leaves its part empty (the gate has no link keys and no log keys; the sealer has no
 * identifier key).
 */
export async function loadCloud(
  env: NodeJS.ProcessEnv,
  fetchSecret: FetchSecret = fromSecretsManager,
): Promise<Secrets> {
  const read = (id: string | undefined) => (id ? fetchSecret(id) : Promise.resolve(undefined));
  const [main, links, whatsapp, log] = await Promise.all([
    read(env.SECRETS_ID),
    read(env.LINK_KEYS_SECRET_ID),
    read(env.WHATSAPP_SECRET_ID),
    read(env.LOG_KEYS_SECRET_ID),
  ]);
  const identifierKey = env.SECRETS_ID ? base64Key(main?.identifierKey, 'identifierKey') : Buffer.alloc(0);
  let linkKeys: Secrets['linkKeys'] = [];
  if (links) {
    const previous = Array.isArray(links.previousKeys) ? links.previousKeys : [];
    linkKeys = [links.key, ...previous].map((value) => {
      const key = base64Key(value, 'a link key');
      return { kid: linkKeyId(key), key };
    });
  } else if (Array.isArray(main?.linkKeys)) {
    linkKeys = decode(main as unknown as SecretsFile).linkKeys;
  }
  const appSecret = typeof whatsapp?.appSecret === 'string' && whatsapp.appSecret ? whatsapp.appSecret : undefined;
  const verifyToken =
    typeof whatsapp?.verifyToken === 'string' && whatsapp.verifyToken ? whatsapp.verifyToken : undefined;
  const logKeys = log ? [log.key, ...(Array.isArray(log.previousKeys) ? log.previousKeys : [])].map(logKeyPem) : [];
  return {
    identifierKey,
    linkKeys,
    ...(appSecret ? { whatsappAppSecret: appSecret } : {}),
    ...(verifyToken ? { whatsappVerifyToken: verifyToken } : {}),
    logKeys,
  };
}

let cached: Promise<Secrets> | undefined;

/** The environment variables that name a Secrets Manager secret: any of them set means the cloud. */
const SECRET_IDS = ['SECRETS_ID', 'LINK_KEYS_SECRET_ID', 'WHATSAPP_SECRET_ID', 'LOG_KEYS_SECRET_ID'] as const;

/**
 * The container's secrets, loaded on first use: from Secrets Manager in the cloud (a Lambda, or any secret id
 * set; a Lambda given no secret id gets none — it never reads or writes a local file), else
 * `DATA_DIR/secrets.json`.
 */
export function getSecrets(): Promise<Secrets> {
  if (!cached) {
    const cloud = Boolean(process.env.AWS_LAMBDA_FUNCTION_NAME) || SECRET_IDS.some((name) => process.env[name]);
    cached = cloud ? loadCloud(process.env) : Promise.resolve(loadLocal(process.env.DATA_DIR || '.data'));
    cached.catch(() => {
      cached = undefined;
    });
  }
  return cached;
}

/** The per-tenant key for subjectKeys: HMAC(master, tenant), so tenants never share a key space. */
export function tenantKey(secrets: Secrets, tenant: string, use = 'subject'): Buffer {
  // Derived once per secrets, tenant and use: a check-batch derives it for each of its 1000 items.
  let derived = derivedKeys.get(secrets);
  if (!derived) {
    derived = new Map();
    derivedKeys.set(secrets, derived);
  }
  const name = `${use}:${tenant}`;
  let key = derived.get(name);
  if (!key) {
    if (secrets.identifierKey.length === 0) throw new Error('no identifier key: SECRETS_ID is not set');
    key = createHmac('sha256', secrets.identifierKey).update(name).digest();
    derived.set(name, key);
  }
  return key;
}

const derivedKeys = new WeakMap<Secrets, Map<string, Buffer>>();

/** What a {@link tenantDigest} is for: each use has its own derived key. */
export type DigestUse = 'evidence' | 'replay' | 'idempotency';

/**
 * A keyed digest of a value that may contain an identifier (an IP address, a webhook notification naming a
 * phone number, a request body): HMAC-SHA-256 with the tenant's key for that use, base64url. A plain hash
 * of such data is brute-forced back to the phone number from a copy of the table; this one is not, and
 * the same value gives different digests in different tenants and uses.
 */
export async function tenantDigest(tenant: string, use: DigestUse, value: string): Promise<string> {
  return createHmac('sha256', tenantKey(await getSecrets(), tenant, use))
    .update(value)
    .digest('base64url');
}
