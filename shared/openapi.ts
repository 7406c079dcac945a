import * as z from 'zod';
import { PolicySchema } from '#domain/policy.ts';
import { ROUTES, routeKey } from '#infra/routes.ts';
import { OptoutLinkRequestSchema } from './links/links.ts';
import {
  AuditErasuresQuerySchema,
  AuditEventsQuerySchema,
  AuditRangeQuerySchema,
  SubjectAccessSchema,
} from './schemas/audit.ts';
import { ConsentGrantSchema, ConsentWithdrawSchema, SubjectLookupSchema } from './schemas/consents.ts';
import { ErasureListQuerySchema, ErasureRequestSchema } from './schemas/erasure.ts';
import { GateBatchSchema, GateCheckSchema } from './schemas/gate.ts';
import { SignalSchema } from './schemas/signals.ts';

/** The schema that validates each JSON route's body: the same objects the handlers parse with. */
export const REQUEST_BODIES: Record<string, z.ZodType> = {
  'POST /v1/consents': ConsentGrantSchema,
  'POST /v1/consents/withdraw': ConsentWithdrawSchema,
  'POST /v1/subjects/lookup': SubjectLookupSchema,
  'POST /v1/gate/check': GateCheckSchema,
  'POST /v1/gate/check-batch': GateBatchSchema,
  'POST /v1/erasure-requests': ErasureRequestSchema,
  'POST /v1/signals': SignalSchema,
  'PUT /v1/policy': PolicySchema,
  'POST /v1/subjects/access': SubjectAccessSchema,
  'POST /v1/optout-links': OptoutLinkRequestSchema,
};

/** The schema that validates each GET route's query string (same objects as the handlers). */
export const REQUEST_QUERIES: Record<string, z.ZodType> = {
  'GET /v1/erasure-requests': ErasureListQuerySchema,
  'GET /v1/audit/events': AuditEventsQuerySchema,
  'GET /v1/audit/verify': AuditRangeQuerySchema,
  'GET /v1/audit/summary': AuditRangeQuerySchema,
  'GET /v1/audit/erasures': AuditErasuresQuerySchema,
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

/** Schemas shown as components (not tied to a single route). */
const COMPONENTS: Record<string, z.ZodType> = { Policy: PolicySchema };

const jsonSchema = (schema: z.ZodType) =>
  z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any', target: 'draft-2020-12' });

const problem = { $ref: '#/components/responses/Problem' };

/** The OpenAPI 3.1 document of the route table. */
export function openApiDocument(serverUrl?: string) {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of ROUTES) {
    const body = REQUEST_BODIES[routeKey(route)];
    const query = REQUEST_QUERIES[routeKey(route)];
    const params = [
      ...[...route.path.matchAll(/\{(\w+)\}/g)].map((m) => ({
        name: m[1],
        in: 'path',
        required: true,
        schema: { type: 'string' },
      })),
      ...(query ? queryParameters(query) : []),
    ];
    // Pages (self-service, dashboard) answer HTML; the API answers JSON (or NDJSON/CSV for the export).
    const page = !route.path.startsWith('/v1/') && route.path !== '/openapi.json';
    paths[route.path] ??= {};
    paths[route.path][route.method.toLowerCase()] = {
      summary: route.summary,
      operationId: `${route.method.toLowerCase()}${route.path.replace(/[^a-zA-Z0-9]+(.)?/g, (_, c: string) => (c ? c.toUpperCase() : ''))}`,
      ...(route.scope ? { security: [{ apiKey: [route.scope] }], 'x-scope': route.scope } : { security: [] }),
      ...(params.length ? { parameters: params } : {}),
      ...(body
        ? { requestBody: { required: true, content: { 'application/json': { schema: jsonSchema(body) } } } }
        : {}),
      responses: {
        '200': page ? { description: 'An HTML page', content: { 'text/html': {} } } : { description: 'OK' },
        '400': problem,
        ...(route.scope ? { '401': problem, '403': problem } : {}),
        '503': problem,
      },
    };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'consent-gate',
      version: '1.0.0',
      description: 'GDPR consent ledger and pre-send gate for WhatsApp, SMS, e-mail, voice and push marketing.',
    },
    ...(serverUrl ? { servers: [{ url: serverUrl }] } : {}),
    paths,
    components: {
      securitySchemes: { apiKey: { type: 'http', scheme: 'bearer', description: 'API key with scopes' } },
      responses: {
        Problem: {
          description: 'RFC 9457 problem document',
          content: { 'application/problem+json': { schema: { type: 'object' } } },
        },
      },
      schemas: Object.fromEntries(Object.entries(COMPONENTS).map(([name, s]) => [name, jsonSchema(s)])),
    },
  };
}
