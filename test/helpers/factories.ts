import { randomBytes, randomInt } from 'node:crypto';
import { isValidPhoneNumber } from 'libphonenumber-js/max';
import { createApiKey, type Scope } from '../../shared/auth/api-keys.ts';
import { getDb } from '../../shared/store/db.ts';

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

/** A new tenant with one API key holding the given scopes. */
export async function tenantWithKey(scopes: Scope[] = ['admin'], tenant = tenantId()) {
  const key = await createApiKey(getDb(), { tenant, scopes });
  return { tenant, key: key.key, keyId: key.keyId };
}
