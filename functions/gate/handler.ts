import { decide, type GateDecision } from '#domain/gate.ts';
import { TimeZoneSchema } from '#domain/policy.ts';
import { recordSend } from '#domain/sends.ts';
import type { SubjectState } from '#domain/subject-state.ts';
import type { Channel } from '#domain/vocabulary.ts';
import { api } from '#http/api.ts';
import { dispatch } from '#http/dispatch.ts';
import { ProblemError } from '#http/errors.ts';
import { parseOrThrow } from '#http/validation.ts';
import { type ResolvedSubject, resolveSubject } from '#shared/identity/resolve.ts';
import { SubjectSchema } from '#shared/identity/subject.ts';
import { newUlid } from '#shared/ids.ts';
import { countGateDecision, countGateDecisions } from '#shared/metrics.ts';
import { type GateBatch, GateBatchSchema, GateCheckSchema } from '#shared/schemas/gate.ts';
import { getDb } from '#store/db.ts';
import { getGatePolicy } from '#store/policy.ts';
import { appendChange, getState, getStates } from '#store/subjects.ts';

/**
 * POST /v1/gate/check — allow, block or defer one message. One strongly consistent read. With
 * `record: true` the decision is taken inside the append, from the state just read, and an allowed send
 * is counted in the same transaction (version-conditioned): parallel checks cannot exceed a cap; such a
 * check honours `Idempotency-Key` (a retry replays the decision and counts nothing). A read-only check
 * ignores the key: replaying its old answer could allow a send the person has since withdrawn.
 */
export const check = api(
  'POST /v1/gate/check',
  { body: GateCheckSchema, idempotent: (body) => body.record === true },
  async ({ body, tenant, actor }) => {
    const now = new Date().toISOString();
    const at = body.at ?? now;
    const { subjectKey, identifier } = await resolveSubject(tenant, body.subject, body.channel);
    const db = getDb();
    const req = { channel: body.channel, purpose: body.purpose, at, timezone: body.timezone };
    const decisionId = `dec_${newUlid()}`;
    if (!body.record) {
      const [state, policy] = await Promise.all([getState(db, tenant, subjectKey), getGatePolicy(db, tenant)]);
      const decision = decide(state, req, policy);
      countGateDecision(decision);
      return { status: 200, body: { ...decision, subjectKey, decisionId } };
    }
    const policy = await getGatePolicy(db, tenant);
    let decision: GateDecision | undefined;
    await appendChange(
      db,
      tenant,
      subjectKey,
      (current) => {
        decision = decide(current.version === 0 ? undefined : current, req, policy);
        return decision.decision === 'allow' ? recordSend(current, { ...req, decisionId }, policy, now) : null;
      },
      { kind: identifier.kind, actor },
    );
    countGateDecision(decision as GateDecision);
    return {
      status: 200,
      body: { ...(decision as GateDecision), subjectKey, decisionId, recorded: decision?.decision === 'allow' },
    };
  },
);

type BatchItem = (ResolvedSubject & { timezone?: string }) | ProblemError;

/** Validates and resolves one batch item; a bad item becomes the error of its slot. */
async function resolveItem(tenant: string, channel: Channel, item: GateBatch['items'][number], index: number) {
  try {
    const subject = parseOrThrow(SubjectSchema, item.subject, `items.${index}.subject`);
    const timezone = parseOrThrow(TimeZoneSchema.optional(), item.timezone, `items.${index}.timezone`);
    return { ...(await resolveSubject(tenant, subject, channel, `items.${index}.subject`)), timezone };
  } catch (error) {
    if (error instanceof ProblemError) return error;
    throw error;
  }
}

/** Items resolved per slice (one BatchGetItem's worth). */
const SLICE = 100;

/**
 * POST /v1/gate/check-batch — pre-flight a campaign: one result per item, in order; a bad item is an error in its slot.
 * Items are resolved (normalise + HMAC: CPU) a slice at a time and each slice's states are read while the
 * next slice is resolved, so a batch costs about its BatchGetItem calls rather than their sum with the hashing.
 */
export const checkBatch = api('POST /v1/gate/check-batch', { body: GateBatchSchema }, async ({ body, tenant }) => {
  const at = body.at ?? new Date().toISOString();
  const db = getDb();
  const resolved: BatchItem[] = [];
  const reads: Promise<Map<string, SubjectState>>[] = [];
  for (let start = 0; start < body.items.length; start += SLICE) {
    const slice = await Promise.all(
      body.items.slice(start, start + SLICE).map((item, i) => resolveItem(tenant, body.channel, item, start + i)),
    );
    resolved.push(...slice);
    const read = getStates(
      db,
      tenant,
      slice.flatMap((r) => (r instanceof ProblemError ? [] : [r.subjectKey])),
    );
    // Awaited below; this only keeps an early failure from counting as unhandled in the meantime.
    read.catch(() => {});
    reads.push(read);
    // Let the read go out (and its answer come in) before resolving the next slice.
    await new Promise((resolve) => setImmediate(resolve));
  }
  const [maps, policy] = await Promise.all([Promise.all(reads), getGatePolicy(db, tenant)]);
  const states = new Map(maps.flatMap((map) => [...map]));
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
  countGateDecisions(results.filter((r) => 'decision' in r));
  return { status: 200, body: { results, summary } };
});

export const handler = dispatch('gate', [check, checkBatch]);
