import { createHmac, timingSafeEqual } from 'node:crypto';
import * as z from 'zod';
import { ChannelSchema, PurposeSchema } from '#domain/vocabulary.ts';
import { SubjectKeySchema } from '#shared/identity/subject.ts';
import { DAY_SECONDS, toSec } from '#shared/time.ts';

/**
 * Self-service link tokens: `v1.<kid>.<claims>.<signature>`, every part base64url, so the token is
 * URL-safe and fits in one path segment.
 *
 * - `claims` is compact JSON: tenant, subjectKey (a keyed hash, never a raw identifier), kind, scope,
 *   expiry. It is readable by whoever holds the link, so it carries nothing a person would not show.
 * - `signature` = HMAC-SHA-256 over `v1.<kid>.<claims>` with a key derived from the link key `kid` and
 *   the tenant, so the tenant, kind, scope and expiry cannot be changed without breaking it, and a
 *   token minted for tenant A can never verify as tenant B.
 * - `kid` names the link key: new links use the newest key; older keys keep verifying their links
 *   until those expire, so the key can be rotated without breaking links already in mailboxes.
 */
export const TOKEN_VERSION = 'v1';

/** What a link lets its holder do: stop one scope, or manage every scope of the subject. */
export type LinkClaims =
  | {
      tenant: string;
      subjectKey: string;
      kind: 'optout';
      channel: z.infer<typeof ChannelSchema>;
      purpose: string;
      exp: number;
    }
  | { tenant: string; subjectKey: string; kind: 'preferences'; exp: number };
export type LinkKind = LinkClaims['kind'];

/** A link-signing key as `getSecrets().linkKeys` holds it. */
export interface LinkKey {
  kid: string;
  key: Buffer;
}

const TenantSchema = z.string().min(1).max(128);
const Exp = z.number().int().positive();

/** The wire form of the claims: short field names keep the link short. */
const WireClaimsSchema = z.union([
  z.strictObject({
    t: TenantSchema,
    s: SubjectKeySchema,
    k: z.literal('o'),
    c: ChannelSchema,
    p: PurposeSchema,
    e: Exp,
  }),
  z.strictObject({ t: TenantSchema, s: SubjectKeySchema, k: z.literal('p'), e: Exp }),
]);

const KID = /^[A-Za-z0-9_-]{1,32}$/;
const B64URL = /^[A-Za-z0-9_-]+$/;
/** Longer than any token we mint (tenant ≤ 128, purpose ≤ 64): refuse before any work. */
export const MAX_TOKEN_LENGTH = 600;

/** Why a token was refused. `expired` is only said of tokens whose signature is valid. */
export type LinkFailure = 'malformed' | 'unknown_key' | 'bad_signature' | 'expired' | 'wrong_kind';

/** A refusal; `claims` only when the signature was valid (an expired link still names its tenant). */
export type VerifyResult =
  | { ok: true; claims: LinkClaims; kid: string }
  | { ok: false; reason: LinkFailure; claims?: LinkClaims };

const signingKey = (key: Buffer, tenant: string) => createHmac('sha256', key).update(`link:${tenant}`).digest();

const mac = (key: Buffer, tenant: string, signed: string) =>
  createHmac('sha256', signingKey(key, tenant)).update(signed).digest();

function toWire(claims: LinkClaims) {
  return claims.kind === 'optout'
    ? { t: claims.tenant, s: claims.subjectKey, k: 'o', c: claims.channel, p: claims.purpose, e: claims.exp }
    : { t: claims.tenant, s: claims.subjectKey, k: 'p', e: claims.exp };
}

function fromWire(wire: z.infer<typeof WireClaimsSchema>): LinkClaims {
  return wire.k === 'o'
    ? { tenant: wire.t, subjectKey: wire.s, kind: 'optout', channel: wire.c, purpose: wire.p, exp: wire.e }
    : { tenant: wire.t, subjectKey: wire.s, kind: 'preferences', exp: wire.e };
}

/** Signs claims with the newest link key (the first of `keys`). */
export function signLink(claims: LinkClaims, keys: readonly LinkKey[]): string {
  const current = keys[0];
  if (!current) throw new Error('no link-signing key configured');
  if (!KID.test(current.kid)) throw new Error('a link key id must be 1-32 characters of A-Z a-z 0-9 _ -');
  const wire = WireClaimsSchema.parse(toWire(claims));
  const signed = `${TOKEN_VERSION}.${current.kid}.${Buffer.from(JSON.stringify(wire)).toString('base64url')}`;
  return `${signed}.${mac(current.key, claims.tenant, signed).toString('base64url')}`;
}

/**
 * Verifies a token: shape, key id, signature (constant-time), then expiry at `now` and the kind the
 * route expects. An optout token never passes as a preferences token and vice versa.
 */
export function verifyLink(
  token: string,
  keys: readonly LinkKey[],
  options: { now: number; kind: LinkKind },
): VerifyResult {
  if (token.length > MAX_TOKEN_LENGTH) return { ok: false, reason: 'malformed' };
  const parts = token.split('.');
  if (parts.length !== 4) return { ok: false, reason: 'malformed' };
  const [version, kid, body, signature] = parts;
  if (version !== TOKEN_VERSION || !KID.test(kid) || !B64URL.test(body) || !B64URL.test(signature)) {
    return { ok: false, reason: 'malformed' };
  }
  const key = keys.find((k) => k.kid === kid);
  if (!key) return { ok: false, reason: 'unknown_key' };
  let wire: z.infer<typeof WireClaimsSchema>;
  try {
    const parsed = WireClaimsSchema.safeParse(JSON.parse(Buffer.from(body, 'base64url').toString('utf8')));
    if (!parsed.success) return { ok: false, reason: 'malformed' };
    wire = parsed.data;
  } catch {
    return { ok: false, reason: 'malformed' };
  }
  const expected = mac(key.key, wire.t, `${version}.${kid}.${body}`);
  const given = Buffer.from(signature, 'base64url');
  // Re-encoding must give the same text: base64url has unused bits that would otherwise allow twins.
  if (given.length !== expected.length || given.toString('base64url') !== signature) {
    return { ok: false, reason: 'bad_signature' };
  }
  if (!timingSafeEqual(given, expected)) return { ok: false, reason: 'bad_signature' };
  const claims = fromWire(wire);
  if (claims.exp * 1000 <= options.now) return { ok: false, reason: 'expired', claims };
  if (claims.kind !== options.kind) return { ok: false, reason: 'wrong_kind', claims };
  return { ok: true, claims, kid };
}

/** Expiry (seconds since the epoch) `days` after `now`. */
export const expiryAfterDays = (now: number, days: number) => toSec(now) + days * DAY_SECONDS;
