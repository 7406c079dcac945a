import { createHash } from 'node:crypto';
import {
  BatchGetCommand,
  BatchWriteCommand,
  GetCommand,
  PutCommand,
  QueryCommand,
  TransactWriteCommand,
  type TransactWriteCommandInput,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { mapLimit } from '#shared/concurrency.ts';
import { type NodeId, nodeKey } from '#shared/log/merkle.ts';
import type { CheckpointView } from '#shared/log/receipt.ts';
import { type Db, queryAll } from './db.ts';
import { backoffMs, isWriteConflict, StoreUnavailable, sleep, storeFailure } from './errors.ts';
import { keys } from './table.ts';

/*
 * The tenant's verifiable log, in its own partition `T#<tenant>#LOG` (README, "Data model"):
 *
 * | SK                    | holds                                                                          |
 * |-----------------------|--------------------------------------------------------------------------------|
 * | `HEAD`                | `size`, `rootHash`, `watermark`, `scannedTo`, `version`, `pending`, `anchored`  |
 * | `TILE#00#<n>`         | leaves `256·n …` (at most 256): `leaves` = "eventId subjectKey seq eventHash"   |
 * | `TILE#<L>#<n>`        | `hashes`: the hashes of the perfect subtrees of level 8·L numbered `256·n …`    |
 * | `EVT#<eventId>`       | `leafIndex`, `subjectKey`, `seq`: a receipt's lookup by event id                 |
 * | `CP#<size>`           | `note`, `timestamp`, `keyId`, `rootHash`, `origin`: each signed checkpoint      |
 * | `BATCH#<size>`        | the leaves of the batch being appended at `size` (deleted once appended)        |
 *
 * The tree is stored as tiles of height 8 (as in C2SP tlog-tiles): a tile holds 256 hashes of one level, every
 * 8th level is stored, the levels between are recomputed from the tile below them. Any perfect subtree (a
 * {@link NodeId} of merkle.ts) is computed from one tile, so a proof's nodes cost one BatchGetItem of
 * O(log₂₅₆ n) tiles, and appending costs one EVT item per event plus the few tiles of the right edge.
 *
 * Writing is the sealer's alone (shared/services/sealer.ts); one writer per tenant is enforced by conditions on
 * `HEAD.version`. Appending a batch takes three steps, each safe to repeat after a crash:
 * 1. claim ({@link claimBatch}): one transaction puts `BATCH#<size>` with the batch's leaves and marks HEAD
 *    `pending` (condition: the version read). From here the batch's content is fixed.
 * 2. write ({@link writeBatch}): the EVT items and the tiles the batch extends, computed from the batch and
 *    the committed tree only, so whoever repeats it writes the very same items. A tile is only ever extended:
 *    its put is conditioned on not holding more entries already (a late, stale writer cannot shorten it).
 * 3. finalize ({@link finalizeBatch}): one transaction moves HEAD to the new size and root, deletes the batch
 *    and puts the signed checkpoint `CP#<new size>` (condition: the pending version).
 * Readers trust nothing at or beyond `HEAD.size`: a tile entry or EVT item there belongs to a pending batch.
 */

const pad = (n: number, width = 12) => String(n).padStart(width, '0');
export const logKeys = {
  head: 'HEAD',
  /** A tile: `level` is the tile level (0 = leaves, L = the hashes of tree level 8·L). */
  tile: (level: number, index: number) => `TILE#${pad(level, 2)}#${pad(index)}`,
  event: (eventId: string) => `EVT#${eventId}`,
  checkpoint: (size: number) => `CP#${pad(size)}`,
  batch: (size: number) => `BATCH#${pad(size)}`,
};

/** The sparse index (GSI2) partition that lists every tenant's HEAD: the sealer's tenant discovery. */
export const LOG_HEADS = 'LOG#HEADS';

/** The state of a tenant's log. */
export interface LogHead {
  tenant: string;
  /** Leaves in the committed tree. */
  size: number;
  /** Root of the committed tree (base64). */
  rootHash: string;
  /** Audit-index sort key (`<recordedAt>#<eventId>`) of the last event taken into the tree (or the pending batch). */
  watermark?: string;
  /** The audit index was read completely up to this sort key (it moves on while the tenant is idle). */
  scannedTo: string;
  /** Bumped by every claim and finalize: the writers' condition. */
  version: number;
  /** A claimed batch not yet finalized: `count` leaves appended at `size`. */
  pending?: { size: number; count: number };
  /** Every checkpoint up to this size is anchored outside the table. */
  anchored: number;
}

/** One leaf: an event of the ledger. */
export interface LogLeaf {
  index: number;
  eventId: string;
  subjectKey: string;
  seq: number;
  /** The event's hash (hex); the leaf hash is SHA-256(0x00 ‖ its bytes). */
  eventHash: string;
}

/** An event as a batch appends it. */
export type BatchLeaf = Omit<LogLeaf, 'index'>;

/** A stored signed checkpoint: what the API shows (the item's keys aside). */
export type StoredCheckpoint = CheckpointView;

/** A finalize or claim met a HEAD that is not the one read: another sealer moved the log on. */
export class LogConflict extends Error {
  constructor() {
    super('the log head moved: another sealer is appending');
    this.name = 'LogConflict';
  }
}

/** The log holds something its writer never leaves: a checkpoint for a size not yet appended (tampering). */
export class LogCorrupted extends Error {
  constructor(detail: string) {
    super(detail);
    this.name = 'LogCorrupted';
  }
}

const pk = (tenant: string) => keys.log(tenant);
/** The root of the empty tree (SHA-256 of nothing), base64: `EMPTY_ROOT` of merkle.ts, spelt out to keep this light. */
const EMPTY_ROOT = '47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=';
type Item = Record<string, unknown>;

function toHead(tenant: string, item: Item): LogHead {
  const pending = item.pending as { size: number; count: number } | undefined;
  return {
    tenant,
    size: Number(item.size ?? 0),
    rootHash: String(item.rootHash ?? EMPTY_ROOT),
    ...(item.watermark ? { watermark: String(item.watermark) } : {}),
    scannedTo: String(item.scannedTo ?? ''),
    version: Number(item.version ?? 0),
    ...(pending ? { pending: { size: Number(pending.size), count: Number(pending.count) } } : {}),
    anchored: Number(item.anchored ?? 0),
  };
}

/** The tenant's log head (strongly consistent), or undefined before its log exists. */
export async function getHead(db: Db, tenant: string): Promise<LogHead | undefined> {
  try {
    const out = await db.client.send(
      new GetCommand({ TableName: db.table, Key: { PK: pk(tenant), SK: logKeys.head }, ConsistentRead: true }),
    );
    return out.Item ? toHead(tenant, out.Item) : undefined;
  } catch (error) {
    throw storeFailure(error, 'getLogHead');
  }
}

/**
 * Starts a tenant's log (if it has none): an empty tree whose events are read from the audit index after
 * `since` (an ISO time, or an audit sort key). Without `since`: from the day the tenant's first API key was
 * created (no event can be written through the API before), or undefined when the tenant has no key.
 * Registration puts the HEAD in the sparse index the sealer lists its tenants from.
 */
export async function registerLog(db: Db, tenant: string, since?: string): Promise<LogHead | undefined> {
  const start = since ?? (await firstKeyDay(db, tenant));
  if (start === undefined) return getHead(db, tenant);
  const item = {
    PK: pk(tenant),
    SK: logKeys.head,
    tenant,
    size: 0,
    rootHash: EMPTY_ROOT,
    scannedTo: start,
    version: 0,
    anchored: 0,
    GSI2PK: LOG_HEADS,
    GSI2SK: tenant,
  };
  try {
    await db.client.send(
      new PutCommand({ TableName: db.table, Item: item, ConditionExpression: 'attribute_not_exists(PK)' }),
    );
    return toHead(tenant, item);
  } catch (error) {
    if (!isWriteConflict(error)) throw storeFailure(error, 'registerLog');
    return getHead(db, tenant);
  }
}

/**
 * Registers the log of a tenant that gets an API key (created at `keyCreatedAt`): its events are read from the
 * day of its first key on. Idempotent; a tenant whose log exists is left as it is.
 */
export async function registerTenantLog(db: Db, tenant: string, keyCreatedAt: string): Promise<void> {
  const day = `${keyCreatedAt.slice(0, 10)}T00:00:00.000Z`;
  const first = await firstKeyDay(db, tenant);
  await registerLog(db, tenant, first && first < day ? first : day);
}

/** The UTC day (`YYYY-MM-DDT00:00:00.000Z`) the tenant's first API key was created, from the keys index. */
async function firstKeyDay(db: Db, tenant: string): Promise<string | undefined> {
  try {
    const out = await db.client.send(
      new QueryCommand({
        TableName: db.table,
        IndexName: 'GSI1',
        KeyConditionExpression: 'GSI1PK = :pk',
        ExpressionAttributeValues: { ':pk': keys.apiKeysOfTenant(tenant) },
        ProjectionExpression: 'GSI1SK',
        Limit: 1,
      }),
    );
    const first = out.Items?.[0]?.GSI1SK as string | undefined;
    return first ? `${first.slice(0, 10)}T00:00:00.000Z` : undefined;
  } catch (error) {
    throw storeFailure(error, 'firstKeyDay');
  }
}

/** Every tenant that has a log, from the sparse HEAD index (one Query; ~20 tenants per read unit). */
export async function listLogTenants(db: Db): Promise<string[]> {
  try {
    const items = await queryAll(db, {
      IndexName: 'GSI2',
      KeyConditionExpression: 'GSI2PK = :pk',
      ExpressionAttributeValues: { ':pk': LOG_HEADS },
      ProjectionExpression: 'GSI2SK',
    });
    return items.map((item) => item.GSI2SK as string);
  } catch (error) {
    throw storeFailure(error, 'listLogTenants');
  }
}

const BATCH_GET_CHUNK = 100;
const BATCH_WRITE_CHUNK = 25;
const MAX_BATCH_ROUNDS = 8;

/** BatchGetItem of many keys of the log partition, chunks in parallel, unprocessed keys retried. */
async function batchGet(
  db: Db,
  keysToRead: Item[],
  projection: { expression: string; names?: Record<string, string> },
  operation: string,
  consistent = true,
): Promise<Item[]> {
  const found: Item[] = [];
  const chunks: Item[][] = [];
  for (let i = 0; i < keysToRead.length; i += BATCH_GET_CHUNK) chunks.push(keysToRead.slice(i, i + BATCH_GET_CHUNK));
  await mapLimit(chunks, 8, async (chunk) => {
    let pending = chunk;
    for (let round = 0; pending.length > 0; round++) {
      if (round >= MAX_BATCH_ROUNDS) throw new StoreUnavailable('the store kept throttling the batch read');
      if (round > 0) await sleep(backoffMs(round, 20, 500));
      try {
        const out = await db.client.send(
          new BatchGetCommand({
            RequestItems: {
              [db.table]: {
                Keys: pending,
                ConsistentRead: consistent,
                ProjectionExpression: projection.expression,
                ...(projection.names ? { ExpressionAttributeNames: projection.names } : {}),
              },
            },
          }),
        );
        found.push(...(out.Responses?.[db.table] ?? []));
        pending = (out.UnprocessedKeys?.[db.table]?.Keys as Item[] | undefined) ?? [];
      } catch (error) {
        throw storeFailure(error, operation);
      }
    }
  });
  return found;
}

// ---- tiles ----

/** Levels per tile, and entries per tile (256). */
export const TILE_HEIGHT = 8;
export const TILE_WIDTH = 2 ** TILE_HEIGHT;

/** A tile as stored: its tile level and number, and its entries (leaves at level 0, hashes above). */
export interface Tile {
  level: number;
  index: number;
  leaves?: BatchLeaf[];
  hashes?: Buffer[];
}

/** Entries in a tile. */
const tileLength = (tile: Tile) => (tile.level === 0 ? (tile.leaves?.length ?? 0) : (tile.hashes?.length ?? 0));

/** The tile a perfect subtree is computed from, and the range of that tile's entries it covers. */
export function tileOf(id: NodeId): { level: number; index: number; start: number; width: number } {
  const level = Math.floor(id.level / TILE_HEIGHT);
  const width = 2 ** (id.level - level * TILE_HEIGHT);
  const first = id.index * width;
  const index = Math.floor(first / TILE_WIDTH);
  return { level, index, start: first - index * TILE_WIDTH, width };
}

const sha256 = (...parts: Buffer[]) => {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(part);
  return hash.digest();
};
const LEAF_PREFIX = Buffer.from([0]);
const NODE_PREFIX = Buffer.from([1]);

/** The hashes of a tile's entries: leaf hashes (SHA-256(0x00 ‖ event hash)) at level 0, stored hashes above. */
function entryHashes(tile: Tile, start: number, width: number): Buffer[] {
  if (tile.level > 0) return (tile.hashes ?? []).slice(start, start + width);
  return (tile.leaves ?? [])
    .slice(start, start + width)
    .map((leaf) => sha256(LEAF_PREFIX, Buffer.from(leaf.eventHash, 'hex')));
}

/** A perfect subtree's hash from its tile, or undefined when the tile does not hold all of its entries. */
export function nodeFromTile(tile: Tile, id: NodeId): Buffer | undefined {
  const { start, width } = tileOf(id);
  if (start + width > tileLength(tile)) return undefined;
  let hashes = entryHashes(tile, start, width);
  while (hashes.length > 1) {
    const up: Buffer[] = [];
    for (let i = 0; i < hashes.length; i += 2) up.push(sha256(NODE_PREFIX, hashes[i], hashes[i + 1]));
    hashes = up;
  }
  return hashes[0];
}

const tileKey = (level: number, index: number) => `${level}/${index}`;

function toTile(item: Item): Tile {
  const [, level, index] = (item.SK as string).split('#').map(Number);
  if (level === 0) return { level, index, leaves: ((item.leaves as string[] | undefined) ?? []).map(decodeLeaf) };
  const bytes = Buffer.from((item.hashes as Uint8Array | undefined) ?? []);
  const hashes: Buffer[] = [];
  for (let i = 0; i + 32 <= bytes.length; i += 32) hashes.push(bytes.subarray(i, i + 32));
  return { level, index, hashes };
}

/** Reads tiles (BatchGetItem), by `level/index`; a tile never written is absent. */
export async function getTiles(
  db: Db,
  tenant: string,
  ids: { level: number; index: number }[],
): Promise<Map<string, Tile>> {
  const unique = new Set(ids.map((id) => logKeys.tile(id.level, id.index)));
  const items = await batchGet(
    db,
    [...unique].map((SK) => ({ PK: pk(tenant), SK })),
    { expression: 'SK, #l, #h', names: { '#l': 'leaves', '#h': 'hashes' } },
    'getLogTiles',
  );
  return new Map(items.map((item) => toTile(item)).map((tile) => [tileKey(tile.level, tile.index), tile]));
}

/**
 * The hashes of these perfect subtrees, by {@link nodeKey}, computed from the tiles that hold them (one
 * BatchGetItem of O(log n) tiles for a proof). A node whose entries are not all stored is absent.
 */
export async function getNodes(db: Db, tenant: string, ids: NodeId[]): Promise<Map<string, Buffer>> {
  const tiles = await getTiles(db, tenant, ids.map(tileOf));
  return nodesFrom(tiles, ids);
}

/** The nodes computable from tiles already read. */
export function nodesFrom(tiles: Map<string, Tile>, ids: NodeId[]): Map<string, Buffer> {
  const nodes = new Map<string, Buffer>();
  for (const id of ids) {
    const at = tileOf(id);
    const tile = tiles.get(tileKey(at.level, at.index));
    const hash = tile && nodeFromTile(tile, id);
    if (hash) nodes.set(nodeKey(id), hash);
  }
  return nodes;
}

/**
 * The leaf an event was appended as, by event id (one GetItem). Trust it only when `leafIndex < HEAD.size`:
 * beyond, it belongs to a batch being appended (a receipt is not ready yet).
 */
export async function leafOf(
  db: Db,
  tenant: string,
  eventId: string,
): Promise<{ leafIndex: number; subjectKey: string; seq: number } | undefined> {
  try {
    const out = await db.client.send(
      new GetCommand({
        TableName: db.table,
        Key: { PK: pk(tenant), SK: logKeys.event(eventId) },
        ConsistentRead: true,
      }),
    );
    if (!out.Item) return undefined;
    return {
      leafIndex: Number(out.Item.leafIndex),
      subjectKey: out.Item.subjectKey as string,
      seq: Number(out.Item.seq),
    };
  } catch (error) {
    throw storeFailure(error, 'leafOf');
  }
}

/** The stored leaves `[start, end)` in order, from their tiles (the caller bounds `end` by `HEAD.size`). */
export async function listLeaves(db: Db, tenant: string, start: number, end: number): Promise<LogLeaf[]> {
  if (end <= start) return [];
  const first = Math.floor(start / TILE_WIDTH);
  const last = Math.floor((end - 1) / TILE_WIDTH);
  const tiles = await getTiles(
    db,
    tenant,
    Array.from({ length: last - first + 1 }, (_, i) => ({ level: 0, index: first + i })),
  );
  const leaves: LogLeaf[] = [];
  for (let t = first; t <= last; t++) {
    (tiles.get(tileKey(0, t))?.leaves ?? []).forEach((leaf, i) => {
      const index = t * TILE_WIDTH + i;
      if (index >= start && index < end) leaves.push({ index, ...leaf });
    });
  }
  return leaves;
}

const toCheckpoint = (item: Item): StoredCheckpoint => ({
  origin: item.origin as string,
  treeSize: Number(item.treeSize),
  rootHash: item.rootHash as string,
  timestamp: item.timestamp as string,
  keyId: item.keyId as string,
  note: item.note as string,
});

/** A signed checkpoint: of `size`, or the latest one when no size is given. */
export async function getCheckpoint(db: Db, tenant: string, size?: number): Promise<StoredCheckpoint | undefined> {
  try {
    if (size !== undefined) {
      const out = await db.client.send(
        new GetCommand({
          TableName: db.table,
          Key: { PK: pk(tenant), SK: logKeys.checkpoint(size) },
          ConsistentRead: true,
        }),
      );
      return out.Item ? toCheckpoint(out.Item) : undefined;
    }
    const out = await db.client.send(
      new QueryCommand({
        TableName: db.table,
        KeyConditionExpression: 'PK = :pk AND begins_with(SK, :cp)',
        ExpressionAttributeValues: { ':pk': pk(tenant), ':cp': 'CP#' },
        ScanIndexForward: false,
        Limit: 1,
        ConsistentRead: true,
      }),
    );
    const item = out.Items?.[0];
    return item ? toCheckpoint(item) : undefined;
  } catch (error) {
    throw storeFailure(error, 'getCheckpoint');
  }
}

/** The tenant's stored checkpoints, smallest tree first (optionally only sizes in `[from, to]`). */
export async function listCheckpoints(
  db: Db,
  tenant: string,
  range: { from?: number; to?: number } = {},
): Promise<StoredCheckpoint[]> {
  try {
    const items = await queryAll(db, {
      KeyConditionExpression: 'PK = :pk AND SK BETWEEN :from AND :to',
      ExpressionAttributeValues: {
        ':pk': pk(tenant),
        ':from': logKeys.checkpoint(range.from ?? 0),
        ':to': logKeys.checkpoint(range.to ?? Number.MAX_SAFE_INTEGER),
      },
      ConsistentRead: true,
    });
    return items.map(toCheckpoint);
  } catch (error) {
    throw storeFailure(error, 'listCheckpoints');
  }
}

// ---- the sealer's writes ----

type TransactItem = NonNullable<TransactWriteCommandInput['TransactItems']>[number];

const encodeLeaf = (leaf: BatchLeaf) => `${leaf.eventId} ${leaf.subjectKey} ${leaf.seq} ${leaf.eventHash}`;
const decodeLeaf = (line: string): BatchLeaf => {
  const [eventId, subjectKey, seq, eventHash] = line.split(' ');
  return { eventId, subjectKey, seq: Number(seq), eventHash };
};

/** A claimed batch: its leaves, appended at `size`. */
export interface LogBatch {
  size: number;
  leaves: BatchLeaf[];
}

/**
 * Step 1: claims the next batch for `head` (the head read): puts `BATCH#<size>` with the leaves and marks the
 * head pending, in one transaction conditioned on the head's version. `watermark`/`scannedTo` move on with
 * it (unchanged when omitted: a batch of late events). `unsealed`: event ids that must not be sealed yet (a
 * condition per id on its EVT item; at most 90). Throws {@link LogConflict} when another sealer moved first.
 */
export async function claimBatch(
  db: Db,
  head: LogHead,
  leaves: BatchLeaf[],
  moveTo: { watermark?: string; scannedTo?: string },
  unsealed: string[] = [],
): Promise<LogHead> {
  if (head.pending) throw new LogConflict();
  const tenant = head.tenant;
  const set = ['#v = :next', '#p = :pending'];
  const values: Item = {
    ':version': head.version,
    ':next': head.version + 1,
    ':pending': { size: head.size, count: leaves.length },
  };
  if (moveTo.watermark) {
    set.push('watermark = :watermark');
    values[':watermark'] = moveTo.watermark;
  }
  if (moveTo.scannedTo) {
    set.push('scannedTo = :scannedTo');
    values[':scannedTo'] = moveTo.scannedTo;
  }
  const items: TransactItem[] = [
    {
      Update: {
        TableName: db.table,
        Key: { PK: pk(tenant), SK: logKeys.head },
        UpdateExpression: `SET ${set.join(', ')}`,
        ConditionExpression: '#v = :version AND attribute_not_exists(#p)',
        ExpressionAttributeNames: { '#v': 'version', '#p': 'pending' },
        ExpressionAttributeValues: values,
      },
    },
    {
      Put: {
        TableName: db.table,
        Item: { PK: pk(tenant), SK: logKeys.batch(head.size), size: head.size, leaves: leaves.map(encodeLeaf) },
      },
    },
    ...unsealed.map(
      (eventId): TransactItem => ({
        ConditionCheck: {
          TableName: db.table,
          Key: { PK: pk(tenant), SK: logKeys.event(eventId) },
          ConditionExpression: 'attribute_not_exists(PK)',
        },
      }),
    ),
  ];
  try {
    await db.client.send(new TransactWriteCommand({ TransactItems: items }));
  } catch (error) {
    if (isWriteConflict(error)) throw new LogConflict();
    throw storeFailure(error, 'claimLogBatch');
  }
  return {
    ...head,
    version: head.version + 1,
    pending: { size: head.size, count: leaves.length },
    ...(moveTo.watermark ? { watermark: moveTo.watermark } : {}),
    ...(moveTo.scannedTo ? { scannedTo: moveTo.scannedTo } : {}),
  };
}

/** The claimed batch at `size` (strongly consistent), or undefined when it is gone (finalized meanwhile). */
export async function getBatch(db: Db, tenant: string, size: number): Promise<LogBatch | undefined> {
  try {
    const out = await db.client.send(
      new GetCommand({ TableName: db.table, Key: { PK: pk(tenant), SK: logKeys.batch(size) }, ConsistentRead: true }),
    );
    if (!out.Item) return undefined;
    return { size, leaves: (out.Item.leaves as string[]).map(decodeLeaf) };
  } catch (error) {
    throw storeFailure(error, 'getLogBatch');
  }
}

/** The tiles at the right edge of a tree of `size` (partly filled): the ones a batch appended there extends. */
export function edgeTiles(size: number, newSize: number): { level: number; index: number }[] {
  const edges: { level: number; index: number }[] = [];
  for (let level = 0; 2 ** (TILE_HEIGHT * level) <= newSize; level++) {
    const count = Math.floor(size / 2 ** (TILE_HEIGHT * level));
    if (count % TILE_WIDTH !== 0) edges.push({ level, index: Math.floor(count / TILE_WIDTH) });
  }
  return edges;
}

/**
 * The tiles a batch writes: each tile of each stored level it extends, with the committed entries (from the
 * edge tiles read) followed by the new ones. `added` holds the nodes the batch completes (merkle.ts
 * `appendNodes`), of which those of level 8·L go into the tiles of level L.
 */
export function batchTiles(batch: LogBatch, edges: Map<string, Tile>, added: Map<string, Buffer>): Tile[] {
  const size = batch.size;
  const newSize = size + batch.leaves.length;
  const tiles: Tile[] = [];
  for (let level = 0; 2 ** (TILE_HEIGHT * level) <= newSize; level++) {
    const unit = 2 ** (TILE_HEIGHT * level);
    const from = Math.floor(size / unit);
    const to = Math.floor(newSize / unit);
    const hashAt = (i: number) => {
      const hash = added.get(nodeKey({ level: TILE_HEIGHT * level, index: i }));
      if (!hash) throw new Error(`node ${TILE_HEIGHT * level}:${i} was not computed`);
      return hash;
    };
    for (let t = Math.floor(from / TILE_WIDTH); t * TILE_WIDTH < to; t++) {
      const begin = t * TILE_WIDTH;
      const end = Math.min(to, begin + TILE_WIDTH);
      // Entries before `from` are committed: they come from the stored edge tile.
      const committed = Math.max(0, from - begin);
      const edge = edges.get(tileKey(level, t));
      if (committed > 0 && (!edge || tileLength(edge) < committed)) {
        throw new LogCorrupted(`tile ${level}/${t} lacks committed entries`);
      }
      const first = begin + committed;
      if (level === 0) {
        const leaves = [...(edge?.leaves ?? []).slice(0, committed), ...batch.leaves.slice(first - size, end - size)];
        tiles.push({ level, index: t, leaves });
      } else {
        const fresh = Array.from({ length: end - first }, (_, i) => hashAt(first + i));
        tiles.push({ level, index: t, hashes: [...(edge?.hashes ?? []).slice(0, committed), ...fresh] });
      }
    }
  }
  return tiles;
}

/** A timeout, throttling or 5xx: worth another try after a pause. */
function isTransient(error: unknown): boolean {
  const e = error as { name?: string; $retryable?: unknown; $metadata?: { httpStatusCode?: number } };
  const status = e?.$metadata?.httpStatusCode ?? 0;
  return (
    e?.name === 'TimeoutError' ||
    e?.name === 'ProvisionedThroughputExceededException' ||
    e?.name === 'ThrottlingException' ||
    e?.name === 'RequestLimitExceeded' ||
    e?.$retryable !== undefined ||
    status >= 500
  );
}

/** A store call, tried again after a transient failure (a background job waits for a busy store). */
async function patiently<T>(operation: string, call: () => Promise<T>): Promise<T> {
  for (let round = 0; ; round++) {
    try {
      return await call();
    } catch (error) {
      if (isWriteConflict(error)) throw error;
      if (!isTransient(error) || round + 1 >= MAX_BATCH_ROUNDS) throw storeFailure(error, operation);
      await sleep(backoffMs(round + 1, 20, 1000));
    }
  }
}

/**
 * Step 2: writes a claimed batch: its EVT items (BatchWriteItem, 25 per request, `parallel` requests in flight,
 * unprocessed items retried) and its tiles (one conditional PutItem each: only if the stored tile does not
 * hold more entries, so a stale writer never shortens a tile another one extended). Every item is a pure
 * function of the batch and the committed tree: a repeat writes exactly the same.
 */
export async function writeBatch(db: Db, tenant: string, batch: LogBatch, tiles: Tile[], parallel = 4): Promise<void> {
  const events = batch.leaves.map((leaf, i) => ({
    PK: pk(tenant),
    SK: logKeys.event(leaf.eventId),
    leafIndex: batch.size + i,
    subjectKey: leaf.subjectKey,
    seq: leaf.seq,
  }));
  const chunks: Item[][] = [];
  for (let i = 0; i < events.length; i += BATCH_WRITE_CHUNK) chunks.push(events.slice(i, i + BATCH_WRITE_CHUNK));
  const putTile = async (tile: Tile) => {
    const entries = tileLength(tile);
    const item: Item = {
      PK: pk(tenant),
      SK: logKeys.tile(tile.level, tile.index),
      entries,
      ...(tile.level === 0
        ? { leaves: (tile.leaves ?? []).map(encodeLeaf) }
        : { hashes: Buffer.concat(tile.hashes ?? []) }),
    };
    try {
      await patiently('putLogTile', () =>
        db.client.send(
          new PutCommand({
            TableName: db.table,
            Item: item,
            ConditionExpression: 'attribute_not_exists(PK) OR #n <= :n',
            ExpressionAttributeNames: { '#n': 'entries' },
            ExpressionAttributeValues: { ':n': entries },
          }),
        ),
      );
    } catch (error) {
      // A longer tile is there already: written by a sealer that went further; it holds these entries too.
      if (!isWriteConflict(error)) throw error;
    }
  };
  const writeEvents = async (chunk: Item[]) => {
    let pending = chunk.map((Item) => ({ PutRequest: { Item } }));
    for (let round = 0; pending.length > 0; round++) {
      if (round >= MAX_BATCH_ROUNDS) throw new StoreUnavailable('the store kept throttling the log writes');
      if (round > 0) await sleep(backoffMs(round, 20, 1000));
      const out = await patiently('putLogEvents', () =>
        db.client.send(new BatchWriteCommand({ RequestItems: { [db.table]: pending } })),
      );
      pending = (out.UnprocessedItems?.[db.table] as typeof pending | undefined) ?? [];
    }
  };
  await Promise.all([mapLimit(tiles, parallel, putTile), mapLimit(chunks, parallel, writeEvents)]);
}

/**
 * Step 3: commits the pending batch: HEAD gets the new size and root (condition: the pending version), the
 * batch item goes, and the signed checkpoint of the new size is put (condition: none yet), in one
 * transaction. Throws {@link LogConflict} when another sealer finalized it first, {@link LogCorrupted} when a
 * checkpoint of that size already exists (only tampering leaves one).
 */
export async function finalizeBatch(db: Db, head: LogHead, checkpoint: StoredCheckpoint): Promise<LogHead> {
  const { tenant, pending } = head;
  if (!pending) throw new LogConflict();
  const size = pending.size + pending.count;
  try {
    await db.client.send(
      new TransactWriteCommand({
        TransactItems: [
          {
            Update: {
              TableName: db.table,
              Key: { PK: pk(tenant), SK: logKeys.head },
              UpdateExpression: 'SET #size = :size, rootHash = :root, #v = :next REMOVE #p',
              ConditionExpression: '#v = :version AND #p.#size = :from',
              ExpressionAttributeNames: { '#v': 'version', '#size': 'size', '#p': 'pending' },
              ExpressionAttributeValues: {
                ':size': size,
                ':root': checkpoint.rootHash,
                ':next': head.version + 1,
                ':version': head.version,
                ':from': pending.size,
              },
            },
          },
          { Delete: { TableName: db.table, Key: { PK: pk(tenant), SK: logKeys.batch(pending.size) } } },
          {
            Put: {
              TableName: db.table,
              Item: { PK: pk(tenant), SK: logKeys.checkpoint(size), ...checkpoint },
              ConditionExpression: 'attribute_not_exists(PK)',
            },
          },
        ],
      }),
    );
  } catch (error) {
    const reasons = (error as { CancellationReasons?: { Code?: string }[] }).CancellationReasons ?? [];
    if (reasons[0]?.Code === 'ConditionalCheckFailed' || reasons[0]?.Code === 'TransactionConflict') {
      throw new LogConflict();
    }
    if (reasons[2]?.Code === 'ConditionalCheckFailed') {
      throw new LogCorrupted(`a checkpoint of size ${size} exists although the log never reached that size`);
    }
    if (isWriteConflict(error)) throw new LogConflict();
    throw storeFailure(error, 'finalizeLogBatch');
  }
  const { pending: _, ...rest } = head;
  return { ...rest, size, rootHash: checkpoint.rootHash, version: head.version + 1 };
}

/**
 * Moves `scannedTo` on while a tenant is idle (nothing to seal up to it), so the next runs read the audit
 * index from there rather than from the last event's day. Conditioned on the version like every head change.
 */
export async function advanceScan(db: Db, head: LogHead, scannedTo: string): Promise<LogHead> {
  try {
    await db.client.send(
      new UpdateCommand({
        TableName: db.table,
        Key: { PK: pk(head.tenant), SK: logKeys.head },
        UpdateExpression: 'SET scannedTo = :to, #v = :next',
        ConditionExpression: '#v = :version AND attribute_not_exists(#p)',
        ExpressionAttributeNames: { '#v': 'version', '#p': 'pending' },
        ExpressionAttributeValues: { ':to': scannedTo, ':next': head.version + 1, ':version': head.version },
      }),
    );
  } catch (error) {
    if (isWriteConflict(error)) throw new LogConflict();
    throw storeFailure(error, 'advanceLogScan');
  }
  return { ...head, scannedTo, version: head.version + 1 };
}

/**
 * Records that every checkpoint up to `size` is anchored. Not versioned (it never changes the tree): it only
 * moves up.
 */
export async function markAnchored(db: Db, tenant: string, size: number): Promise<void> {
  try {
    await db.client.send(
      new UpdateCommand({
        TableName: db.table,
        Key: { PK: pk(tenant), SK: logKeys.head },
        UpdateExpression: 'SET anchored = :size',
        ConditionExpression: 'attribute_exists(PK) AND (attribute_not_exists(anchored) OR anchored < :size)',
        ExpressionAttributeValues: { ':size': size },
      }),
    );
  } catch (error) {
    if (isWriteConflict(error)) return;
    throw storeFailure(error, 'markAnchored');
  }
}

/**
 * Which of these event ids have an EVT item (sealed or being sealed). Eventually consistent reads (half the
 * cost): an id seen as unsealed by mistake is caught by the claim's condition on its EVT item.
 */
export async function sealedEventIds(db: Db, tenant: string, eventIds: string[]): Promise<Set<string>> {
  const items = await batchGet(
    db,
    [...new Set(eventIds)].map((id) => ({ PK: pk(tenant), SK: logKeys.event(id) })),
    { expression: 'SK' },
    'sealedEventIds',
    false,
  );
  return new Set(items.map((item) => (item.SK as string).slice('EVT#'.length)));
}
