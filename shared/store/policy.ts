import { PutCommand } from '@aws-sdk/lib-dynamodb';
import type { GatePolicy } from '#domain/gate-rule.ts';
import type { NoticeSummary } from '#domain/notices.ts';
import { defaultPolicy, type Policy, PolicySchema } from '#domain/policy.ts';
import { type Db, queryAll } from './db.ts';
import { storeFailure } from './errors.ts';
import { keys } from './table.ts';

/** How long a container trusts its copy of a policy: keeps the gate at one read per check. */
export const POLICY_CACHE_MS = 30_000;
interface Loaded {
  policy: Policy;
  gatePolicy: GatePolicy;
}
/** Per tenant, the read (in flight or done): concurrent callers share one read. */
const cache = new Map<string, { loaded: Promise<Loaded>; until: number }>();

/** A stored notice summary (or full notice) without its keys. */
export const noticeSummaryOf = (item: Record<string, unknown>): NoticeSummary => ({
  version: item.version as string,
  hash: item.hash as string,
  url: (item.url as string | null) ?? null,
  purposes: item.purposes as string[],
  effectiveAt: item.effectiveAt as string,
  reconsentRequired: item.reconsentRequired === true,
  registeredAt: item.registeredAt as string,
});

/**
 * Reads the policy and the notice summaries in one strongly consistent Query of the tenant partition
 * (`SK BETWEEN 'NOTICE#' AND 'POLICY'`), so a gate check stays at one read of the subject.
 */
async function read(db: Db, tenant: string): Promise<Loaded> {
  try {
    const items = await queryAll(db, {
      KeyConditionExpression: 'PK = :pk AND SK BETWEEN :from AND :to',
      ExpressionAttributeValues: { ':pk': keys.tenant(tenant), ':from': keys.notice(''), ':to': keys.policy },
      ConsistentRead: true,
    });
    const stored = items.find((item) => item.SK === keys.policy);
    // A stored policy was valid when written; parsing again fills fields added by later versions.
    const policy = stored ? PolicySchema.parse(stored.policy) : defaultPolicy();
    const notices = items.filter((item) => item.SK !== keys.policy).map(noticeSummaryOf);
    return { policy, gatePolicy: { ...policy, notices } };
  } catch (error) {
    throw storeFailure(error, 'getPolicy');
  }
}

/** The tenant's policy and notices, cached per container for POLICY_CACHE_MS (a failed read is not kept). */
function load(db: Db, tenant: string, now: number): Promise<Loaded> {
  const hit = cache.get(tenant);
  if (hit && hit.until > now) return hit.loaded;
  const entry = { loaded: read(db, tenant), until: now + POLICY_CACHE_MS };
  cache.set(tenant, entry);
  entry.loaded.catch(() => {
    if (cache.get(tenant) === entry) cache.delete(tenant);
  });
  return entry.loaded;
}

/** The tenant's policy (defaults until it sets one), cached per container for POLICY_CACHE_MS. */
export async function getPolicy(db: Db, tenant: string, now = Date.now()): Promise<Policy> {
  return (await load(db, tenant, now)).policy;
}

/** The policy with the registered notices' summaries (`consent_outdated`), cached with it. */
export async function getGatePolicy(db: Db, tenant: string, now = Date.now()): Promise<GatePolicy> {
  return (await load(db, tenant, now)).gatePolicy;
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
  forgetPolicy(tenant);
  return policy;
}

/** Forgets the tenant's cached policy (after a change of its policy or notices). */
export const forgetPolicy = (tenant: string) => cache.delete(tenant);

/** Forgets cached policies (tests). */
export const clearPolicyCache = () => cache.clear();
