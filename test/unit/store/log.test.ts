import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { appendNodes, frontierNodes, leafHash, type NodeId, nodeKey, rootHash } from '#shared/log/merkle.ts';
import {
  type BatchLeaf,
  batchTiles,
  edgeTiles,
  nodeFromTile,
  nodesFrom,
  TILE_WIDTH,
  type Tile,
  tileOf,
} from '#store/log.ts';

const leafOfIndex = (i: number): BatchLeaf => ({
  eventId: `E${i}`,
  subjectKey: `s${i % 7}`,
  seq: 1 + (i % 3),
  eventHash: createHash('sha256').update(`event ${i}`).digest('hex'),
});

/** Appends leaves [0, total) in batches of the given sizes to an in-memory tile store, as the sealer does. */
function appendInBatches(batches: number[]) {
  const tiles = new Map<string, Tile>();
  let size = 0;
  const roots: Buffer[] = [];
  for (const count of batches) {
    const batch = { size, leaves: Array.from({ length: count }, (_, i) => leafOfIndex(size + i)) };
    const newSize = size + count;
    const edges = new Map(
      edgeTiles(size, newSize)
        .map((id) => tiles.get(`${id.level}/${id.index}`))
        .filter((t): t is Tile => t !== undefined)
        .map((t) => [`${t.level}/${t.index}`, t]),
    );
    const frontier = nodesFrom(edges, frontierNodes(size));
    const get =
      (...maps: Map<string, Buffer>[]) =>
      (id: NodeId) => {
        for (const map of maps) {
          const found = map.get(nodeKey(id));
          if (found) return found;
        }
        throw new Error(`missing ${nodeKey(id)}`);
      };
    const added = appendNodes(
      size,
      batch.leaves.map((l) => leafHash(Buffer.from(l.eventHash, 'hex'))),
      get(frontier),
    );
    for (const tile of batchTiles(batch, edges, added)) {
      const stored = tiles.get(`${tile.level}/${tile.index}`);
      const length = (t?: Tile) => (t?.leaves ?? t?.hashes ?? []).length;
      // A tile only ever grows, and keeps the entries it had.
      expect(length(tile)).toBeGreaterThanOrEqual(length(stored));
      tiles.set(`${tile.level}/${tile.index}`, tile);
    }
    size = newSize;
    roots.push(rootHash(size, get(added, frontier)));
  }
  return { tiles, size, roots };
}

/** Every node of the tree of `size`, computed from scratch. */
function reference(size: number) {
  const leaves = Array.from({ length: size }, (_, i) => leafHash(Buffer.from(leafOfIndex(i).eventHash, 'hex')));
  return appendNodes(0, leaves, () => {
    throw new Error('no nodes before the first leaf');
  });
}

const node = (tiles: Map<string, Tile>, id: NodeId) => {
  const at = tileOf(id);
  const tile = tiles.get(`${at.level}/${at.index}`);
  return tile && nodeFromTile(tile, id);
};

describe('log tiles (height 8)', () => {
  it('maps a node to the one tile and the entries it is computed from', () => {
    expect(tileOf({ level: 0, index: 300 })).toEqual({ level: 0, index: 1, start: 44, width: 1 });
    expect(tileOf({ level: 3, index: 37 })).toEqual({ level: 0, index: 1, start: 40, width: 8 });
    expect(tileOf({ level: 8, index: 5 })).toEqual({ level: 1, index: 0, start: 5, width: 1 });
    expect(tileOf({ level: 12, index: 33 })).toEqual({ level: 1, index: 2, start: 16, width: 16 });
    expect(tileOf({ level: 16, index: 0 })).toEqual({ level: 2, index: 0, start: 0, width: 1 });
  });

  it('finds the edge tiles a batch extends: the partly filled ones', () => {
    expect(edgeTiles(0, 10)).toEqual([]);
    expect(edgeTiles(300, 600)).toEqual([
      { level: 0, index: 1 },
      { level: 1, index: 0 },
    ]);
    expect(edgeTiles(512, 700)).toEqual([{ level: 1, index: 0 }]);
  });

  it('gives every node and root of trees built in any batches (fast-check)', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 300 }), { minLength: 1, maxLength: 8 }), (batches) => {
        const { tiles, size, roots } = appendInBatches(batches);
        const all = reference(size);
        for (const [key, hash] of all) {
          const [level, index] = key.split(':').map(Number);
          expect(node(tiles, { level, index })?.equals(hash), key).toBe(true);
        }
        // A node not complete yet is not given (its tile lacks entries).
        expect(node(tiles, { level: 0, index: size })).toBeUndefined();
        // The root after each batch: from the perfect subtrees of that size, which the full tree holds unchanged.
        let total = 0;
        batches.forEach((count, i) => {
          total += count;
          expect(roots[i].equals(rootHash(total, (id) => all.get(nodeKey(id)) as Buffer))).toBe(true);
        });
      }),
      { numRuns: 25 },
    );
  });

  it('stores levels 8 and 16 in tiles of their own past 256 and 65,536 leaves', () => {
    const { tiles, size } = appendInBatches([1000, 64_000, 700, 1, 2000]);
    expect(size).toBe(67_701);
    expect(tiles.get('2/0')?.hashes).toHaveLength(1);
    expect(tiles.get('1/1')?.hashes).toHaveLength(Math.floor(size / 256) - TILE_WIDTH);
    const all = reference(size);
    for (const key of ['16:0', '15:1', '8:263', '12:15', '11:32', '9:131', '0:67700', '7:527']) {
      const [level, index] = key.split(':').map(Number);
      expect(node(tiles, { level, index })?.equals(all.get(key) as Buffer), key).toBe(true);
    }
    // Leaves 65,536 … 69,631 are not all there yet: no level-12 node over them.
    expect(all.has('12:16')).toBe(false);
    expect(node(tiles, { level: 12, index: 16 })).toBeUndefined();
  });
});
