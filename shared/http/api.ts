import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import type * as z from 'zod';
import type { Principal, Scope } from '#shared/auth/api-keys.ts';
import { idempotency } from './idempotency.ts';
import { type ApiEvent, apiHeaders, jsonBody, problemJson, requireScope } from './middlewares.ts';
import { type HttpResult, jsonResponse } from './problem.ts';

/** What a route handler gets: the parsed body, the caller, the raw event. */
export interface ApiRequest<B> {
  body: B;
  principal: Principal;
  tenant: string;
  event: ApiEvent;
}

/** What a route handler returns: a status and a JSON body (or a full response for non-JSON replies). */
export type ApiReply = { status: number; body: unknown; headers?: Record<string, string> } | HttpResult;

export interface ApiOptions<S extends z.ZodType | undefined> {
  scope: Scope;
  body?: S;
  /** Honour `Idempotency-Key` (writes). */
  idempotent?: boolean;
}

const toResult = (reply: ApiReply): HttpResult =>
  'statusCode' in reply ? reply : jsonResponse(reply.status, reply.body, reply.headers);

/**
 * An authenticated JSON route: problem+json errors, scope check, body validation, optional idempotency,
 * then the handler. The handler throws typed errors; it never builds an error response itself.
 */
export function api<S extends z.ZodType | undefined = undefined>(
  options: ApiOptions<S>,
  handler: (req: ApiRequest<S extends z.ZodType ? z.infer<S> : undefined>) => Promise<ApiReply>,
) {
  const chain = middy<ApiEvent, HttpResult, Error, Context>()
    .use(apiHeaders())
    .use(problemJson())
    .use(requireScope(options.scope));
  if (options.body) chain.use(jsonBody(options.body));
  if (options.idempotent) chain.use(idempotency());
  return chain.handler(async (event) =>
    toResult(
      await handler({
        body: event.parsedBody as S extends z.ZodType ? z.infer<S> : undefined,
        principal: event.principal as Principal,
        tenant: (event.principal as Principal).tenant,
        event,
      }),
    ),
  );
}

/** A public route (no API key): errors still become problem+json. */
export function publicRoute(handler: (event: ApiEvent) => Promise<HttpResult>) {
  return middy<ApiEvent, HttpResult, Error, Context>().use(apiHeaders()).use(problemJson()).handler(handler);
}
