import { createHash } from 'node:crypto';

/**
 * The Merkle tree of a tenant's verifiable log: RFC 9162 §2.1 (the RFC 6962 tree), pure and synchronous.
 *
 * The tree is stored as its perfect subtrees: node `{level, index}` is the hash of the 2^level leaves that
 * start at leaf `index * 2^level` (level 0 = the leaf hashes). A tree of any size is a few of them (the binary
 * digits of its size, largest first), so every root, inclusion proof and consistency proof is computed from
 * O(log n) stored nodes that never change once written. The functions named `…Nodes` say which nodes to read;
 * the ones taking a {@link NodeGetter} compute from them (the caller reads them first, in one batch).
 *
 * Sizes and indexes are plain numbers up to 2^53: the arithmetic below divides and multiplies by powers of
 * two rather than using JavaScript's 32-bit shift operators.
 */

export type NodeId = { level: number; index: number };
export const nodeKey = (id: NodeId) => `${id.level}:${id.index}`;

/** The hash of a stored perfect subtree (level 0 = leaf hashes); throws when it is not available. */
export type NodeGetter = (id: NodeId) => Buffer;

const sha256 = (...parts: Buffer[]) => {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(part);
  return hash.digest();
};

const LEAF_PREFIX = Buffer.from([0x00]);
const NODE_PREFIX = Buffer.from([0x01]);

/** The leaf of an event: SHA-256(0x00 ‖ event hash bytes). */
export function leafHash(eventHash: Buffer): Buffer {
  return sha256(LEAF_PREFIX, eventHash);
}

/** An interior node: SHA-256(0x01 ‖ left ‖ right). */
export function nodeHash(left: Buffer, right: Buffer): Buffer {
  return sha256(NODE_PREFIX, left, right);
}

/** The root of the empty tree: SHA-256 of the empty string. */
export const EMPTY_ROOT: Buffer = sha256();

// ---- integer helpers (exact for every safe integer) ----

const pow2 = (level: number) => 2 ** level;
const shr = (value: number, bits: number) => Math.floor(value / pow2(bits));
const isOdd = (value: number) => value % 2 === 1;

/** The number of low levels on which `a` and `b` sit in different subtrees (bit length of a XOR b). */
const divergence = (a: number, b: number) => {
  let bits = 0;
  while (shr(a, bits) !== shr(b, bits)) bits++;
  return bits;
};

const trailingZeros = (value: number) => {
  let bits = 0;
  while (!isOdd(shr(value, bits))) bits++;
  return bits;
};

const assertSize = (value: number, what: string) => {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`${what} must be a non-negative integer`);
};

// ---- which nodes ----

/** The perfect subtrees covering leaves [begin, end), largest first; `begin` must be aligned to the largest. */
function rangeNodes(begin: number, end: number): NodeId[] {
  const nodes: NodeId[] = [];
  let at = begin;
  for (let level = divergence(0, end - begin); level >= 0; level--) {
    if (end - at >= pow2(level)) {
      nodes.push({ level, index: at / pow2(level) });
      at += pow2(level);
    }
  }
  return nodes;
}

/** The perfect subtrees whose hashes give the root of a tree of `size` leaves, left to right. */
export function rootNodes(size: number): NodeId[] {
  assertSize(size, 'size');
  return rangeNodes(0, size);
}

/** Folds perfect subtrees (left to right) into the hash of the tree they form (RFC 9162 MTH). */
function foldRight(hashes: Buffer[]): Buffer {
  let hash = hashes[hashes.length - 1];
  for (let i = hashes.length - 2; i >= 0; i--) hash = nodeHash(hashes[i], hash);
  return hash;
}

export function rootHash(size: number, node: NodeGetter): Buffer {
  const nodes = rootNodes(size);
  return nodes.length === 0 ? EMPTY_ROOT : foldRight(nodes.map(node));
}

/**
 * The audit path of the complete node `{level, index}` in a tree of `size` leaves, from the bottom up. Each
 * element is one proof hash: one stored node, or (for the one sibling that may be cut off by the tree's right
 * edge) the perfect subtrees that form it.
 */
function pathOf(level: number, index: number, size: number): NodeId[][] {
  const last = shr(size - 1, level); // index, at `level`, of the node holding the last leaf
  const inner = divergence(index, last);
  const path: NodeId[][] = [];
  // Below the point where the path meets the tree's right edge every sibling is a perfect subtree, except the
  // topmost one, which may be ragged (it holds the last leaf).
  for (let up = 0; up < inner; up++) {
    const at = level + up;
    const sibling = shr(index, up) + (isOdd(shr(index, up)) ? -1 : 1);
    const begin = sibling * pow2(at);
    path.push(begin + pow2(at) <= size ? [{ level: at, index: sibling }] : rangeNodes(begin, size));
  }
  // Along the right edge only left siblings exist (a right edge node without a right sibling moves up as is).
  for (let up = inner; shr(index, up) > 0; up++) {
    if (isOdd(shr(index, up))) path.push([{ level: level + up, index: shr(index, up) - 1 }]);
  }
  return path;
}

function inclusionPath(index: number, size: number): NodeId[][] {
  assertSize(index, 'index');
  assertSize(size, 'size');
  if (index >= size) throw new RangeError(`leaf ${index} is not in a tree of ${size}`);
  return pathOf(0, index, size);
}

/** The nodes to read for the inclusion proof of leaf `index` in the tree of `size` (O(log n)). */
export function inclusionNodes(index: number, size: number): NodeId[] {
  return inclusionPath(index, size).flat();
}

export function inclusionProof(index: number, size: number, node: NodeGetter): Buffer[] {
  return inclusionPath(index, size).map((ids) => foldRight(ids.map(node)));
}

/**
 * RFC 9162 §2.1.4 SUBPROOF(from, D[to], true): the last perfect subtree of the `from` tree (unless that tree
 * is itself perfect: the verifier has its root) and that subtree's audit path in the `to` tree.
 */
function consistencyPath(from: number, to: number): NodeId[][] {
  assertSize(from, 'from');
  assertSize(to, 'to');
  if (from < 1 || from > to) throw new RangeError(`no consistency proof from ${from} to ${to}`);
  if (from === to) return [];
  const level = trailingZeros(from);
  const index = shr(from, level) - 1;
  const path = pathOf(level, index, to);
  return index === 0 ? path : [[{ level, index }], ...path];
}

export function consistencyNodes(from: number, to: number): NodeId[] {
  return consistencyPath(from, to).flat();
}

export function consistencyProof(from: number, to: number, node: NodeGetter): Buffer[] {
  return consistencyPath(from, to).map((ids) => foldRight(ids.map(node)));
}

// ---- verification (RFC 9162 §2.1.3.2 and §2.1.4.2) ----

const isHash = (value: unknown): value is Buffer => Buffer.isBuffer(value) && value.length === 32;
const validSize = (value: number) => Number.isSafeInteger(value) && value >= 0;

/** True when `proof` shows that the leaf hash `leaf` is leaf `index` of the tree of `size` whose root is `root`. */
export function verifyInclusion(leaf: Buffer, index: number, size: number, proof: Buffer[], root: Buffer): boolean {
  if (!validSize(index) || !validSize(size) || index >= size) return false;
  if (!isHash(leaf) || !isHash(root) || !Array.isArray(proof) || !proof.every(isHash)) return false;
  let fn = index;
  let sn = size - 1;
  let hash = leaf;
  for (const sibling of proof) {
    if (sn === 0) return false;
    if (isOdd(fn) || fn === sn) {
      hash = nodeHash(sibling, hash);
      while (!isOdd(fn) && fn !== 0) {
        fn = shr(fn, 1);
        sn = shr(sn, 1);
      }
    } else {
      hash = nodeHash(hash, sibling);
    }
    fn = shr(fn, 1);
    sn = shr(sn, 1);
  }
  return sn === 0 && hash.equals(root);
}

/** True when `proof` shows that the tree of `from` leaves with `fromRoot` is a prefix of the one of `to` with `toRoot`. */
export function verifyConsistency(
  from: number,
  to: number,
  proof: Buffer[],
  fromRoot: Buffer,
  toRoot: Buffer,
): boolean {
  if (!validSize(from) || !validSize(to) || from < 1 || from > to || !Array.isArray(proof)) return false;
  if (!Buffer.isBuffer(fromRoot) || !Buffer.isBuffer(toRoot)) return false;
  if (from === to) return proof.length === 0 && fromRoot.equals(toRoot);
  if (!isHash(fromRoot) || !isHash(toRoot) || proof.length === 0 || !proof.every(isHash)) return false;
  // A `from` tree that is perfect is its own last subtree: the verifier starts from its root.
  const path = from === pow2(trailingZeros(from)) ? [fromRoot, ...proof] : proof;
  let fn = from - 1;
  let sn = to - 1;
  while (isOdd(fn)) {
    fn = shr(fn, 1);
    sn = shr(sn, 1);
  }
  let fr = path[0];
  let sr = path[0];
  for (const c of path.slice(1)) {
    if (sn === 0) return false;
    if (isOdd(fn) || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      while (!isOdd(fn) && fn !== 0) {
        fn = shr(fn, 1);
        sn = shr(sn, 1);
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn = shr(fn, 1);
    sn = shr(sn, 1);
  }
  return sn === 0 && fr.equals(fromRoot) && sr.equals(toRoot);
}

// ---- appending ----

/** The stored nodes {@link appendNodes} needs: the perfect subtrees of the tree's right edge. */
export function frontierNodes(size: number): NodeId[] {
  return rootNodes(size);
}

/**
 * The perfect subtrees completed when `leaves` (leaf hashes) are appended to a tree of `size`, level 0
 * included, by {@link nodeKey}. `node` is asked only for {@link frontierNodes}(size).
 */
export function appendNodes(size: number, leaves: Buffer[], node: NodeGetter): Map<string, Buffer> {
  assertSize(size, 'size');
  const added = new Map<string, Buffer>();
  const get = (id: NodeId) => added.get(nodeKey(id)) ?? node(id);
  leaves.forEach((leaf, i) => {
    if (!isHash(leaf)) throw new TypeError('a leaf hash is 32 bytes');
    const index = size + i;
    added.set(nodeKey({ level: 0, index }), leaf);
    // Leaf `index` completes the subtree at each level where it is the last leaf of a perfect subtree.
    for (let level = 1; (index + 1) % pow2(level) === 0; level++) {
      const at = (index + 1) / pow2(level) - 1;
      const hash = nodeHash(get({ level: level - 1, index: 2 * at }), get({ level: level - 1, index: 2 * at + 1 }));
      added.set(nodeKey({ level, index: at }), hash);
    }
  });
  return added;
}
