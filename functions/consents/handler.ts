import { kindOf } from '#domain/policy.ts';
import { grantConsent, withdrawConsent } from '#domain/subject-state.ts';
import { api } from '#http/api.ts';
import { dispatch } from '#http/dispatch.ts';
import { UnknownNoticeError, ValidationError } from '#http/errors.ts';
import { notInFuture } from '#http/validation.ts';
import { evidenceHash, resolveSubject } from '#shared/identity/resolve.ts';
import { ConsentGrantSchema, ConsentWithdrawSchema } from '#shared/schemas/consents.ts';
import { appendAcrossLinks } from '#shared/services/links.ts';
import { getDb } from '#store/db.ts';
import { noticeOfGrant } from '#store/notices.ts';
import { getPolicy } from '#store/policy.ts';
import { appendChange } from '#store/subjects.ts';

/** POST /v1/consents — record a consent. */
export const grant = api(
  'POST /v1/consents',
  { body: ConsentGrantSchema, idempotent: true },
  async ({ body, tenant, actor }) => {
    const now = new Date().toISOString();
    const grantedAt = notInFuture(body.grantedAt, 'grantedAt', now) ?? now;
    if (body.expiresAt && Date.parse(body.expiresAt) <= Date.parse(grantedAt)) {
      throw new ValidationError('expiresAt must be after grantedAt', [
        { path: 'expiresAt', message: 'must be after grantedAt' },
      ]);
    }
    const db = getDb();
    const [policy, notice] = await Promise.all([getPolicy(db, tenant), noticeOfGrant(db, tenant, body.noticeVersion)]);
    if (!notice.noticeHash && policy.requireRegisteredNotice) throw new UnknownNoticeError(body.noticeVersion);
    const { subjectKey, identifier } = await resolveSubject(tenant, body.subject, body.channel);
    const { ipAddress, ...evidence } = body.evidence ?? {};
    const details = {
      evidence: { ...evidence, ...(ipAddress ? { ipAddressHash: await evidenceHash(tenant, ipAddress) } : {}) },
    };
    const input = { ...body, ...notice, grantedAt, details };
    const { event } = await appendChange(
      db,
      tenant,
      subjectKey,
      (current, next) => grantConsent(current, input, next, now, kindOf(policy)),
      { kind: identifier.kind, actor },
    );
    return {
      status: 201,
      body: {
        eventId: event.eventId,
        subjectKey,
        channel: body.channel,
        purpose: body.purpose,
        status: 'granted',
        grantedAt,
        expiresAt: body.expiresAt ?? null,
        hash: event.hash,
      },
    };
  },
);

/** POST /v1/consents/withdraw — record a withdrawal, or an objection when nothing was granted. */
export const withdraw = api(
  'POST /v1/consents/withdraw',
  { body: ConsentWithdrawSchema, idempotent: true },
  async ({ body, tenant, actor }) => {
    const now = new Date().toISOString();
    const at = notInFuture(body.at, 'at', now) ?? now;
    const { subjectKey, identifier } = await resolveSubject(tenant, body.subject, body.channel);
    const input = { ...body, at, ...(body.reason ? { details: { reason: body.reason } } : {}) };
    const db = getDb();
    const policy = await getPolicy(db, tenant);
    // A withdrawal without a channel is an objection of the person: it crosses to their linked identifiers.
    const { event, result } = await appendAcrossLinks(
      db,
      tenant,
      subjectKey,
      (current, next) => withdrawConsent(current, input, next, now, kindOf(policy)),
      { kind: identifier.kind, actor, policy, now },
    );
    return { status: 200, body: { eventId: event.eventId, subjectKey, withdrawn: result.withdrawn, withdrawnAt: at } };
  },
);

export const handler = dispatch('consents', [grant, withdraw]);
