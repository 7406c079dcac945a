import { randomBytes } from 'node:crypto';
import {
  closeSync,
  fsyncSync,
  linkSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { mapLimit } from '#shared/concurrency.ts';

/**
 * Where every signed checkpoint is also kept, outside the table and out of reach of the table's writers:
 * locally `DATA_DIR/checkpoints/<tenant>/<treeSize>.note`, in the cloud an S3 bucket with Object Lock in
 * compliance mode that only the sealer's role may write. Write-once: putting the same note again is a no-op,
 * putting another note for a size already anchored throws {@link AnchorConflict} (the log forked).
 */
export interface Anchor {
  /** Keeps the note of the checkpoint of `treeSize`; idempotent for the same note. */
  put(tenant: string, treeSize: number, note: string): Promise<void>;
  /** The anchored checkpoints of a tenant, smallest tree first. */
  list(tenant: string): Promise<AnchoredCheckpoint[]>;
  /** The anchored note of one tree size, if any. */
  get(tenant: string, treeSize: number): Promise<string | undefined>;
  /**
   * Publishes a checkpoint-signing public key beside the checkpoints, write-once: the functions that only
   * verify read the keys from here and never hold the private key, and nobody with access to the table or the
   * secret can swap the key a checkpoint was signed with. Idempotent for the same key.
   */
  putKey(key: AnchoredKey): Promise<void>;
  /** Every published key, newest first (the one that signs new checkpoints, then the older ones). */
  keys(): Promise<AnchoredKey[]>;
}

/** A published checkpoint-signing key: its C2SP key id (hex), the SPKI PEM and when it was first published. */
export interface AnchoredKey {
  keyId: string;
  publicKeyPem: string;
  publishedAt: string;
}

const KEY_ID = /^[0-9a-f]{8}$/;
const KEY_FILE = /^([0-9a-f]{8})\.json$/;

function checkKey(key: AnchoredKey): string {
  if (!KEY_ID.test(key.keyId)) throw new RangeError('not a key id');
  return `${JSON.stringify({ keyId: key.keyId, publicKeyPem: key.publicKeyPem, publishedAt: key.publishedAt })}\n`;
}

/** Newest first; two keys published in the same millisecond by key id, so every reader agrees. */
const newestFirst = (keys: AnchoredKey[]) =>
  keys.sort((a, b) => b.publishedAt.localeCompare(a.publishedAt) || a.keyId.localeCompare(b.keyId));

/** A published key file as read back: anything else is ignored (the reader then lacks that key and says so). */
function parseKey(text: string | undefined): AnchoredKey | undefined {
  try {
    const key = JSON.parse(text ?? '');
    if (KEY_ID.test(key.keyId) && typeof key.publicKeyPem === 'string' && typeof key.publishedAt === 'string')
      return { keyId: key.keyId, publicKeyPem: key.publicKeyPem, publishedAt: key.publishedAt };
  } catch {
    // Not JSON: ignored.
  }
  return undefined;
}

export interface AnchoredCheckpoint {
  treeSize: number;
  note: string;
}

/** Another note is already anchored for this tree size: two different trees of one size were signed. */
export class AnchorConflict extends Error {
  constructor(
    readonly tenant: string,
    readonly treeSize: number,
  ) {
    super(`another checkpoint is already anchored for tree size ${treeSize}`);
    this.name = 'AnchorConflict';
  }
}

const NOTE_FILE = /^(\d+)\.note$/;
const TENANT = /^[a-z0-9][a-z0-9-]{0,62}$/;

function checkArgs(tenant: string, treeSize: number): void {
  // The tenant names a folder or a key prefix: only tenant ids (lowercase letters, digits, "-") pass.
  if (!TENANT.test(tenant)) throw new RangeError('not a tenant id');
  if (!Number.isSafeInteger(treeSize) || treeSize < 1) throw new RangeError('tree size must be a positive integer');
}

/**
 * Creates `folder/name` holding `text` unless it exists: link(2) from a fully written and fsynced temporary
 * file, so the file either does not exist or is whole, and is never replaced. Returns what an existing file
 * holds (undefined when this call created it).
 */
function writeOnce(folder: string, name: string, text: string): string | undefined {
  mkdirSync(folder, { recursive: true });
  const path = join(folder, name);
  const temp = join(folder, `.${name}.${randomBytes(6).toString('hex')}.tmp`);
  const fd = openSync(temp, 'wx', 0o644);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    linkSync(temp, path);
    return undefined;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    return readFileSync(path, 'utf8');
  } finally {
    unlinkSync(temp);
  }
}

/**
 * The local anchor: one file per checkpoint, created with link(2) from a fully written and fsynced temporary
 * file, so a file either does not exist or holds the whole note (a crash never leaves half a note), and an
 * existing file is never replaced.
 */
export class LocalAnchor implements Anchor {
  readonly dir: string;

  constructor(dataDir: string) {
    this.dir = join(dataDir, 'checkpoints');
  }

  async put(tenant: string, treeSize: number, note: string): Promise<void> {
    checkArgs(tenant, treeSize);
    const existing = writeOnce(join(this.dir, tenant), `${treeSize}.note`, note);
    if (existing !== undefined && existing !== note) throw new AnchorConflict(tenant, treeSize);
  }

  async putKey(key: AnchoredKey): Promise<void> {
    // `_keys` cannot be a tenant's folder: tenant ids have no "_".
    const existing = parseKey(writeOnce(join(this.dir, '_keys'), `${key.keyId}.json`, checkKey(key)));
    if (existing && existing.publicKeyPem !== key.publicKeyPem) throw new Error(`key id ${key.keyId} is taken`);
  }

  async keys(): Promise<AnchoredKey[]> {
    const folder = join(this.dir, '_keys');
    let names: string[];
    try {
      names = readdirSync(folder);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
    const keys = names
      .filter((name) => KEY_FILE.test(name))
      .map((name) => parseKey(readFileSync(join(folder, name), 'utf8')))
      .filter((key): key is AnchoredKey => key !== undefined);
    return newestFirst(keys);
  }

  async list(tenant: string): Promise<AnchoredCheckpoint[]> {
    checkArgs(tenant, 1);
    let names: string[];
    try {
      names = readdirSync(join(this.dir, tenant));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
    return names
      .map((name) => NOTE_FILE.exec(name))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => ({ treeSize: Number(m[1]), note: readFileSync(join(this.dir, tenant, m[0]), 'utf8') }))
      .sort((a, b) => a.treeSize - b.treeSize);
  }

  async get(tenant: string, treeSize: number): Promise<string | undefined> {
    checkArgs(tenant, treeSize);
    try {
      return readFileSync(join(this.dir, tenant, `${treeSize}.note`), 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  }
}

/** An anchor in memory (`DATA_DIR=memory`, tests): write-once like the others, gone with the process. */
export class MemoryAnchor implements Anchor {
  readonly notes = new Map<string, Map<number, string>>();

  async put(tenant: string, treeSize: number, note: string): Promise<void> {
    checkArgs(tenant, treeSize);
    let notes = this.notes.get(tenant);
    if (!notes) {
      notes = new Map();
      this.notes.set(tenant, notes);
    }
    const existing = notes.get(treeSize);
    if (existing !== undefined && existing !== note) throw new AnchorConflict(tenant, treeSize);
    notes.set(treeSize, note);
  }

  async list(tenant: string): Promise<AnchoredCheckpoint[]> {
    return [...(this.notes.get(tenant) ?? new Map<number, string>())]
      .map(([treeSize, note]) => ({ treeSize, note }))
      .sort((a, b) => a.treeSize - b.treeSize);
  }

  async get(tenant: string, treeSize: number): Promise<string | undefined> {
    return this.notes.get(tenant)?.get(treeSize);
  }

  readonly published = new Map<string, AnchoredKey>();

  async putKey(key: AnchoredKey): Promise<void> {
    checkKey(key);
    const existing = this.published.get(key.keyId);
    if (existing && existing.publicKeyPem !== key.publicKeyPem) throw new Error(`key id ${key.keyId} is taken`);
    if (!existing) this.published.set(key.keyId, { ...key });
  }

  async keys(): Promise<AnchoredKey[]> {
    return newestFirst([...this.published.values()].map((key) => ({ ...key })));
  }
}

/** The S3 operations the cloud anchor uses (a client-s3 `S3Client` in the cloud, a fake in tests). */
export interface S3Like {
  send(command: unknown): Promise<unknown>;
}

/**
 * `checkpoints/<tenant>/<treeSize, 16 digits>.note`: zero-padded, so S3's lexicographic listing is tree order and
 * a reader can list from a size on (`StartAfter`).
 */
const s3Key = (tenant: string, treeSize: number) => `checkpoints/${tenant}/${String(treeSize).padStart(16, '0')}.note`;
const S3_KEYS = 'keys/';

const statusOf = (error: unknown) => (error as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;

/**
 * The cloud anchor: `s3://<bucket>/checkpoints/<tenant>/<treeSize>.note` in a bucket with Object Lock in
 * compliance mode (the bucket's default retention, the proof retention, applies to every version: nobody,
 * the account's root included, can delete or overwrite it before then). Puts are conditional
 * (`If-None-Match: *`): an existing object is never replaced, only compared.
 */
export class S3Anchor implements Anchor {
  private client: Promise<S3Like> | undefined;

  constructor(
    readonly bucket: string,
    client?: S3Like,
  ) {
    if (client) this.client = Promise.resolve(client);
  }

  private async s3() {
    // Loaded on first use: only the sealer and the log function ship it.
    this.client ??= import('@aws-sdk/client-s3').then(({ S3Client }) => new S3Client({}) as unknown as S3Like);
    const [client, sdk] = await Promise.all([this.client, import('@aws-sdk/client-s3')]);
    return { client, sdk };
  }

  async put(tenant: string, treeSize: number, note: string): Promise<void> {
    checkArgs(tenant, treeSize);
    const existing = await this.putOnce(s3Key(tenant, treeSize), note, 'text/plain; charset=utf-8');
    if (existing !== undefined && existing !== note) throw new AnchorConflict(tenant, treeSize);
  }

  async putKey(key: AnchoredKey): Promise<void> {
    const existing = parseKey(await this.putOnce(`${S3_KEYS}${key.keyId}.json`, checkKey(key), 'application/json'));
    if (existing && existing.publicKeyPem !== key.publicKeyPem) throw new Error(`key id ${key.keyId} is taken`);
  }

  async keys(): Promise<AnchoredKey[]> {
    const names = (await this.listKeys(S3_KEYS)).filter((name) => KEY_FILE.test(name.slice(S3_KEYS.length)));
    const keys = await Promise.all(names.map(async (name) => parseKey(await this.read(name))));
    return newestFirst(keys.filter((key): key is AnchoredKey => key !== undefined));
  }

  /**
   * Creates the object unless it exists (`If-None-Match: *`): an existing object is never replaced. Returns what
   * an existing object holds (undefined when this call created it).
   */
  private async putOnce(key: string, body: string, contentType: string): Promise<string | undefined> {
    const { client, sdk } = await this.s3();
    for (let attempt = 0; ; attempt++) {
      try {
        await client.send(
          new sdk.PutObjectCommand({
            Bucket: this.bucket,
            Key: key,
            Body: body,
            ContentType: contentType,
            IfNoneMatch: '*',
            // Object Lock buckets refuse a put without an integrity checksum.
            ChecksumAlgorithm: 'SHA256',
          }),
        );
        return undefined;
      } catch (error) {
        // 412: the object exists; 409: a concurrent put of the same key is in flight. Either way, compare.
        const status = statusOf(error);
        if (status !== 412 && status !== 409) throw error;
        const existing = await this.read(key);
        if (existing !== undefined) return existing;
        if (attempt >= 3) throw error;
        await new Promise((resolve) => setTimeout(resolve, 200 * (attempt + 1)));
      }
    }
  }

  /** Every object key under `prefix`, in S3's (lexicographic) order. */
  private async listKeys(prefix: string): Promise<string[]> {
    const { client, sdk } = await this.s3();
    const found: string[] = [];
    let token: string | undefined;
    do {
      const out = (await client.send(
        new sdk.ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token }),
      )) as { Contents?: { Key?: string }[]; NextContinuationToken?: string; IsTruncated?: boolean };
      for (const object of out.Contents ?? []) if (object.Key) found.push(object.Key);
      token = out.IsTruncated ? out.NextContinuationToken : undefined;
    } while (token);
    return found;
  }

  private async read(key: string): Promise<string | undefined> {
    const { client, sdk } = await this.s3();
    try {
      const out = (await client.send(new sdk.GetObjectCommand({ Bucket: this.bucket, Key: key }))) as {
        Body?: { transformToString(encoding?: string): Promise<string> };
      };
      return await out.Body?.transformToString('utf-8');
    } catch (error) {
      if (statusOf(error) === 404 || (error as { name?: string })?.name === 'NoSuchKey') return undefined;
      throw error;
    }
  }

  async list(tenant: string): Promise<AnchoredCheckpoint[]> {
    checkArgs(tenant, 1);
    const prefix = `checkpoints/${tenant}/`;
    const sizes = (await this.listKeys(prefix))
      .map((key) => /^(\d+)\.note$/.exec(key.slice(prefix.length)))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => Number(m[1]));
    // A GET per checkpoint, 16 at a time (a verification reads them all).
    const notes = await mapLimit(sizes, 16, async (treeSize) => ({ treeSize, note: await this.get(tenant, treeSize) }));
    return notes.filter((n): n is AnchoredCheckpoint => n.note !== undefined);
  }

  async get(tenant: string, treeSize: number): Promise<string | undefined> {
    checkArgs(tenant, treeSize);
    return this.read(s3Key(tenant, treeSize));
  }
}

/**
 * The anchor of this runtime: the S3 bucket named by `CHECKPOINT_BUCKET` (cloud), else
 * `DATA_DIR/checkpoints` (local; in memory when `DATA_DIR=memory`).
 */
export function anchorFromEnv(env: NodeJS.ProcessEnv = process.env): Anchor {
  if (env.CHECKPOINT_BUCKET) return new S3Anchor(env.CHECKPOINT_BUCKET);
  const dataDir = env.DATA_DIR || '.data';
  if (dataDir !== 'memory') return new LocalAnchor(dataDir);
  memoryAnchor ??= new MemoryAnchor();
  return memoryAnchor;
}

let memoryAnchor: MemoryAnchor | undefined;
