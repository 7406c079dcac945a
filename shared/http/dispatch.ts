import type { Context } from 'aws-lambda';
import { matchRoute } from '#infra/routes.ts';
import { MethodNotAllowedError, NotFoundError } from './errors.ts';
import type { ApiEvent } from './middlewares.ts';
import { type HttpResult, problemResponse } from './problem.ts';

type RouteHandler = (event: ApiEvent, context: Context) => Promise<HttpResult>;

/**
 * One Lambda function serves one capability's routes: it picks the route handler by API Gateway's
 * `routeKey`. A request that reaches the function by another way (the `$default` route) gets the
 * same 404/405 as the local server.
 */
export function dispatch(handlers: Record<string, RouteHandler>) {
  return async (event: ApiEvent, context: Context): Promise<HttpResult> => {
    const handler = handlers[event.routeKey];
    if (handler) return handler(event, context);
    const match = matchRoute(event.requestContext?.http?.method ?? '', event.rawPath ?? '');
    if (match.kind === 'method_not_allowed') return problemResponse(new MethodNotAllowedError(match.allowed));
    return problemResponse(new NotFoundError(`no route for ${event.requestContext?.http?.method} ${event.rawPath}`));
  };
}
