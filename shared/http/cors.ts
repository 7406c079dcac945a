/**
 * CORS, one setting for both runtimes: `CORS_ORIGINS` (comma-separated origins, or `*`) configures the
 * local server and, through `infra/app.ts`, the HTTP API's CORS configuration in the cloud. Listed origins
 * get `Access-Control-Allow-Origin` on preflights and on every response, errors included; others get no
 * CORS header at all. Credentials are never allowed: the API authenticates with the `Authorization`
 * header, which a browser sends on a CORS request without cookies or `credentials: 'include'`.
 */

/** Request headers a browser may send: the API key, the JSON body, the retry key. */
export const CORS_ALLOW_HEADERS = ['authorization', 'content-type', 'idempotency-key'] as const;
/** Response headers a browser script may read: paging and back-off. */
export const CORS_EXPOSE_HEADERS = ['x-next-cursor', 'retry-after'] as const;
export const CORS_ALLOW_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS'] as const;
/** How long a browser may cache a preflight answer. */
export const CORS_MAX_AGE_SECONDS = 600;

/** An origin as browsers send it: scheme, host, optional port; no path, no trailing slash. */
const ORIGIN = /^https?:\/\/(\[[\da-f:.]+\]|[a-z\d]([a-z\d-]*[a-z\d])?(\.[a-z\d]([a-z\d-]*[a-z\d])?)*)(:\d{1,5})?$/i;

/**
 * Parses `CORS_ORIGINS`: empty or unset = CORS off. Throws on anything that is not an origin, and on `*`
 * mixed with origins (one or the other), so a typo fails the start or the synth instead of opening the API.
 */
export function parseCorsOrigins(value: string | undefined): string[] {
  const origins = (value ?? '')
    .split(',')
    .map((o) => o.trim())
    .filter(Boolean);
  const bad = origins.filter((o) => o !== '*' && !ORIGIN.test(o));
  if (bad.length) {
    throw new Error(`CORS_ORIGINS: not an origin (scheme://host[:port], no path): ${bad.join(', ')}`);
  }
  if (origins.includes('*') && origins.length > 1) throw new Error('CORS_ORIGINS: "*" cannot be combined with origins');
  return [...new Set(origins)];
}

/** Whether a path's preflights are answered: the API and its document. */
export const answersPreflight = (path: string) => path.startsWith('/v1/') || path === '/openapi.json';

/** The CORS headers of a response to a request from `origin` (none for an origin not listed). */
export function corsHeaders(origin: string | undefined, allowed: readonly string[]): Record<string, string> {
  if (!origin || allowed.length === 0) return {};
  const any = allowed.includes('*');
  if (!any && !allowed.includes(origin)) return {};
  return {
    'access-control-allow-origin': any ? '*' : origin,
    'access-control-expose-headers': CORS_EXPOSE_HEADERS.join(', '),
    ...(any ? {} : { vary: 'Origin' }),
  };
}

/** The headers of a preflight answer (204) for `origin` (none for an origin not listed). */
export function preflightHeaders(origin: string | undefined, allowed: readonly string[]): Record<string, string> {
  const headers = corsHeaders(origin, allowed);
  if (!headers['access-control-allow-origin']) return {};
  return {
    ...headers,
    'access-control-allow-methods': CORS_ALLOW_METHODS.join(', '),
    'access-control-allow-headers': CORS_ALLOW_HEADERS.join(', '),
    'access-control-max-age': String(CORS_MAX_AGE_SECONDS),
  };
}
