import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import {
  LOG_KEY_NAME,
  type LogVerifierKey,
  publicKeyFromPem,
  verifierKey,
  verifierKeyFromVkey,
} from '#shared/log/note.ts';
import { type Receipt, verifyReceipt } from '#shared/log/receipt.ts';
import { type CliIo, UsageError } from '../io.ts';

const USAGE = `consent-gate receipt verify FILE --key KEYFILE [--json]
  checks a receipt (GET /v1/receipts/{eventId}) offline: the event's hash, the checkpoint's signature and the
  inclusion proof. KEYFILE: the log's public key, the PEM of GET /v1/log/public-key's publicKeyPem (or its vkey).
  exit code 1 when the receipt is invalid.`;

/** Reads a log public key: a PEM (SPKI, as published) or a C2SP verifier key (`consent-gate+<id>+<base64>`). */
export function readLogKey(path: string): LogVerifierKey {
  let text: string;
  try {
    text = readFileSync(path, 'utf8').trim();
  } catch (error) {
    throw new UsageError(`cannot read the key file ${path}: ${(error as Error).message}`);
  }
  try {
    if (text.startsWith('-----BEGIN')) return verifierKey(LOG_KEY_NAME, publicKeyFromPem(text));
    return verifierKeyFromVkey(text);
  } catch (error) {
    throw new UsageError(`${path} is not the log's Ed25519 public key (PEM or vkey): ${(error as Error).message}`);
  }
}

/**
 * `receipt verify` — offline: no store, no network, nothing but the receipt and the public key. A regulator
 * or the person can run it on a receipt they were handed.
 */
export async function receiptCommand(args: string[], io: CliIo): Promise<number> {
  const [action, ...rest] = args;
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: { key: { type: 'string' }, json: { type: 'boolean', default: false } },
  });
  if (action !== 'verify' || positionals.length !== 1 || !values.key) throw new UsageError(USAGE);
  const key = readLogKey(values.key);
  let receipt: Receipt;
  try {
    receipt = JSON.parse(readFileSync(positionals[0], 'utf8'));
  } catch (error) {
    throw new UsageError(`cannot read the receipt ${positionals[0]}: ${(error as Error).message}`);
  }
  const verdict = verifyReceipt(receipt, key);
  if (values.json) {
    io.out(JSON.stringify({ ...verdict, eventId: receipt?.event?.eventId, leafIndex: receipt?.leafIndex }));
  } else if (verdict.valid) {
    const { event, leafIndex, checkpoint } = receipt;
    io.out(
      `receipt valid: event ${event.eventId} (${event.type}, ${event.at}) of ${event.subjectKey} is leaf ${leafIndex} of ${checkpoint.origin}, tree size ${checkpoint.treeSize}, root ${checkpoint.rootHash}, signed by key ${checkpoint.keyId}`,
    );
  } else {
    io.out(`receipt INVALID: ${verdict.reason}`);
  }
  return verdict.valid ? 0 : 1;
}
