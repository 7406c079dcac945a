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
    const folder = join(this.dir, tenant);
    mkdirSync(folder, { recursive: true });
    const path = join(folder, `${treeSize}.note`);
    const temp = join(folder, `.${treeSize}.${randomBytes(6).toString('hex')}.tmp`);
    const fd = openSync(temp, 'wx', 0o644);
    try {
      writeSync(fd, note);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    try {
      linkSync(temp, path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      if (readFileSync(path, 'utf8') !== note) throw new AnchorConflict(tenant, treeSize);
    } finally {
      unlinkSync(temp);
    }
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
}

/** The S3 operations the cloud anchor uses (a client-s3 `S3Client` in the cloud, a fake in tests). */
export interface S3Like {
  send(command: unknown): Promise<unknown>;
}

const s3Key = (tenant: string, treeSize: number) => `checkpoints/${tenant}/${treeSize}.note`;

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
    const { client, sdk } = await this.s3();
    for (let attempt = 0; ; attempt++) {
      try {
        await client.send(
          new sdk.PutObjectCommand({
            Bucket: this.bucket,
            Key: s3Key(tenant, treeSize),
            Body: note,
            ContentType: 'text/plain; charset=utf-8',
            IfNoneMatch: '*',
            // Object Lock buckets refuse a put without an integrity checksum.
            ChecksumAlgorithm: 'SHA256',
          }),
        );
        return;
      } catch (error) {
        // 412: the object exists; 409: a concurrent put of the same key is in flight. Either way, compare.
        const status = statusOf(error);
        if (status !== 412 && status !== 409) throw error;
        const existing = await this.get(tenant, treeSize);
        if (existing === note) return;
        if (existing !== undefined) throw new AnchorConflict(tenant, treeSize);
        if (attempt >= 3) throw error;
        await new Promise((resolve) => setTimeout(resolve, 200 * (attempt + 1)));
      }
    }
  }

  async list(tenant: string): Promise<AnchoredCheckpoint[]> {
    checkArgs(tenant, 1);
    const { client, sdk } = await this.s3();
    const sizes: number[] = [];
    let token: string | undefined;
    do {
      const out = (await client.send(
        new sdk.ListObjectsV2Command({
          Bucket: this.bucket,
          Prefix: `checkpoints/${tenant}/`,
          ContinuationToken: token,
        }),
      )) as { Contents?: { Key?: string }[]; NextContinuationToken?: string; IsTruncated?: boolean };
      for (const object of out.Contents ?? []) {
        const match = NOTE_FILE.exec(object.Key?.split('/').pop() ?? '');
        if (match) sizes.push(Number(match[1]));
      }
      token = out.IsTruncated ? out.NextContinuationToken : undefined;
    } while (token);
    sizes.sort((a, b) => a - b);
    const notes: AnchoredCheckpoint[] = [];
    for (const treeSize of sizes) {
      const note = await this.get(tenant, treeSize);
      if (note !== undefined) notes.push({ treeSize, note });
    }
    return notes;
  }

  async get(tenant: string, treeSize: number): Promise<string | undefined> {
    checkArgs(tenant, treeSize);
    const { client, sdk } = await this.s3();
    try {
      const out = (await client.send(
        new sdk.GetObjectCommand({ Bucket: this.bucket, Key: s3Key(tenant, treeSize) }),
      )) as {
        Body?: { transformToString(encoding?: string): Promise<string> };
      };
      return await out.Body?.transformToString('utf-8');
    } catch (error) {
      if (statusOf(error) === 404 || (error as { name?: string })?.name === 'NoSuchKey') return undefined;
      throw error;
    }
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
