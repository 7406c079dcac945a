import type { MiddlewareObj } from '@middy/core';
import type { APIGatewayProxyEventV2, Context } from 'aws-lambda';
import type * as z from 'zod';
import { hasScope, type Principal, type Scope, ScopeSchema } from '#shared/auth/api-keys.ts';
import { logger } from '#shared/log.ts';
import {
  ForbiddenError,
  MalformedJsonError,
  PayloadTooLargeError,
  ServiceUnavailableError,
  toProblem,
  UnauthorizedError,
  UnsupportedMediaTypeError,
  ValidationError,
} from './errors.ts';
import { API_HEADERS, type HttpResult, internalError, problemResponse } from './problem.ts';
import { assertWellFormed, parseOrThrow } from './validation.ts';

/** The Lambda event as our middlewares enrich it. */
export type ApiEvent = APIGatewayProxyEventV2 & {
  requestContext: APIGatewayProxyEventV2['requestContext'] & {
    authorizer?: { lambda?: Record<string, unknown> };
  };
  principal?: Principal;
  parsedBody?: unknown;
};

export type ApiMiddleware = MiddlewareObj<ApiEvent, HttpResult, Error, Context>;

/** Request bodies above this are refused with 413. */
export const MAX_BODY_BYTES = 1024 * 1024;

/** Maps thrown errors to problem+json once; anything unknown is a bare 500 (logged, never echoed). */
export function problemJson(): ApiMiddleware {
  return {
    onError: async (request) => {
      const error = request.error;
      const problem = toProblem(error);
      if (problem) {
        request.response = problemResponse(problem);
        return;
      }
      logger.error('unhandled error', { errorName: error?.name, stack: error?.stack?.split('\n').slice(1, 6) });
      request.response = internalError();
    },
  };
}

/**
 * Requires the route's scope. The tenant and scopes come from the authorizer (the API Gateway Lambda
 * authorizer in the cloud, the same authorizer code called by the local server).
 */
export function requireScope(scope: Scope): ApiMiddleware {
  return {
    before: async (request) => {
      const ctx = request.event.requestContext.authorizer?.lambda;
      if (ctx?.error === 'store_unavailable') throw new ServiceUnavailableError();
      const tenant = ctx?.tenant;
      if (typeof tenant !== 'string' || !tenant) throw new UnauthorizedError();
      const scopes = String(ctx?.scopes ?? '')
        .split(',')
        .filter((s): s is Scope => ScopeSchema.safeParse(s).success);
      const principal: Principal = { tenant, scopes, keyId: String(ctx?.keyId ?? '') };
      if (!hasScope(principal, scope)) throw new ForbiddenError(scope);
      request.event.principal = principal;
    },
  };
}

/** The raw body as a Buffer (API Gateway base64-encodes binary bodies). */
export function rawBody(event: APIGatewayProxyEventV2): Buffer {
  if (!event.body) return Buffer.alloc(0);
  return Buffer.from(event.body, event.isBase64Encoded ? 'base64' : 'utf8');
}

const header = (event: APIGatewayProxyEventV2, name: string) =>
  event.headers?.[name] ?? event.headers?.[name.toLowerCase()];

const BOM = Buffer.from([0xef, 0xbb, 0xbf]);

/** The body without a UTF-8 byte-order mark: RFC 8259 lets a parser ignore one, and Windows tools send it. */
export const withoutBom = (body: Buffer) => (body.subarray(0, 3).equals(BOM) ? body.subarray(3) : body);

/** Path parameters are parts of table keys: bounded well below DynamoDB's 1 KB sort-key and 2 KB partition-key limits. */
export const MAX_PATH_PARAMETER_BYTES = 512;

/**
 * Checks what every route reads besides its body, before any handler: path parameters (well-formed, at
 * most 512 bytes: a 400, never a store error) and query string values (well-formed Unicode).
 */
export function wellFormedRequest(): ApiMiddleware {
  return {
    before: async (request) => {
      for (const [name, value] of Object.entries(request.event.pathParameters ?? {})) {
        assertWellFormed(value, [name]);
        if (Buffer.byteLength(value ?? '') > MAX_PATH_PARAMETER_BYTES) {
          const message = `must be at most ${MAX_PATH_PARAMETER_BYTES} bytes`;
          throw new ValidationError(`${name} ${message}`, [{ path: name, message }]);
        }
      }
      assertWellFormed(request.event.queryStringParameters ?? {}, ['query']);
    },
  };
}

/**
 * Parses a JSON body against a schema: 413 above 1 MiB, 415 for another media type, 400 for malformed
 * JSON (middy's own parser answers 415 there, our contract says 400), 400 with field paths when invalid.
 */
export function jsonBody(schema: z.ZodType): ApiMiddleware {
  return {
    before: async (request) => {
      const body = rawBody(request.event);
      if (body.length > MAX_BODY_BYTES) throw new PayloadTooLargeError(MAX_BODY_BYTES);
      const type = (header(request.event, 'content-type') ?? '').split(';')[0].trim().toLowerCase();
      if (type !== 'application/json' && !/^application\/[\w.+-]*\+json$/.test(type)) {
        throw new UnsupportedMediaTypeError();
      }
      let value: unknown;
      try {
        value = JSON.parse(withoutBom(body).toString('utf8'));
      } catch (error) {
        throw new MalformedJsonError(`the body is not valid JSON: ${(error as Error).message}`);
      }
      assertWellFormed(value);
      request.event.parsedBody = parseOrThrow(schema, value);
    },
  };
}

/** Security headers on every response, including errors. */
export function apiHeaders(): ApiMiddleware {
  const apply = async (request: { response: HttpResult | null | undefined }) => {
    if (request.response) request.response.headers = { ...API_HEADERS, ...request.response.headers };
  };
  return { after: apply, onError: apply };
}
