import { randomBytes, randomInt } from 'node:crypto';
import { isValidPhoneNumber } from 'libphonenumber-js/max';
import type { Actor } from '#domain/ledger.ts';
import { createApiKey, type Scope } from '#shared/auth/api-keys.ts';
import { getDb } from '#store/db.ts';

/** A tenant id no other test uses. */
export const tenantId = (prefix = 't') => `${prefix}-${randomBytes(5).toString('hex')}`;

/** A valid French mobile number (E.164) no other test uses (in practice); some ranges are unassigned, so draw again. */
export function phone(): string {
  for (;;) {
    const candidate = `+336${String(randomInt(0, 100_000_000)).padStart(8, '0')}`;
    if (isValidPhoneNumber(candidate)) return candidate;
  }
}

export const email = () => `person-${randomBytes(5).toString('hex')}@example.org`;

/** A subject for the API: a fresh phone number unless told otherwise. */
export const subject = (overrides: Record<string, string> = {}) =>
  Object.keys(overrides).length ? overrides : { phone: phone() };

/** A consent grant body with sensible defaults. */
export const grantBody = (overrides: Record<string, unknown> = {}) => ({
  subject: subject(),
  channel: 'whatsapp',
  purpose: 'marketing',
  source: 'web_form',
  noticeVersion: '2026-09-privacy-v3',
  ...overrides,
});

/** Thrown when a test needs what a deployed stage cannot give it (a new tenant, a narrower key). */
export class LocalOnlyError extends Error {
  constructor(what: string) {
    super(`${what} needs the local store: mark the test with describeLocal/itLocal (test/helpers/http.ts)`);
  }
}

/**
 * A new tenant with one API key holding the given scopes. Against a deployed stage (`API_URL`, `API_KEY`)
 * keys cannot be created from here: the default admin request gets `API_KEY` and its tenant (`API_TENANT`).
 */
export async function tenantWithKey(scopes: Scope[] = ['admin'], tenant?: string) {
  if (process.env.API_URL && process.env.API_KEY) {
    if (tenant || scopes.length !== 1 || scopes[0] !== 'admin') throw new LocalOnlyError(`a ${scopes.join(',')} key`);
    return { tenant: process.env.API_TENANT || 'deployed', key: process.env.API_KEY, keyId: '' };
  }
  const owner = tenant ?? tenantId();
  const key = await createApiKey(getDb(), { tenant: owner, scopes });
  return { tenant: owner, key: key.key, keyId: key.keyId };
}

/** The actor of changes a test writes straight through the store. */
export const testActor: Actor = { type: 'system', job: 'test' };
