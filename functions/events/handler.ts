import { CHANGE_TYPES } from '#domain/changes.ts';
import { api } from '#http/api.ts';
import { dispatch } from '#http/dispatch.ts';
import { NotFoundError, ValidationError } from '#http/errors.ts';
import type { ApiEvent } from '#http/middlewares.ts';
import { parseOrThrow } from '#http/validation.ts';
import { checkEndpointUrl, UnsafeUrlError, urlPolicyFromEnv } from '#shared/net/safe-url.ts';
import {
  ChangesQuerySchema,
  DeliveriesQuerySchema,
  EndpointCreateSchema,
  EndpointIdSchema,
  ReplaySchema,
  RotateQuerySchema,
} from '#shared/schemas/events.ts';
import {
  changesPage,
  createEndpoint,
  endpointView,
  replay,
  rotateSecret,
  testEndpoint,
} from '#shared/services/event-endpoints.ts';
import { getDb } from '#store/db.ts';
import { deleteEndpoint, getEndpoint, listDeliveries, listEndpoints } from '#store/event-endpoints.ts';

/**
 * How long after its recording time a change enters the feed (an event takes its `recordedAt` before its
 * transaction commits, and the index follows the table): 2 s; `CHANGES_SETTLE_MS` for tests.
 */
const settleMs = () => Number(process.env.CHANGES_SETTLE_MS ?? 2_000);

/** The endpoint named in the path, or 404 `endpoint_not_found`. */
async function endpointOf(event: ApiEvent, tenant: string) {
  const id = parseOrThrow(EndpointIdSchema, event.pathParameters?.id, 'id');
  const endpoint = await getEndpoint(getDb(), tenant, id);
  if (!endpoint) throw new NotFoundError(`no event endpoint ${id}`, 'endpoint_not_found');
  return endpoint;
}

/** POST /v1/event-endpoints — 201 with the signing secret, shown this once; an unsafe URL → 400 `unsafe_url`. */
export const create = api(
  'POST /v1/event-endpoints',
  { body: EndpointCreateSchema, idempotent: true },
  async ({ body, tenant }) => {
    try {
      checkEndpointUrl(body.url, urlPolicyFromEnv());
    } catch (error) {
      if (!(error instanceof UnsafeUrlError)) throw error;
      throw new ValidationError(`url: ${error.message}`, [{ path: 'url', message: error.message }], 'unsafe_url');
    }
    const input = { url: body.url, types: body.types ?? [...CHANGE_TYPES], description: body.description };
    return { status: 201, body: await createEndpoint(getDb(), tenant, input, new Date().toISOString()) };
  },
);

/** GET /v1/event-endpoints — the tenant's endpoints (no secrets). */
export const list = api('GET /v1/event-endpoints', {}, async ({ tenant }) => ({
  status: 200,
  body: { endpoints: (await listEndpoints(getDb(), tenant)).map((e) => endpointView(e)) },
}));

/** GET /v1/event-endpoints/{id}. */
export const read = api('GET /v1/event-endpoints/{id}', {}, async ({ event, tenant }) => ({
  status: 200,
  body: endpointView(await endpointOf(event, tenant)),
}));

/** DELETE /v1/event-endpoints/{id} — 204; nothing more is sent to it. */
export const remove = api('DELETE /v1/event-endpoints/{id}', {}, async ({ event, tenant }) => {
  const endpoint = await endpointOf(event, tenant);
  if (!(await deleteEndpoint(getDb(), tenant, endpoint.id)))
    throw new NotFoundError(`no event endpoint ${endpoint.id}`, 'endpoint_not_found');
  return { statusCode: 204, headers: {}, body: '' };
});

/** POST /v1/event-endpoints/{id}/rotate-secret?overlapHours= — the new secret, shown once; both sign during the overlap. */
export const rotate = api(
  'POST /v1/event-endpoints/{id}/rotate-secret',
  { query: RotateQuerySchema, idempotent: true },
  async ({ event, query, tenant }) => {
    const endpoint = await endpointOf(event, tenant);
    const rotated = await rotateSecret(getDb(), tenant, endpoint, query.overlapHours, new Date().toISOString());
    if (!rotated) throw new NotFoundError(`no event endpoint ${endpoint.id}`, 'endpoint_not_found');
    return { status: 200, body: rotated };
  },
);

/** GET /v1/event-endpoints/{id}/deliveries?status=&limit=&cursor= — newest first; next page in X-Next-Cursor. */
export const deliveries = api(
  'GET /v1/event-endpoints/{id}/deliveries',
  { query: DeliveriesQuerySchema },
  async ({ event, query, tenant }) => {
    const endpoint = await endpointOf(event, tenant);
    const page = await listDeliveries(getDb(), tenant, endpoint.id, query);
    return {
      status: 200,
      body: {
        deliveries: page.deliveries.map((d) => ({
          webhookId: d.webhookId,
          type: d.type,
          eventId: d.eventId,
          status: d.status,
          attempts: d.attempts,
        })),
      },
      headers: page.next ? { 'x-next-cursor': page.next } : undefined,
    };
  },
);

/** POST /v1/event-endpoints/{id}/replay {"since"} — 202 with how many changes were queued again. */
export const replayChanges = api(
  'POST /v1/event-endpoints/{id}/replay',
  { body: ReplaySchema, idempotent: true },
  async ({ event, body, tenant }) => {
    const endpoint = await endpointOf(event, tenant);
    const now = new Date().toISOString();
    if (body.since > now)
      throw new ValidationError(
        'since: must not be in the future',
        [{ path: 'since', message: 'must not be in the future' }],
        'time_in_future',
      );
    return { status: 202, body: await replay(getDb(), tenant, endpoint, body.since, now) };
  },
);

/** POST /v1/event-endpoints/{id}/test — sends one signed `endpoint.test` now; 200 with how it went. */
export const test = api('POST /v1/event-endpoints/{id}/test', { idempotent: true }, async ({ event, tenant }) => {
  const endpoint = await endpointOf(event, tenant);
  return {
    status: 200,
    body: await testEndpoint(getDb(), tenant, endpoint, urlPolicyFromEnv(), new Date().toISOString()),
  };
});

/** GET /v1/changes?after=&limit= — the tenant's changes in recordedAt order; `next` always present. */
export const changes = api('GET /v1/changes', { query: ChangesQuerySchema }, async ({ query, tenant }) => ({
  status: 200,
  body: await changesPage(getDb(), tenant, query, new Date(), settleMs()),
}));

export const handler = dispatch('events', [
  create,
  list,
  read,
  remove,
  rotate,
  deliveries,
  replayChanges,
  test,
  changes,
]);
