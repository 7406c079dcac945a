import type { Context } from 'aws-lambda';
import type { RouteHandler } from './api.ts';
import { MethodNotAllowedError, NotFoundError } from './errors.ts';
import type { ApiEvent } from './middlewares.ts';
import { type HttpResult, problemResponse } from './problem.ts';
import { answersHead, type FunctionName, matchRoute, ROUTES, routeKey, routeOf } from './routes.ts';

/** A response to HEAD: the GET's status and headers, no body. */
export const withoutBody = (result: HttpResult): HttpResult => ({ ...result, body: '', isBase64Encoded: false });

/** A function's Lambda handler, with the route handlers it dispatches to. */
export type FunctionHandler = ((event: ApiEvent, context: Context) => Promise<HttpResult>) & {
  fn: FunctionName;
  routes: readonly RouteHandler[];
};

/**
 * One Lambda function serves one capability's routes: it picks the route handler by API Gateway's
 * `routeKey`. A request that reaches the function by another way (the `$default` route) gets the
 * same 404/405 as the local server. Throws at module load unless `routes` serve exactly the route
 * table's routes of `fn`, one handler each.
 */
export function dispatch(fn: FunctionName, routes: readonly RouteHandler[]): FunctionHandler {
  const handlers = new Map<string, RouteHandler>(routes.map((handler) => [handler.route, handler]));
  const problems = [
    ...ROUTES.filter((route) => route.fn === fn && !handlers.has(routeKey(route))).map(
      (route) => `no handler for ${routeKey(route)}`,
    ),
    ...routes.filter((h) => routeOf(h.route).fn !== fn).map((h) => `${h.route} is a route of ${routeOf(h.route).fn}`),
    ...(handlers.size < routes.length ? ['a route has two handlers'] : []),
  ];
  if (problems.length) throw new Error(`dispatch('${fn}') disagrees with the route table: ${problems.join('; ')}`);
  const handler = async (event: ApiEvent, context: Context): Promise<HttpResult> => {
    const route = handlers.get(event.routeKey);
    if (route) return route(event, context);
    // A HEAD route of the stack (`answersHead`): the GET handler, without the body.
    const get = event.routeKey?.startsWith('HEAD ') ? handlers.get(`GET ${event.routeKey.slice(5)}`) : undefined;
    if (get && answersHead(routeOf(get.route))) return withoutBody(await get(event, context));
    const match = matchRoute(event.requestContext?.http?.method ?? '', event.rawPath ?? '');
    if (match.kind === 'method_not_allowed') return problemResponse(new MethodNotAllowedError(match.allowed));
    return problemResponse(new NotFoundError(`no route for ${event.requestContext?.http?.method} ${event.rawPath}`));
  };
  return Object.assign(handler, { fn, routes });
}
