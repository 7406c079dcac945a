// Verification of the tenant's log against the ledger, shared by `GET /v1/audit/verify` (a time range) and
// the CLI `log verify` (the whole tenant). The insider this catches has write access to the table but not
// to the signing key nor to the anchored checkpoints: every leaf is recomputed from the event it names,
// every event the sealer has passed must be a leaf, and the tree must give the root of every checkpoint,
// the anchored ones included.
import type { AuditRange } from '#domain/audit.ts';
import type { LogBreak, LogBreakReason } from '#domain/audit-verify.ts';
import { detailsTampered, hashEvent, type LedgerEvent } from '#domain/ledger.ts';
import { mapLimit } from '#shared/concurrency.ts';
import {
  EMPTY_ROOT,
  inclusionNodes,
  inclusionProof,
  leafHash,
  type NodeId,
  nodeHash,
  nodeKey,
  rootNodes,
  verifyInclusion,
} from '#shared/log/merkle.ts';
import { type LogVerifierKey, logOrigin, openCheckpoint } from '#shared/log/note.ts';
import { auditItems, auditSortKey } from '#store/audit-index.ts';
import type { Db } from '#store/db.ts';
import {
  getBatch,
  getCheckpoint,
  getHead,
  getNodes,
  type LogHead,
  type LogLeaf,
  listCheckpoints,
  listLeaves,
  sealedEventIds,
} from '#store/log.ts';
import {
  auditShard,
  getEventItem,
  getStates,
  listEventItems,
  scanSubjectItems,
  toEvent,
  toState,
} from '#store/subjects.ts';
import { keys } from '#store/table.ts';

export type { LogBreak, LogBreakReason };

/** The checkpoint the log was checked against. */
export interface CheckedCheckpoint {
  treeSize: number;
  rootHash: string;
  /** When it was signed (the table's record of it), when known. */
  timestamp: string | null;
  /** Kept outside the table (`DATA_DIR/checkpoints/`, the S3 bucket with Object Lock). */
  anchored: boolean;
}

/** The answer of a log verification. */
export interface LogReport {
  /** The size the tree's HEAD records. */
  treeSize: number;
  /** The largest checkpoint found (table or anchor). */
  checkpoint: CheckedCheckpoint | null;
  /** Checkpoints (distinct tree sizes) that verified and were checked, and how many are anchored outside the table. */
  checkpoints: number;
  anchored: number;
  /** Leaves and events checked. */
  leaves: number;
  events: number;
  valid: boolean;
  broken: LogBreak[];
}

/** A checkpoint as kept somewhere: its size and signed note. */
export interface KeptCheckpoint {
  treeSize: number;
  note: string;
  timestamp?: string;
}

/** Where the checkpoints outside the table are read from (the sealer's anchor). */
export interface AnchorReader {
  list(tenant: string): Promise<KeptCheckpoint[]>;
}

export interface LogVerifyOptions {
  /** The log's public keys (every key, rotation included): checkpoints must be signed by one of them. */
  keys: readonly LogVerifierKey[];
  /** The anchored checkpoints; without it only the table's checkpoints are checked. */
  anchor?: AnchorReader;
}

/** A stored leaf. */
export type LeafRecord = LogLeaf;

type Item = Record<string, unknown>;

/** A subject as the verification sees it: its state (or none) and its event items. */
interface SubjectView {
  state: { erasure?: { status?: string; proofPurgedAt?: string } } | undefined;
  byId: Map<string, Item>;
  bySeq: Map<number, Item>;
}

const emptyView = (): SubjectView => ({ state: undefined, byId: new Map(), bySeq: new Map() });

function addEvent(view: SubjectView, item: Item) {
  view.byId.set(item.eventId as string, item);
  view.bySeq.set(item.seq as number, item);
}

/** Leaves read at once: four tiles of 256. */
const LEAF_PAGE = 1024;
const CONCURRENCY = 16;
/** Subjects whose chains are held at once by a range verification (as the chains' own verification does). */
const SUBJECT_CHUNK = 100;
/** What a range verification reads of the index: enough to place an event and tell whether it is sealed. */
const INDEX_FIELDS = 'eventId, subjectKey, GSI1PK, GSI1SK, recordedAt, at';

function groupBy<T>(items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const group = groups.get(k);
    if (group) group.push(item);
    else groups.set(k, [item]);
  }
  return groups;
}

/** The audit-index attributes an event item must carry (the sealer and the export read the index). */
function indexProblem(tenant: string, item: Item): string | undefined {
  const event = item as unknown as LedgerEvent & { subjectKey: string };
  const recorded = event.recordedAt ?? event.at;
  const pk = keys.auditDay(tenant, recorded.slice(0, 10), auditShard(event.subjectKey));
  const sk = auditSortKey(event);
  if (item.GSI1PK === undefined || item.GSI1SK === undefined) {
    return 'its audit-index attributes (GSI1PK/GSI1SK) were removed: the export and the sealer no longer see it';
  }
  if (item.GSI1PK !== pk || item.GSI1SK !== sk) {
    return `its audit-index attributes were changed (${String(item.GSI1PK)} ${String(item.GSI1SK)}): the export misplaces it`;
  }
  return undefined;
}

/** The erasure (or retention) purge explains a leaf whose event is gone: its proof was ended, or a format-1 chain restarted. */
function purgedByErasure(view: SubjectView): boolean {
  const erasure = view.state?.erasure;
  if (erasure?.status !== 'completed') return false;
  if (erasure.proofPurgedAt) return true;
  return view.bySeq.get(1)?.type === 'erasure.completed';
}

/** Checks one leaf against the subject it names. */
export function checkLeaf(tenant: string, leaf: LeafRecord, view: SubjectView | undefined): LogBreak[] {
  const at = { subjectKey: leaf.subjectKey, eventId: leaf.eventId, leafIndex: leaf.index };
  if (!view?.state) {
    const detail = view?.byId.size
      ? "the subject's state item (its consents, or its erasure tombstone) was deleted; its events remain"
      : 'the subject was deleted: no state, no event';
    return [{ ...at, reason: 'missing', detail }];
  }
  const item = view.byId.get(leaf.eventId);
  if (!item) {
    if (purgedByErasure(view)) return [];
    const other = view.bySeq.get(leaf.seq);
    if (other) {
      return [
        {
          ...at,
          reason: 'rewritten',
          detail: `seq ${leaf.seq} now holds another event (${String(other.eventId)}): the chain was rewritten without this one`,
        },
      ];
    }
    return [{ ...at, reason: 'missing', detail: `the event (seq ${leaf.seq}) was deleted` }];
  }
  const breaks: LogBreak[] = [];
  const event = toEvent(item);
  const problems: string[] = [];
  if (event.seq !== leaf.seq) problems.push(`it moved from seq ${leaf.seq} to seq ${event.seq}`);
  if (hashEvent(event) !== leaf.eventHash) problems.push('its content no longer gives the hash the log committed to');
  else if (event.hash !== leaf.eventHash) problems.push('its stored hash differs from the one the log committed to');
  if (detailsTampered(event)) problems.push('its details no longer match their digest');
  if (problems.length) breaks.push({ ...at, reason: 'edited', detail: problems.join('; ') });
  const index = indexProblem(tenant, item);
  if (index) breaks.push({ ...at, reason: 'index_missing', detail: index });
  return breaks;
}

/**
 * The span of the audit index the tree covers: from its first leaf's event (leaf 0 is committed to by every
 * checkpoint; events recorded before it predate the log) to how far the sealer has read. An event in that
 * span and in no leaf was written after the sealer went past it.
 */
export interface SealedSpan {
  /** Audit-index sort key of the first leaf's event (or its id's time when that event is gone). */
  start: string;
  /** How far the sealer has read: its watermark or scan position, whichever is later. */
  position: string;
}

/** The sealed span of a tree, or undefined while it has no leaf. */
function sealedSpan(head: LogHead | undefined, first: LogLeaf | undefined, firstItem: Item | undefined) {
  if (!head || !first) return undefined;
  // Sort keys and times compare as strings: the later of the two.
  const position = [head.watermark ?? '', head.scannedTo ?? ''].sort()[1];
  const time = ulidTime(first.eventId);
  const start = firstItem
    ? auditSortKey(firstItem as unknown as LedgerEvent)
    : time !== undefined
      ? new Date(time).toISOString()
      : position;
  return { start, position } satisfies SealedSpan;
}

/**
 * Checks an event that is in no leaf: fine while the sealer has not reached it (or when it predates the
 * log); within the sealed span, it was inserted afterwards. Without its audit-index attributes the sealer
 * never sees it at all.
 */
function checkUnsealed(tenant: string, item: Item, span: SealedSpan | undefined): LogBreak[] {
  const at = { subjectKey: item.subjectKey as string, eventId: item.eventId as string, leafIndex: null };
  const index = indexProblem(tenant, item);
  if (index) return [{ ...at, reason: 'index_missing', detail: `${index}; it is in no leaf` }];
  const sortKey = auditSortKey(item as unknown as LedgerEvent);
  if (span && sortKey > span.start && sortKey <= span.position) {
    return [
      {
        ...at,
        reason: 'inserted',
        detail: `recorded at ${sortKey.split('#')[0]}, within what the log has sealed, yet in no leaf: written into the table afterwards`,
      },
    ];
  }
  return [];
}

/** Root hashes of the prefixes of a sequence of leaf hashes, as they go (RFC 9162 §2.1.1: a compact range). */
class RootBuilder {
  private readonly stack: { level: number; hash: Buffer }[] = [];
  size = 0;

  push(leaf: Buffer) {
    let node = { level: 0, hash: leaf };
    while (this.stack.length && this.stack[this.stack.length - 1].level === node.level) {
      const left = this.stack.pop() as { level: number; hash: Buffer };
      node = { level: node.level + 1, hash: nodeHash(left.hash, node.hash) };
    }
    this.stack.push(node);
    this.size++;
  }

  /** The root of the leaves pushed so far (SHA-256 of nothing for none). */
  root(emptyRoot: Buffer): Buffer {
    if (!this.stack.length) return emptyRoot;
    let acc = this.stack[this.stack.length - 1].hash;
    for (let i = this.stack.length - 2; i >= 0; i--) acc = nodeHash(this.stack[i].hash, acc);
    return acc;
  }
}

interface CheckpointSet {
  /** Valid checkpoints by size (the anchored copy when both exist). */
  bySize: Map<number, { rootHash: Buffer; timestamp: string | null; anchored: boolean }>;
  breaks: LogBreak[];
  count: number;
  anchored: number;
}

const treeBreak = (reason: LogBreakReason, detail: string, leafIndex: number | null = null): LogBreak => ({
  subjectKey: null,
  eventId: null,
  leafIndex,
  reason,
  detail,
});

/**
 * Opens the checkpoints of the table and of the anchor; a bad signature, origin or disagreement is a break.
 * Every one of them, or with `latestFor` (a range verification) only those that matter to a tree of that
 * size: the latest at or below it, and any above it (a rollback).
 */
async function gatherCheckpoints(
  db: Db,
  tenant: string,
  options: LogVerifyOptions,
  latestFor?: number,
): Promise<CheckpointSet> {
  // Without a key every checkpoint would look forged: a missing grant, not a finding.
  if (options.keys.length === 0) throw new Error('no public key of the log to check its checkpoints with');
  const origin = logOrigin(tenant);
  const relevant = <T extends { treeSize: number }>(all: T[]) => {
    if (latestFor === undefined) return all;
    const below = all.filter((cp) => cp.treeSize <= latestFor).sort((a, b) => a.treeSize - b.treeSize);
    return [...below.slice(-1), ...all.filter((cp) => cp.treeSize > latestFor)];
  };
  const [table, anchored] = await Promise.all([
    latestFor === undefined
      ? listCheckpoints(db, tenant)
      : Promise.all([
          // The sealer writes HEAD and the checkpoint of its size in one transaction.
          latestFor > 0 ? getCheckpoint(db, tenant, latestFor) : undefined,
          listCheckpoints(db, tenant, { from: latestFor + 1 }),
        ]).then(([atHead, above]) => [...(atHead ? [atHead] : []), ...above]),
    options.anchor ? options.anchor.list(tenant).then(relevant) : Promise.resolve([]),
  ]);
  const set: CheckpointSet = { bySize: new Map(), breaks: [], count: 0, anchored: 0 };
  const open = (kept: KeptCheckpoint, where: string) => {
    const opened = openCheckpoint(kept.note, [...options.keys]);
    if ('error' in opened) {
      set.breaks.push(
        treeBreak('rewritten', `the checkpoint of size ${kept.treeSize} (${where}) does not verify: ${opened.error}`),
      );
      return undefined;
    }
    const cp = opened.checkpoint;
    if (cp.origin !== origin || cp.treeSize !== kept.treeSize) {
      set.breaks.push(
        treeBreak(
          'rewritten',
          `the checkpoint of size ${kept.treeSize} (${where}) is for ${cp.origin}, size ${cp.treeSize}`,
        ),
      );
      return undefined;
    }
    return cp;
  };
  for (const kept of anchored) {
    const cp = open(kept, 'anchored');
    if (cp) set.bySize.set(cp.treeSize, { rootHash: cp.rootHash, timestamp: kept.timestamp ?? null, anchored: true });
  }
  for (const kept of table) {
    const cp = open({ treeSize: kept.treeSize, note: kept.note }, 'table');
    if (!cp) continue;
    const known = set.bySize.get(cp.treeSize);
    if (known && !known.rootHash.equals(cp.rootHash)) {
      set.breaks.push(
        treeBreak(
          'rewritten',
          `the table's checkpoint of size ${cp.treeSize} differs from the anchored one: the log forked`,
        ),
      );
    } else if (known) known.timestamp ??= kept.timestamp ?? null;
    else set.bySize.set(cp.treeSize, { rootHash: cp.rootHash, timestamp: kept.timestamp ?? null, anchored: false });
  }
  set.count = set.bySize.size;
  set.anchored = [...set.bySize.values()].filter((cp) => cp.anchored).length;
  return set;
}

function latestOf(set: CheckpointSet): CheckedCheckpoint | null {
  const sizes = [...set.bySize.keys()].sort((a, b) => a - b);
  const size = sizes.at(-1);
  if (size === undefined) return null;
  const cp = set.bySize.get(size) as { rootHash: Buffer; timestamp: string | null; anchored: boolean };
  return { treeSize: size, rootHash: cp.rootHash.toString('base64'), timestamp: cp.timestamp, anchored: cp.anchored };
}

/** A checkpoint larger than the tree: the tree went back to an older state. */
function rollbacks(set: CheckpointSet, treeSize: number): LogBreak[] {
  const larger = [...set.bySize.entries()].filter(([size]) => size > treeSize).sort(([a], [b]) => b - a);
  if (!larger.length) return [];
  const [size, cp] = larger[0];
  return [
    treeBreak(
      'rolled_back',
      `the tree has ${treeSize} leaves, yet a${cp.anchored ? 'n anchored' : ''} checkpoint of size ${size}${cp.timestamp ? ` signed at ${cp.timestamp}` : ''} exists: leaves from index ${treeSize} on were taken back`,
      treeSize,
    ),
  ];
}

/** Reads leaves `[start, end)` page by page. */
async function* leavesOf(
  db: Db,
  tenant: string,
  start: number,
  end: number,
): AsyncGenerator<{ from: number; to: number; leaves: LeafRecord[] }> {
  for (let from = start; from < end; from += LEAF_PAGE) {
    const to = Math.min(end, from + LEAF_PAGE);
    yield { from, to, leaves: await listLeaves(db, tenant, from, to) };
  }
}

const b64 = (value: string | Buffer) => (typeof value === 'string' ? Buffer.from(value, 'base64') : value);

/** The root of `size` from the stored nodes (what proofs are served from). */
async function storedRoot(db: Db, tenant: string, size: number, emptyRoot: Buffer): Promise<Buffer> {
  if (size === 0) return emptyRoot;
  const ids = rootNodes(size);
  const nodes = await getNodes(db, tenant, ids);
  const hashes = ids.map((id) => nodes.get(nodeKey(id)));
  if (hashes.some((h) => !h)) return Buffer.alloc(0);
  let acc = hashes[hashes.length - 1] as Buffer;
  for (let i = hashes.length - 2; i >= 0; i--) acc = nodeHash(hashes[i] as Buffer, acc);
  return acc;
}

/**
 * The whole tenant (CLI `log verify`): every leaf recomputed from its event, every sealed event looked up
 * among the leaves, the tree's root at every checkpoint's size (the anchored ones first) and at HEAD.
 * Reads every event of the tenant (a Scan): an offline job.
 */
export async function verifyLog(db: Db, tenant: string, options: LogVerifyOptions): Promise<LogReport> {
  const empty = EMPTY_ROOT;
  const [head, checkpoints] = await Promise.all([getHead(db, tenant), gatherCheckpoints(db, tenant, options)]);
  const treeSize = head?.size ?? 0;
  const broken: LogBreak[] = [...checkpoints.breaks, ...rollbacks(checkpoints, treeSize)];

  const subjects = new Map<string, SubjectView>();
  const view = (subjectKey: string) => {
    let v = subjects.get(subjectKey);
    if (!v) {
      v = emptyView();
      subjects.set(subjectKey, v);
    }
    return v;
  };
  let events = 0;
  // Nothing sealed (nor being sealed): no leaf to recompute, no event the sealer went past.
  const nothingSealed = treeSize === 0 && !head?.pending;
  await (nothingSealed
    ? Promise.resolve()
    : scanSubjectItems(db, tenant, (items) => {
        for (const item of items) {
          const subjectKey = String(item.PK).slice(keys.subject(tenant, '').length);
          if (item.SK === keys.state) view(subjectKey).state = toState(tenant, item);
          else {
            events++;
            addEvent(view(subjectKey), { ...item, subjectKey });
          }
        }
      }));

  // A batch being appended: its events are taken (their leaves come with the next checkpoint).
  const pending = head?.pending ? await getBatch(db, tenant, head.pending.size) : undefined;
  const sealed = new Set<string>(pending?.leaves.map((l) => l.eventId) ?? []);
  const roots = new RootBuilder();
  const sizes = [...checkpoints.bySize.keys()].filter((s) => s <= treeSize).sort((a, b) => a - b);
  let next = 0;
  let lastGood = 0;
  let leaves = 0;
  let first: LogLeaf | undefined;
  const checkRoots = () => {
    while (next < sizes.length && sizes[next] === roots.size) {
      const size = sizes[next++];
      const cp = checkpoints.bySize.get(size) as { rootHash: Buffer; anchored: boolean };
      if (!roots.root(empty).equals(cp.rootHash)) {
        broken.push(
          treeBreak(
            'rewritten',
            `leaves ${lastGood}..${size - 1} no longer give the root of the ${cp.anchored ? 'anchored ' : ''}checkpoint of size ${size}: leaves of the tree were changed`,
            lastGood,
          ),
        );
      }
      lastGood = size;
    }
  };
  checkRoots();
  for await (const page of leavesOf(db, tenant, 0, treeSize)) {
    const got = new Map(page.leaves.map((leaf) => [leaf.index, leaf]));
    for (let index = page.from; index < page.to; index++) {
      const leaf = got.get(index);
      if (index === 0) first = leaf;
      if (leaf) {
        leaves++;
        sealed.add(leaf.eventId);
        broken.push(...checkLeaf(tenant, leaf, subjects.get(leaf.subjectKey)));
        roots.push(leafHash(Buffer.from(leaf.eventHash, 'hex')));
      } else {
        broken.push(treeBreak('missing', `leaf ${index} is not in the table: the tree lost a leaf`, index));
        roots.push(Buffer.alloc(32));
      }
      checkRoots();
    }
  }
  if (head && !roots.root(empty).equals(b64(head.rootHash))) {
    broken.push(treeBreak('rewritten', `the HEAD's root does not match its ${treeSize} leaves`, null));
  }
  if (head && !(await storedRoot(db, tenant, treeSize, empty)).equals(roots.root(empty))) {
    broken.push(treeBreak('rewritten', 'the stored tree nodes do not match the leaves: proofs served from them fail'));
  }

  const span = sealedSpan(head, first, first && subjects.get(first.subjectKey)?.byId.get(first.eventId));
  for (const v of subjects.values()) {
    for (const item of v.byId.values()) {
      if (!sealed.has(item.eventId as string)) broken.push(...checkUnsealed(tenant, item, span));
    }
  }
  return {
    treeSize,
    checkpoint: latestOf(checkpoints),
    checkpoints: checkpoints.count,
    anchored: checkpoints.anchored,
    leaves,
    events,
    valid: broken.length === 0,
    broken: sortBreaks(broken),
  };
}

function sortBreaks(breaks: LogBreak[]): LogBreak[] {
  const rank = (b: LogBreak) => b.leafIndex ?? Number.MAX_SAFE_INTEGER;
  return breaks.sort(
    (a, b) =>
      rank(a) - rank(b) ||
      (a.subjectKey ?? '').localeCompare(b.subjectKey ?? '') ||
      (a.eventId ?? '').localeCompare(b.eventId ?? '') ||
      a.reason.localeCompare(b.reason),
  );
}

/** The time an event id (a ULID) was made at, or undefined for another id. */
export function ulidTime(id: string): number | undefined {
  if (!/^[0-9A-HJKMNP-TV-Z]{26}$/.test(id)) return undefined;
  const alphabet = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
  let t = 0;
  for (const c of id.slice(0, 10)) t = t * 32 + alphabet.indexOf(c);
  return t;
}

/** How far an event id's time may stray from its recording time (an erasure records the request's start). */
const ULID_SLACK_MS = 5 * 60_000;

/** The first leaf index whose event id is not before `time` (leaves are in recording order), by bisection. */
async function firstLeafAtOrAfter(db: Db, tenant: string, size: number, time: number): Promise<number> {
  let lo = 0;
  let hi = size;
  while (lo < hi) {
    const mid = Math.floor((lo + hi) / 2);
    const [leaf] = await listLeaves(db, tenant, mid, mid + 1);
    const t = leaf ? ulidTime(leaf.eventId) : undefined;
    if (t !== undefined && t < time) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * A time range (`GET /v1/audit/verify`): the leaves of events recorded in the range (found by their event
 * ids' times, with a margin), each recomputed from its event and proved in the tree by the stored nodes;
 * every event of the range the sealer has passed must be a leaf; the tree must give the root of every
 * checkpoint (from the stored nodes) and not be smaller than any of them.
 */
export async function verifyLogRange(
  db: Db,
  tenant: string,
  range: AuditRange,
  options: LogVerifyOptions,
): Promise<LogReport> {
  const empty = EMPTY_ROOT;
  const head = await getHead(db, tenant);
  const treeSize = head?.size ?? 0;
  const checkpoints = await gatherCheckpoints(db, tenant, options, treeSize);
  const broken: LogBreak[] = [...checkpoints.breaks, ...rollbacks(checkpoints, treeSize)];

  // The tree as stored must give HEAD's root and every checkpoint's root it is large enough for.
  if (head) {
    const root = await storedRoot(db, tenant, treeSize, empty);
    if (!root.equals(b64(head.rootHash))) {
      broken.push(treeBreak('rewritten', "the stored tree nodes do not give the HEAD's root"));
    }
  }
  const sizes = [...checkpoints.bySize.keys()].filter((s) => s > 0 && s <= treeSize);
  const stored = await mapLimit(sizes, CONCURRENCY, async (size) => ({
    size,
    root: await storedRoot(db, tenant, size, empty),
  }));
  for (const { size, root } of stored.sort((a, b) => a.size - b.size)) {
    const cp = checkpoints.bySize.get(size) as { rootHash: Buffer; anchored: boolean };
    if (!root.equals(cp.rootHash)) {
      broken.push(
        treeBreak(
          'rewritten',
          `the stored tree does not give the root of the ${cp.anchored ? 'anchored ' : ''}checkpoint of size ${size}`,
        ),
      );
    }
  }

  // The leaves of the range.
  const from = Date.parse(range.from) - ULID_SLACK_MS;
  const to = Date.parse(range.to) + ULID_SLACK_MS;
  const start = treeSize ? await firstLeafAtOrAfter(db, tenant, treeSize, from) : 0;
  const end = treeSize ? await firstLeafAtOrAfter(db, tenant, treeSize, to) : 0;
  const leaves: LeafRecord[] = [];
  for await (const page of leavesOf(db, tenant, start, end)) leaves.push(...page.leaves);
  const present = new Set(leaves.map((l) => l.index));
  for (let index = start; index < end; index++) {
    if (!present.has(index))
      broken.push(treeBreak('missing', `leaf ${index} is not in the table: the tree lost a leaf`, index));
  }

  // Each leaf of the range, proved in the tree by the stored nodes (a leaf item changed alone fails here).
  const latest = head ? { size: treeSize, root: b64(head.rootHash) } : undefined;
  if (latest && leaves.length) {
    const ids = new Map<string, NodeId>();
    for (const leaf of leaves) for (const id of inclusionNodes(leaf.index, latest.size)) ids.set(nodeKey(id), id);
    const nodes = await getNodes(db, tenant, [...ids.values()]);
    for (const leaf of leaves) {
      const proof = inclusionProof(leaf.index, latest.size, (id) => nodes.get(nodeKey(id)) ?? Buffer.alloc(32));
      if (!verifyInclusion(leafHash(Buffer.from(leaf.eventHash, 'hex')), leaf.index, latest.size, proof, latest.root)) {
        broken.push({
          subjectKey: leaf.subjectKey,
          eventId: leaf.eventId,
          leafIndex: leaf.index,
          reason: 'edited',
          detail: 'the leaf item does not match the tree: it was changed after sealing',
        });
      }
    }
  }

  // The events of the range that are in none of those leaves, within the sealed span (only those can have
  // been inserted behind the sealer): sealed elsewhere or being sealed (an EVT item), or not.
  const [first] = treeSize ? await listLeaves(db, tenant, 0, 1) : [];
  const firstStored = first ? await getEventItem(db, tenant, first.subjectKey, first.seq) : undefined;
  const span = sealedSpan(head, first, firstStored?.eventId === first?.eventId ? firstStored : undefined);
  const sealedHere = new Set(leaves.map((l) => l.eventId));
  const notHere: Item[] = [];
  let events = 0;
  // Nothing sealed yet: no event can have been inserted behind the sealer.
  const indexed = span ? auditItems(db, tenant, range, { projection: INDEX_FIELDS, pageSize: 1000 }) : [];
  for await (const item of indexed) {
    events++;
    const sortKey = item.GSI1SK as string;
    const inSpan = span && sortKey > span.start && sortKey <= span.position;
    if (inSpan && !sealedHere.has(item.eventId as string)) notHere.push(item);
  }
  const elsewhere = await sealedEventIds(
    db,
    tenant,
    notHere.map((item) => item.eventId as string),
  );
  const unsealed = notHere.filter((item) => !elsewhere.has(item.eventId as string));

  // The subjects of both, a chunk at a time: each leaf recomputed from its event, each unsealed event checked.
  const leavesOfSubject = groupBy(leaves, (l) => l.subjectKey);
  const unsealedOfSubject = groupBy(unsealed, (i) => i.subjectKey as string);
  const subjectKeys = [...new Set([...leavesOfSubject.keys(), ...unsealedOfSubject.keys()])].sort();
  for (let i = 0; i < subjectKeys.length; i += SUBJECT_CHUNK) {
    const chunk = subjectKeys.slice(i, i + SUBJECT_CHUNK);
    const states = await getStates(db, tenant, chunk);
    const checked = await mapLimit(chunk, CONCURRENCY, async (subjectKey) => {
      const v = emptyView();
      v.state = states.get(subjectKey) as SubjectView['state'];
      for (const item of await listEventItems(db, tenant, subjectKey)) addEvent(v, { ...item, subjectKey });
      const found: LogBreak[] = [];
      for (const leaf of leavesOfSubject.get(subjectKey) ?? []) found.push(...checkLeaf(tenant, leaf, v));
      for (const item of unsealedOfSubject.get(subjectKey) ?? []) {
        found.push(...checkUnsealed(tenant, v.byId.get(item.eventId as string) ?? item, span));
      }
      // Its events of the range that lost their index attributes (the index no longer lists them).
      for (const item of v.byId.values()) {
        if (item.GSI1PK !== undefined && item.GSI1SK !== undefined) continue;
        if (sealedHere.has(item.eventId as string)) continue; // reported with its leaf
        const recorded = String(item.recordedAt ?? item.at);
        if (recorded < range.from || recorded >= range.to) continue;
        found.push(...checkUnsealed(tenant, item, span));
      }
      return found;
    });
    for (const found of checked) broken.push(...found);
  }
  return {
    treeSize,
    checkpoint: latestOf(checkpoints),
    checkpoints: checkpoints.count,
    anchored: checkpoints.anchored,
    leaves: leaves.length,
    events,
    valid: broken.length === 0,
    broken: sortBreaks(broken),
  };
}
