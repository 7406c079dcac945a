import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import type * as z from 'zod';
import type { Actor } from '#domain/ledger.ts';
import type { Principal, Scope } from '#shared/auth/api-keys.ts';
import { idempotency } from './idempotency.ts';
import { type ApiEvent, apiHeaders, jsonBody, problemJson, requireScope, wellFormedRequest } from './middlewares.ts';
import { type HttpResult, jsonResponse } from './problem.ts';
import { type PublicRouteKey, type RouteKey, routeOf, type ScopedRouteKey } from './routes.ts';
import { parseOrThrow } from './validation.ts';

/** What a route handler gets: the parsed body and query, the caller, the raw event. */
export interface ApiRequest<B, Q = undefined> {
  body: B;
  query: Q;
  principal: Principal;
  tenant: string;
  /** The API key as the ledger records it. */
  actor: Actor;
  event: ApiEvent;
}

/** What a route handler returns: a status and a JSON body (or a full response for non-JSON replies). */
export type ApiReply = { status: number; body: unknown; headers?: Record<string, string> } | HttpResult;

export interface ApiOptions<B extends z.ZodType | undefined, Q extends z.ZodType | undefined> {
  body?: B;
  /** Validates the query string (a 400 `query is invalid` otherwise). */
  query?: Q;
  /**
   * Honour `Idempotency-Key` (writes); a function of the parsed body for routes that write only for some
   * bodies (a gate check with `record: true`): a read-only request ignores the key and is never replayed.
   */
  idempotent?: boolean | ((body: Parsed<B>) => boolean);
}

type Parsed<S> = S extends z.ZodType ? z.infer<S> : undefined;

type LambdaHandler = (event: ApiEvent, context: Context) => Promise<HttpResult>;

/**
 * The handler of one route of the table, carrying that route's key and the schemas that validate its
 * requests: `dispatch` routes by the key, the OpenAPI document shows the schemas.
 */
export type RouteHandler = LambdaHandler & {
  route: RouteKey;
  body?: z.ZodType;
  query?: z.ZodType;
  /** Honours `Idempotency-Key` (documented as such). */
  idempotent?: boolean;
};

/** The table's scope of `key`; throws (at module load) when the table and the kind of handler disagree. */
function tableScope(key: RouteKey, scoped: boolean): Scope | undefined {
  const { scope } = routeOf(key);
  if (scoped && !scope) throw new Error(`${key} is public in the route table, yet served by api()`);
  if (!scoped && scope) throw new Error(`${key} needs the scope ${scope} in the route table, yet is served as public`);
  return scope;
}

/** A public route's handler, marked with its route (which must have no scope in the table). */
export function publicHandler(key: PublicRouteKey, handler: LambdaHandler): RouteHandler {
  tableScope(key, false);
  return Object.assign(handler, { route: key });
}

const toResult = (reply: ApiReply): HttpResult =>
  'statusCode' in reply ? reply : jsonResponse(reply.status, reply.body, reply.headers);

/**
 * The handler of an authenticated JSON route: problem+json errors, the scope the route table gives the
 * route, body and query validation, optional idempotency, then `handler`. The handler throws typed
 * errors; it never builds an error response itself.
 */
export function api<B extends z.ZodType | undefined = undefined, Q extends z.ZodType | undefined = undefined>(
  key: ScopedRouteKey,
  options: ApiOptions<B, Q>,
  handler: (req: ApiRequest<Parsed<B>, Parsed<Q>>) => Promise<ApiReply>,
): RouteHandler {
  const chain = middy<ApiEvent, HttpResult, Error, Context>()
    .use(apiHeaders())
    .use(problemJson())
    .use(requireScope(tableScope(key, true) as Scope))
    .use(wellFormedRequest());
  if (options.body) chain.use(jsonBody(options.body));
  const { idempotent } = options;
  if (idempotent) {
    chain.use(idempotency(typeof idempotent === 'function' ? (e) => idempotent(e.parsedBody as Parsed<B>) : undefined));
  }
  const run = chain.handler(async (event) => {
    const query = options.query && parseOrThrow(options.query, event.queryStringParameters ?? {}, 'query');
    return toResult(
      await handler({
        body: event.parsedBody as Parsed<B>,
        query: query as Parsed<Q>,
        principal: event.principal as Principal,
        actor: { type: 'api_key', keyId: (event.principal as Principal).keyId },
        tenant: (event.principal as Principal).tenant,
        event,
      }),
    );
  });
  // A body-dependent key (a gate check with `record: true`) is documented as honoured: it is, for those bodies.
  return Object.assign(run, { route: key, body: options.body, query: options.query, idempotent: Boolean(idempotent) });
}

/** A public route (no API key): errors still become problem+json. */
export function publicRoute(key: PublicRouteKey, handler: (event: ApiEvent) => Promise<HttpResult>) {
  return publicHandler(
    key,
    middy<ApiEvent, HttpResult, Error, Context>()
      .use(apiHeaders())
      .use(problemJson())
      .use(wellFormedRequest())
      .handler(handler),
  );
}
