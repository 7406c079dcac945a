import { accessProvided, accessReport, noticeVersionsOf } from '#domain/access.ts';
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
import { getNotices } from '#store/notices.ts';
import { getPolicy } from '#store/policy.ts';
import { appendChange, getState, listEvents } from '#store/subjects.ts';

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
 * POST /v1/subjects/access — the Art. 15 copy: controller, purposes, retention, sources, consents with
 * receipts, rights, the block inference explained, full history; once erased, what is kept. The identifier
 * the caller sent is echoed back (normalised) so the copy is complete; it is never stored. Giving the copy
 * is recorded as an `access.provided` event (its actor: the API key) before the copy is answered.
 */
export const access = api(
  'POST /v1/subjects/access',
  { body: SubjectAccessSchema },
  async ({ body, tenant, actor }) => {
    const { subjectKey, identifier } = await resolveSubject(tenant, body.subject);
    const db = getDb();
    const [state, ledger, policy] = await Promise.all([
      getState(db, tenant, subjectKey),
      listEvents(db, tenant, subjectKey),
      getPolicy(db, tenant),
    ]);
    if (!state && ledger.length === 0) {
      throw new NotFoundError(
        'no consent, withdrawal or signal was ever recorded for this subject',
        'subject_not_found',
      );
    }
    const now = new Date().toISOString();
    const notices = await getNotices(db, tenant, noticeVersionsOf(ledger));
    const report = accessReport({
      subjectKey,
      identifier,
      state,
      events: ledger,
      policy,
      now,
      lang: body.lang,
      notices,
    });
    await appendChange(db, tenant, subjectKey, (current) => accessProvided(current, now), { actor });
    return { status: 200, body: report };
  },
);

export const handler = dispatch('subjects', [access, lookup, events]);
