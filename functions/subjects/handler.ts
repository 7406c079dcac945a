import { accessReport } from '#domain/access.ts';
import { verifyChain } from '#domain/ledger.ts';
import { lookupView } from '#domain/views.ts';
import { api } from '#http/api.ts';
import { dispatch } from '#http/dispatch.ts';
import { NotFoundError } from '#http/errors.ts';
import { parseOrThrow } from '#http/validation.ts';
import { resolveSubject } from '#shared/identity/resolve.ts';
import { SubjectKeySchema } from '#shared/identity/subject.ts';
import { SubjectAccessSchema } from '#shared/schemas/audit.ts';
import { SubjectLookupSchema } from '#shared/schemas/consents.ts';
import { getDb } from '#store/db.ts';
import { getPolicy } from '#store/policy.ts';
import { getState, listEvents } from '#store/subjects.ts';

/** POST /v1/subjects/lookup — a subject's consents, block signals and erasure status. */
export const lookup = api('POST /v1/subjects/lookup', { body: SubjectLookupSchema }, async ({ body, tenant }) => {
  const { subjectKey } = await resolveSubject(tenant, body.subject);
  const db = getDb();
  const [state, policy] = await Promise.all([getState(db, tenant, subjectKey), getPolicy(db, tenant)]);
  if (!state)
    throw new NotFoundError('no consent, withdrawal or signal was ever recorded for this subject', 'subject_not_found');
  return { status: 200, body: lookupView(state, policy, new Date().toISOString()) };
});

/** GET /v1/subjects/{subjectKey}/events — the ledger, verified. */
export const events = api('GET /v1/subjects/{subjectKey}/events', {}, async ({ event, tenant }) => {
  const subjectKey = parseOrThrow(SubjectKeySchema, event.pathParameters?.subjectKey, 'subjectKey');
  const ledger = await listEvents(getDb(), tenant, subjectKey);
  if (ledger.length === 0) throw new NotFoundError('no events for this subjectKey', 'subject_not_found');
  const chain = verifyChain(ledger);
  return {
    status: 200,
    body: {
      subjectKey,
      events: ledger,
      chain: {
        valid: chain.valid,
        length: chain.length,
        head: chain.head,
        ...(chain.valid ? {} : { broken: chain.breaks }),
      },
    },
  };
});

/**
 * POST /v1/subjects/access — the Art. 15 copy: controller, consents with receipts, full history. The
 * identifier the caller sent is echoed back (normalised) so the copy is complete; it is never stored.
 */
export const access = api('POST /v1/subjects/access', { body: SubjectAccessSchema }, async ({ body, tenant }) => {
  const { subjectKey, identifier } = await resolveSubject(tenant, body.subject);
  const db = getDb();
  const [state, ledger, policy] = await Promise.all([
    getState(db, tenant, subjectKey),
    listEvents(db, tenant, subjectKey),
    getPolicy(db, tenant),
  ]);
  if (!state && ledger.length === 0) {
    throw new NotFoundError('no consent, withdrawal or signal was ever recorded for this subject', 'subject_not_found');
  }
  const now = new Date().toISOString();
  return { status: 200, body: accessReport({ subjectKey, identifier, state, events: ledger, policy, now }) };
});

export const handler = dispatch('subjects', [access, lookup, events]);
