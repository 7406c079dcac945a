import { randomBytes } from 'node:crypto';
import { api, publicRoute } from '#http/api.ts';
import { dispatch } from '#http/dispatch.ts';
import { NotFoundError, PayloadTooLargeError } from '#http/errors.ts';
import { type ApiEvent, MAX_BODY_BYTES, rawBody } from '#http/middlewares.ts';
import type { HttpResult } from '#http/problem.ts';
import { parseOrThrow } from '#http/validation.ts';
import { ConnectorCreateSchema, ConnectorIdSchema } from '#shared/schemas/connectors.ts';
import { openSecret, sealSecret } from '#shared/secret-box.ts';
import { InvalidSignatureError, receiveProviderCall } from '#shared/services/connector-calls.ts';
import {
  type ConnectorRecord,
  type ConnectorSummary,
  connectorSecretContext,
  deleteConnector,
  getConnector,
  listConnectors,
  putConnector,
} from '#store/connectors.ts';
import { getDb } from '#store/db.ts';

/** Where providers post: `PUBLIC_BASE_URL` (as the self-service links), else the API's own domain. */
const baseUrl = (event: ApiEvent) =>
  (process.env.PUBLIC_BASE_URL || `https://${event.requestContext.domainName}`).replace(/\/+$/, '');

const webhookUrl = (event: ApiEvent, id: string) => `${baseUrl(event)}/v1/connectors/${id}/events`;

/** A connector as the API shows it: never its secrets. */
const view = (event: ApiEvent, c: ConnectorSummary) => ({
  id: c.id,
  provider: c.provider,
  webhookUrl: webhookUrl(event, c.id),
  purposeMap: c.purposeMap,
  createdAt: c.createdAt,
});

const notFound = (id: string) => new NotFoundError(`no connector ${id} in this tenant`, 'connector_not_found');

/** POST /v1/connectors — a connector for one provider: 201 with the URL to give the provider. */
export const create = api('POST /v1/connectors', { body: ConnectorCreateSchema, idempotent: true }, async (req) => {
  const { body, tenant, event } = req;
  const id = `con_${randomBytes(16).toString('base64url')}`;
  const record: ConnectorRecord = {
    id,
    tenant,
    provider: body.provider,
    purposeMap: body.purposeMap,
    createdAt: new Date().toISOString(),
    sealedSecrets: await sealSecret(tenant, connectorSecretContext(id), JSON.stringify(body.secrets)),
  };
  await putConnector(getDb(), record);
  return { status: 201, body: view(event, record) };
});

/** GET /v1/connectors — the tenant's connectors, oldest first (no secrets). */
export const list = api('GET /v1/connectors', {}, async ({ tenant, event }) => ({
  status: 200,
  body: { connectors: (await listConnectors(getDb(), tenant)).map((c) => view(event, c)) },
}));

/** GET /v1/connectors/{id} — one connector (no secrets); 404 `connector_not_found`. */
export const read = api('GET /v1/connectors/{id}', {}, async ({ tenant, event }) => {
  const id = parseOrThrow(ConnectorIdSchema, event.pathParameters?.id, 'id');
  const connector = await getConnector(getDb(), id);
  if (!connector || connector.tenant !== tenant) throw notFound(id);
  return { status: 200, body: view(event, connector) };
});

/** DELETE /v1/connectors/{id} — the provider's calls are refused from then on (401); 204. */
export const remove = api('DELETE /v1/connectors/{id}', {}, async ({ tenant, event }) => {
  const id = parseOrThrow(ConnectorIdSchema, event.pathParameters?.id, 'id');
  if (!(await deleteConnector(getDb(), tenant, id))) throw notFound(id);
  return { statusCode: 204, headers: {}, body: '' } satisfies HttpResult;
});

/**
 * POST /v1/connectors/{id}/events — the provider's own calls, no API key: the provider's signature decides.
 * An unknown id and a bad signature get the same 401 (docs/connectors.md, "Answers").
 */
export const receive = publicRoute('POST /v1/connectors/{id}/events', async (event) => {
  const body = rawBody(event);
  if (body.length > MAX_BODY_BYTES) throw new PayloadTooLargeError(MAX_BODY_BYTES);
  const id = ConnectorIdSchema.safeParse(event.pathParameters?.id);
  const db = getDb();
  const connector = id.success ? await getConnector(db, id.data) : undefined;
  if (!connector) throw new InvalidSignatureError();
  const secrets = JSON.parse(
    await openSecret(connector.tenant, connectorSecretContext(connector.id), connector.sealedSecrets),
  );
  const query = event.rawQueryString ? `?${event.rawQueryString}` : '';
  return receiveProviderCall(db, connector, secrets, {
    body,
    headers: event.headers ?? {},
    url: `${webhookUrl(event, connector.id)}${query}`,
  });
});

export const handler = dispatch('connectors', [create, list, read, remove, receive]);
