import { readdirSync } from 'node:fs';
import type { Context } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import type { RouteHandler } from '#http/api.ts';
import type { FunctionHandler } from '#http/dispatch.ts';
import type { ApiEvent } from '#http/middlewares.ts';
import { routeResponses } from '#http/responses.ts';
import { FUNCTIONS, ROUTES, type Route, routeKey } from '#http/routes.ts';
import { SCOPES } from '#shared/auth/api-keys.ts';
import { openApiDocument } from '#shared/openapi.ts';

/*
 * The route table, the handlers and the OpenAPI document agree. Every `functions/<name>/handler.ts` is
 * loaded as Lambda loads it: a handler declared for a route that is not in the table, public where the
 * table gives a scope (or the reverse), or a function whose handlers are not exactly its routes of the
 * table, throws right here.
 */
const folders = readdirSync(new URL('../../../functions', import.meta.url)).sort();
const loaded = new Map<string, FunctionHandler>();
for (const folder of folders) loaded.set(folder, (await import(`../../../functions/${folder}/handler.ts`)).handler);

const functions = [...loaded].filter(([, handler]) => 'routes' in handler);
const handlers = new Map<string, RouteHandler>(
  functions.flatMap(([, fn]) => fn.routes.map((handler) => [handler.route, handler])),
);
const handlerOf = (route: Route) => handlers.get(routeKey(route)) as RouteHandler;
const functionOf = (route: Route) => loaded.get(route.fn) as FunctionHandler;

describe('the route table and the handlers', () => {
  it('has one function folder per function of the table; only the authorizer, the scheduled jobs and the change-event pipeline serve no route', () => {
    expect(functions.map(([folder]) => folder)).toEqual([...FUNCTIONS].sort());
    for (const [folder, handler] of functions) expect(handler.fn).toBe(folder);
    expect(folders.filter((folder) => !functions.some(([name]) => name === folder))).toEqual([
      'authorizer',
      'delivery',
      'dispatcher',
      'retention',
      'sealer',
    ]);
  });

  it('serves every route by one handler of the function the table names, and nothing else', () => {
    for (const [folder, handler] of functions) {
      const declared = handler.routes.map((h) => h.route).sort();
      const table = ROUTES.filter((route) => route.fn === folder)
        .map(routeKey)
        .sort();
      expect(declared, folder).toEqual(table);
    }
  });

  it.each(ROUTES.filter((route) => route.scope))(
    'answers $method $path with 401 without a key and 403 without the scope $scope',
    async (route) => {
      const event = (scopes?: string[]) =>
        ({
          routeKey: routeKey(route),
          rawPath: route.path,
          headers: {},
          requestContext: {
            http: { method: route.method, path: route.path },
            authorizer: { lambda: scopes ? { tenant: 't_routes', scopes: scopes.join(','), keyId: 'k' } : {} },
          },
        }) as unknown as ApiEvent;
      const call = (scopes?: string[]) => functionOf(route)(event(scopes), {} as Context);
      expect((await call()).statusCode).toBe(401);
      const forbidden = await call(SCOPES.filter((scope) => scope !== route.scope && scope !== 'admin'));
      expect(forbidden.statusCode).toBe(403);
      expect(JSON.parse(String(forbidden.body)).detail).toContain(`"${route.scope}"`);
    },
  );

  it('validates no JSON body on GET routes nor on raw-body routes', () => {
    for (const route of ROUTES.filter((r) => r.method === 'GET' || r.rawBody)) {
      expect(handlerOf(route).body, routeKey(route)).toBeUndefined();
    }
  });
});

describe('the OpenAPI document', () => {
  const document = openApiDocument([...handlers.values()]);

  it("shows each handler's own body and query schemas (or the raw body and parameters its specification names), and only those", () => {
    for (const route of ROUTES) {
      const operation = document.paths[route.path][route.method.toLowerCase()] as Record<string, unknown>;
      const spec = routeResponses(routeKey(route));
      const query = (operation.parameters as { in: string }[] | undefined)?.filter((p) => p.in === 'query') ?? [];
      const specQuery = spec?.parameters?.filter((p) => p.in === 'query') ?? [];
      expect('requestBody' in operation, routeKey(route)).toBe(Boolean(handlerOf(route).body ?? spec?.requestBody));
      expect(query.length > specQuery.length, routeKey(route)).toBe(Boolean(handlerOf(route).query));
    }
  });

  it('is what GET /openapi.json serves, with the schemas of every function', async () => {
    const docs = loaded.get('docs') as FunctionHandler;
    const event = { routeKey: 'GET /openapi.json', rawPath: '/openapi.json', headers: {}, requestContext: {} };
    const res = await docs(event as unknown as ApiEvent, {} as Context);
    expect(JSON.parse(String(res.body))).toEqual(document);
  });

  it('answers a HEAD route of the stack with the GET handler and no body', async () => {
    const docs = loaded.get('docs') as FunctionHandler;
    const event = { routeKey: 'HEAD /openapi.json', rawPath: '/openapi.json', headers: {}, requestContext: {} };
    const res = await docs(event as unknown as ApiEvent, {} as Context);
    expect(res.statusCode).toBe(200);
    expect(res.body).toBe('');
    expect(String(res.headers?.['content-type'])).toContain('json');
  });
});
