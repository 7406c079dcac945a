import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { defaultPolicy, type Policy, PolicySchema } from '#domain/policy.ts';
import type { Db } from './db.ts';
import { storeFailure } from './errors.ts';
import { keys } from './table.ts';

/** How long a container trusts its copy of a policy: keeps the gate at one read per check. */
export const POLICY_CACHE_MS = 30_000;
const cache = new Map<string, { policy: Policy; until: number }>();

/** The tenant's policy (defaults until it sets one), cached per container for POLICY_CACHE_MS. */
export async function getPolicy(db: Db, tenant: string, now = Date.now()): Promise<Policy> {
  const hit = cache.get(tenant);
  if (hit && hit.until > now) return hit.policy;
  try {
    const out = await db.client.send(
      new GetCommand({ TableName: db.table, Key: { PK: keys.tenant(tenant), SK: keys.policy } }),
    );
    // A stored policy was valid when written; parsing again fills fields added by later versions.
    const policy = out.Item ? PolicySchema.parse(out.Item.policy) : defaultPolicy();
    cache.set(tenant, { policy, until: now + POLICY_CACHE_MS });
    return policy;
  } catch (error) {
    throw storeFailure(error, 'getPolicy');
  }
}

/** Replaces the tenant's policy. */
export async function putPolicy(db: Db, tenant: string, policy: Policy, now = new Date()): Promise<Policy> {
  try {
    await db.client.send(
      new PutCommand({
        TableName: db.table,
        Item: { PK: keys.tenant(tenant), SK: keys.policy, policy, updatedAt: now.toISOString() },
      }),
    );
  } catch (error) {
    throw storeFailure(error, 'putPolicy');
  }
  cache.delete(tenant);
  return policy;
}

/** Forgets cached policies (tests). */
export const clearPolicyCache = () => cache.clear();
