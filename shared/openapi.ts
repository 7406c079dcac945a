import * as z from 'zod';
import type { RouteHandler } from '#http/api.ts';
import { type ResponseSpec, type RouteResponses, routeResponses } from '#http/responses.ts';
import { ROUTES, type Route, routeKey } from '#http/routes.ts';
import { SubjectSchema } from '#shared/identity/subject.ts';

type JsonSchema = Record<string, unknown>;

/** "Exactly one of phone, email, externalId, waUserId; country only with phone", which zod checks in code. */
const SUBJECT_RULES = {
  oneOf: ['phone', 'email', 'externalId', 'waUserId'].map((name) => ({ required: [name] })),
  dependentRequired: { country: ['phone'] },
};

/** A zod schema as JSON Schema 2020-12; `io` picks the request (input) or response (output) side. */
const jsonSchema = (schema: z.ZodType, io: 'input' | 'output' = 'input') => {
  const out = z.toJSONSchema(schema, {
    io,
    unrepresentable: 'any',
    target: 'draft-2020-12',
    override: (ctx) => {
      if (ctx.zodSchema === SubjectSchema) Object.assign(ctx.jsonSchema, SUBJECT_RULES);
    },
  }) as JsonSchema;
  delete out.$schema;
  return out;
};

/** Query parameters from an object schema: one per property. */
function queryParameters(schema: z.ZodType) {
  const json = jsonSchema(schema) as { properties?: Record<string, unknown>; required?: string[] };
  return Object.entries(json.properties ?? {}).map(([name, property]) => ({
    name,
    in: 'query',
    required: json.required?.includes(name) ?? false,
    schema: property,
  }));
}

const RETRY_AFTER = { description: 'Seconds to wait before retrying', required: true };

/** Routes that never read the store: no 503 `store_unavailable`. */
const NO_STORE = new Set(['GET /dashboard', 'GET /dashboard/assets/{file}', 'GET /openapi.json']);

/**
 * The responses every route of a kind shares, from what its handler does: API keys (401/403), a JSON
 * body (400 malformed_json/validation_failed, 413, 415), a query (400), `Idempotency-Key` (409), the
 * store (503 with Retry-After), and the 500 that never explains itself.
 */
function sharedResponses(route: Route, handler: RouteHandler | undefined): Record<number, ResponseSpec> {
  const shared: Record<number, ResponseSpec> = {
    500: { description: 'Unexpected error (logged, never explained)', codes: ['internal_error'] },
  };
  const add = (status: number, description: string, codes: string[], headers?: ResponseSpec['headers']) => {
    const current = shared[status];
    shared[status] = current
      ? { ...current, codes: [...(current.codes ?? []), ...codes], headers: { ...current.headers, ...headers } }
      : { description, codes, ...(headers ? { headers } : {}) };
  };
  if (route.scope) {
    add(401, 'Missing, unknown or revoked API key', ['unauthorized'], {
      'WWW-Authenticate': { description: 'Bearer', required: true },
    });
    add(403, `The API key lacks the scope ${route.scope}`, ['forbidden']);
  }
  // Every query string and path parameter is checked for ill-formed Unicode (and path parameters for size)
  // before the route's own code runs (shared/http/validation.ts).
  add(400, 'Invalid request', ['validation_failed', 'invalid_unicode']);
  if (handler?.body) {
    add(400, 'Invalid request', ['malformed_json', 'validation_failed']);
    add(415, 'The body is not application/json', ['unsupported_media_type']);
  }
  if (route.method === 'POST' || route.method === 'PUT') {
    add(413, 'The body is larger than 1 MiB', ['payload_too_large']);
  }
  if (handler?.query) add(400, 'Invalid query', ['validation_failed']);
  if (handler?.idempotent) {
    add(400, 'Invalid request', ['validation_failed']);
    add(409, 'Idempotency-Key conflict', ['idempotency_key_reused', 'idempotency_in_progress']);
  }
  if (!NO_STORE.has(routeKey(route))) {
    add(
      503,
      'The store is unavailable (fail closed: do not send); retry later',
      ['store_unavailable', 'write_contention'],
      {
        'Retry-After': RETRY_AFTER,
      },
    );
  }
  return shared;
}

/** The route's own responses over the shared ones: codes and headers add up. */
function mergeResponses(own: RouteResponses['responses'], shared: Record<number, ResponseSpec>) {
  const merged: Record<number, ResponseSpec> = { ...shared };
  for (const [status, spec] of Object.entries(own)) {
    const base = merged[Number(status)];
    if (!base || spec.content) {
      merged[Number(status)] = spec;
      continue;
    }
    merged[Number(status)] = {
      description: spec.description,
      codes: [...new Set([...(base.codes ?? []), ...(spec.codes ?? [])])],
      headers: { ...base.headers, ...spec.headers },
    };
  }
  return merged;
}

const headerObjects = (headers: ResponseSpec['headers']) =>
  headers && Object.keys(headers).length
    ? {
        headers: Object.fromEntries(
          Object.entries(headers).map(([name, h]) => [
            name,
            { description: h.description, required: h.required ?? false, schema: { type: 'string' } },
          ]),
        ),
      }
    : {};

/** One response object: its media types with their schemas, its problem codes, its headers. */
function responseObject(spec: ResponseSpec, codes: Set<string>) {
  let content: Record<string, unknown>;
  if (spec.content) {
    content = Object.fromEntries(
      Object.entries(spec.content).map(([media, body]) => [
        media,
        { schema: body === 'text' ? { type: 'string' } : jsonSchema(body, 'output') },
      ]),
    );
  } else if (!spec.codes?.length) {
    // No body (204, a HEAD).
    return { description: spec.description, ...headerObjects(spec.headers) };
  } else {
    for (const code of spec.codes ?? []) codes.add(code);
    content = {
      'application/problem+json': {
        schema: {
          allOf: [
            { $ref: '#/components/schemas/Problem' },
            { properties: { code: { enum: [...new Set(spec.codes)] } } },
          ],
        },
      },
    };
  }
  return { description: spec.description, ...headerObjects(spec.headers), content };
}

const IDEMPOTENCY_KEY = {
  name: 'Idempotency-Key',
  in: 'header',
  required: false,
  description:
    'Any 1-255 characters, unique per write: a retry with the same key and body gets the first response (Idempotent-Replayed: true) and records nothing new',
  schema: { type: 'string', minLength: 1, maxLength: 255 },
};

/** The RFC 9457 problem document, with every `code` the API uses. */
const problemSchema = (codes: string[]) => ({
  type: 'object',
  required: ['type', 'title', 'status', 'code', 'detail'],
  properties: {
    type: { type: 'string', format: 'uri', description: 'https://consent-gate.dev/problems/{code}' },
    title: { type: 'string' },
    status: { type: 'integer', minimum: 400, maximum: 599 },
    code: { type: 'string', enum: codes, description: 'Stable machine-readable code' },
    detail: { type: 'string', description: 'What was wrong, for a person' },
    instance: { type: 'string' },
    errors: {
      type: 'array',
      description: 'Field-level problems: the dotted path into the request and what is wrong there',
      items: {
        type: 'object',
        required: ['path', 'message'],
        properties: { path: { type: 'string' }, message: { type: 'string' } },
        additionalProperties: false,
      },
    },
  },
  additionalProperties: false,
});

/** The codes every route may answer without reaching one (no such path, another method). */
const ROUTING_CODES = ['not_found', 'method_not_allowed'];

/**
 * The OpenAPI 3.1 document of the route table: the request schemas of the `handlers` that serve the
 * routes (the same schema objects that validate the requests) and each route's responses
 * (`shared/http/responses.ts`). Throws when a route has no response specification.
 */
export function openApiDocument(handlers: readonly RouteHandler[], serverUrl?: string) {
  const byRoute = new Map(handlers.map((handler) => [handler.route, handler]));
  const codes = new Set<string>(ROUTING_CODES);
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of ROUTES) {
    const key = routeKey(route);
    const spec = routeResponses(key);
    if (!spec) throw new Error(`${key} has no response specification in shared/http/responses.ts`);
    const handler = byRoute.get(key);
    const { body, query } = handler ?? {};
    const params = [
      ...[...route.path.matchAll(/\{(\w+)\}/g)].map((m) => ({
        name: m[1],
        in: 'path',
        required: true,
        schema: { type: 'string' },
      })),
      ...(query ? queryParameters(query) : []),
      ...(spec.parameters ?? []),
      ...(handler?.idempotent ? [IDEMPOTENCY_KEY] : []),
    ];
    const responses = mergeResponses(spec.responses, sharedResponses(route, handler));
    if (handler?.idempotent) {
      for (const [status, response] of Object.entries(responses)) {
        if (Number(status) < 300) {
          response.headers = {
            ...response.headers,
            'Idempotent-Replayed': { description: '"true" when this is the stored response of an earlier request' },
          };
        }
      }
    }
    const requestBody = body
      ? { required: true, content: { 'application/json': { schema: jsonSchema(body) } } }
      : spec.requestBody;
    paths[route.path] ??= {};
    paths[route.path][route.method.toLowerCase()] = {
      summary: route.summary,
      operationId: `${route.method.toLowerCase()}${route.path.replace(/[^a-zA-Z0-9]+(.)?/g, (_, c: string) => (c ? c.toUpperCase() : ''))}`,
      ...(route.scope ? { security: [{ apiKey: [route.scope] }], 'x-scope': route.scope } : { security: [] }),
      ...(params.length ? { parameters: params } : {}),
      ...(requestBody ? { requestBody } : {}),
      responses: Object.fromEntries(
        Object.entries(responses)
          .sort(([a], [b]) => Number(a) - Number(b))
          .map(([status, response]) => [status, responseObject(response, codes)]),
      ),
    };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'consent-gate',
      version: '1.0.0',
      description: 'GDPR consent ledger and pre-send gate for WhatsApp, SMS, e-mail, voice and push marketing.',
      license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
    },
    servers: [
      { url: serverUrl ?? '/', description: serverUrl ? 'This deployment' : 'The deployment serving this document' },
    ],
    paths,
    components: {
      securitySchemes: { apiKey: { type: 'http', scheme: 'bearer', description: 'API key with scopes' } },
      schemas: { Problem: problemSchema([...codes].sort()) },
    },
  };
}
