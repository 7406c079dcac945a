import { erasureStatus } from '#domain/erasure.ts';
import { api } from '#http/api.ts';
import { dispatch } from '#http/dispatch.ts';
import { NotFoundError } from '#http/errors.ts';
import { resolveSubject } from '#shared/identity/resolve.ts';
import { ErasureListQuerySchema, ErasureRequestSchema } from '#shared/schemas/erasure.ts';
import { getDb } from '#store/db.ts';
import {
  completeErasureRequest,
  type ErasureRequest,
  getErasureRequest,
  listErasures,
  receiveErasureRequest,
} from '#store/erasure.ts';

const view = (request: ErasureRequest, now = Date.now()) => ({
  ...request,
  status: erasureStatus(request, now),
  completedAt: request.completedAt ?? null,
});

/**
 * POST /v1/erasure-requests — from receipt the gate blocks the subjects (`erasure_pending`); the request
 * is due one month later. `immediate: true` erases at once (`subject_erased`).
 */
export const create = api(
  'POST /v1/erasure-requests',
  { body: ErasureRequestSchema, idempotent: true },
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
    if (body.immediate) request = await completeErasureRequest(getDb(), tenant, request);
    return { status: 202, body: view(request) };
  },
);

/** POST /v1/erasure-requests/{requestId}/complete — carry out a received request now. */
export const completeNow = api(
  'POST /v1/erasure-requests/{requestId}/complete',
  { idempotent: true },
  async ({ event, tenant }) => {
    const request = await getErasureRequest(getDb(), tenant, event.pathParameters?.requestId ?? '');
    if (!request) throw new NotFoundError('no such erasure request', 'erasure_request_not_found');
    return {
      status: 200,
      body: view(request.status === 'completed' ? request : await completeErasureRequest(getDb(), tenant, request)),
    };
  },
);

/** GET /v1/erasure-requests/{requestId} */
export const getOne = api('GET /v1/erasure-requests/{requestId}', {}, async ({ event, tenant }) => {
  const request = await getErasureRequest(getDb(), tenant, event.pathParameters?.requestId ?? '');
  if (!request) throw new NotFoundError('no such erasure request', 'erasure_request_not_found');
  return { status: 200, body: view(request) };
});

/** GET /v1/erasure-requests?status=received|completed|overdue — received ones in due-date order. */
export const list = api('GET /v1/erasure-requests', { query: ErasureListQuerySchema }, async ({ query, tenant }) => {
  const now = Date.now();
  const requests = (await listErasures(getDb(), tenant, query, now)).map((r) => view(r, now));
  return { status: 200, body: { requests } };
});

export const handler = dispatch('erasure', [create, list, getOne, completeNow]);
