// The log's public keys, as the API publishes them and as verification uses them.
import type { Anchor } from '#shared/log/anchor.ts';
import { LOG_KEY_NAME, type LogVerifierKey, publicKeyFromPem, verifierKey, vkeyOf } from '#shared/log/note.ts';
import { getSecrets } from '#shared/secrets.ts';

/** A public key as `GET /v1/log/public-key` shows it. */
export interface PublicKeyView {
  keyId: string;
  algorithm: 'Ed25519';
  publicKeyPem: string;
  vkey: string;
}

export function publicKeyView(key: LogVerifierKey): PublicKeyView {
  return {
    keyId: key.keyId,
    algorithm: 'Ed25519',
    publicKeyPem: key.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    vkey: vkeyOf(key.name, key.publicKey),
  };
}

/**
 * Every key of the log, newest first: the first signs new checkpoints, the others keep old ones verifiable.
 * A runtime that holds the signing keys (the sealer, the local runtime, the CLI) derives them; a function
 * that only verifies (the log and audit functions in the cloud) reads the public keys the sealer published
 * in the anchor ({@link publishLogKeys}), so it never holds a private key.
 */
export async function logVerifierKeys(anchor: Anchor): Promise<LogVerifierKey[]> {
  const { logKeys } = await getSecrets();
  if (logKeys.length > 0) return logKeys.map((pem) => verifierKey(LOG_KEY_NAME, publicKeyFromPem(pem)));
  return (await anchor.keys()).map((key) => verifierKey(LOG_KEY_NAME, publicKeyFromPem(key.publicKeyPem)));
}

/**
 * Publishes the public half of every log key in the anchor (write-once; the newest key gets the latest
 * `publishedAt` the first time it is published, so the anchor's order is the rotation's order). Run by the
 * sealer before it signs: a checkpoint is never anchored before the key that verifies it.
 */
export async function publishLogKeys(anchor: Anchor, now = new Date()): Promise<void> {
  const { logKeys } = await getSecrets();
  const known = new Set((await anchor.keys()).map((key) => key.keyId));
  // Oldest first, a millisecond apart: keys published together keep the secret's order.
  const keys = logKeys.map((pem) => publicKeyView(verifierKey(LOG_KEY_NAME, publicKeyFromPem(pem)))).reverse();
  for (const [i, key] of keys.entries()) {
    if (known.has(key.keyId)) continue;
    await anchor.putKey({
      keyId: key.keyId,
      publicKeyPem: key.publicKeyPem,
      publishedAt: new Date(now.getTime() + i).toISOString(),
    });
  }
}
