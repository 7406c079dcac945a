import type { Scope } from '#shared/auth/api-keys.ts';

/** The Lambda functions, one per capability (`functions/<name>/handler.ts`). */
export const FUNCTIONS = [
  'health',
  'gate',
  'consents',
  'subjects',
  'erasure',
  'signals',
  'webhooks',
  'policy',
  'notices',
  'selfservice',
  'audit',
  'log',
  'connectors',
  'events',
  'docs',
] as const;
export type FunctionName = (typeof FUNCTIONS)[number];

export type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';

/** One HTTP route. `scope` absent = public (no API key). */
export interface Route {
  method: Method;
  /** API Gateway syntax: `{name}` is one path segment. */
  path: string;
  fn: FunctionName;
  scope?: Scope;
  summary: string;
  /** The body is not JSON (webhook signature over raw bytes, HTML forms). */
  rawBody?: boolean;
}

/**
 * The one route table: the local server serves it, the CDK stack generates API Gateway routes and
 * functions from it, the OpenAPI document lists it, each function's `dispatch` checks its handlers
 * against it. A route cannot exist in one runtime only. Adding a route = one line here and one
 * `api(...)` (or `publicRoute`/`pageRoute`) in its function's handler.
 */
const TABLE = [
  { method: 'GET', path: '/v1/health', fn: 'health', summary: 'Liveness and store reachability' },
  { method: 'POST', path: '/v1/consents', fn: 'consents', scope: 'consents:write', summary: 'Record a consent' },
  {
    method: 'POST',
    path: '/v1/consents/withdraw',
    fn: 'consents',
    scope: 'consents:write',
    summary: 'Record a withdrawal or objection',
  },
  {
    method: 'POST',
    path: '/v1/subjects/lookup',
    fn: 'subjects',
    scope: 'consents:read',
    summary: "A subject's consents, signals and erasure status",
  },
  {
    method: 'GET',
    path: '/v1/subjects/{subjectKey}/events',
    fn: 'subjects',
    scope: 'consents:read',
    summary: "A subject's ledger with chain verification",
  },
  {
    method: 'POST',
    path: '/v1/subjects/link',
    fn: 'subjects',
    scope: 'subjects:manage',
    summary: "Link 2–10 identifiers as one person's (objections, erasure and block cooldowns then cross them)",
  },
  {
    method: 'POST',
    path: '/v1/subjects/unlink',
    fn: 'subjects',
    scope: 'subjects:manage',
    summary: 'Take identifiers out of their person',
  },
  {
    method: 'GET',
    path: '/v1/subjects/{subjectKey}/links',
    fn: 'subjects',
    scope: 'consents:read',
    summary: "A subject's person and its identifiers",
  },
  { method: 'POST', path: '/v1/gate/check', fn: 'gate', scope: 'gate:check', summary: 'Pre-send gate decision' },
  {
    method: 'POST',
    path: '/v1/gate/check-batch',
    fn: 'gate',
    scope: 'gate:check',
    summary: 'Campaign pre-flight for up to 1000 contacts',
  },
  {
    method: 'POST',
    path: '/v1/erasure-requests',
    fn: 'erasure',
    scope: 'subjects:manage',
    summary: 'Receive an erasure request (Art. 17)',
  },
  {
    method: 'GET',
    path: '/v1/erasure-requests',
    fn: 'erasure',
    scope: 'subjects:manage',
    summary: 'List erasure requests by status',
  },
  {
    method: 'GET',
    path: '/v1/erasure-requests/{requestId}',
    fn: 'erasure',
    scope: 'subjects:manage',
    summary: 'One erasure request',
  },
  {
    method: 'POST',
    path: '/v1/erasure-requests/{requestId}/complete',
    fn: 'erasure',
    scope: 'subjects:manage',
    summary: 'Carry out a received erasure request now',
  },
  {
    method: 'POST',
    path: '/v1/erasure-requests/{requestId}/cancel',
    fn: 'erasure',
    scope: 'subjects:manage',
    summary: 'Cancel a received erasure request (the subjects are no longer erasure_pending)',
  },
  {
    method: 'POST',
    path: '/v1/erasure-requests/{requestId}/extend',
    fn: 'erasure',
    scope: 'subjects:manage',
    summary: 'Extend the deadline of an erasure request once, by one or two months (Art. 12(3))',
  },
  {
    method: 'POST',
    path: '/v1/optout-links',
    fn: 'selfservice',
    scope: 'consents:write',
    summary: 'Signed opt-out and preference-centre links, with List-Unsubscribe headers',
  },
  { method: 'GET', path: '/optout/{token}', fn: 'selfservice', summary: 'Opt-out page (a GET never changes anything)' },
  {
    method: 'POST',
    path: '/optout/{token}',
    fn: 'selfservice',
    summary: 'Confirm an opt-out; also the RFC 8058 one-click POST',
    rawBody: true,
  },
  { method: 'GET', path: '/preferences/{token}', fn: 'selfservice', summary: 'Preference centre page' },
  {
    method: 'POST',
    path: '/preferences/{token}',
    fn: 'selfservice',
    summary: 'Withdraw, give again, confirm choices or ask for erasure',
    rawBody: true,
  },
  {
    method: 'GET',
    path: '/preferences/{token}/receipts/{eventId}',
    fn: 'selfservice',
    summary: "The receipt of one of the link's subject's events (JSON, to check offline)",
  },
  {
    method: 'POST',
    path: '/v1/subjects/access',
    fn: 'subjects',
    scope: 'consents:read',
    summary: "Art. 15 copy of a subject's data: consents, receipts, rights, full history (recorded as access.provided)",
  },
  {
    method: 'GET',
    path: '/v1/audit/events',
    fn: 'audit',
    scope: 'audit:read',
    summary: 'Every event of a time range, NDJSON or CSV, paged by cursor',
  },
  {
    method: 'GET',
    path: '/v1/audit/verify',
    fn: 'audit',
    scope: 'audit:read',
    summary: 'Re-compute every chain touched in a time range',
  },
  {
    method: 'GET',
    path: '/v1/audit/summary',
    fn: 'audit',
    scope: 'audit:read',
    summary: 'Event counts per day, type and channel; contacts by block level',
  },
  {
    method: 'GET',
    path: '/v1/audit/erasures',
    fn: 'audit',
    scope: 'audit:read',
    summary: 'Erasure requests with their deadlines (pending, overdue, due within N days)',
  },
  {
    method: 'GET',
    path: '/v1/log/checkpoint',
    fn: 'log',
    scope: 'audit:read',
    summary: "The latest signed checkpoint of the tenant's log: a C2SP signed note, or JSON",
  },
  {
    method: 'GET',
    path: '/v1/log/public-key',
    fn: 'log',
    summary: 'The public key that signs checkpoints (every key with ?all=true)',
  },
  {
    method: 'GET',
    path: '/v1/log/consistency',
    fn: 'log',
    scope: 'audit:read',
    summary: 'A consistency proof between two sizes of the log (RFC 9162)',
  },
  {
    method: 'GET',
    path: '/v1/log/leaves',
    fn: 'log',
    scope: 'audit:read',
    summary: 'Leaves [start, end) of the log: event id, subjectKey, event hash',
  },
  {
    method: 'GET',
    path: '/v1/receipts/{eventId}',
    fn: 'log',
    scope: 'consents:read',
    summary: 'A receipt: the event, its leaf index, its inclusion proof and the signed checkpoint',
  },
  { method: 'GET', path: '/dashboard', fn: 'audit', summary: 'The DPO dashboard page' },
  {
    method: 'GET',
    path: '/dashboard/assets/{file}',
    fn: 'audit',
    summary: "The dashboard's script, style and chart library",
  },
  {
    method: 'POST',
    path: '/v1/signals',
    fn: 'signals',
    scope: 'signals:write',
    summary: 'Record a blocking signal; answers the block likelihood',
  },
  {
    method: 'GET',
    path: '/v1/webhooks/whatsapp',
    fn: 'webhooks',
    summary: "Meta's webhook verification handshake",
  },
  {
    method: 'POST',
    path: '/v1/webhooks/whatsapp',
    fn: 'webhooks',
    summary: 'WhatsApp Cloud API webhook (signed with X-Hub-Signature-256)',
    rawBody: true,
  },
  { method: 'GET', path: '/v1/policy', fn: 'policy', scope: 'admin', summary: "The tenant's gate policy" },
  {
    method: 'PUT',
    path: '/v1/policy',
    fn: 'policy',
    scope: 'admin',
    summary: "Replace the tenant's gate policy",
  },
  {
    method: 'POST',
    path: '/v1/notices',
    fn: 'notices',
    scope: 'admin',
    summary: 'Register one immutable version of the privacy notice',
  },
  { method: 'GET', path: '/v1/notices', fn: 'notices', scope: 'consents:read', summary: 'The registered notices' },
  {
    method: 'GET',
    path: '/v1/notices/{version}',
    fn: 'notices',
    scope: 'consents:read',
    summary: 'One notice with its texts and hash',
  },
  {
    method: 'POST',
    path: '/v1/connectors',
    fn: 'connectors',
    scope: 'admin',
    summary: 'Connect a provider (Twilio, SendGrid, Amazon SES) whose opt-outs flow in',
  },
  { method: 'GET', path: '/v1/connectors', fn: 'connectors', scope: 'admin', summary: "The tenant's connectors" },
  { method: 'GET', path: '/v1/connectors/{id}', fn: 'connectors', scope: 'admin', summary: 'One connector' },
  {
    method: 'DELETE',
    path: '/v1/connectors/{id}',
    fn: 'connectors',
    scope: 'admin',
    summary: "Delete a connector: its provider's calls are refused from then on",
  },
  {
    method: 'POST',
    path: '/v1/connectors/{id}/events',
    fn: 'connectors',
    summary: "A provider's webhook (signed by the provider: X-Twilio-Signature, SendGrid's signed events, SNS)",
    rawBody: true,
  },
  {
    method: 'POST',
    path: '/v1/event-endpoints',
    fn: 'events',
    scope: 'admin',
    summary: 'Register an endpoint for change events (its signing secret is shown once)',
  },
  { method: 'GET', path: '/v1/event-endpoints', fn: 'events', scope: 'admin', summary: 'The change-event endpoints' },
  {
    method: 'GET',
    path: '/v1/event-endpoints/{id}',
    fn: 'events',
    scope: 'admin',
    summary: 'One change-event endpoint',
  },
  {
    method: 'DELETE',
    path: '/v1/event-endpoints/{id}',
    fn: 'events',
    scope: 'admin',
    summary: 'Delete a change-event endpoint',
  },
  {
    method: 'POST',
    path: '/v1/event-endpoints/{id}/rotate-secret',
    fn: 'events',
    scope: 'admin',
    summary: 'A new signing secret; the old one still signs during the overlap',
  },
  {
    method: 'GET',
    path: '/v1/event-endpoints/{id}/deliveries',
    fn: 'events',
    scope: 'admin',
    summary: "An endpoint's delivery log (pending, delivered, failed)",
  },
  {
    method: 'POST',
    path: '/v1/event-endpoints/{id}/replay',
    fn: 'events',
    scope: 'admin',
    summary: 'Send again every change recorded since a time',
  },
  {
    method: 'POST',
    path: '/v1/event-endpoints/{id}/test',
    fn: 'events',
    scope: 'admin',
    summary: 'Send a signed endpoint.test event now',
  },
  {
    method: 'GET',
    path: '/v1/changes',
    fn: 'events',
    scope: 'consents:read',
    summary: "The tenant's change events in recording order, for clients that poll",
  },
  { method: 'GET', path: '/openapi.json', fn: 'docs', summary: 'This API as OpenAPI 3.1' },
] as const satisfies readonly Route[];

export const ROUTES: readonly Route[] = TABLE;

type Row = (typeof TABLE)[number];
type KeyOf<R> = R extends { method: infer M extends string; path: infer P extends string } ? `${M} ${P}` : never;
/** A route's API Gateway key, e.g. `POST /v1/consents`. */
export type RouteKey = KeyOf<Row>;
/** The key of a route that needs an API key (served by `api`). */
export type ScopedRouteKey = KeyOf<Extract<Row, { scope: Scope }>>;
/** The key of a public route (served by `publicRoute` or `pageRoute`). */
export type PublicRouteKey = Exclude<RouteKey, ScopedRouteKey>;

/** Where a request lands: a route with its path parameters, or the methods the path accepts. */
export type RouteMatch =
  | { kind: 'route'; route: Route; params: Record<string, string> }
  | { kind: 'method_not_allowed'; allowed: Method[] }
  | { kind: 'not_found' };

const compiled = (routes: readonly Route[]) =>
  routes.map((route) => ({
    route,
    names: [...route.path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]),
    pattern: new RegExp(`^${route.path.replace(/\{\w+\}/g, '([^/]+)')}$`),
  }));

const table = compiled(ROUTES);

/** Matches a method and path against the route table. */
export function matchRoute(method: string, path: string): RouteMatch {
  const allowed: Method[] = [];
  for (const { route, names, pattern } of table) {
    const m = pattern.exec(path);
    if (!m) continue;
    if (route.method === method) {
      const params: Record<string, string> = {};
      try {
        names.forEach((name, i) => {
          params[name] = decodeURIComponent(m[i + 1]);
        });
      } catch {
        return { kind: 'not_found' }; // a malformed %-escape names nothing
      }
      return { kind: 'route', route, params };
    }
    allowed.push(route.method);
  }
  return allowed.length > 0 ? { kind: 'method_not_allowed', allowed } : { kind: 'not_found' };
}

/**
 * Public GET routes (pages, health, documents) also answer HEAD: link checkers and mail scanners probe
 * pages that way. HEAD runs the GET handler (a GET never changes anything) and sends no body.
 */
export const answersHead = (route: Route) => route.method === 'GET' && !route.scope;

/** The GET route a HEAD request stands for, when it answers HEAD. */
export function matchHead(path: string): RouteMatch {
  const match = matchRoute('GET', path);
  if (match.kind === 'route' && !answersHead(match.route)) return { kind: 'method_not_allowed', allowed: ['GET'] };
  return match;
}

/** API Gateway's route key for a route, e.g. `POST /v1/consents`. */
export const routeKey = (route: Route) => `${route.method} ${route.path}` as RouteKey;

const byKey = new Map(ROUTES.map((route) => [routeKey(route), route]));

/** The table's route for a key; throws (at module load, where handlers declare their routes) if there is none. */
export function routeOf(key: RouteKey): Route {
  const route = byKey.get(key);
  if (!route) throw new Error(`${key} is not in the route table`);
  return route;
}
