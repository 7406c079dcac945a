import { TenantSchema } from '#shared/auth/api-keys.ts';
import { getSecrets } from '#shared/secrets.ts';

/** What the webhook needs to know: the secrets and where each business phone number's events go. */
export interface WhatsAppConfig {
  /** Signs the webhook's POSTs; unset → the webhook answers 503. */
  appSecret?: string;
  /** Meta's handshake token; unset → the handshake is refused. */
  verifyToken?: string;
  /** The tenant of a business phone number id, or undefined when it is routed nowhere. */
  tenantFor(phoneNumberId: string): string | undefined;
}

/**
 * `WHATSAPP_PHONE_NUMBER_TENANTS` = `phoneNumberId:tenant,...`. Unset: every phone number id goes to
 * DEV_TENANT (the local runtime's single tenant). Set: ids not listed are routed nowhere (ignored).
 */
export function parseRouting(
  value: string | undefined,
  devTenant: string | undefined,
): (phoneNumberId: string) => string | undefined {
  if (!value?.trim()) return () => devTenant;
  const routes = new Map<string, string>();
  for (const entry of value.split(',')) {
    const [id, tenant] = entry.split(':').map((s) => s.trim());
    if (id && tenant && TenantSchema.safeParse(tenant).success) routes.set(id, tenant);
  }
  return (phoneNumberId) => routes.get(phoneNumberId);
}

/**
 * The webhook's configuration. Read per request (it is a few env reads; the secrets are cached per
 * container by getSecrets): the env vars of the README's local configuration, the Secrets Manager secret in the cloud.
 */
export async function whatsappConfig(env: NodeJS.ProcessEnv = process.env): Promise<WhatsAppConfig> {
  const fromSecrets = env.SECRETS_ID ? await getSecrets() : undefined;
  return {
    appSecret: env.WHATSAPP_APP_SECRET || fromSecrets?.whatsappAppSecret || undefined,
    verifyToken: env.WHATSAPP_VERIFY_TOKEN || fromSecrets?.whatsappVerifyToken || undefined,
    // Locally every phone number id goes to the dev tenant by default (README); in the cloud (secrets from
    // Secrets Manager) there is no dev tenant: unrouted ids are ignored until the routing is configured.
    tenantFor: parseRouting(env.WHATSAPP_PHONE_NUMBER_TENANTS, env.SECRETS_ID ? undefined : env.DEV_TENANT || 'demo'),
  };
}
