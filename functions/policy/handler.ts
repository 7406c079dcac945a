import { PolicySchema } from '#domain/policy.ts';
import { api } from '#http/api.ts';
import { dispatch } from '#http/dispatch.ts';
import { UnknownNoticeError } from '#http/errors.ts';
import { getDb } from '#store/db.ts';
import { findNotice } from '#store/notices.ts';
import { getPolicy, putPolicy } from '#store/policy.ts';

/** GET /v1/policy — the tenant's gate policy (the defaults until it sets one). */
export const read = api('GET /v1/policy', {}, async ({ tenant }) => ({
  status: 200,
  body: await getPolicy(getDb(), tenant),
}));

/**
 * PUT /v1/policy — replaces the policy whole; omitted fields take their defaults. With
 * `requireRegisteredNotice`, its `noticeVersion` (what the preference centre and WhatsApp opt-ins record)
 * must be registered: 422 `unknown_notice` otherwise.
 */
export const replace = api('PUT /v1/policy', { body: PolicySchema, idempotent: true }, async ({ body, tenant }) => {
  const db = getDb();
  if (body.requireRegisteredNotice && !(await findNotice(db, tenant, body.noticeVersion))) {
    throw new UnknownNoticeError(body.noticeVersion);
  }
  return { status: 200, body: await putPolicy(db, tenant, body) };
});

export const handler = dispatch('policy', [read, replace]);
