import { ulidToUUID, uuidToULID } from 'ulid';
import type { ErasureState, ScopeEntry, SubjectState } from '#domain/subject-state.ts';

/**
 * The stored form of a subject's state item (docs/limits.md, "State item layout"). The domain keeps its
 * types; at the store boundary the state is packed into one binary attribute, a third of the size of one
 * attribute per field, so that a gate check stays one read unit (4 KB) for all but extreme subjects:
 *
 * - `n` (number): the state's `version`, which the write condition compares;
 * - `b` (binary): everything else, in the layout below;
 * - any other top-level field of the state (one this codec does not know) is passed through as its own
 *   attribute, untouched.
 *
 * `subjectKey` is not stored: it is the end of the partition key. An item without `b` is in the layout of
 * the releases before this one (every field an attribute of its own) and still decodes; the next write
 * re-encodes it.
 *
 * Inside `b`: numbers are LEB128 varints (signed ones zigzag-encoded); strings a varint length and UTF-8;
 * times are deltas from the previous time of the same kind (ISO times in ms or whole seconds, epoch-second
 * summaries in seconds); event ids (ULIDs) 16 bytes; hashes 32 bytes; message references 6 bytes; sources,
 * channels, kinds and clue types a code from the append-only tables below. Purposes and notices are stored
 * once per item and referenced by index. A part that does not have the expected shape (a value written by
 * a future release, a legacy oddity) is stored as JSON instead, so nothing is ever lost.
 */

/** Layout number of `b` (its first byte). Items without `b` are layout 1. */
export const STATE_LAYOUT = 2;

/** Attributes of the item that are not fields of the state. */
const KEY_ATTRIBUTES = ['PK', 'SK', 'tenant'] as const;
/** Attributes of the compact layout. */
const VERSION_ATTR = 'n';
const BODY_ATTR = 'b';
/** Fields of the state this codec packs into `b` (plus `version`, in `n`). */
const PACKED = [
  'subjectKey',
  'kind',
  'version',
  'seq',
  'head',
  'scopes',
  'lastOwnActionAt',
  'erasure',
  'signals',
  'sends',
];
const RESERVED = new Set<string>([...KEY_ATTRIBUTES, VERSION_ATTR, BODY_ATTR, ...PACKED]);

// Code tables: APPEND ONLY. A code is an index + 1 (0 means "the string follows"); reordering or removing an
// entry would misread every item written before, and a release reading a code past its table's end refuses
// the item. Any other change of the layout takes a new STATE_LAYOUT.
const CHANNEL_CODES = ['*', 'whatsapp', 'sms', 'voice', 'email', 'push'];
const KIND_CODES = ['phone', 'email', 'externalId', 'waUserId'];
const SOURCE_CODES = [
  'api',
  'import',
  'web_form',
  'double_opt_in',
  'whatsapp_optin',
  'in_store',
  'phone_call',
  'preference_center',
  'sms_optin',
  'keyword',
  'whatsapp_stop_promotions',
  'self_service_link',
  'one_click',
  'email',
  'letter',
  'provider_unsubscribe',
  'spam_complaint',
  // WhatsApp's user_changed_number: the old number closed, the consents moved (docs/api.md).
  'number_changed',
];
const CLUE_CODES = [
  'message_undelivered',
  'profile_photo_hidden',
  'last_seen_hidden',
  'call_failed',
  'group_add_refused',
  'read_receipts_missing',
  'channel_blocked',
];

/** Times of the compact layout are deltas; the first one of an item from this instant (2025-01-01). */
const BASE_MS = Date.UTC(2025, 0, 1);
const BASE_SEC = BASE_MS / 1000;
/** Deltas beyond this are written as strings (times tens of thousands of years apart). */
const MAX_DELTA = 2 ** 48;

/** A part that does not have the shape its compact form needs: it is stored as JSON. */
class Unpackable extends Error {}

const zig = (n: number) => (n >= 0 ? n * 2 : -n * 2 - 1);
const unzig = (n: number) => (n % 2 === 0 ? n / 2 : -(n + 1) / 2);
const wellFormed = (s: string) => Buffer.from(s, 'utf8').toString('utf8') === s;
const isHex32 = (s: unknown): s is string => typeof s === 'string' && /^[0-9a-f]{64}$/.test(s);
/** Sets an own property, whatever its name (`__proto__` included: a name is data here, never a prototype). */
const put = (target: Record<string, unknown>, key: string, value: unknown) =>
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The 16 bytes of a ULID in its canonical form, else undefined. */
function ulidBytes(id: unknown): Buffer | undefined {
  if (typeof id !== 'string' || id.length !== 26) return undefined;
  try {
    const uuid = ulidToUUID(id);
    return uuidToULID(uuid) === id ? Buffer.from(uuid.replaceAll('-', ''), 'hex') : undefined;
  } catch {
    return undefined;
  }
}

function ulidOf(bytes: Uint8Array): string {
  const hex = Buffer.from(bytes).toString('hex').toUpperCase();
  return uuidToULID(
    `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`,
  );
}

/** The 6 bytes of a message reference (8 base64url characters, likelihood.ts `messageRef`), else undefined. */
function refBytes(ref: string): Buffer | undefined {
  if (ref.length !== 8) return undefined;
  const bytes = Buffer.from(ref, 'base64url');
  return bytes.length === 6 && bytes.toString('base64url') === ref ? bytes : undefined;
}

/**
 * What the next value is written relative to: the previous ISO time (or event id time), the previous summary
 * time, the previous message reference.
 */
interface Anchors {
  ms: number;
  sec: number;
  ref?: string;
}

const start = (): Anchors => ({ ms: BASE_MS, sec: BASE_SEC });

class Writer {
  private readonly chunks: number[] = [];
  private anchors = start();

  /** `strict`: a part that cannot be packed is an error instead of JSON (tests: the domain's states always pack). */
  constructor(private readonly strict = false) {}

  uint(n: number): void {
    if (!Number.isSafeInteger(n) || n < 0) throw new Unpackable(`not a count: ${n}`);
    let rest = n;
    while (rest >= 0x80) {
      this.chunks.push((rest % 0x80) | 0x80);
      rest = Math.floor(rest / 0x80);
    }
    this.chunks.push(rest);
  }

  int(n: number): void {
    if (!Number.isSafeInteger(n) || Math.abs(n) > MAX_DELTA) throw new Unpackable(`not an integer: ${n}`);
    this.uint(zig(n));
  }

  bytes(b: Uint8Array): void {
    for (const byte of b) this.chunks.push(byte);
  }

  str(s: unknown): void {
    if (typeof s !== 'string' || !wellFormed(s)) throw new Unpackable('not a string');
    const b = Buffer.from(s, 'utf8');
    this.uint(b.length);
    this.bytes(b);
  }

  /** A code from `table`, or 0 and the string. */
  code(table: readonly string[], s: unknown): void {
    const i = typeof s === 'string' ? table.indexOf(s) : -1;
    this.uint(i + 1);
    if (i < 0) this.str(s);
  }

  /** An ISO time: a delta in whole seconds (tag 0) or ms (tag 1) when it is canonical, else the string (tag 2). */
  time(iso: unknown): void {
    const ms = typeof iso === 'string' ? Date.parse(iso) : Number.NaN;
    const delta = ms - this.anchors.ms;
    if (Number.isFinite(ms) && new Date(ms).toISOString() === iso && Math.abs(delta) <= MAX_DELTA) {
      this.uint(delta % 1000 === 0 ? zig(delta / 1000) * 4 : zig(delta) * 4 + 1);
      this.anchors.ms = ms;
    } else {
      this.uint(2);
      this.str(iso);
    }
  }

  /** Epoch seconds (a summary time): the delta from the previous one. */
  seconds(s: unknown): void {
    if (typeof s !== 'number') throw new Unpackable('not a time');
    this.int(s - this.anchors.sec);
    this.anchors.sec = s;
  }

  /**
   * An event id (the caller has checked it is a ULID), or the string when `raw`: its time (ms, 6 bytes in the
   * ULID) as a delta — an event is recorded close to its own time — then its 10 random bytes.
   */
  id(id: unknown, raw: boolean): void {
    if (raw) {
      this.str(id);
      return;
    }
    const b = ulidBytes(id) as Buffer;
    const ms = b.readUIntBE(0, 6);
    this.int(ms - this.anchors.ms);
    this.anchors.ms = ms;
    this.bytes(b.subarray(6));
  }

  /** The tag of a message reference: 0 none, 1 empty, 2 six bytes, 3 the string, 4 the previous one again. */
  refTag(ref: unknown): number {
    if (ref === undefined) return 0;
    if (typeof ref !== 'string') throw new Unpackable('a message reference');
    if (ref === '') return 1;
    if (ref === this.anchors.ref) return 4;
    return refBytes(ref) ? 2 : 3;
  }

  /** The reference itself (after its tag, which the caller writes with its own flags). */
  ref(tag: number, ref: unknown): void {
    if (tag !== 2 && tag !== 3) return;
    if (tag === 2) this.bytes(refBytes(ref as string) as Buffer);
    else this.str(ref);
    this.anchors.ref = ref as string;
  }

  json(value: unknown): void {
    this.str(JSON.stringify(value));
  }

  /** A part in its compact form (tag 1), or as JSON when it has another shape (tag 2); tag 0 when absent. */
  part<T>(value: T | undefined, pack: (w: Writer, value: T) => void): void {
    if (value === undefined) {
      this.uint(0);
      return;
    }
    const trial = new Writer(this.strict);
    trial.anchors = { ...this.anchors };
    try {
      pack(trial, value);
    } catch (error) {
      if (!(error instanceof Unpackable) || this.strict) throw error;
      this.uint(2);
      this.json(value);
      return;
    }
    this.uint(1);
    this.bytes(Uint8Array.from(trial.chunks));
    this.anchors = trial.anchors;
  }

  done(): Uint8Array {
    return Uint8Array.from(this.chunks);
  }
}

class Reader {
  private at = 0;
  private readonly anchors = start();

  constructor(private readonly buf: Uint8Array) {}

  uint(): number {
    let n = 0;
    let scale = 1;
    for (;;) {
      if (this.at >= this.buf.length) throw new Error('state item: truncated body');
      const byte = this.buf[this.at++];
      n += (byte & 0x7f) * scale;
      if (byte < 0x80) return n;
      scale *= 0x80;
    }
  }

  int(): number {
    return unzig(this.uint());
  }

  bytes(length: number): Uint8Array {
    if (this.at + length > this.buf.length) throw new Error('state item: truncated body');
    const b = this.buf.subarray(this.at, this.at + length);
    this.at += length;
    return b;
  }

  str(): string {
    return Buffer.from(this.bytes(this.uint())).toString('utf8');
  }

  code(table: readonly string[]): string {
    const c = this.uint();
    if (c > table.length) throw new Error('state item: a code this release does not know (a newer one wrote it?)');
    return c === 0 ? this.str() : table[c - 1];
  }

  time(): string {
    const v = this.uint();
    const tag = v % 4;
    if (tag === 2) return this.str();
    const q = (v - tag) / 4;
    this.anchors.ms += tag === 0 ? unzig(q) * 1000 : unzig(q);
    return new Date(this.anchors.ms).toISOString();
  }

  seconds(): number {
    this.anchors.sec += this.int();
    return this.anchors.sec;
  }

  id(raw: boolean): string {
    if (raw) return this.str();
    this.anchors.ms += this.int();
    const b = Buffer.alloc(16);
    b.writeUIntBE(this.anchors.ms, 0, 6);
    b.set(this.bytes(10), 6);
    return ulidOf(b);
  }

  ref(tag: number): string | undefined {
    if (tag === 0) return undefined;
    if (tag === 1) return '';
    if (tag === 4) return this.anchors.ref;
    this.anchors.ref = tag === 2 ? Buffer.from(this.bytes(6)).toString('base64url') : this.str();
    return this.anchors.ref;
  }

  json(): unknown {
    return JSON.parse(this.str());
  }

  part<T>(unpack: (r: Reader) => T): T | undefined {
    const tag = this.uint();
    if (tag > 2) throw new Error('state item: a part tag this release does not know');
    if (tag === 0) return undefined;
    return tag === 1 ? unpack(this) : (this.json() as T);
  }

  get ended(): boolean {
    return this.at === this.buf.length;
  }
}

// --- Scopes: purposes and notices once per item, then one entry per scope. ---

/** Flags of a scope entry. The grant's fields (time, event, source, notice) and the closing's are written together. */
const E = {
  grant: 1,
  expires: 2,
  ownGrant: 4,
  ownGrantIsGrant: 8,
  closing: 16,
  objection: 32,
  rawIds: 64,
} as const;

const GRANT_FIELDS = ['grantedAt', 'grantEventId', 'grantSource'] as const;
const CLOSING_FIELDS = ['withdrawnAt', 'withdrawnEventId', 'withdrawnSource'] as const;
const ENTRY_FIELDS = new Set<string>([
  ...GRANT_FIELDS,
  ...CLOSING_FIELDS,
  'noticeVersion',
  'noticeHash',
  'expiresAt',
  'ownGrantAt',
  'objection',
]);

/** A scope key split as stored: the channel part (a code) and the purpose part (in the purpose table). */
function splitKey(key: string): [string, string] {
  const bar = key.indexOf('|');
  if (bar < 0) throw new Unpackable('a scope key without "|"');
  return [key.slice(0, bar), key.slice(bar + 1)];
}

/** Strings stored once per item, referenced by index. */
class Table<T> {
  readonly items: T[] = [];
  private readonly index = new Map<string, number>();
  ref(item: T): number {
    const k = JSON.stringify(item);
    let i = this.index.get(k);
    if (i === undefined) {
      i = this.items.length;
      this.items.push(item);
      this.index.set(k, i);
    }
    return i;
  }
}

type Notice = [version: string | undefined, hash: string | undefined];

/** The scopes and the send log: they share the purpose table (a send log's keys are scopes of the subject). */
interface ScopesPart {
  scopes: SubjectState['scopes'];
  sends?: Record<string, unknown>;
}

function packScopes(w: Writer, { scopes, sends }: ScopesPart): void {
  if (!isObject(scopes)) throw new Unpackable('scopes');
  const purposes = new Table<string>();
  const notices = new Table<Notice>();
  const entries = Object.entries(scopes as Record<string, ScopeEntry | undefined>);
  for (const [key, entry] of entries) {
    purposes.ref(splitKey(key)[1]);
    if (!isObject(entry) || Object.keys(entry).some((f) => !ENTRY_FIELDS.has(f))) {
      throw new Unpackable('unknown scope fields');
    }
    const { noticeVersion, noticeHash } = entry as ScopeEntry;
    if (noticeVersion !== undefined || noticeHash !== undefined) notices.ref([noticeVersion, noticeHash]);
  }
  // The purposes of the send log are mostly those of the scopes: one table for both.
  if (isObject(sends)) for (const key of Object.keys(sends)) purposes.ref(splitKey(key)[1]);
  w.uint(purposes.items.length);
  for (const p of purposes.items) w.str(p);
  w.uint(notices.items.length);
  for (const [version, hash] of notices.items) {
    w.uint((version !== undefined ? 1 : 0) | (hash === undefined ? 0 : isHex32(hash) ? 2 : 4));
    if (version !== undefined) w.str(version);
    if (isHex32(hash)) w.bytes(Buffer.from(hash, 'hex'));
    else if (hash !== undefined) w.str(hash);
  }
  w.uint(entries.length);
  for (const [key, entry] of entries as [string, ScopeEntry][]) {
    const [channel, purpose] = splitKey(key);
    w.code(CHANNEL_CODES, channel);
    w.uint(purposes.ref(purpose));
    packEntry(w, entry, notices);
  }
  w.part(sends, (sw, log) => packSends(sw, log, purposes));
}

function packEntry(w: Writer, e: ScopeEntry, notices: Table<Notice>): void {
  const group = (fields: readonly (keyof ScopeEntry)[]) => {
    const present = fields.filter((f) => e[f] !== undefined).length;
    if (present !== 0 && present !== fields.length) throw new Unpackable('a partial grant or closing');
    return present > 0;
  };
  const grant = group(GRANT_FIELDS);
  const closing = group(CLOSING_FIELDS);
  if (!grant && (e.noticeVersion !== undefined || e.noticeHash !== undefined)) throw new Unpackable('a notice alone');
  if (e.objection !== undefined && e.objection !== true) throw new Unpackable('objection: false');
  const ids = [e.grantEventId, e.withdrawnEventId].filter((id) => id !== undefined);
  const rawIds = ids.some((id) => !ulidBytes(id));
  const ownIsGrant = e.ownGrantAt !== undefined && e.ownGrantAt === e.grantedAt;
  w.uint(
    (grant ? E.grant : 0) |
      (e.expiresAt !== undefined ? E.expires : 0) |
      (e.ownGrantAt !== undefined ? E.ownGrant : 0) |
      (ownIsGrant ? E.ownGrantIsGrant : 0) |
      (closing ? E.closing : 0) |
      (e.objection ? E.objection : 0) |
      (rawIds ? E.rawIds : 0),
  );
  if (grant) {
    w.time(e.grantedAt);
    w.id(e.grantEventId, rawIds);
    w.code(SOURCE_CODES, e.grantSource);
    const hasNotice = e.noticeVersion !== undefined || e.noticeHash !== undefined;
    w.uint(hasNotice ? notices.ref([e.noticeVersion, e.noticeHash]) + 1 : 0);
  }
  if (e.expiresAt !== undefined) w.time(e.expiresAt);
  if (e.ownGrantAt !== undefined && !ownIsGrant) w.time(e.ownGrantAt);
  if (closing) {
    w.time(e.withdrawnAt);
    w.id(e.withdrawnEventId, rawIds);
    w.code(SOURCE_CODES, e.withdrawnSource);
  }
}

function unpackScopes(r: Reader): ScopesPart {
  const purposes = Array.from({ length: r.uint() }, () => r.str());
  const notices = Array.from({ length: r.uint() }, (): Notice => {
    const f = r.uint();
    const version = f & 1 ? r.str() : undefined;
    const hash = f & 2 ? Buffer.from(r.bytes(32)).toString('hex') : f & 4 ? r.str() : undefined;
    return [version, hash];
  });
  const scopes: Record<string, ScopeEntry> = {};
  for (let n = r.uint(); n > 0; n--) {
    const key = `${r.code(CHANNEL_CODES)}|${purposes[r.uint()]}`;
    const f = r.uint();
    const raw = (f & E.rawIds) !== 0;
    const e: ScopeEntry = {};
    if (f & E.grant) {
      e.grantedAt = r.time();
      e.grantEventId = r.id(raw);
      e.grantSource = r.code(SOURCE_CODES);
      const notice = r.uint();
      if (notice > 0) {
        const [version, hash] = notices[notice - 1];
        if (version !== undefined) e.noticeVersion = version;
        if (hash !== undefined) e.noticeHash = hash;
      }
    }
    if (f & E.expires) e.expiresAt = r.time();
    if (f & E.ownGrant) e.ownGrantAt = f & E.ownGrantIsGrant ? e.grantedAt : r.time();
    if (f & E.closing) {
      e.withdrawnAt = r.time();
      e.withdrawnEventId = r.id(raw);
      e.withdrawnSource = r.code(SOURCE_CODES);
    }
    if (f & E.objection) e.objection = true;
    put(scopes, key, e);
  }
  const sends = r.part((sr) => unpackSends(sr, purposes));
  return sends === undefined ? { scopes } : { scopes, sends };
}

// --- Erasure. ---

const ER = { completed: 1, erasedAt: 2, reason: 4, retention: 8, proofUntil: 16, purged: 32 } as const;
const ERASURE_FIELDS = new Set([
  'requestId',
  'status',
  'receivedAt',
  'erasedAt',
  'reason',
  'proofUntil',
  'proofPurgedAt',
]);
/** Request id prefixes of an erasure (`er_` + ULID from the API, `retention_` + ULID from the retention job). */
const REQUEST_PREFIXES = ['er_', 'retention_'];

function packErasure(w: Writer, e: ErasureState): void {
  if (!isObject(e) || Object.keys(e).some((f) => !ERASURE_FIELDS.has(f))) throw new Unpackable('erasure fields');
  if (e.status !== 'received' && e.status !== 'completed') throw new Unpackable('erasure status');
  if (e.reason !== undefined && e.reason !== 'request' && e.reason !== 'retention') {
    throw new Unpackable('erasure reason');
  }
  w.uint(
    (e.status === 'completed' ? ER.completed : 0) |
      (e.erasedAt !== undefined ? ER.erasedAt : 0) |
      (e.reason !== undefined ? ER.reason : 0) |
      (e.reason === 'retention' ? ER.retention : 0) |
      (e.proofUntil !== undefined ? ER.proofUntil : 0) |
      (e.proofPurgedAt !== undefined ? ER.purged : 0),
  );
  const prefix = REQUEST_PREFIXES.findIndex(
    (p) => typeof e.requestId === 'string' && e.requestId.startsWith(p) && ulidBytes(e.requestId.slice(p.length)),
  );
  w.uint(prefix + 1);
  if (prefix < 0) w.str(e.requestId);
  else w.id(e.requestId.slice(REQUEST_PREFIXES[prefix].length), false);
  w.time(e.receivedAt);
  if (e.erasedAt !== undefined) w.time(e.erasedAt);
  if (e.proofUntil !== undefined) w.time(e.proofUntil);
  if (e.proofPurgedAt !== undefined) w.time(e.proofPurgedAt);
}

function unpackErasure(r: Reader): ErasureState {
  const f = r.uint();
  const prefix = r.uint();
  const requestId = prefix === 0 ? r.str() : REQUEST_PREFIXES[prefix - 1] + r.id(false);
  const e: ErasureState = { requestId, status: f & ER.completed ? 'completed' : 'received', receivedAt: r.time() };
  if (f & ER.erasedAt) e.erasedAt = r.time();
  if (f & ER.reason) e.reason = f & ER.retention ? 'retention' : 'request';
  if (f & ER.proofUntil) e.proofUntil = r.time();
  if (f & ER.purged) e.proofPurgedAt = r.time();
  return e;
}

// --- Signal summaries (likelihood.ts `ChannelSignals`, per channel). ---

const SIG = { cleared: 1, resolved: 2, unreachable: 4 } as const;
const CHANNEL_SIGNAL_FIELDS = new Set(['clearedAt', 'unreachableAt', 'clues', 'pending', 'resolved', 'count']);

function packSignals(w: Writer, signals: Record<string, unknown>): void {
  if (!isObject(signals)) throw new Unpackable('signals');
  const channels = Object.entries(signals);
  w.uint(channels.length);
  for (const [channel, summary] of channels) {
    if (!isObject(summary) || Object.keys(summary).some((f) => !CHANNEL_SIGNAL_FIELDS.has(f))) {
      throw new Unpackable('signal summary fields');
    }
    const { clearedAt, unreachableAt, clues, pending, resolved, count } = summary;
    if (!isObject(clues) || !Array.isArray(pending) || (resolved !== undefined && !Array.isArray(resolved))) {
      throw new Unpackable('signal summary shape');
    }
    w.code(CHANNEL_CODES, channel);
    w.uint(
      (clearedAt !== undefined ? SIG.cleared : 0) |
        (resolved !== undefined ? SIG.resolved : 0) |
        (unreachableAt !== undefined ? SIG.unreachable : 0),
    );
    if (clearedAt !== undefined) w.seconds(clearedAt);
    if (unreachableAt !== undefined) w.seconds(unreachableAt);
    w.uint(count as number);
    const types = Object.entries(clues);
    w.uint(types.length);
    for (const [type, entries] of types) {
      if (!Array.isArray(entries)) throw new Unpackable('clue entries');
      w.code(CLUE_CODES, type);
      w.uint(entries.length);
      for (const entry of entries) {
        // [at], [at, ref] or [at, ref, 1].
        if (!Array.isArray(entry) || entry.length < 1 || entry.length > 3) throw new Unpackable('a clue');
        if (entry.length === 3 && entry[2] !== 1) throw new Unpackable('a clue flag');
        const tag = w.refTag(entry[1]);
        if (entry.length >= 2 && tag === 0) throw new Unpackable('a clue without its reference');
        w.uint(tag + (entry.length === 3 ? 5 : 0));
        w.seconds(entry[0]);
        w.ref(tag, entry[1]);
      }
    }
    w.uint(pending.length);
    for (const p of pending) {
      if (!Array.isArray(p) || p.length !== 2 || typeof p[1] !== 'string') throw new Unpackable('a pending send');
      const tag = w.refTag(p[1]);
      w.uint(tag);
      w.seconds(p[0]);
      w.ref(tag, p[1]);
    }
    if (resolved) {
      w.uint(resolved.length);
      for (const ref of resolved) {
        if (typeof ref !== 'string') throw new Unpackable('a resolved reference');
        const tag = w.refTag(ref);
        w.uint(tag);
        w.ref(tag, ref);
      }
    }
  }
}

function unpackSignals(r: Reader): Record<string, unknown> {
  const signals: Record<string, unknown> = {};
  for (let n = r.uint(); n > 0; n--) {
    const channel = r.code(CHANNEL_CODES);
    const f = r.uint();
    const summary: Record<string, unknown> = {};
    if (f & SIG.cleared) summary.clearedAt = r.seconds();
    if (f & SIG.unreachable) summary.unreachableAt = r.seconds();
    const count = r.uint();
    const clues: Record<string, unknown[]> = {};
    for (let t = r.uint(); t > 0; t--) {
      const type = r.code(CLUE_CODES);
      put(
        clues,
        type,
        Array.from({ length: r.uint() }, () => {
          const head = r.uint();
          const tag = head % 5;
          const entry: unknown[] = [r.seconds()];
          if (tag !== 0) entry.push(r.ref(tag));
          if (head >= 5) entry.push(1);
          return entry;
        }),
      );
    }
    summary.clues = clues;
    summary.pending = Array.from({ length: r.uint() }, () => {
      const tag = r.uint();
      return [r.seconds(), r.ref(tag)];
    });
    if (f & SIG.resolved) summary.resolved = Array.from({ length: r.uint() }, () => r.ref(r.uint()));
    summary.count = count;
    put(signals, channel, summary);
  }
  return signals;
}

// --- Send logs (sends.ts `SendLog`: newest-first epoch seconds per `channel|purpose`). ---

function packSends(w: Writer, sends: Record<string, unknown>, purposes: Table<string>): void {
  if (!isObject(sends)) throw new Unpackable('sends');
  const keys = Object.entries(sends);
  w.uint(keys.length);
  for (const [key, times] of keys) {
    if (!Array.isArray(times)) throw new Unpackable('send times');
    const [channel, purpose] = splitKey(key);
    const i = purposes.items.indexOf(purpose);
    if (i < 0) throw new Unpackable('a purpose outside the table');
    w.code(CHANNEL_CODES, channel);
    w.uint(i);
    w.uint(times.length);
    for (const t of times) w.seconds(t);
  }
}

function unpackSends(r: Reader, purposes: readonly string[]): Record<string, number[]> {
  const sends: Record<string, number[]> = {};
  for (let n = r.uint(); n > 0; n--) {
    const key = `${r.code(CHANNEL_CODES)}|${purposes[r.uint()]}`;
    put(
      sends,
      key,
      Array.from({ length: r.uint() }, () => r.seconds()),
    );
  }
  return sends;
}

// --- The item. ---

const TOP = { kind: 1, lastOwn: 2, binaryHead: 4 } as const;

/**
 * The attributes of a state item (without its keys): `n`, `b`, and the state's fields this codec does not
 * know, untouched. Throws on a field whose name is one of the layout's own.
 */
export function encodeState(state: SubjectState, options: { strict?: boolean } = {}): Record<string, unknown> {
  const extra = Object.entries(state).filter(([k, v]) => !PACKED.includes(k) && v !== undefined);
  const clash = extra.find(([k]) => RESERVED.has(k));
  if (clash) throw new Error(`state field "${clash[0]}" collides with an attribute of the state item layout`);
  const w = new Writer(options.strict);
  w.uint(STATE_LAYOUT);
  const binaryHead = isHex32(state.head);
  w.uint(
    (state.kind !== undefined ? TOP.kind : 0) |
      (state.lastOwnActionAt !== undefined ? TOP.lastOwn : 0) |
      (binaryHead ? TOP.binaryHead : 0),
  );
  if (state.kind !== undefined) w.code(KIND_CODES, state.kind);
  w.uint(state.seq);
  if (binaryHead) w.bytes(Buffer.from(state.head, 'hex'));
  else w.str(state.head);
  if (state.lastOwnActionAt !== undefined) w.time(state.lastOwnActionAt);
  const sends = state.sends as Record<string, unknown> | undefined;
  w.part<ScopesPart>(sends === undefined ? { scopes: state.scopes } : { scopes: state.scopes, sends }, packScopes);
  w.part(state.erasure, packErasure);
  w.part(state.signals, packSignals);
  return { [VERSION_ATTR]: state.version, [BODY_ATTR]: w.done(), ...Object.fromEntries(extra) };
}

/**
 * The state of an item read from the table, in either layout: the compact one (`b`), or the one of earlier
 * releases (every field its own attribute). Unknown attributes come back as fields, untouched.
 */
export function decodeState(item: Record<string, unknown>, subjectKey: string): SubjectState {
  const body = item[BODY_ATTR];
  if (!(body instanceof Uint8Array)) return legacyState(item, subjectKey);
  const r = new Reader(body);
  const layout = r.uint();
  if (layout !== STATE_LAYOUT)
    throw new Error(`state item layout ${layout} is not one this release reads (a newer one?)`);
  const flags = r.uint();
  const state: Record<string, unknown> = { subjectKey };
  if (flags & TOP.kind) state.kind = r.code(KIND_CODES);
  state.version = item[VERSION_ATTR];
  state.seq = r.uint();
  state.head = flags & TOP.binaryHead ? Buffer.from(r.bytes(32)).toString('hex') : r.str();
  if (flags & TOP.lastOwn) state.lastOwnActionAt = r.time();
  const { scopes, sends } = r.part(unpackScopes) ?? { scopes: {} };
  state.scopes = scopes;
  if (sends !== undefined) state.sends = sends;
  const erasure = r.part(unpackErasure);
  if (erasure !== undefined) state.erasure = erasure;
  const signals = r.part(unpackSignals);
  if (signals !== undefined) state.signals = signals;
  if (!r.ended) throw new Error('state item: trailing bytes in its body');
  for (const [k, v] of Object.entries(item)) if (!RESERVED.has(k)) put(state, k, v);
  return state as unknown as SubjectState;
}

/** An item written before the compact layout: the state's fields are its attributes. */
function legacyState(item: Record<string, unknown>, subjectKey: string): SubjectState {
  const state: Record<string, unknown> = { ...item };
  for (const k of KEY_ATTRIBUTES) delete state[k];
  state.subjectKey ??= subjectKey;
  state.scopes ??= {};
  return state as unknown as SubjectState;
}
