import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  appendNodes,
  consistencyNodes,
  consistencyProof,
  EMPTY_ROOT,
  frontierNodes,
  inclusionNodes,
  inclusionProof,
  leafHash,
  type NodeGetter,
  type NodeId,
  nodeHash,
  nodeKey,
  rootHash,
  rootNodes,
  verifyConsistency,
  verifyInclusion,
} from '#shared/log/merkle.ts';

const fixture = <T>(name: string): T =>
  JSON.parse(readFileSync(new URL(`../../fixtures/log/${name}`, import.meta.url), 'utf8')) as T;

interface ReferenceTree {
  hasher: {
    emptyTree: string;
    leaf: { input?: string; inputText?: string; hash: string }[];
    node: { leftText: string; rightText: string; hash: string }[];
  };
  inputs: string[];
  nodeHashes: string[][];
  rootsBySize: string[];
  inclusion: { index: number; size: number; path: string[] }[];
  consistency: { from: number; to: number; proof: string[] }[];
}

interface Probe {
  file: string;
  proof: string[] | null;
  desc: string;
  wantErr: boolean;
}
interface InclusionProbe extends Probe {
  leafIdx: number;
  treeSize: number;
  root: string;
  leafHash: string;
}
interface ConsistencyProbe extends Probe {
  size1: number;
  size2: number;
  root1: string;
  root2: string;
}

const reference = fixture<ReferenceTree>('rfc6962-reference-tree.json');
const probes = fixture<{ inclusion: InclusionProbe[]; consistency: ConsistencyProbe[] }>(
  'transparency-dev-probes.json',
);

const hex = (value: string) => Buffer.from(value, 'hex');
const b64 = (value: string) => Buffer.from(value, 'base64');
const toHex = (buffers: Buffer[]) => buffers.map((b) => b.toString('hex'));

/** A tree kept as its stored nodes, the way the store keeps them. */
function buildTree(leaves: Buffer[], batches: number[] = [leaves.length]): Map<string, Buffer> {
  const nodes = new Map<string, Buffer>();
  let size = 0;
  for (const count of batches) {
    const batch = leaves.slice(size, size + count);
    const frontier = new Set(frontierNodes(size).map(nodeKey));
    // appendNodes may read only the frontier of the tree it appends to.
    const added = appendNodes(size, batch, (id) => {
      if (!frontier.has(nodeKey(id))) throw new Error(`appendNodes read ${nodeKey(id)}, not a frontier node`);
      return nodes.get(nodeKey(id))!;
    });
    for (const [key, hash] of added) nodes.set(key, hash);
    size += batch.length;
  }
  return nodes;
}

/** A getter that allows exactly the declared nodes (so the `…Nodes` functions say all a proof reads). */
const only =
  (nodes: Map<string, Buffer>, declared: NodeId[]): NodeGetter =>
  (id) => {
    if (!declared.some((d) => nodeKey(d) === nodeKey(id))) throw new Error(`read undeclared node ${nodeKey(id)}`);
    const hash = nodes.get(nodeKey(id));
    if (!hash) throw new Error(`node ${nodeKey(id)} is not stored`);
    return hash;
  };

const rootOf = (nodes: Map<string, Buffer>, size: number) => rootHash(size, only(nodes, rootNodes(size)));
const inclusionOf = (nodes: Map<string, Buffer>, index: number, size: number) =>
  inclusionProof(index, size, only(nodes, inclusionNodes(index, size)));
const consistencyOf = (nodes: Map<string, Buffer>, from: number, to: number) =>
  consistencyProof(from, to, only(nodes, consistencyNodes(from, to)));

// ---- RFC 9162 §2.1 as written (recursive definitions over the leaves), to cross-check the stored-node code ----

const largestPowerOf2Below = (n: number) => {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
};
const mth = (leaves: Buffer[]): Buffer => {
  if (leaves.length === 0) return EMPTY_ROOT;
  if (leaves.length === 1) return leaves[0];
  const k = largestPowerOf2Below(leaves.length);
  return nodeHash(mth(leaves.slice(0, k)), mth(leaves.slice(k)));
};
const path = (m: number, leaves: Buffer[]): Buffer[] => {
  if (leaves.length === 1) return [];
  const k = largestPowerOf2Below(leaves.length);
  return m < k
    ? [...path(m, leaves.slice(0, k)), mth(leaves.slice(k))]
    : [...path(m - k, leaves.slice(k)), mth(leaves.slice(0, k))];
};
const subproof = (m: number, leaves: Buffer[], complete: boolean): Buffer[] => {
  const n = leaves.length;
  if (m === n) return complete ? [] : [mth(leaves)];
  const k = largestPowerOf2Below(n);
  return m <= k
    ? [...subproof(m, leaves.slice(0, k), complete), mth(leaves.slice(k))]
    : [...subproof(m - k, leaves.slice(k), false), mth(leaves.slice(0, k))];
};

const randomLeaves = (count: number, seed: number) =>
  Array.from({ length: count }, (_, i) => leafHash(createHash('sha256').update(`${seed}:${i}`).digest()));

const flipBit = (buffer: Buffer, bit: number) => {
  const copy = Buffer.from(buffer);
  copy[Math.floor(bit / 8) % copy.length] ^= 1 << (bit % 8);
  return copy;
};

describe('RFC 6962 hashing (published known answers)', () => {
  it('hashes the empty tree, leaves and nodes as the reference hasher does', () => {
    expect(EMPTY_ROOT.toString('hex')).toBe(reference.hasher.emptyTree);
    for (const v of reference.hasher.leaf) {
      const input = v.inputText !== undefined ? Buffer.from(v.inputText) : hex(v.input!);
      expect(leafHash(input).toString('hex')).toBe(v.hash);
    }
    for (const v of reference.hasher.node) {
      expect(nodeHash(Buffer.from(v.leftText), Buffer.from(v.rightText)).toString('hex')).toBe(v.hash);
    }
  });

  it('builds the 8-leaf reference tree: every perfect subtree and the root at every size', () => {
    const leaves = reference.inputs.map((input) => leafHash(hex(input)));
    const nodes = buildTree(leaves, [1, 1, 1, 1, 1, 1, 1, 1]);
    for (const [level, hashes] of reference.nodeHashes.entries()) {
      for (const [index, hash] of hashes.entries()) {
        expect(nodes.get(nodeKey({ level, index }))?.toString('hex'), `node ${level}:${index}`).toBe(hash);
      }
    }
    expect(nodes.size).toBe(reference.nodeHashes.flat().length);
    for (const [size, root] of reference.rootsBySize.entries()) {
      expect(rootOf(nodes, size).toString('hex'), `root of ${size}`).toBe(root);
    }
  });

  it('produces exactly the published inclusion paths, and they verify', () => {
    const leaves = reference.inputs.map((input) => leafHash(hex(input)));
    const nodes = buildTree(leaves);
    for (const v of reference.inclusion) {
      const proof = inclusionOf(nodes, v.index, v.size);
      expect(toHex(proof), `leaf ${v.index} of ${v.size}`).toEqual(v.path);
      expect(verifyInclusion(leaves[v.index], v.index, v.size, proof, hex(reference.rootsBySize[v.size]))).toBe(true);
    }
  });

  it('produces exactly the published consistency proofs, and they verify', () => {
    const nodes = buildTree(reference.inputs.map((input) => leafHash(hex(input))));
    for (const v of reference.consistency) {
      const proof = consistencyOf(nodes, v.from, v.to);
      expect(toHex(proof), `${v.from} → ${v.to}`).toEqual(v.proof);
      const [fromRoot, toRoot] = [hex(reference.rootsBySize[v.from]), hex(reference.rootsBySize[v.to])];
      expect(verifyConsistency(v.from, v.to, proof, fromRoot, toRoot)).toBe(true);
    }
  });
});

describe('transparency-dev/merkle verification probes (published pass/fail vectors)', () => {
  it(`verifies every inclusion probe as the reference does (${probes.inclusion.length} probes)`, () => {
    expect(probes.inclusion.length).toBeGreaterThan(90);
    for (const p of probes.inclusion) {
      const ok = verifyInclusion(b64(p.leafHash), p.leafIdx, p.treeSize, (p.proof ?? []).map(b64), b64(p.root));
      expect(ok, `${p.file}: ${p.desc}`).toBe(!p.wantErr);
    }
  });

  it(`verifies every consistency probe as the reference does (${probes.consistency.length} probes)`, () => {
    expect(probes.consistency.length).toBeGreaterThan(90);
    for (const p of probes.consistency) {
      const ok = verifyConsistency(p.size1, p.size2, (p.proof ?? []).map(b64), b64(p.root1), b64(p.root2));
      expect(ok, `${p.file}: ${p.desc}`).toBe(!p.wantErr);
    }
  });
});

describe('the tree over stored nodes (fast-check, sizes 1..300)', () => {
  const size = fc.integer({ min: 1, max: 300 });
  const seed = fc.integer();

  it('appending in any batch split stores the same nodes and gives the RFC root', () => {
    fc.assert(
      fc.property(size, seed, fc.array(fc.integer({ min: 1, max: 40 }), { maxLength: 300 }), (n, s, cuts) => {
        const leaves = randomLeaves(n, s);
        const batches: number[] = [];
        let left = n;
        for (const cut of cuts) {
          if (left === 0) break;
          batches.push(Math.min(cut, left));
          left -= batches[batches.length - 1];
        }
        if (left > 0) batches.push(left);
        const once = buildTree(leaves);
        const split = buildTree(leaves, batches);
        expect([...split.keys()].sort()).toEqual([...once.keys()].sort());
        for (const [key, hash] of once) expect(split.get(key)?.equals(hash)).toBe(true);
        expect(rootOf(split, n).equals(mth(leaves))).toBe(true);
      }),
      { numRuns: 60 },
    );
  });

  it('every inclusion proof of any subset of leaves is the RFC path, reads O(log n) nodes, and verifies', () => {
    fc.assert(
      fc.property(size, seed, fc.array(fc.nat(), { minLength: 1, maxLength: 40 }), (n, s, picks) => {
        const leaves = randomLeaves(n, s);
        const nodes = buildTree(leaves);
        const root = rootOf(nodes, n);
        for (const index of new Set(picks.map((p) => p % n))) {
          const proof = inclusionOf(nodes, index, n);
          expect(toHex(proof)).toEqual(toHex(path(index, leaves)));
          expect(inclusionNodes(index, n).length).toBeLessThanOrEqual(2 * Math.ceil(Math.log2(n)) + 1);
          expect(verifyInclusion(leaves[index], index, n, proof, root)).toBe(true);
        }
      }),
      { numRuns: 80 },
    );
  });

  it('every consistency proof between any two sizes is the RFC proof and verifies', () => {
    fc.assert(
      fc.property(
        size,
        seed,
        fc.array(fc.tuple(fc.nat(), fc.nat()), { minLength: 1, maxLength: 30 }),
        (n, s, pairs) => {
          const leaves = randomLeaves(n, s);
          const nodes = buildTree(leaves);
          for (const [a, b] of pairs) {
            const [from, to] = [(a % n) + 1, (b % n) + 1].sort((x, y) => x - y);
            const proof = consistencyOf(nodes, from, to);
            expect(toHex(proof)).toEqual(toHex(subproof(from, leaves.slice(0, to), true)));
            expect(consistencyNodes(from, to).length).toBeLessThanOrEqual(2 * Math.ceil(Math.log2(to)) + 2);
            expect(verifyConsistency(from, to, proof, rootOf(nodes, from), rootOf(nodes, to))).toBe(true);
          }
        },
      ),
      { numRuns: 80 },
    );
  });

  it('a changed leaf, proof node, index or size makes an inclusion proof fail', () => {
    fc.assert(
      fc.property(size, seed, fc.nat(), fc.nat(), fc.nat(), fc.nat({ max: 255 }), (n, s, i, other, at, bit) => {
        const leaves = randomLeaves(n, s);
        const nodes = buildTree(leaves);
        const index = i % n;
        const root = rootOf(nodes, n);
        const proof = inclusionOf(nodes, index, n);
        expect(verifyInclusion(flipBit(leaves[index], bit), index, n, proof, root)).toBe(false);
        expect(verifyInclusion(leaves[index], index, n, proof, flipBit(root, bit))).toBe(false);
        if (proof.length > 0) {
          const changed = proof.map((p, k) => (k === at % proof.length ? flipBit(p, bit) : p));
          expect(verifyInclusion(leaves[index], index, n, changed, root)).toBe(false);
          expect(verifyInclusion(leaves[index], index, n, proof.slice(1), root)).toBe(false);
        }
        expect(verifyInclusion(leaves[index], index, n, [...proof, root], root)).toBe(false);
        // Another leaf's index (in or beyond the tree) with this leaf's proof.
        const otherIndex = (index + 1 + (other % (n + 3))) % (n + 3);
        if (otherIndex !== index) expect(verifyInclusion(leaves[index], otherIndex, n, proof, root)).toBe(false);
        // Another size: checked against the root a checkpoint of that size would sign.
        const otherSize = 1 + ((n + (other % 300)) % 301);
        if (otherSize !== n && index < otherSize) {
          const bigger = buildTree(randomLeaves(Math.max(otherSize, n), s));
          expect(verifyInclusion(leaves[index], index, otherSize, proof, rootOf(bigger, otherSize))).toBe(false);
        }
      }),
      { numRuns: 150 },
    );
  });

  it('a changed proof node, root or size makes a consistency proof fail', () => {
    fc.assert(
      fc.property(size, seed, fc.nat(), fc.nat(), fc.nat(), fc.nat({ max: 255 }), (n, s, a, b, at, bit) => {
        if (n < 2) return;
        const leaves = randomLeaves(n, s);
        const nodes = buildTree(leaves);
        const from = (a % (n - 1)) + 1;
        const to = from + 1 + (b % (n - from));
        const [fromRoot, toRoot] = [rootOf(nodes, from), rootOf(nodes, to)];
        const proof = consistencyOf(nodes, from, to);
        const changed = proof.map((p, k) => (k === at % proof.length ? flipBit(p, bit) : p));
        expect(verifyConsistency(from, to, changed, fromRoot, toRoot)).toBe(false);
        expect(verifyConsistency(from, to, proof, flipBit(fromRoot, bit), toRoot)).toBe(false);
        expect(verifyConsistency(from, to, proof, fromRoot, flipBit(toRoot, bit))).toBe(false);
        expect(verifyConsistency(from, to, proof.slice(1), fromRoot, toRoot)).toBe(false);
        expect(verifyConsistency(from, to, [...proof, toRoot], fromRoot, toRoot)).toBe(false);
        // A rewritten history: the same sizes, one earlier leaf changed.
        const forked = leaves.map((leaf, k) => (k === at % from ? flipBit(leaf, bit) : leaf));
        const forkedNodes = buildTree(forked);
        expect(
          verifyConsistency(from, to, consistencyOf(forkedNodes, from, to), fromRoot, rootOf(forkedNodes, to)),
        ).toBe(false);
        // Other sizes, with the roots of those sizes.
        if (from > 1) expect(verifyConsistency(from - 1, to, proof, rootOf(nodes, from - 1), toRoot)).toBe(false);
        if (to < n) expect(verifyConsistency(from, to + 1, proof, fromRoot, rootOf(nodes, to + 1))).toBe(false);
        if (to - 1 > from) expect(verifyConsistency(from, to - 1, proof, fromRoot, rootOf(nodes, to - 1))).toBe(false);
      }),
      { numRuns: 150 },
    );
  });
});

describe('edges', () => {
  it('has no proofs outside the tree', () => {
    expect(() => inclusionNodes(3, 3)).toThrow(RangeError);
    expect(() => inclusionNodes(-1, 3)).toThrow(RangeError);
    expect(() => consistencyNodes(0, 3)).toThrow(RangeError);
    expect(() => consistencyNodes(4, 3)).toThrow(RangeError);
    expect(consistencyNodes(5, 5)).toEqual([]);
    expect(rootNodes(0)).toEqual([]);
    expect(rootHash(0, () => Buffer.alloc(32)).equals(EMPTY_ROOT)).toBe(true);
  });

  it('names the perfect subtrees of a size by its binary digits, and works beyond 32-bit sizes', () => {
    expect(rootNodes(13)).toEqual([
      { level: 3, index: 0 },
      { level: 2, index: 2 },
      { level: 0, index: 12 },
    ]);
    const size = 2 ** 40 + 5;
    expect(rootNodes(size)).toEqual([
      { level: 40, index: 0 },
      { level: 2, index: 2 ** 38 },
      { level: 0, index: 2 ** 40 + 4 },
    ]);
    expect(inclusionNodes(2 ** 40 + 4, size)).toEqual([
      { level: 2, index: 2 ** 38 },
      { level: 40, index: 0 },
    ]);
  });

  it('refuses leaf hashes that are not 32 bytes', () => {
    expect(() => appendNodes(0, [Buffer.alloc(31)], () => Buffer.alloc(32))).toThrow(TypeError);
  });
});
