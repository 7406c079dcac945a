import { PolicySchema } from '#domain/policy.ts';
import { api } from '#http/api.ts';
import { dispatch } from '#http/dispatch.ts';
import { getDb } from '#store/db.ts';
import { getPolicy, putPolicy } from '#store/policy.ts';

/** GET /v1/policy — the tenant's gate policy (the defaults until it sets one). */
export const read = api('GET /v1/policy', {}, async ({ tenant }) => ({
  status: 200,
  body: await getPolicy(getDb(), tenant),
}));

/** PUT /v1/policy — replaces the policy whole; omitted fields take their defaults. */
export const replace = api('PUT /v1/policy', { body: PolicySchema, idempotent: true }, async ({ body, tenant }) => ({
  status: 200,
  body: await putPolicy(getDb(), tenant, body),
}));

export const handler = dispatch('policy', [read, replace]);
