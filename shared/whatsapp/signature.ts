import { createHmac, timingSafeEqual } from 'node:crypto';

/** The `X-Hub-Signature-256` value of a body: `sha256=` + hex HMAC-SHA-256 with the app secret. */
export const signatureOf = (rawBody: Buffer, appSecret: string) =>
  `sha256=${createHmac('sha256', appSecret).update(rawBody).digest('hex')}`;

/**
 * True when the header carries the HMAC of exactly these bytes. Computed over the raw body (before any
 * JSON parsing, which would change the bytes) and compared in constant time.
 */
export function verifySignature(rawBody: Buffer, header: string | undefined, appSecret: string): boolean {
  if (!header) return false;
  const expected = Buffer.from(signatureOf(rawBody, appSecret));
  const given = Buffer.from(header.trim().toLowerCase());
  return given.length === expected.length && timingSafeEqual(given, expected);
}
