import { assertReceived, erasureStatus, keptOf } from '#domain/erasure.ts';
import type { Policy } from '#domain/policy.ts';
import { api } from '#http/api.ts';
import { dispatch } from '#http/dispatch.ts';
import { NotFoundError } from '#http/errors.ts';
import type { ApiEvent } from '#http/middlewares.ts';
import { parseOrThrow } from '#http/validation.ts';
import { resolveSubject } from '#shared/identity/resolve.ts';
import type { IdentifierKind } from '#shared/identity/subject.ts';
import { nextCursorHeader } from '#shared/schemas/common.ts';
import {
  ErasureCancelSchema,
  ErasureExtendSchema,
  ErasureListQuerySchema,
  ErasureRequestIdSchema,
  ErasureRequestSchema,
} from '#shared/schemas/erasure.ts';
import { membersOf } from '#shared/services/links.ts';
import { getDb } from '#store/db.ts';
import {
  cancelErasureRequest,
  completeErasureRequest,
  type ErasureRequest,
  extendErasureRequest,
  getErasureRequest,
  pageErasures,
  receiveErasureRequest,
} from '#store/erasure.ts';
import { getPolicy } from '#store/policy.ts';

const view = (request: ErasureRequest, policy: Policy, now = Date.now()) => ({
  ...request,
  status: erasureStatus(request, now),
  completedAt: request.completedAt ?? null,
  kept: keptOf(request, policy.retention.proofDays),
});

/** The request a path names, with the tenant's policy (for the views); 404 `erasure_request_not_found`. */
async function requestOf(event: ApiEvent, tenant: string) {
  const db = getDb();
  const [request, policy] = await Promise.all([
    getErasureRequest(db, tenant, parseOrThrow(ErasureRequestIdSchema, event.pathParameters?.requestId, 'requestId')),
    getPolicy(db, tenant),
  ]);
  if (!request) throw new NotFoundError('no such erasure request', 'erasure_request_not_found');
  return { db, request, policy };
}

/**
 * POST /v1/erasure-requests — from receipt the gate blocks the subjects (`erasure_pending`); the request
 * is due one month later. `immediate: true` erases at once (`subject_erased`).
 */
export const create = api(
  'POST /v1/erasure-requests',
  { body: ErasureRequestSchema, idempotent: true },
  async ({ body, tenant, actor }) => {
    const resolved = await Promise.all(
      body.subjects.map((s, i) => resolveSubject(tenant, s, undefined, `subjects.${i}`)),
    );
    const db = getDb();
    const subjects: { subjectKey: string; kind?: IdentifierKind }[] = resolved.map(({ subjectKey, identifier }) => ({
      subjectKey,
      kind: identifier.kind,
    }));
    if (body.includeLinked) {
      const linked = await Promise.all(subjects.map((s) => membersOf(db, tenant, s.subjectKey)));
      subjects.push(...linked.flat().filter((m) => !subjects.some((s) => s.subjectKey === m.subjectKey)));
    }
    const now = new Date().toISOString();
    let request = await receiveErasureRequest(
      db,
      tenant,
      {
        subjects: [...new Map(subjects.map((s) => [s.subjectKey, s])).values()],
        requestedVia: body.requestedVia,
        reference: body.reference,
      },
      now,
      actor,
    );
    if (body.immediate) request = await completeErasureRequest(db, tenant, request, actor);
    return { status: 202, body: view(request, await getPolicy(db, tenant)) };
  },
);

/** POST /v1/erasure-requests/{requestId}/complete — carry out a received request now (not a cancelled one). */
export const completeNow = api(
  'POST /v1/erasure-requests/{requestId}/complete',
  { idempotent: true },
  async ({ event, tenant, actor }) => {
    const { db, request, policy } = await requestOf(event, tenant);
    if (request.status === 'completed') return { status: 200, body: view(request, policy) };
    assertReceived(request);
    return { status: 200, body: view(await completeErasureRequest(db, tenant, request, actor), policy) };
  },
);

/**
 * POST /v1/erasure-requests/{requestId}/cancel — the person takes the request back: the subjects are no
 * longer `erasure_pending` (each gets an `erasure.cancelled` event). A completed request → 409.
 */
export const cancel = api(
  'POST /v1/erasure-requests/{requestId}/cancel',
  { body: ErasureCancelSchema, idempotent: true },
  async ({ body, event, tenant, actor }) => {
    const { db, request, policy } = await requestOf(event, tenant);
    const now = new Date().toISOString();
    const cancelled = await cancelErasureRequest(db, tenant, request, { reason: body.reason, now, actor });
    return { status: 200, body: view(cancelled, policy) };
  },
);

/** POST /v1/erasure-requests/{requestId}/extend — once, within the first month, by 1 or 2 months (Art. 12(3)). */
export const extend = api(
  'POST /v1/erasure-requests/{requestId}/extend',
  { body: ErasureExtendSchema, idempotent: true },
  async ({ body, event, tenant }) => {
    const { db, request, policy } = await requestOf(event, tenant);
    const extended = await extendErasureRequest(db, tenant, request, body, new Date().toISOString());
    return { status: 200, body: view(extended, policy) };
  },
);

/** GET /v1/erasure-requests/{requestId} — with, once completed, what is kept, why and until when. */
export const getOne = api('GET /v1/erasure-requests/{requestId}', {}, async ({ event, tenant }) => {
  const { request, policy } = await requestOf(event, tenant);
  return { status: 200, body: view(request, policy) };
});

/**
 * GET /v1/erasure-requests?status=received|completed|overdue|cancelled&limit=&cursor= — received ones in
 * due-date order, then completed, then cancelled; the next page's cursor in `X-Next-Cursor`.
 */
export const list = api('GET /v1/erasure-requests', { query: ErasureListQuerySchema }, async ({ query, tenant }) => {
  const db = getDb();
  const now = Date.now();
  const [page, policy] = await Promise.all([
    pageErasures(db, tenant, query, now, { limit: query.limit, cursor: query.cursor }),
    getPolicy(db, tenant),
  ]);
  return {
    status: 200,
    body: { requests: page.requests.map((r) => view(r, policy, now)) },
    headers: nextCursorHeader(page.nextCursor),
  };
});

export const handler = dispatch('erasure', [create, list, getOne, completeNow, cancel, extend]);
