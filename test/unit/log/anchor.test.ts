import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Anchor,
  AnchorConflict,
  anchorFromEnv,
  LocalAnchor,
  MemoryAnchor,
  S3Anchor,
  type S3Like,
} from '#shared/log/anchor.ts';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'anchor-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('anchors: each checkpoint kept once, outside the table', () => {
  it('writes each checkpoint once to DATA_DIR/checkpoints/<tenant>/<treeSize>.note, refusing another note', async () => {
    const anchor = new LocalAnchor(dir);
    await anchor.put('acme', 12, 'note twelve\n');
    await anchor.put('acme', 12, 'note twelve\n'); // the same again: a no-op
    await anchor.put('acme', 3, 'note three\n');
    await expect(anchor.put('acme', 12, 'another tree\n')).rejects.toBeInstanceOf(AnchorConflict);
    const path = join(dir, 'checkpoints', 'acme', '12.note');
    expect(readFileSync(path, 'utf8')).toBe('note twelve\n');
    expect(statSync(path).mode & 0o777).toBe(0o644);
    // No temporary file is left behind, and listing sorts by size (numerically).
    expect(readdirSync(join(dir, 'checkpoints', 'acme')).sort()).toEqual(['12.note', '3.note']);
    expect(await anchor.list('acme')).toEqual([
      { treeSize: 3, note: 'note three\n' },
      { treeSize: 12, note: 'note twelve\n' },
    ]);
    expect(await anchor.get('acme', 12)).toBe('note twelve\n');
    expect(await anchor.get('acme', 13)).toBeUndefined();
    expect(await anchor.list('nobody')).toEqual([]);
    await expect(anchor.put('../etc', 1, 'x')).rejects.toThrow(RangeError);
  });

  it('puts to S3 conditionally (If-None-Match), and compares when the object exists', async () => {
    const objects = new Map<string, string>();
    const sent: { name: string; input: Record<string, unknown> }[] = [];
    const fake: S3Like = {
      send: async (command) => {
        const { input } = command as { input: Record<string, unknown> };
        const name = (command as object).constructor.name;
        sent.push({ name, input });
        const key = input.Key as string;
        if (name === 'PutObjectCommand') {
          if (objects.has(key))
            throw Object.assign(new Error('PreconditionFailed'), { $metadata: { httpStatusCode: 412 } });
          objects.set(key, input.Body as string);
          return {};
        }
        if (name === 'GetObjectCommand') {
          const body = objects.get(key);
          if (body === undefined)
            throw Object.assign(new Error('NoSuchKey'), { name: 'NoSuchKey', $metadata: { httpStatusCode: 404 } });
          return { Body: { transformToString: async () => body } };
        }
        if (name === 'ListObjectsV2Command') {
          return {
            // S3 lists keys in UTF-8 binary order.
            Contents: [...objects.keys()]
              .filter((k) => k.startsWith(input.Prefix as string))
              .sort()
              .map((Key) => ({ Key })),
          };
        }
        throw new Error(`unexpected ${name}`);
      },
    };
    const anchor = new S3Anchor('bucket', fake);
    await anchor.put('acme', 10, 'ten\n');
    await anchor.put('acme', 10, 'ten\n');
    await anchor.put('acme', 9, 'nine\n');
    await anchor.put('acme', 100, 'hundred\n');
    await expect(anchor.put('acme', 10, 'forked\n')).rejects.toBeInstanceOf(AnchorConflict);
    const put = sent.find((s) => s.name === 'PutObjectCommand')?.input;
    expect(put).toMatchObject({
      Bucket: 'bucket',
      Key: 'checkpoints/acme/0000000000000010.note',
      IfNoneMatch: '*',
      ChecksumAlgorithm: 'SHA256',
    });
    expect(await anchor.list('acme')).toEqual([
      { treeSize: 9, note: 'nine\n' },
      { treeSize: 10, note: 'ten\n' },
      { treeSize: 100, note: 'hundred\n' },
    ]);
    expect(await anchor.get('acme', 11)).toBeUndefined();
    await expectKeysPublishedOnce(anchor);
    expect(sent.filter((s) => s.name === 'PutObjectCommand').map((s) => s.input.Key)).toContain('keys/0a1b2c3d.json');
  });

  it('keeps notes in memory the same way, and picks the anchor from the environment', async () => {
    const memory = new MemoryAnchor();
    await memory.put('acme', 2, 'two\n');
    await memory.put('acme', 2, 'two\n');
    await expect(memory.put('acme', 2, 'other\n')).rejects.toBeInstanceOf(AnchorConflict);
    expect(await memory.list('acme')).toEqual([{ treeSize: 2, note: 'two\n' }]);
    expect(anchorFromEnv({ CHECKPOINT_BUCKET: 'b', DATA_DIR: dir })).toBeInstanceOf(S3Anchor);
    expect(anchorFromEnv({ DATA_DIR: dir })).toBeInstanceOf(LocalAnchor);
    expect(anchorFromEnv({ DATA_DIR: 'memory' })).toBe(anchorFromEnv({ DATA_DIR: 'memory' }));
    await expectKeysPublishedOnce(memory);
  });

  it('publishes the public keys beside the checkpoints, locally in DATA_DIR/checkpoints/_keys', async () => {
    const anchor = new LocalAnchor(dir);
    await expectKeysPublishedOnce(anchor);
    expect(readdirSync(join(dir, 'checkpoints', '_keys')).sort()).toEqual(['0a1b2c3d.json', 'ffff0000.json']);
  });
});

/** Write-once keys: the same key again is a no-op, another key under a taken id throws; newest first. */
async function expectKeysPublishedOnce(anchor: Anchor) {
  const older = { keyId: 'ffff0000', publicKeyPem: 'OLD PEM', publishedAt: '2026-01-01T00:00:00.000Z' };
  const newer = { keyId: '0a1b2c3d', publicKeyPem: 'NEW PEM', publishedAt: '2026-06-01T00:00:00.000Z' };
  await anchor.putKey(older);
  await anchor.putKey(newer);
  await anchor.putKey({ ...newer, publishedAt: '2026-07-01T00:00:00.000Z' });
  await expect(anchor.putKey({ ...older, publicKeyPem: 'SWAPPED' })).rejects.toThrow(/taken/);
  expect(await anchor.keys()).toEqual([newer, older]);
}
