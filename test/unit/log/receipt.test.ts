import { generateKeyPairSync, randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { detailsDigest, GENESIS_HASH, hashEvent, type LedgerEvent } from '#domain/ledger.ts';
import { appendNodes, inclusionNodes, inclusionProof, leafHash, nodeKey, rootHash } from '#shared/log/merkle.ts';
import { type LogSigner, logOrigin, logSignerFromPem, signCheckpoint, verifierKey } from '#shared/log/note.ts';
import { type Receipt, verifyReceipt } from '#shared/log/receipt.ts';

type Event = LedgerEvent & { subjectKey: string };

const newSigner = (): LogSigner =>
  logSignerFromPem(generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }) as string);

/** A format-2 event as the ledger writes it: public part, salted details digest, chained hash. */
function makeEvent(i: number, prevHash = GENESIS_HASH, seq = 1): Event {
  const detailsSalt = randomBytes(16).toString('hex');
  const details = { evidence: { text: `I agree to offers on WhatsApp (${i})`, userAgent: 'Mozilla/5.0' } };
  const event: Omit<LedgerEvent, 'hash'> = {
    v: 2,
    eventId: `01JEVENT${String(i).padStart(6, '0')}`,
    seq,
    type: i % 3 === 0 ? 'consent.withdrawn' : 'consent.granted',
    at: `2026-03-01T10:00:${String(i % 60).padStart(2, '0')}.000Z`,
    recordedAt: '2026-03-01T10:01:00.000Z',
    actor: { type: 'api_key', keyId: 'key_abc' },
    channel: 'whatsapp',
    purpose: 'marketing',
    source: 'web_form',
    data: { noticeVersion: '2025-privacy-v2', scopes: ['whatsapp|marketing'] },
    detailsDigest: detailsDigest(details, detailsSalt),
    details,
    detailsSalt,
    prevHash,
  };
  return { ...event, hash: hashEvent(event), subjectKey: `sk-${i % 4}` };
}

/** A sealed log of `count` events and a receipt maker, as the service would issue them. */
function sealedLog(count: number, signer: LogSigner) {
  const events = Array.from({ length: count }, (_, i) => makeEvent(i));
  const nodes = appendNodes(
    0,
    events.map((e) => leafHash(Buffer.from(e.hash, 'hex'))),
    () => {
      throw new Error('empty tree has no nodes');
    },
  );
  const get = (id: { level: number; index: number }) => nodes.get(nodeKey(id))!;
  const root = rootHash(count, get);
  const note = signCheckpoint({ origin: logOrigin('acme'), treeSize: count, rootHash: root }, signer);
  const receipt = (index: number): Receipt => ({
    event: structuredClone(events[index]),
    leafIndex: index,
    inclusionProof: inclusionProof(index, count, (id) => {
      expect(inclusionNodes(index, count).map(nodeKey)).toContain(nodeKey(id));
      return get(id);
    }).map((h) => h.toString('base64')),
    checkpoint: {
      origin: logOrigin('acme'),
      treeSize: count,
      rootHash: root.toString('base64'),
      timestamp: '2026-03-01T10:01:02.000Z',
      keyId: signer.keyId,
      note,
    },
  });
  return { events, receipt };
}

const signer = newSigner();
const key = verifierKey(signer.name, signer.publicKey);
const log = sealedLog(13, signer);

/** The hashed values of an event (what its leaf commits to): every string and number, by path. */
function valuePaths(value: unknown, path: (string | number)[] = []): (string | number)[][] {
  if (typeof value === 'string' || typeof value === 'number') return [path];
  if (Array.isArray(value)) return value.flatMap((v, i) => valuePaths(v, [...path, i]));
  if (typeof value === 'object' && value !== null) {
    return Object.entries(value).flatMap(([k, v]) => valuePaths(v, [...path, k]));
  }
  return [];
}

describe('verifyReceipt', () => {
  it('accepts every receipt of the log, offline, with the public key alone', () => {
    for (let i = 0; i < 13; i++) expect(verifyReceipt(log.receipt(i), key), `leaf ${i}`).toEqual({ valid: true });
  });

  it('accepts a receipt of a redacted event (details and salt deleted by erasure or retention)', () => {
    const receipt = log.receipt(4);
    delete receipt.event.details;
    delete receipt.event.detailsSalt;
    expect(verifyReceipt(receipt, key)).toEqual({ valid: true });
  });

  it('refuses the receipt once one byte of the event changes', () => {
    // subjectKey rides along for the reader; the leaf commits to the event hash, which does not cover it.
    const paths = valuePaths(log.receipt(0).event).filter((p) => p[0] !== 'subjectKey');
    expect(paths.length).toBeGreaterThan(15);
    fc.assert(
      fc.property(
        fc.nat({ max: 12 }),
        fc.nat(),
        fc.nat(),
        fc.integer({ min: 1, max: 25 }),
        (index, which, at, delta) => {
          const receipt = log.receipt(index);
          const path = paths[which % paths.length];
          let holder = receipt.event as unknown as Record<string | number, unknown>;
          for (const step of path.slice(0, -1)) holder = holder[step] as Record<string | number, unknown>;
          const last = path[path.length - 1];
          const value = holder[last];
          if (typeof value === 'number') holder[last] = value + delta;
          else {
            const text = value as string;
            const pos = at % Math.max(text.length, 1);
            const code = text.length ? text.charCodeAt(pos) : 0x61;
            // Another printable ASCII character at that position (a different byte).
            const replaced = String.fromCharCode(0x21 + ((code - 0x21 + delta) % 94));
            holder[last] = text.length ? text.slice(0, pos) + replaced + text.slice(pos + 1) : replaced;
          }
          const verdict = verifyReceipt(receipt, key);
          expect(verdict.valid, `${path.join('.')} changed`).toBe(false);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('names what is wrong', () => {
    const edited = log.receipt(2);
    edited.event.data = { ...edited.event.data, noticeVersion: 'other' };
    expect(verifyReceipt(edited, key)).toEqual({ valid: false, reason: expect.stringMatching(/^event hash mismatch/) });

    const details = log.receipt(2);
    details.event.details = { evidence: { text: 'something else' } };
    expect(verifyReceipt(details, key)).toEqual({ valid: false, reason: expect.stringMatching(/^details mismatch/) });

    const rehashed = log.receipt(2);
    rehashed.event.data = { ...rehashed.event.data, noticeVersion: 'other' };
    rehashed.event.hash = hashEvent(rehashed.event);
    expect(verifyReceipt(rehashed, key)).toEqual({
      valid: false,
      reason: 'inclusion proof does not lead to the signed root',
    });

    const stated = log.receipt(2);
    stated.checkpoint.treeSize = 12;
    expect(verifyReceipt(stated, key)).toEqual({ valid: false, reason: expect.stringMatching(/^checkpoint mismatch/) });

    const index = log.receipt(2);
    index.leafIndex = 3;
    expect(verifyReceipt(index, key).valid).toBe(false);

    const proof = log.receipt(2);
    proof.inclusionProof[1] = Buffer.alloc(32).toString('base64');
    expect(verifyReceipt(proof, key).valid).toBe(false);

    const short = log.receipt(2);
    short.inclusionProof.pop();
    expect(verifyReceipt(short, key).valid).toBe(false);
  });

  it('refuses a wrong key, and a checkpoint signed by a key other than the published one', () => {
    const stranger = newSigner();
    expect(verifyReceipt(log.receipt(5), verifierKey(stranger.name, stranger.publicKey))).toEqual({
      valid: false,
      reason: 'checkpoint signature: note has no signature of a known key',
    });
    // A forger's own tree and checkpoint with the genuine event: the published key does not sign it.
    const forged = sealedLog(13, stranger).receipt(5);
    forged.event = log.receipt(5).event;
    expect(verifyReceipt(forged, key).valid).toBe(false);
  });

  it('refuses a receipt that is not one', () => {
    const bad = [
      null,
      {},
      { ...log.receipt(1), event: null },
      { ...log.receipt(1), inclusionProof: 'x' },
      { ...log.receipt(1), leafIndex: -1 },
      { ...log.receipt(1), leafIndex: 1.5 },
      { ...log.receipt(1), checkpoint: { ...log.receipt(1).checkpoint, note: 42 } },
      { ...log.receipt(1), event: { ...log.receipt(1).event, hash: 'XYZ' } },
    ];
    for (const receipt of bad) expect(verifyReceipt(receipt as unknown as Receipt, key).valid).toBe(false);
  });
});
