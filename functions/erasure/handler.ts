import { erasureStatus } from '#domain/erasure.ts';
import { api } from '#http/api.ts';
import { dispatch } from '#http/dispatch.ts';
import { NotFoundError } from '#http/errors.ts';
import { parseOrThrow } from '#http/validation.ts';
import { resolveSubject } from '#shared/identity/resolve.ts';
import { ErasureListQuerySchema, ErasureRequestSchema } from '#shared/schemas/erasure.ts';
import { getDb } from '#store/db.ts';
import {
  type ErasureRequest,
  eraseSubject,
  getErasureRequest,
  listErasureRequests,
  markErasureCompleted,
  receiveErasureRequest,
} from '#store/erasure.ts';

const view = (request: ErasureRequest, now = Date.now()) => ({
  ...request,
  status: erasureStatus(request, now),
  completedAt: request.completedAt ?? null,
});

/** Carries out a received request: every subject erased to a tombstone, then the request completed. */
async function complete(tenant: string, request: ErasureRequest): Promise<ErasureRequest> {
  const db = getDb();
  const now = new Date().toISOString();
  for (const subjectKey of request.subjectKeys) await eraseSubject(db, tenant, subjectKey, request.requestId, now);
  return markErasureCompleted(db, tenant, request.requestId, now);
}

/**
 * POST /v1/erasure-requests — from receipt the gate blocks the subjects (`erasure_pending`); the request
 * is due one month later. `immediate: true` erases at once (`subject_erased`).
 */
export const create = api(
  { scope: 'subjects:manage', body: ErasureRequestSchema, idempotent: true },
  async ({ body, tenant }) => {
    const resolved = await Promise.all(
      body.subjects.map((s, i) => resolveSubject(tenant, s, undefined, `subjects.${i}`)),
    );
    const now = new Date().toISOString();
    let request = await receiveErasureRequest(
      getDb(),
      tenant,
      {
        subjects: resolved.map(({ subjectKey, identifier }) => ({ subjectKey, kind: identifier.kind })),
        requestedVia: body.requestedVia,
        reference: body.reference,
      },
      now,
    );
    if (body.immediate) request = await complete(tenant, request);
    return { status: 202, body: view(request) };
  },
);

/** POST /v1/erasure-requests/{requestId}/complete — carry out a received request now. */
export const completeNow = api({ scope: 'subjects:manage', idempotent: true }, async ({ event, tenant }) => {
  const request = await getErasureRequest(getDb(), tenant, event.pathParameters?.requestId ?? '');
  if (!request) throw new NotFoundError('no such erasure request', 'erasure_request_not_found');
  return { status: 200, body: view(request.status === 'completed' ? request : await complete(tenant, request)) };
});

/** GET /v1/erasure-requests/{requestId} */
export const getOne = api({ scope: 'subjects:manage' }, async ({ event, tenant }) => {
  const request = await getErasureRequest(getDb(), tenant, event.pathParameters?.requestId ?? '');
  if (!request) throw new NotFoundError('no such erasure request', 'erasure_request_not_found');
  return { status: 200, body: view(request) };
});

/** GET /v1/erasure-requests?status=received|completed|overdue — received ones in due-date order. */
export const list = api({ scope: 'subjects:manage' }, async ({ event, tenant }) => {
  const query = parseOrThrow(ErasureListQuerySchema, event.queryStringParameters ?? {}, 'query');
  const db = getDb();
  const now = new Date();
  const wanted = query.status ?? 'all';
  const received =
    wanted === 'completed'
      ? []
      : await listErasureRequests(db, tenant, 'received', {
          limit: query.limit,
          ...(wanted === 'overdue' ? { dueBefore: now.toISOString() } : {}),
        });
  const completed =
    wanted === 'all' || wanted === 'completed'
      ? await listErasureRequests(db, tenant, 'completed', { limit: query.limit })
      : [];
  const requests = [...received, ...completed].slice(0, query.limit).map((r) => view(r, now.getTime()));
  return { status: 200, body: { requests } };
});

export const handler = dispatch({
  'POST /v1/erasure-requests': create,
  'GET /v1/erasure-requests': list,
  'GET /v1/erasure-requests/{requestId}': getOne,
  'POST /v1/erasure-requests/{requestId}/complete': completeNow,
});
