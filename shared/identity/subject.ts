import { createHmac } from 'node:crypto';
import * as z from 'zod';
import type { Channel } from '#domain/vocabulary.ts';
import { IdentifierChannelMismatchError, InvalidIdentifierError } from '#http/errors.ts';
import { parsePhone } from './phone.ts';

const printable = /^[\x21-\x7E](?:[\x20-\x7E]*[\x21-\x7E])?$/;

/**
 * A WhatsApp business-scoped user id (BSUID) as Meta documents it: the ISO 3166 alpha-2 country code, a
 * period, then up to 128 alphanumeric characters (`US.13491208655302741918`); a parent BSUID, shared by
 * linked business portfolios, has `ENT.` after the country code (`US.ENT.11815799212886844830`). Kept
 * exactly as received (Meta refuses a BSUID whose case or characters were changed). The one definition:
 * the API's `waUserId` and the webhook's `user_id` fields are read with it.
 */
export const WA_USER_ID_PATTERN = /^[A-Z]{2}\.(?:ENT\.)?[A-Za-z0-9]{1,128}$/;

/** A contact identifier as callers send it: exactly one of phone, email, externalId, waUserId. */
export const SubjectSchema = z
  .strictObject({
    phone: z.string().min(1).max(64).optional(),
    country: z
      .string()
      .regex(/^[A-Z]{2}$/, 'must be an ISO 3166-1 alpha-2 country code such as "FR"')
      .optional(),
    email: z.string().min(3).max(254).optional(),
    externalId: z.string().min(1).max(128).regex(printable, 'must be 1-128 printable ASCII characters').optional(),
    waUserId: z
      .string()
      .regex(
        WA_USER_ID_PATTERN,
        'must be a business-scoped user id: country code, ".", up to 128 letters or digits ("US.13491208655302741918", parent "US.ENT.11815799212886844830")',
      )
      .optional(),
  })
  .superRefine((s, ctx) => {
    const given = (['phone', 'email', 'externalId', 'waUserId'] as const).filter((k) => s[k] !== undefined);
    if (given.length !== 1) {
      ctx.addIssue({ code: 'custom', message: 'give exactly one of phone, email, externalId, waUserId' });
    }
    if (s.country !== undefined && s.phone === undefined) {
      ctx.addIssue({ code: 'custom', path: ['country'], message: 'country only goes with phone' });
    }
  });
export type SubjectInput = z.infer<typeof SubjectSchema>;

export type IdentifierKind = 'phone' | 'email' | 'externalId' | 'waUserId';

/** A normalised identifier: the only form that is ever hashed. Never stored or logged. */
export interface Identifier {
  kind: IdentifierKind;
  value: string;
}

const emailPattern = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

/**
 * Normalises an identifier: E.164 for phones (national formats need `country`), trimmed lower case for
 * e-mail. Throws {@link InvalidIdentifierError} with the field path when it is not a valid identifier.
 */
export function normaliseSubject(input: SubjectInput, path = 'subject'): Identifier {
  if (input.phone !== undefined) {
    try {
      const parsed = parsePhone(input.phone, input.country);
      if (!parsed.isValid()) throw new Error('not a valid number');
      return { kind: 'phone', value: parsed.number };
    } catch {
      throw new InvalidIdentifierError(
        `${path}.phone`,
        input.country
          ? `not a valid phone number for country ${input.country}`
          : 'not a valid phone number: use E.164 (+33612345678) or give "country" with a national format',
      );
    }
  }
  if (input.email !== undefined) {
    const value = input.email.trim().normalize('NFC').toLowerCase();
    if (!emailPattern.test(value)) throw new InvalidIdentifierError(`${path}.email`, 'not a valid e-mail address');
    return { kind: 'email', value };
  }
  if (input.externalId !== undefined) return { kind: 'externalId', value: input.externalId };
  return { kind: 'waUserId', value: input.waUserId as string };
}

const reachable: Record<Channel, readonly IdentifierKind[]> = {
  whatsapp: ['phone', 'waUserId', 'externalId'],
  sms: ['phone', 'externalId'],
  voice: ['phone', 'externalId'],
  email: ['email', 'externalId'],
  push: ['externalId'],
};

/** Throws when the subject cannot be reached on the channel (an e-mail address on WhatsApp). */
export function assertReachable(id: Identifier, channel: Channel, path = 'subject'): void {
  if (!reachable[channel].includes(id.kind)) {
    throw new IdentifierChannelMismatchError(path, `a ${id.kind} cannot be reached on ${channel}`);
  }
}

/** Channels on which an identifier can be reached. */
export const channelsFor = (id: Identifier): Channel[] =>
  (Object.keys(reachable) as Channel[]).filter((c) => reachable[c].includes(id.kind));

/**
 * subjectKey = HMAC-SHA-256(tenant secret, tenant ‖ kind ‖ value), base64url. Keyed so that the
 * key space of phone numbers cannot be brute-forced from a copy of the table.
 */
export function subjectKeyOf(tenantSecret: Buffer, tenant: string, id: Identifier): string {
  return createHmac('sha256', tenantSecret).update(`${tenant}\n${id.kind}\n${id.value}`).digest('base64url');
}

/** subjectKeys are 43 base64url characters. */
export const SubjectKeySchema = z.string().regex(/^[A-Za-z0-9_-]{43}$/, 'not a subjectKey');
