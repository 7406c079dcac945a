// The log's public keys, as the API publishes them and as verification uses them.
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

/** Every key of the log, newest first: the first signs new checkpoints, the others keep old ones verifiable. */
export async function logVerifierKeys(): Promise<LogVerifierKey[]> {
  const { logKeys } = await getSecrets();
  return logKeys.map((pem) => verifierKey(LOG_KEY_NAME, publicKeyFromPem(pem)));
}
