import { grantConsent, withdrawConsent } from '#domain/subject-state.ts';
import { api } from '#http/api.ts';
import { dispatch } from '#http/dispatch.ts';
import { ValidationError } from '#http/errors.ts';
import { evidenceHash, resolveSubject } from '#shared/identity/resolve.ts';
import { ConsentGrantSchema, ConsentWithdrawSchema } from '#shared/schemas/consents.ts';
import { getDb } from '#store/db.ts';
import { appendChange } from '#store/subjects.ts';

/** POST /v1/consents — record a consent. */
export const grant = api(
  'POST /v1/consents',
  { body: ConsentGrantSchema, idempotent: true },
  async ({ body, tenant }) => {
    const now = new Date().toISOString();
    const grantedAt = body.grantedAt ?? now;
    if (grantedAt > now)
      throw new ValidationError('grantedAt may not be in the future', [
        { path: 'grantedAt', message: 'is in the future' },
      ]);
    if (body.expiresAt && body.expiresAt <= grantedAt) {
      throw new ValidationError('expiresAt must be after grantedAt', [
        { path: 'expiresAt', message: 'must be after grantedAt' },
      ]);
    }
    const { subjectKey, identifier } = await resolveSubject(tenant, body.subject, body.channel);
    const { ipAddress, ...evidence } = body.evidence ?? {};
    const data = {
      evidence: { ...evidence, ...(ipAddress ? { ipAddressHash: await evidenceHash(tenant, ipAddress) } : {}) },
    };
    const input = { ...body, grantedAt, data };
    const { event } = await appendChange(
      getDb(),
      tenant,
      subjectKey,
      (current, next) => grantConsent(current, input, next, now),
      { kind: identifier.kind },
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
  async ({ body, tenant }) => {
    const now = new Date().toISOString();
    const { subjectKey, identifier } = await resolveSubject(tenant, body.subject, body.channel);
    const input = { ...body, data: body.reason ? { reason: body.reason } : {} };
    const { event, result } = await appendChange(
      getDb(),
      tenant,
      subjectKey,
      (current, next) => withdrawConsent(current, input, next, now),
      { kind: identifier.kind },
    );
    return { status: 200, body: { eventId: event.eventId, subjectKey, withdrawn: result.withdrawn, withdrawnAt: now } };
  },
);

export const handler = dispatch('consents', [grant, withdraw]);
