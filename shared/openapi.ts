import * as z from 'zod';
import { PolicySchema } from '#domain/policy.ts';
import type { RouteHandler } from '#http/api.ts';
import { ROUTES, routeKey } from '#http/routes.ts';

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

/**
 * The OpenAPI 3.1 document of the route table, with the request schemas of the `handlers` that serve
 * the routes (the same schema objects that validate the requests).
 */
export function openApiDocument(handlers: readonly RouteHandler[], serverUrl?: string) {
  const byRoute = new Map(handlers.map((handler) => [handler.route, handler]));
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of ROUTES) {
    const { body, query } = byRoute.get(routeKey(route)) ?? {};
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
