import { createHash, randomBytes } from 'node:crypto';
import { GetCommand, QueryCommand, TransactWriteCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import * as z from 'zod';
import type { Db } from '#store/db.ts';
import { storeFailure } from '#store/errors.ts';
import { registerTenantLog } from '#store/log.ts';
import { keys } from '#store/table.ts';

export const SCOPES = [
  'gate:check',
  'consents:read',
  'consents:write',
  'signals:write',
  'subjects:manage',
  'audit:read',
  'admin',
] as const;
export const ScopeSchema = z.enum(SCOPES);
export type Scope = z.infer<typeof ScopeSchema>;

export const TenantSchema = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'tenant ids are lowercase letters, digits and "-", at most 63 characters');

/** Who is calling: the key's tenant and scopes. */
export interface Principal {
  tenant: string;
  scopes: Scope[];
  keyId: string;
}

export interface ApiKeyInfo {
  keyId: string;
  tenant: string;
  scopes: Scope[];
  name?: string;
  createdAt: string;
  revokedAt?: string;
}

/** `admin` implies every scope. */
/**
 * How long an authorizer answer is reused for the same `Authorization` header: API Gateway's authorizer
 * cache in the cloud (`resultsCacheTtl`), the local server's in `npm start`. A revoked key keeps working
 * for at most this long; a check then costs one read (the state), not two.
 */
export const AUTHORIZER_CACHE_TTL_SECONDS = 30;

export const hasScope = (principal: Principal, scope: Scope): boolean =>
  principal.scopes.includes('admin') || principal.scopes.includes(scope);

/** Keys are stored only as their SHA-256 (they are 256-bit random, so a fast hash is enough). */
export const hashApiKey = (key: string): string => createHash('sha256').update(key, 'utf8').digest('hex');

/**
 * Creates a key for a tenant. With `key` given (the dev key) it is idempotent: the same value gives
 * the same keyId, scopes are left as they were.
 */
export async function createApiKey(
  db: Db,
  input: { tenant: string; scopes: Scope[]; name?: string; key?: string },
  now = new Date(),
): Promise<ApiKeyInfo & { key: string }> {
  const key = input.key ?? `cg_${randomBytes(32).toString('base64url')}`;
  const keyHash = hashApiKey(key);
  const keyId = input.key ? `key_${keyHash.slice(0, 16)}` : `key_${randomBytes(8).toString('hex')}`;
  const info: ApiKeyInfo = {
    keyId,
    tenant: input.tenant,
    scopes: input.scopes,
    ...(input.name ? { name: input.name } : {}),
    createdAt: now.toISOString(),
  };
  try {
    const existing = await db.client.send(
      new GetCommand({ TableName: db.table, Key: { PK: keys.apiKey(keyHash), SK: 'KEY' }, ConsistentRead: true }),
    );
    if (existing.Item) {
      const item = existing.Item as ApiKeyInfo;
      if (item.tenant !== input.tenant) throw new Error('this key value already belongs to another tenant');
      // A tenant from before the verifiable log gets one at its next start (the dev key).
      await registerTenantLog(db, input.tenant, item.createdAt);
      return { ...pick(item), key };
    }
    await db.client.send(
      new TransactWriteCommand({
        TransactItems: [
          {
            Put: {
              TableName: db.table,
              Item: {
                PK: keys.apiKey(keyHash),
                SK: 'KEY',
                GSI1PK: keys.apiKeysOfTenant(input.tenant),
                GSI1SK: `${info.createdAt}#${keyId}`,
                ...info,
              },
              ConditionExpression: 'attribute_not_exists(PK)',
            },
          },
          {
            Put: {
              TableName: db.table,
              Item: { PK: keys.apiKeyId(keyId), SK: 'KEY', keyHash, tenant: input.tenant },
              ConditionExpression: 'attribute_not_exists(PK)',
            },
          },
        ],
      }),
    );
    // A tenant's log starts with its first key: the sealer finds the tenant through its log head.
    await registerTenantLog(db, input.tenant, info.createdAt);
  } catch (error) {
    if (error instanceof Error && error.message.startsWith('this key value')) throw error;
    throw storeFailure(error, 'createApiKey');
  }
  return { ...info, key };
}

function pick(item: ApiKeyInfo): ApiKeyInfo {
  const { keyId, tenant, scopes, name, createdAt, revokedAt } = item;
  return { keyId, tenant, scopes, ...(name ? { name } : {}), createdAt, ...(revokedAt ? { revokedAt } : {}) };
}

/** The tenant's keys (never their values), oldest first. */
export async function listApiKeys(db: Db, tenant: string): Promise<ApiKeyInfo[]> {
  const out: ApiKeyInfo[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const page = await db.client.send(
      new QueryCommand({
        TableName: db.table,
        IndexName: 'GSI1',
        KeyConditionExpression: 'GSI1PK = :pk',
        ExpressionAttributeValues: { ':pk': keys.apiKeysOfTenant(tenant) },
        ExclusiveStartKey: start,
      }),
    );
    out.push(...(page.Items ?? []).map((i) => pick(i as ApiKeyInfo)));
    start = page.LastEvaluatedKey;
  } while (start);
  return out;
}

/** Revokes a key: it is refused from the next request on. Returns false when no such key exists. */
export async function revokeApiKey(db: Db, keyId: string, now = new Date()): Promise<ApiKeyInfo | undefined> {
  const ref = await db.client.send(
    new GetCommand({ TableName: db.table, Key: { PK: keys.apiKeyId(keyId), SK: 'KEY' }, ConsistentRead: true }),
  );
  if (!ref.Item) return undefined;
  const out = await db.client.send(
    new UpdateCommand({
      TableName: db.table,
      Key: { PK: keys.apiKey(ref.Item.keyHash as string), SK: 'KEY' },
      UpdateExpression: 'SET revokedAt = if_not_exists(revokedAt, :now)',
      ExpressionAttributeValues: { ':now': now.toISOString() },
      ReturnValues: 'ALL_NEW',
    }),
  );
  return pick(out.Attributes as ApiKeyInfo);
}

/** Resolves an `Authorization: Bearer <key>` header to a principal; undefined when missing, unknown or revoked. */
export async function authenticate(db: Db, authorization: string | undefined): Promise<Principal | undefined> {
  const match = /^Bearer\s+(\S{8,512})\s*$/i.exec(authorization ?? '');
  if (!match) return undefined;
  try {
    const out = await db.client.send(
      new GetCommand({
        TableName: db.table,
        Key: { PK: keys.apiKey(hashApiKey(match[1])), SK: 'KEY' },
        ConsistentRead: true,
      }),
    );
    const item = out.Item as ApiKeyInfo | undefined;
    if (!item || item.revokedAt) return undefined;
    return { tenant: item.tenant, scopes: item.scopes, keyId: item.keyId };
  } catch (error) {
    throw storeFailure(error, 'authenticate');
  }
}
