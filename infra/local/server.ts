import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Context } from 'aws-lambda';
import { answersPreflight, corsHeaders, parseCorsOrigins, preflightHeaders } from '#http/cors.ts';
import { MethodNotAllowedError, NotFoundError, PayloadTooLargeError, type ProblemError } from '#http/errors.ts';
import type { ApiEvent } from '#http/middlewares.ts';
import { MAX_BODY_BYTES } from '#http/middlewares.ts';
import { type HttpResult, internalError, problemResponse } from '#http/problem.ts';
import { type FunctionName, matchHead, matchRoute, type Route, routeKey } from '#http/routes.ts';
import { logger } from '#shared/log.ts';
import { AuthorizerCache } from './authorizer-cache.ts';

type LambdaHandler = (event: ApiEvent, context: Context) => Promise<HttpResult>;

const loaded = new Map<FunctionName, Promise<LambdaHandler>>();

/** Imports a function's handler module once, as Lambda would load its bundle. */
function loadFunction(fn: FunctionName): Promise<LambdaHandler> {
  let entry = loaded.get(fn);
  if (!entry) {
    entry = import(`../../functions/${fn}/handler.ts`).then((m) => m.handler as LambdaHandler);
    loaded.set(fn, entry);
  }
  return entry;
}

/** Bodies API Gateway passes as text; anything else arrives base64-encoded. */
const TEXT_TYPES = /^(text\/|application\/(json|x-www-form-urlencoded|[\w.+-]+\+json|xml|javascript))/i;

class BodyTooLarge extends Error {}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > MAX_BODY_BYTES) {
      req.resume();
      reject(new BodyTooLarge());
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        req.removeAllListeners('data');
        req.resume();
        reject(new BodyTooLarge());
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** A Lambda context as the runtime gives one (the handlers read the request id and remaining time). */
export function lambdaContext(fn: string): Context {
  const started = Date.now();
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName: `consent-gate-${fn}`,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:local:000000000000:function:consent-gate-${fn}`,
    memoryLimitInMB: '512',
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/consent-gate-${fn}`,
    logStreamName: 'local',
    getRemainingTimeInMillis: () => Math.max(0, 29_000 - (Date.now() - started)),
    done: () => {},
    fail: () => {},
    succeed: () => {},
  };
}

/** Builds the API Gateway HTTP API (payload 2.0) event that the cloud would hand the function. */
function toEvent(req: IncomingMessage, url: URL, route: Route, params: Record<string, string>, body: Buffer): ApiEvent {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(',') : value;
  }
  const query: Record<string, string> = {};
  for (const [k, v] of url.searchParams) query[k] = k in query ? `${query[k]},${v}` : v;
  const isText = TEXT_TYPES.test(headers['content-type'] ?? 'application/json');
  const now = new Date();
  return {
    version: '2.0',
    routeKey: routeKey(route),
    rawPath: url.pathname,
    rawQueryString: url.search.slice(1),
    headers,
    ...(Object.keys(query).length ? { queryStringParameters: query } : {}),
    ...(Object.keys(params).length ? { pathParameters: params } : {}),
    ...(body.length ? { body: body.toString(isText ? 'utf8' : 'base64') } : {}),
    isBase64Encoded: body.length > 0 && !isText,
    requestContext: {
      accountId: 'local',
      apiId: 'local',
      domainName: url.host,
      domainPrefix: 'local',
      http: {
        method: req.method ?? 'GET',
        path: url.pathname,
        protocol: `HTTP/${req.httpVersion}`,
        // The real handlers never read it: the source IP is not logged nor stored.
        sourceIp: '0.0.0.0',
        userAgent: headers['user-agent'] ?? '',
      },
      requestId: randomUUID(),
      routeKey: routeKey(route),
      stage: '$default',
      time: now.toUTCString(),
      timeEpoch: now.getTime(),
    },
  };
}

function send(res: ServerResponse, result: HttpResult, head = false, cors: Record<string, string> = {}) {
  const headers: Record<string, string | string[]> = {};
  // As API Gateway's CORS configuration does: its headers replace any the function set.
  for (const [k, v] of Object.entries({ ...result.headers, ...cors })) headers[k] = String(v);
  if (result.cookies?.length) headers['set-cookie'] = result.cookies;
  const body = result.body ? Buffer.from(result.body, result.isBase64Encoded ? 'base64' : 'utf8') : Buffer.alloc(0);
  headers['content-length'] = String(body.length);
  res.writeHead(result.statusCode, headers);
  res.end(head ? undefined : body);
}

/**
 * The request's URL. Its target is always a path here: `//x/y` is not a host (as a relative URL it would
 * be), and a malformed Host header (or one with a path in it) falls back to localhost instead of failing the
 * request with a 500 or moving its path.
 */
function requestUrl(req: IncomingMessage): URL {
  const target = (req.url ?? '/').startsWith('/') ? (req.url ?? '/') : `/${req.url}`;
  const host = req.headers.host ?? '';
  return new URL(`http://${/^([\w.-]+|\[[\da-f:.]+\])(:\d{1,5})?$/i.test(host) ? host : 'localhost'}${target}`);
}

/** Serves one request the way API Gateway (with its CORS configuration) + the authorizer + the function would. */
async function serve(
  req: IncomingMessage,
  res: ServerResponse,
  corsOrigins: readonly string[],
  authorizer: AuthorizerCache,
): Promise<number> {
  const url = requestUrl(req);
  const origin = req.headers.origin;
  if (req.method === 'OPTIONS' && corsOrigins.length > 0 && answersPreflight(url.pathname)) {
    req.resume();
    send(res, { statusCode: 204, headers: preflightHeaders(origin, corsOrigins) });
    return 204;
  }
  const cors = corsHeaders(origin, corsOrigins);
  const head = req.method === 'HEAD';
  const match = head ? matchHead(url.pathname) : matchRoute(req.method ?? 'GET', url.pathname);
  const fail = (error: ProblemError) => {
    req.resume();
    send(res, problemResponse(error), false, cors);
    return error.status;
  };
  if (match.kind === 'not_found') return fail(new NotFoundError(`no route for ${req.method} ${url.pathname}`));
  if (match.kind === 'method_not_allowed') return fail(new MethodNotAllowedError(match.allowed));
  let body: Buffer;
  try {
    body = await readBody(req);
  } catch (error) {
    if (error instanceof BodyTooLarge) {
      res.setHeader('connection', 'close');
      return fail(new PayloadTooLargeError(MAX_BODY_BYTES));
    }
    throw error;
  }
  const event = toEvent(req, url, match.route, match.params, body);
  if (match.route.scope) {
    event.requestContext.authorizer = { lambda: await authorizer.contextFor(event.headers) };
  }
  const fn = await loadFunction(match.route.fn);
  const result = await fn(event, lambdaContext(match.route.fn));
  send(res, result, head, cors);
  return result.statusCode;
}

export interface LocalServerOptions {
  /** Allowed browser origins; default `CORS_ORIGINS`. */
  corsOrigins?: readonly string[];
  /** The clock of the authorizer cache (tests move it past the TTL). */
  clock?: () => number;
}

/**
 * The local HTTP server in front of the real Lambda handlers, one route table for both runtimes. CORS
 * as `CORS_ORIGINS` sets it (the same setting the stack's HTTP API gets; a bad value fails the start);
 * the authorizer's answers cached per Authorization header for the stack's TTL, as API Gateway does.
 */
export function createLocalServer(options: LocalServerOptions = {}): Server {
  const corsOrigins = options.corsOrigins ?? parseCorsOrigins(process.env.CORS_ORIGINS);
  const authorizer = new AuthorizerCache(undefined, options.clock);
  return createServer((req, res) => {
    const started = performance.now();
    serve(req, res, corsOrigins, authorizer)
      .then((status) => {
        logger.info('request', {
          method: req.method,
          path: matchPathTemplate(req),
          status,
          ms: Math.round((performance.now() - started) * 10) / 10,
        });
      })
      .catch((error: Error) => {
        logger.error('local server error', { errorName: error.name, stack: error.stack?.split('\n').slice(1, 6) });
        if (!res.headersSent) send(res, internalError(), false, corsHeaders(req.headers.origin, corsOrigins));
        else res.destroy();
      });
  });
}

/** The route template of a request (`/v1/subjects/{subjectKey}/events`): paths can carry identifiers, templates cannot. */
function matchPathTemplate(req: IncomingMessage): string {
  const path = (req.url ?? '/').split('?')[0];
  const match = matchRoute(req.method ?? 'GET', path);
  return match.kind === 'route' ? match.route.path : '(unmatched)';
}
