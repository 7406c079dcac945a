import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { mintLinks, OptoutLinkRequestSchema } from '#shared/links/links.ts';
import { type LinkClaims, type LinkKey, signLink, verifyLink } from '#shared/links/token.ts';

const key = (kid: string): LinkKey => ({ kid, key: randomBytes(32) });
const subjectKey = 'lohfpYYt9ctWsPO6GKBIRYECQ7SRaH9Swa-oaexiiWs';
const NOW = Date.parse('2026-11-25T10:00:00Z');
const inOneYear = Math.floor(NOW / 1000) + 365 * 86_400;

const optout = (over: Partial<Extract<LinkClaims, { kind: 'optout' }>> = {}): LinkClaims => ({
  tenant: 'acme',
  subjectKey,
  kind: 'optout',
  channel: 'whatsapp',
  purpose: 'marketing',
  exp: inOneYear,
  ...over,
});

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
const parts = (token: string) => token.split('.');

describe('link tokens', () => {
  const current = key('k2');
  const old = key('k1');
  const keys = [current, old];

  it('round-trips claims and is URL-safe, with no raw identifier', () => {
    const token = signLink(optout(), keys);
    expect(token).toMatch(/^v1\.k2\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/);
    expect(encodeURIComponent(token)).toBe(token);
    const result = verifyLink(token, keys, { now: NOW, kind: 'optout' });
    expect(result).toEqual({ ok: true, claims: optout(), kid: 'k2' });
    const payload = Buffer.from(parts(token)[2], 'base64url').toString();
    expect(payload).not.toMatch(/\+33|@/);
  });

  it('keeps verifying links signed with an older key after rotation, until they expire', () => {
    const oldToken = signLink(optout(), [old]);
    expect(verifyLink(oldToken, keys, { now: NOW, kind: 'optout' })).toMatchObject({ ok: true, kid: 'k1' });
    expect(verifyLink(oldToken, [current], { now: NOW, kind: 'optout' })).toEqual({ ok: false, reason: 'unknown_key' });
    expect(verifyLink(oldToken, keys, { now: inOneYear * 1000, kind: 'optout' })).toMatchObject({
      ok: false,
      reason: 'expired',
    });
  });

  it('refuses a token whose kid is swapped to another known key', () => {
    const [v, , body, sig] = parts(signLink(optout(), keys));
    expect(verifyLink([v, 'k1', body, sig].join('.'), keys, { now: NOW, kind: 'optout' })).toEqual({
      ok: false,
      reason: 'bad_signature',
    });
  });

  it('cannot be moved to another tenant, widened to another scope or kind, or extended', () => {
    const [v, kid, , sig] = parts(signLink(optout(), keys));
    const forged = [
      { t: 'other', s: subjectKey, k: 'o', c: 'whatsapp', p: 'marketing', e: inOneYear },
      { t: 'acme', s: subjectKey, k: 'o', c: 'sms', p: 'marketing', e: inOneYear },
      { t: 'acme', s: subjectKey, k: 'o', c: 'whatsapp', p: 'newsletter', e: inOneYear },
      { t: 'acme', s: subjectKey, k: 'p', e: inOneYear },
      { t: 'acme', s: subjectKey, k: 'o', c: 'whatsapp', p: 'marketing', e: inOneYear + 86_400 },
      { t: 'acme', s: `${subjectKey.slice(0, 42)}A`, k: 'o', c: 'whatsapp', p: 'marketing', e: inOneYear },
    ];
    for (const claims of forged) {
      const kind = claims.k === 'p' ? 'preferences' : 'optout';
      expect(verifyLink([v, kid, b64(claims), sig].join('.'), keys, { now: NOW, kind })).toEqual({
        ok: false,
        reason: 'bad_signature',
      });
    }
  });

  it('signs per tenant: the same claims for two tenants carry different signatures', () => {
    const a = parts(signLink(optout({ tenant: 'a' }), keys))[3];
    const b = parts(signLink(optout({ tenant: 'b' }), keys))[3];
    expect(a).not.toBe(b);
  });

  it('an optout token never acts as a preferences token, nor the reverse', () => {
    const o = signLink(optout(), keys);
    const p = signLink({ tenant: 'acme', subjectKey, kind: 'preferences', exp: inOneYear }, keys);
    expect(verifyLink(o, keys, { now: NOW, kind: 'preferences' })).toMatchObject({ ok: false, reason: 'wrong_kind' });
    expect(verifyLink(p, keys, { now: NOW, kind: 'optout' })).toMatchObject({ ok: false, reason: 'wrong_kind' });
    expect(verifyLink(p, keys, { now: NOW, kind: 'preferences' })).toMatchObject({ ok: true });
  });

  it('says expired only of genuine tokens: a forged expired token is a bad signature', () => {
    const expired = signLink(optout({ exp: Math.floor(NOW / 1000) - 1 }), keys);
    expect(verifyLink(expired, keys, { now: NOW, kind: 'optout' })).toMatchObject({ ok: false, reason: 'expired' });
    const [v, kid, body] = parts(expired);
    expect(verifyLink([v, kid, body, 'A'.repeat(43)].join('.'), keys, { now: NOW, kind: 'optout' })).toEqual({
      ok: false,
      reason: 'bad_signature',
    });
  });

  it('refuses malformed tokens without throwing', () => {
    const token = signLink(optout(), keys);
    const [v, kid, body, sig] = parts(token);
    const cases = [
      '',
      'v1',
      `${token}.x`,
      `v2.${kid}.${body}.${sig}`,
      `${v}.${kid}.${body}!.${sig}`,
      `${v}.${kid}.${b64('not an object')}.${sig}`,
      `${v}.${kid}.${Buffer.from('{not json').toString('base64url')}.${sig}`,
      `${v}.${kid}.${b64({ t: 'acme', s: subjectKey, k: 'o', c: 'fax', p: 'marketing', e: inOneYear })}.${sig}`,
      'x'.repeat(5000),
    ];
    for (const c of cases) expect(verifyLink(c, keys, { now: NOW, kind: 'optout' })).toMatchObject({ ok: false });
  });

  it('refuses a signature with non-canonical base64url (same bytes, other text)', () => {
    const token = signLink(optout(), keys);
    const sig = parts(token)[3];
    // The last of 43 characters carries 2 unused bits: flipping one gives the same bytes.
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const last = alphabet.indexOf(sig[42]);
    const twin = `${sig.slice(0, 42)}${alphabet[last ^ 1]}`;
    expect(Buffer.from(twin, 'base64url').equals(Buffer.from(sig, 'base64url'))).toBe(true);
    expect(verifyLink(token.replace(sig, twin), keys, { now: NOW, kind: 'optout' })).toEqual({
      ok: false,
      reason: 'bad_signature',
    });
  });

  it('property: changing any one character of a token makes it fail', () => {
    const token = signLink(optout(), keys);
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.';
    fc.assert(
      fc.property(fc.nat(token.length - 1), fc.constantFrom(...alphabet), (index, char) => {
        fc.pre(token[index] !== char);
        const mutated = token.slice(0, index) + char + token.slice(index + 1);
        // A flip of the signature's two unused low bits decodes to the same bytes: refused as non-canonical too.
        expect(verifyLink(mutated, keys, { now: NOW, kind: 'optout' }).ok).toBe(false);
      }),
      { numRuns: 500 },
    );
  });
});

describe('mintLinks', () => {
  it('gives both links with one expiry and the RFC 8058 header values', () => {
    const keys = [key('k9')];
    const links = mintLinks({
      tenant: 'acme',
      subjectKey,
      channel: 'email',
      purpose: 'newsletter',
      expiresInDays: 30,
      baseUrl: 'https://consent.example.org/',
      keys,
      now: NOW,
    });
    expect(links.url).toBe(`https://consent.example.org/optout/${links.token}`);
    expect(links.preferencesUrl).toBe(`https://consent.example.org/preferences/${links.preferencesToken}`);
    expect(links.expiresAt).toBe('2026-12-25T10:00:00.000Z');
    expect(links.listUnsubscribe).toBe(`<${links.url}>`);
    expect(links.listUnsubscribePost).toBe('List-Unsubscribe=One-Click');
    expect(verifyLink(links.token, keys, { now: NOW, kind: 'optout' })).toMatchObject({
      ok: true,
      claims: { channel: 'email', purpose: 'newsletter', tenant: 'acme' },
    });
    expect(verifyLink(links.preferencesToken, keys, { now: NOW, kind: 'preferences' }).ok).toBe(true);
  });

  it('validates expiresInDays between 1 and 3650 (default 365)', () => {
    const base = { subject: { phone: '+33612345678' }, channel: 'whatsapp' };
    expect(OptoutLinkRequestSchema.parse(base)).toMatchObject({ expiresInDays: 365, purpose: 'marketing' });
    for (const bad of [0, 3651, 1.5, '30']) {
      expect(OptoutLinkRequestSchema.safeParse({ ...base, expiresInDays: bad }).success).toBe(false);
    }
    expect(OptoutLinkRequestSchema.safeParse({ ...base, extra: 1 }).success).toBe(false);
  });
});

describe('link key configuration', () => {
  it('refuses to sign with a key id that could not be read back from a token', () => {
    expect(() => signLink(optout(), [{ kid: 'key.2026', key: randomBytes(32) }])).toThrow(/key id/);
    expect(() => signLink(optout(), [])).toThrow(/no link-signing key/);
  });
});
