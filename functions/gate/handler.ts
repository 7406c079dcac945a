import { ulid } from 'ulid';
import { decide, type GateDecision } from '#domain/gate.ts';
import { TimeZoneSchema } from '#domain/policy.ts';
import { recordSend } from '#domain/sends.ts';
import { api } from '#http/api.ts';
import { dispatch } from '#http/dispatch.ts';
import { ProblemError } from '#http/errors.ts';
import { parseOrThrow } from '#http/validation.ts';
import { type ResolvedSubject, resolveSubject } from '#shared/identity/resolve.ts';
import { SubjectSchema } from '#shared/identity/subject.ts';
import { GateBatchSchema, GateCheckSchema } from '#shared/schemas/gate.ts';
import { getDb } from '#store/db.ts';
import { getPolicy } from '#store/policy.ts';
import { appendChange, getState, getStates } from '#store/subjects.ts';

/**
 * POST /v1/gate/check — allow, block or defer one message. One strongly consistent read. With
 * `record: true` the decision is taken inside the append, from the state just read, and an allowed send
 * is counted in the same transaction (version-conditioned): parallel checks cannot exceed a cap.
 */
export const check = api({ scope: 'gate:check', body: GateCheckSchema }, async ({ body, tenant }) => {
  const now = new Date().toISOString();
  const at = body.at ?? now;
  const { subjectKey, identifier } = await resolveSubject(tenant, body.subject, body.channel);
  const db = getDb();
  const req = { channel: body.channel, purpose: body.purpose, at, timezone: body.timezone };
  const decisionId = `dec_${ulid()}`;
  if (!body.record) {
    const [state, policy] = await Promise.all([getState(db, tenant, subjectKey), getPolicy(db, tenant)]);
    return { status: 200, body: { ...decide(state, req, policy), subjectKey, decisionId } };
  }
  const policy = await getPolicy(db, tenant);
  let decision: GateDecision | undefined;
  await appendChange(
    db,
    tenant,
    subjectKey,
    (current) => {
      decision = decide(current.version === 0 ? undefined : current, req, policy);
      return decision.decision === 'allow' ? recordSend(current, { ...req, decisionId }, policy, now) : null;
    },
    identifier.kind,
  );
  return {
    status: 200,
    body: { ...(decision as GateDecision), subjectKey, decisionId, recorded: decision?.decision === 'allow' },
  };
});

/** POST /v1/gate/check-batch — pre-flight a campaign: one result per item, in order; a bad item is an error in its slot. */
export const checkBatch = api({ scope: 'gate:check', body: GateBatchSchema }, async ({ body, tenant }) => {
  const at = body.at ?? new Date().toISOString();
  const resolved = await Promise.all(
    body.items.map(async (item, index): Promise<(ResolvedSubject & { timezone?: string }) | ProblemError> => {
      try {
        const subject = parseOrThrow(SubjectSchema, item.subject, `items.${index}.subject`);
        const timezone = parseOrThrow(TimeZoneSchema.optional(), item.timezone, `items.${index}.timezone`);
        return { ...(await resolveSubject(tenant, subject, body.channel, `items.${index}.subject`)), timezone };
      } catch (error) {
        if (error instanceof ProblemError) return error;
        throw error;
      }
    }),
  );
  const db = getDb();
  const keys = resolved.flatMap((r) => (r instanceof ProblemError ? [] : [r.subjectKey]));
  const [states, policy] = await Promise.all([getStates(db, tenant, keys), getPolicy(db, tenant)]);
  const summary = { allow: 0, block: 0, defer: 0, error: 0 };
  const results = resolved.map((r, index) => {
    if (r instanceof ProblemError) {
      summary.error++;
      return { index, error: { code: r.code, detail: r.detail, ...(r.errors ? { errors: r.errors } : {}) } };
    }
    const timezone = r.timezone ?? body.timezone;
    const decision = decide(
      states.get(r.subjectKey),
      { channel: body.channel, purpose: body.purpose, at, timezone },
      policy,
    );
    summary[decision.decision]++;
    return { index, ...decision, subjectKey: r.subjectKey };
  });
  return { status: 200, body: { results, summary } };
});

export const handler = dispatch({
  'POST /v1/gate/check': check,
  'POST /v1/gate/check-batch': checkBatch,
});
