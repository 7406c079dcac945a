import { detailsTampered, hashEvent, type LedgerEvent } from '#domain/ledger.ts';
import { leafHash, verifyInclusion } from './merkle.ts';
import { type LogVerifierKey, openCheckpoint } from './note.ts';

/**
 * A receipt: one ledger event, its leaf index, its inclusion proof and the signed checkpoint the proof leads
 * to. Whoever holds it and the log's public key can check, with nothing else, that the service committed to
 * exactly this event in its append-only log.
 */
export interface Receipt {
  event: LedgerEvent & { subjectKey: string };
  leafIndex: number;
  /** base64 hashes, from the leaf up. */
  inclusionProof: string[];
  checkpoint: CheckpointView;
}

/** A signed checkpoint as the API shows it (and the table stores it). */
export interface CheckpointView {
  origin: string;
  treeSize: number;
  /** base64, as in the note. */
  rootHash: string;
  timestamp: string;
  keyId: string;
  /** The C2SP signed note, the part that is signed. */
  note: string;
}

export type ReceiptVerdict = { valid: true } | { valid: false; reason: string };

const invalid = (reason: string): ReceiptVerdict => ({ valid: false, reason });
const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * Verifies a receipt offline: the event's hash (and its details' digest when details are present), the
 * checkpoint's signature, that the signed checkpoint is the one the receipt states, and the inclusion of
 * leafHash(event.hash) at `leafIndex` under its root. `reason` names the first check that fails.
 */
export function verifyReceipt(receipt: Receipt, key: LogVerifierKey): ReceiptVerdict {
  const r = receipt as unknown;
  if (!isObject(r) || !isObject(r.event) || !isObject(r.checkpoint) || !Array.isArray(r.inclusionProof)) {
    return invalid('malformed receipt');
  }
  const { event, leafIndex, inclusionProof, checkpoint } = receipt;
  if (typeof event.hash !== 'string' || !/^[0-9a-f]{64}$/.test(event.hash)) return invalid('malformed event hash');
  if (!Number.isSafeInteger(leafIndex) || leafIndex < 0) return invalid('malformed leaf index');
  if (!inclusionProof.every((h) => typeof h === 'string' && BASE64.test(h)))
    return invalid('malformed inclusion proof');

  let recomputed: string;
  try {
    recomputed = hashEvent(event);
  } catch {
    return invalid('malformed event');
  }
  if (recomputed !== event.hash) return invalid('event hash mismatch: the event is not the one that was hashed');
  if (detailsTampered(event)) return invalid('details mismatch: the details are not the ones the hash committed to');

  if (typeof checkpoint.note !== 'string') return invalid('malformed checkpoint');
  const opened = openCheckpoint(checkpoint.note, [key]);
  if ('error' in opened) return invalid(`checkpoint signature: ${opened.error}`);
  const signed = opened.checkpoint;
  if (
    signed.origin !== checkpoint.origin ||
    signed.treeSize !== checkpoint.treeSize ||
    signed.rootHash.toString('base64') !== checkpoint.rootHash ||
    opened.keyId !== checkpoint.keyId
  ) {
    return invalid('checkpoint mismatch: the signed note says otherwise');
  }

  const proof = inclusionProof.map((h) => Buffer.from(h, 'base64'));
  const leaf = leafHash(Buffer.from(event.hash, 'hex'));
  if (!verifyInclusion(leaf, leafIndex, signed.treeSize, proof, signed.rootHash)) {
    return invalid('inclusion proof does not lead to the signed root');
  }
  return { valid: true };
}
