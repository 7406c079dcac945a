import type { APIGatewayRequestAuthorizerEventV2 } from 'aws-lambda';
import { authenticate } from '#shared/auth/api-keys.ts';
import { logger } from '#shared/log.ts';
import { getDb } from '#store/db.ts';

/** The simple response of an HTTP API Lambda authorizer. */
export interface AuthorizerResult {
  isAuthorized: boolean;
  context: Record<string, string>;
}

/**
 * Resolves the API key to a tenant and scopes. It always authorizes and passes `tenant` (empty when the
 * key is missing, unknown or revoked) so the route answers a problem+json 401, and checks its scope
 * itself (403). When the store cannot be read it passes `error: store_unavailable`: the route answers 503
 * (fail closed, and the caller knows to retry).
 */
export async function handler(event: Pick<APIGatewayRequestAuthorizerEventV2, 'headers'>): Promise<AuthorizerResult> {
  try {
    const principal = await authenticate(getDb(), event.headers?.authorization ?? event.headers?.Authorization);
    if (!principal) return { isAuthorized: true, context: { tenant: '', scopes: '', keyId: '' } };
    return {
      isAuthorized: true,
      context: { tenant: principal.tenant, scopes: principal.scopes.join(','), keyId: principal.keyId },
    };
  } catch (error) {
    logger.error('authorizer could not read the store', { errorName: (error as Error).name });
    return { isAuthorized: true, context: { tenant: '', scopes: '', keyId: '', error: 'store_unavailable' } };
  }
}
