import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { getSecrets, tenantKey } from './secrets.ts';

/**
 * Secrets a tenant gives us or we make for a tenant (a provider's auth token, a webhook endpoint's signing
 * secret) are stored in the table sealed, never in clear: AES-256-GCM under a per-tenant key derived from
 * the service's identifier key, the tenant and the item they belong to (`context`, bound as associated data,
 * so a sealed value copied onto another item does not open). Format: `v1.<iv>.<ciphertext>.<tag>`, base64url.
 */
export async function sealSecret(tenant: string, context: string, plaintext: string): Promise<string> {
  const key = tenantKey(await getSecrets(), tenant, 'secret-box');
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv).setAAD(Buffer.from(context));
  const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return ['v1', iv, body, cipher.getAuthTag()]
    .map((p) => (typeof p === 'string' ? p : p.toString('base64url')))
    .join('.');
}

/** Opens what {@link sealSecret} sealed for the same tenant and context; throws when it was altered or moved. */
export async function openSecret(tenant: string, context: string, sealed: string): Promise<string> {
  const [version, iv, body, tag] = sealed.split('.');
  if (version !== 'v1' || !iv || body === undefined || !tag) throw new Error('not a sealed secret');
  const key = tenantKey(await getSecrets(), tenant, 'secret-box');
  const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'))
    .setAAD(Buffer.from(context))
    .setAuthTag(Buffer.from(tag, 'base64url'));
  return Buffer.concat([decipher.update(Buffer.from(body, 'base64url')), decipher.final()]).toString('utf8');
}
