import { createHash } from 'node:crypto';
import { logger } from '#shared/log.ts';
import { tenantDigest } from '#shared/secrets.ts';
import { getDb } from '#store/db.ts';
import { claimIdempotencyKey, completeIdempotencyKey, releaseIdempotencyKey } from '#store/idempotency.ts';
import { ConflictError, ValidationError } from './errors.ts';
import { type ApiEvent, type ApiMiddleware, rawBody } from './middlewares.ts';

const sha256 = (s: string | Buffer) => createHash('sha256').update(s).digest('hex');

/**
 * `Idempotency-Key`: a retry with the same key and body gets the first response and records nothing new;
 * the same key with another body is a 409. Keys are per tenant. (Powertools' idempotency utility keys
 * records by function, not tenant, and cannot tell "no key" from "key": hence this small middleware.)
 */
/** The subjects a stored response names (`subjectKey`, `subjectKeys`): an erasure of one deletes the record. */
function subjectsOf(body: string): string[] {
  try {
    const parsed = JSON.parse(body) as { subjectKey?: unknown; subjectKeys?: unknown };
    const keys = [parsed.subjectKey, ...(Array.isArray(parsed.subjectKeys) ? parsed.subjectKeys : [])];
    return keys.filter((k): k is string => typeof k === 'string');
  } catch {
    return [];
  }
}

export function idempotency(applies: (event: ApiEvent) => boolean = () => true): ApiMiddleware {
  return {
    before: async (request) => {
      const value = request.event.headers?.['idempotency-key'];
      const tenant = request.event.principal?.tenant;
      if (value === undefined || !tenant || !applies(request.event)) return;
      if (value.length < 1 || value.length > 255) {
        throw new ValidationError('Idempotency-Key must be 1-255 characters', [
          { path: 'header.Idempotency-Key', message: 'must be 1-255 characters' },
        ]);
      }
      // Keyed per tenant: a body names a person, and a plain hash of it gives their phone number back.
      const keyHash = await tenantDigest(tenant, 'idempotency', `key\n${value}`);
      const requestHash = await tenantDigest(
        tenant,
        'idempotency',
        `request\n${request.event.routeKey}\n${request.event.rawPath}\n${sha256(rawBody(request.event))}`,
      );
      const existing = await claimIdempotencyKey(getDb(), tenant, keyHash, requestHash);
      if (!existing) {
        (request.internal as { idempotencyKeyHash?: string }).idempotencyKeyHash = keyHash;
        return;
      }
      if (existing.requestHash !== requestHash) {
        throw new ConflictError(
          'idempotency_key_reused',
          'this Idempotency-Key was used with a different request; use a new key for a new request',
        );
      }
      if (existing.status !== 'completed' || !existing.response) {
        throw new ConflictError('idempotency_in_progress', 'a request with this Idempotency-Key is still running');
      }
      return { ...existing.response, headers: { ...existing.response.headers, 'idempotent-replayed': 'true' } };
    },
    after: async (request) => {
      const keyHash = (request.internal as { idempotencyKeyHash?: string }).idempotencyKeyHash;
      const tenant = request.event.principal?.tenant;
      if (!keyHash || !tenant || !request.response) return;
      const { statusCode, headers, body } = request.response;
      const response = { statusCode, headers: (headers ?? {}) as Record<string, string>, body: String(body ?? '') };
      await completeIdempotencyKey(getDb(), tenant, keyHash, response, subjectsOf(response.body));
    },
    onError: async (request) => {
      const keyHash = (request.internal as { idempotencyKeyHash?: string }).idempotencyKeyHash;
      const tenant = request.event.principal?.tenant;
      if (!keyHash || !tenant) return;
      // A failed request stores nothing, its key included: the client may retry it.
      await releaseIdempotencyKey(getDb(), tenant, keyHash).catch((error) =>
        logger.warn('could not release idempotency key', { errorName: (error as Error).name }),
      );
    },
  };
}
