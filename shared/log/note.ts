import { createHash, createPrivateKey, createPublicKey, type KeyObject, sign, verify } from 'node:crypto';

/**
 * Signed checkpoints: a C2SP signed note (c2sp.org/signed-note) whose text is a C2SP checkpoint
 * (c2sp.org/tlog-checkpoint): origin, tree size, base64 root hash. Ed25519 with `node:crypto`, so anyone can
 * check one with any signed-note implementation (Go's golang.org/x/mod/sumdb/note, a witness) and our
 * published verifier key (`vkey`).
 */

export interface Checkpoint {
  origin: string;
  treeSize: number;
  rootHash: Buffer;
}

export interface LogSigner {
  name: string;
  /** 8 hex chars: {@link keyIdOf}(name, publicKey). */
  keyId: string;
  privateKey: KeyObject;
  publicKey: KeyObject;
}

export interface LogVerifierKey {
  name: string;
  keyId: string;
  publicKey: KeyObject;
}

/** The key name of the service's checkpoints (the origin line names the tenant's log). */
export const LOG_KEY_NAME = 'consent-gate';

/** The origin line of a tenant's checkpoints. */
export const logOrigin = (tenant: string) => `${LOG_KEY_NAME}/${tenant}`;

/** Signature type byte of Ed25519 in signed notes. */
const ED25519 = 0x01;
const SIGNATURE_PREFIX = '— ';
/** Go's implementation accepts up to 100 signatures; the spec asks for at least 16. */
const MAX_SIGNATURES = 100;

/** The 32-byte Ed25519 public key (RFC 8032 encoding). */
export function rawPublicKey(publicKey: KeyObject): Buffer {
  if (publicKey.asymmetricKeyType !== 'ed25519') throw new TypeError('an Ed25519 key is required');
  const { x } = publicKey.export({ format: 'jwk' });
  return Buffer.from(x as string, 'base64url');
}

const keyIdBytes = (name: string, publicKey: KeyObject) =>
  createHash('sha256')
    .update(Buffer.concat([Buffer.from(`${name}\n`, 'utf8'), Buffer.from([ED25519]), rawPublicKey(publicKey)]))
    .digest()
    .subarray(0, 4);

/** The C2SP key ID in hex: the first 4 bytes of SHA-256(name ‖ 0x0A ‖ 0x01 ‖ raw public key). */
export function keyIdOf(name: string, publicKey: KeyObject): string {
  return keyIdBytes(name, publicKey).toString('hex');
}

/** The C2SP verifier key: `<name>+<keyId>+<base64(0x01 ‖ raw public key)>`. */
export function vkeyOf(name: string, publicKey: KeyObject): string {
  const material = Buffer.concat([Buffer.from([ED25519]), rawPublicKey(publicKey)]).toString('base64');
  return `${name}+${keyIdOf(name, publicKey)}+${material}`;
}

/** An Ed25519 public key from a PEM (SPKI; a PKCS#8 private key PEM gives its public key). */
export function publicKeyFromPem(pem: string): KeyObject {
  const key = createPublicKey(pem);
  if (key.asymmetricKeyType !== 'ed25519') throw new TypeError('the log key must be Ed25519');
  return key;
}

/** The raw 32-byte Ed25519 public key as a KeyObject. */
export const publicKeyFromRaw = (raw: Buffer): KeyObject => {
  if (raw.length !== 32) throw new TypeError('an Ed25519 public key is 32 bytes');
  return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') }, format: 'jwk' });
};

/** PKCS#8 DER header of an Ed25519 private key (RFC 8410); the 32-byte seed follows. */
const PKCS8_ED25519 = Buffer.from('302e020100300506032b657004220420', 'hex');

/** An Ed25519 private key from its 32-byte seed (RFC 8032 private key). */
export function privateKeyFromSeed(seed: Buffer): KeyObject {
  if (seed.length !== 32) throw new TypeError('an Ed25519 seed is 32 bytes');
  return createPrivateKey({ key: Buffer.concat([PKCS8_ED25519, seed]), format: 'der', type: 'pkcs8' });
}

export function verifierKey(name: string, publicKey: KeyObject): LogVerifierKey {
  return { name, keyId: keyIdOf(name, publicKey), publicKey };
}

/** A signer from a PKCS#8 PEM Ed25519 private key (as kept in the service secrets). */
export function logSignerFromPem(pem: string, name = LOG_KEY_NAME): LogSigner {
  const privateKey = createPrivateKey(pem);
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new TypeError('the log key must be Ed25519');
  const publicKey = createPublicKey(privateKey);
  return { name, keyId: keyIdOf(name, publicKey), privateKey, publicKey };
}

const validKeyName = (name: string) => name.length > 0 && !/[\s+]/u.test(name);

/** A verifier key from its C2SP text form `<name>+<keyId>+<base64(0x01 ‖ key)>`; throws when malformed. */
export function verifierKeyFromVkey(vkey: string): LogVerifierKey {
  const match = /^([^+]+)\+([0-9a-f]{8})\+([A-Za-z0-9+/=]+)$/.exec(vkey);
  const material = match ? strictBase64(match[3]) : undefined;
  if (!match || !validKeyName(match[1]) || !material || material.length !== 33 || material[0] !== ED25519) {
    throw new TypeError('malformed Ed25519 verifier key');
  }
  const key = verifierKey(match[1], publicKeyFromRaw(material.subarray(1)));
  if (key.keyId !== match[2]) throw new TypeError('verifier key id does not match its key');
  return key;
}

/** Standard base64 (RFC 4648 §4), padded, canonical; undefined otherwise. */
function strictBase64(text: string): Buffer | undefined {
  if (text.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) return undefined;
  const bytes = Buffer.from(text, 'base64');
  return bytes.toString('base64') === text ? bytes : undefined;
}

const hasControlCharacters = (text: string) => [...text].some((c) => c !== '\n' && c.charCodeAt(0) < 0x20);
const isWellFormed = (text: string) => Buffer.from(text, 'utf8').toString('utf8') === text;

/** Signs a note text (non-empty, ending in a newline) with Ed25519: the text, a blank line, one signature line. */
export function signNote(text: string, signer: LogSigner): string {
  if (!text.endsWith('\n') || text === '\n' || !isWellFormed(text) || hasControlCharacters(text)) {
    throw new TypeError('malformed note text');
  }
  if (!validKeyName(signer.name)) throw new TypeError('malformed key name');
  const id = keyIdBytes(signer.name, signer.publicKey);
  if (id.toString('hex') !== signer.keyId) throw new TypeError('signer key id does not match its key');
  const signature = sign(null, Buffer.from(text, 'utf8'), signer.privateKey);
  return `${text}\n${SIGNATURE_PREFIX}${signer.name} ${Buffer.concat([id, signature]).toString('base64')}\n`;
}

/**
 * Opens a signed note with the keys one trusts: signatures of unknown keys are ignored, a signature of a
 * known key (same name and key ID) must verify, and at least one must. Returns the text and the key ID that
 * signed it.
 */
export function openNote(note: string, keys: LogVerifierKey[]): { text: string; keyId: string } | { error: string } {
  if (typeof note !== 'string' || !isWellFormed(note) || hasControlCharacters(note)) return { error: 'malformed note' };
  const split = note.lastIndexOf('\n\n');
  if (split < 0 || !note.endsWith('\n')) return { error: 'malformed note' };
  const text = note.slice(0, split + 1);
  const lines = note.slice(split + 2, -1).split('\n');
  if (lines.length > MAX_SIGNATURES) return { error: 'malformed note: too many signatures' };
  let keyId: string | undefined;
  for (const line of lines) {
    const match = line.startsWith(SIGNATURE_PREFIX) ? /^(\S+) (\S+)$/u.exec(line.slice(SIGNATURE_PREFIX.length)) : null;
    const bytes = match ? strictBase64(match[2]) : undefined;
    if (!match || !validKeyName(match[1]) || !bytes || bytes.length < 5) return { error: 'malformed note' };
    const id = bytes.subarray(0, 4).toString('hex');
    const known = keys.filter((k) => k.name === match[1] && k.keyId === id && keyIdOf(k.name, k.publicKey) === id);
    if (known.length === 0) continue;
    if (!known.every((k) => verify(null, Buffer.from(text, 'utf8'), k.publicKey, bytes.subarray(4)))) {
      return { error: `invalid signature for key ${match[1]}+${id}` };
    }
    keyId ??= id;
  }
  return keyId ? { text, keyId } : { error: 'note has no signature of a known key' };
}

/** The checkpoint text: origin, tree size, base64 root hash, each on its line. */
export function formatCheckpoint(cp: Checkpoint): string {
  if (!cp.origin || /\n/.test(cp.origin)) throw new TypeError('malformed origin');
  if (!Number.isSafeInteger(cp.treeSize) || cp.treeSize < 0) throw new TypeError('malformed tree size');
  if (!Buffer.isBuffer(cp.rootHash) || cp.rootHash.length !== 32) throw new TypeError('a root hash is 32 bytes');
  return `${cp.origin}\n${cp.treeSize}\n${cp.rootHash.toString('base64')}\n`;
}

/** "origin\nsize\nbase64root\n\n— name base64(keyIdBytes ‖ sig)\n" */
export function signCheckpoint(cp: Checkpoint, signer: LogSigner): string {
  return signNote(formatCheckpoint(cp), signer);
}

/** Parses a checkpoint text (extension lines after the third are allowed and ignored). */
export function parseCheckpoint(text: string): Checkpoint | undefined {
  if (!text.endsWith('\n')) return undefined;
  const lines = text.slice(0, -1).split('\n');
  if (lines.length < 3 || lines.some((line) => line === '')) return undefined;
  const [origin, size, root] = lines;
  const treeSize = /^(0|[1-9][0-9]*)$/.test(size) ? Number(size) : Number.NaN;
  const rootHash = strictBase64(root);
  if (!Number.isSafeInteger(treeSize) || !rootHash || rootHash.length !== 32) return undefined;
  return { origin, treeSize, rootHash };
}

/** Verifies a signed checkpoint with the keys one trusts (every published key, for old checkpoints) and parses it. */
export function openCheckpoint(
  note: string,
  keys: LogVerifierKey[],
): { checkpoint: Checkpoint; keyId: string } | { error: string } {
  const opened = openNote(note, keys);
  if ('error' in opened) return opened;
  const checkpoint = parseCheckpoint(opened.text);
  return checkpoint ? { checkpoint, keyId: opened.keyId } : { error: 'malformed checkpoint' };
}
