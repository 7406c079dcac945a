import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type Checkpoint,
  keyIdOf,
  LOG_KEY_NAME,
  type LogSigner,
  logOrigin,
  logSignerFromPem,
  openCheckpoint,
  openNote,
  privateKeyFromSeed,
  publicKeyFromPem,
  signCheckpoint,
  signNote,
  verifierKey,
  verifierKeyFromVkey,
  vkeyOf,
} from '#shared/log/note.ts';

interface PublishedCheckpoint {
  id: string;
  vkey?: string;
  skey?: string;
  note: string;
  origin: string;
  treeSize: number;
  rootHash: string;
}
interface PublishedNote {
  id: string;
  vkey: string;
  otherVkey?: string;
  skey?: string;
  text: string;
  note: string;
}

const published = JSON.parse(
  readFileSync(new URL('../../fixtures/log/signed-notes.json', import.meta.url), 'utf8'),
) as { checkpoints: PublishedCheckpoint[]; notes: PublishedNote[] };
const checkpointNamed = (id: string) => published.checkpoints.find((c) => c.id === id)!;
const noteNamed = (id: string) => published.notes.find((n) => n.id === id)!;

/** A signer from Go's private key text form `PRIVATE+KEY+<name>+<id>+base64(0x01 ‖ seed)`. */
function signerFromSkey(skey: string): LogSigner {
  const [, , name, keyId, ...rest] = skey.split('+');
  const material = Buffer.from(rest.join('+'), 'base64');
  const privateKey = privateKeyFromSeed(material.subarray(1));
  const signer = logSignerFromPem(privateKey.export({ format: 'pem', type: 'pkcs8' }) as string, name);
  expect(signer.keyId).toBe(keyId);
  return signer;
}

const newSigner = (name = LOG_KEY_NAME): LogSigner => {
  const { privateKey } = generateKeyPairSync('ed25519');
  return logSignerFromPem(privateKey.export({ format: 'pem', type: 'pkcs8' }) as string, name);
};

const checkpoint = (treeSize = 42): Checkpoint => ({
  origin: logOrigin('acme'),
  treeSize,
  rootHash: Buffer.alloc(32, 7),
});

describe('published signed notes and checkpoints', () => {
  it("verifies a checkpoint of Go's checksum database with sum.golang.org's published key", () => {
    const cp = checkpointNamed('sum.golang.org');
    const key = verifierKeyFromVkey(cp.vkey!);
    expect(key.keyId).toBe('033de0ae');
    const opened = openCheckpoint(cp.note, [key]);
    expect(opened).toEqual({
      checkpoint: { origin: cp.origin, treeSize: cp.treeSize, rootHash: Buffer.from(cp.rootHash, 'base64') },
      keyId: '033de0ae',
    });
  });

  it('rejects that checkpoint once one byte of it changes', () => {
    const cp = checkpointNamed('sum.golang.org');
    const key = verifierKeyFromVkey(cp.vkey!);
    expect(openCheckpoint(cp.note.replace('6476701', '6476702'), [key])).toHaveProperty('error');
    expect(openCheckpoint(cp.note.replace('mb8Q', 'mb8R'), [key])).toHaveProperty('error');
    expect(openCheckpoint(cp.note.replace('Az3grsLX', 'Az3grsLY'), [key])).toHaveProperty('error');
  });

  it('reproduces byte for byte the tree head signed by the Go checksum database test key', () => {
    const cp = checkpointNamed('localhost.localdev/sumdb');
    const signer = signerFromSkey(cp.skey!);
    expect(vkeyOf(signer.name, signer.publicKey)).toBe(cp.vkey);
    const note = signCheckpoint(
      { origin: cp.origin, treeSize: cp.treeSize, rootHash: Buffer.from(cp.rootHash, 'base64') },
      signer,
    );
    expect(note).toBe(cp.note);
    expect(openCheckpoint(cp.note, [verifierKeyFromVkey(cp.vkey!)])).toMatchObject({ keyId: '00000c67' });
  });

  it('reproduces the signature of the golang.org/x/mod/sumdb/note example, and verifies the C2SP example', () => {
    const peter = noteNamed('golang-note-PeterNeumann');
    const signer = signerFromSkey(peter.skey!);
    expect(vkeyOf(signer.name, signer.publicKey)).toBe(peter.vkey);
    expect(signNote(peter.text, signer)).toBe(peter.note);
    const c2sp = noteNamed('c2sp-signed-note-example');
    expect(openNote(c2sp.note, [verifierKeyFromVkey(c2sp.vkey)])).toEqual({ text: c2sp.text, keyId: '530d903a' });
  });

  it('ignores signatures of keys it does not know, and needs one it knows', () => {
    const both = noteNamed('golang-note-PeterNeumann-and-EnochRoot');
    const enoch = verifierKeyFromVkey(both.vkey);
    const peter = verifierKeyFromVkey(both.otherVkey!);
    expect(openNote(both.note, [enoch])).toEqual({ text: both.text, keyId: 'af0cfe78' });
    expect(openNote(both.note, [peter])).toEqual({ text: both.text, keyId: 'c74f20a3' });
    expect(openNote(both.note, [])).toEqual({ error: 'note has no signature of a known key' });
    // The published checkpoint of the tlog-checkpoint spec comes without a key: nothing verifies it.
    expect(openCheckpoint(checkpointNamed('c2sp-tlog-checkpoint-example').note, [enoch, peter])).toHaveProperty(
      'error',
    );
  });

  it('rejects malformed verifier keys', () => {
    const vkey = checkpointNamed('sum.golang.org').vkey!;
    for (const bad of [
      vkey.replace('033de0ae', '033de0af'),
      vkey.replace('+Ac4', '+Ad4'),
      vkey.slice(0, -2),
      `bad name${vkey.slice('sum.golang.org'.length)}`,
      vkey.replace('sum.golang.org+', '+'),
    ]) {
      expect(() => verifierKeyFromVkey(bad), bad).toThrow(TypeError);
    }
  });
});

describe('our checkpoints', () => {
  it('are C2SP checkpoints: origin, size, base64 root, a blank line, one Ed25519 signature line', () => {
    const signer = newSigner();
    const note = signCheckpoint(checkpoint(), signer);
    const lines = note.split('\n');
    expect(lines.slice(0, 4)).toEqual(['consent-gate/acme', '42', Buffer.alloc(32, 7).toString('base64'), '']);
    expect(lines[4]).toMatch(/^— consent-gate [A-Za-z0-9+/]{91}=$/);
    expect(Buffer.from(lines[4].split(' ')[2], 'base64').subarray(0, 4).toString('hex')).toBe(signer.keyId);
    expect(lines[5]).toBe('');
    expect(openCheckpoint(note, [verifierKey(signer.name, signer.publicKey)])).toEqual({
      checkpoint: checkpoint(),
      keyId: signer.keyId,
    });
  });

  it('compute the key ID and vkey as C2SP defines them', () => {
    const signer = newSigner();
    const vkey = vkeyOf(LOG_KEY_NAME, signer.publicKey);
    const [name, id, material] = [vkey.slice(0, 12), vkey.slice(13, 21), vkey.slice(22)];
    expect(name).toBe('consent-gate');
    expect(id).toBe(keyIdOf(LOG_KEY_NAME, signer.publicKey));
    const raw = Buffer.from(material, 'base64');
    expect(raw[0]).toBe(0x01);
    expect(raw.subarray(1)).toEqual(
      Buffer.from(signer.publicKey.export({ format: 'der', type: 'spki' })).subarray(-32),
    );
    expect(verifierKeyFromVkey(vkey)).toMatchObject({ name, keyId: id });
  });

  it('verify after a key rotation with every published key, and not with another key', () => {
    const [old, current, stranger] = [newSigner(), newSigner(), newSigner()];
    const keys = [current, old].map((s) => verifierKey(s.name, s.publicKey));
    const before = signCheckpoint(checkpoint(10), old);
    const after = signCheckpoint(checkpoint(20), current);
    expect(openCheckpoint(before, keys)).toMatchObject({ keyId: old.keyId });
    expect(openCheckpoint(after, keys)).toMatchObject({ keyId: current.keyId });
    expect(openCheckpoint(after, [verifierKey(stranger.name, stranger.publicKey)])).toHaveProperty('error');
  });

  it('fail on any change of a byte of the note', () => {
    const signer = newSigner();
    const keys = [verifierKey(signer.name, signer.publicKey)];
    const note = Buffer.from(signCheckpoint(checkpoint(), signer));
    fc.assert(
      fc.property(fc.nat(), fc.integer({ min: 1, max: 255 }), (at, delta) => {
        const changed = Buffer.from(note);
        changed[at % note.length] = (changed[at % note.length] + delta) % 256;
        expect(openCheckpoint(changed.toString('utf8'), keys)).toHaveProperty('error');
      }),
      { numRuns: 300 },
    );
  });

  it('reject a known key whose signature does not verify, even beside a valid one', () => {
    const signer = newSigner();
    const key = verifierKey(signer.name, signer.publicKey);
    const note = signCheckpoint(checkpoint(), signer);
    const sigLine = note.split('\n')[4];
    const forged = `${sigLine.slice(0, -10)}AAAAAAAAA=`;
    expect(openCheckpoint(`${note}${forged}\n`, [key])).toEqual({
      error: `invalid signature for key consent-gate+${signer.keyId}`,
    });
  });

  it('reject notes and checkpoints that are not well formed', () => {
    const signer = newSigner();
    const keys = [verifierKey(signer.name, signer.publicKey)];
    const sign = (text: string) => signNote(text, signer);
    const root = Buffer.alloc(32, 7).toString('base64');
    for (const text of [
      `o\n042\n${root}\n`, // leading zero
      `o\n-1\n${root}\n`,
      `o\n1\n${Buffer.alloc(31).toString('base64')}\n`,
      `o\n1\n${root}\n\nextension\n`, // an empty line inside
      `o\n1\n`,
      `\n1\n${root}\n`,
    ]) {
      let note: string;
      try {
        note = sign(text);
      } catch {
        continue; // not even a signable note
      }
      expect(openCheckpoint(note, keys), JSON.stringify(text)).toHaveProperty('error');
    }
    // Extension lines are allowed (and ignored).
    expect(openCheckpoint(sign(`o\n1\n${root}\nextra\n`), keys)).toMatchObject({ checkpoint: { treeSize: 1 } });
    const good = signCheckpoint(checkpoint(), signer);
    for (const bad of [good.slice(0, -1), good.replace('\n\n', '\n'), `${good}\n`, good.replace('— ', '-- ')]) {
      expect(openCheckpoint(bad, keys)).toHaveProperty('error');
    }
    expect(openCheckpoint(`${good.slice(0, 5)}\u0007${good.slice(5)}`, keys)).toEqual({ error: 'malformed note' });
    expect(() => signCheckpoint({ ...checkpoint(), origin: 'a\nb' }, signer)).toThrow(TypeError);
    expect(() => signCheckpoint({ ...checkpoint(), rootHash: Buffer.alloc(31) }, signer)).toThrow(TypeError);
    expect(() => signCheckpoint(checkpoint(), { ...signer, keyId: '00000000' })).toThrow(TypeError);
  });

  it('read a PEM public key (and the public half of a PKCS#8 private key); refuse other key types', () => {
    const signer = newSigner();
    const spki = signer.publicKey.export({ format: 'pem', type: 'spki' }) as string;
    const pkcs8 = signer.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;
    expect(keyIdOf(LOG_KEY_NAME, publicKeyFromPem(spki))).toBe(signer.keyId);
    expect(keyIdOf(LOG_KEY_NAME, publicKeyFromPem(pkcs8))).toBe(signer.keyId);
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'pem', type: 'spki' });
    expect(() => publicKeyFromPem(ec as string)).toThrow(TypeError);
  });
});
