import { type AuthorizerResult, handler as authorize } from '#functions/authorizer/handler.ts';
import { AUTHORIZER_CACHE_TTL_SECONDS } from '#shared/auth/api-keys.ts';

/** Answers kept at most: a flood of made-up keys cannot grow the cache without bound. */
const MAX_ENTRIES = 10_000;

/**
 * The authorizer as API Gateway calls it: its answer is reused for the same `Authorization` header for
 * `ttlSeconds` (the stack's `resultsCacheTtl`, `AUTHORIZER_CACHE_TTL_SECONDS`), so a check costs the same
 * reads locally as in the cloud, and a revoked key keeps working for at most that long, as in the cloud.
 * One difference, on purpose: an answer that says the store could not be read is not kept (API Gateway
 * would keep it too, for the same TTL).
 */
export class AuthorizerCache {
  private readonly entries = new Map<string, { context: AuthorizerResult['context']; expiresAt: number }>();

  constructor(
    private readonly ttlSeconds = AUTHORIZER_CACHE_TTL_SECONDS,
    private readonly clock: () => number = Date.now,
  ) {}

  /** The authorizer's context for these request headers, from the cache while it is fresh. */
  async contextFor(headers: Record<string, string | undefined>): Promise<AuthorizerResult['context']> {
    const identity = headers.authorization;
    const now = this.clock();
    const cached = identity === undefined ? undefined : this.entries.get(identity);
    if (cached && cached.expiresAt > now) return cached.context;
    const { context } = await authorize({ headers });
    if (identity !== undefined && this.ttlSeconds > 0 && !context.error) {
      this.entries.delete(identity);
      this.entries.set(identity, { context, expiresAt: now + this.ttlSeconds * 1000 });
      if (this.entries.size > MAX_ENTRIES) this.entries.delete(this.entries.keys().next().value as string);
    }
    return context;
  }
}
