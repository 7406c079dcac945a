import { recordSignal } from '#domain/likelihood.ts';
import { api } from '#http/api.ts';
import { dispatch } from '#http/dispatch.ts';
import { notInFuture } from '#http/validation.ts';
import { resolveSubject } from '#shared/identity/resolve.ts';
import { SignalSchema } from '#shared/schemas/signals.ts';
import { appendAcrossLinks } from '#shared/services/links.ts';
import { getDb } from '#store/db.ts';
import { getPolicy } from '#store/policy.ts';

/** POST /v1/signals — record a blocking signal; answers the channel's likelihood and level after it. */
export const record = api(
  'POST /v1/signals',
  { body: SignalSchema, idempotent: true },
  async ({ body, tenant, actor }) => {
    const now = new Date().toISOString();
    const observedAt = notInFuture(body.observedAt, 'observedAt', now) ?? now;
    const { subjectKey, identifier } = await resolveSubject(tenant, body.subject, body.channel);
    const db = getDb();
    const policy = await getPolicy(db, tenant);
    const input = { ...body, observedAt, source: 'api' };
    // A linked subject's likely block pauses its person's other identifiers too: written with it.
    const { result } = await appendAcrossLinks(
      db,
      tenant,
      subjectKey,
      (current) => recordSignal(current, input, policy, now),
      { kind: identifier.kind, actor, policy, now },
    );
    const { blockLikelihood, level, signals } = result.likelihood;
    return { status: 202, body: { subjectKey, channel: body.channel, blockLikelihood, level, signals } };
  },
);

export const handler = dispatch('signals', [record]);
