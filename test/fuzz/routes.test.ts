import { request } from 'node:http';
import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROUTES, type Route, routeKey } from '#http/routes.ts';
import { type Db, getDb } from '#store/db.ts';
import { grantBody, phone, tenantId, tenantWithKey } from '../helpers/factories.ts';
import { client, startServerOnTable } from '../helpers/http.ts';

/*
 * Hostile input against every route of the route table (routes added later are covered by themselves),
 * through the real local server: generated bodies (wrong types, nulls, arrays, huge and unicode strings,
 * deep nesting, extra fields, near-valid bodies with one field broken), content types, headers (bad
 * auth, huge values, bad Idempotency-Key), methods, paths and query strings.
 * For every request: never a 5xx; a 4xx on a JSON route is problem+json; and a rejected request (or
 * any GET) leaves the table exactly as it was. The tests use a table of their own, so "exactly as it
 * was" is a full scan.
 */

const SEED = Number(process.env.FUZZ_SEED ?? 20261125);
const RUNS_PER_ROUTE = Number(process.env.FUZZ_RUNS ?? 12);

let server: Awaited<ReturnType<typeof startServerOnTable>>;
let db: Db;
let keys: { admin: string; gateOnly: string };
let known: { subjectKey: string; requestId: string; policy: unknown; subject: { phone: string } };

beforeAll(async () => {
  db = { client: getDb().client, table: `consent-gate-fuzz-${tenantId('t')}` };
  process.env.WHATSAPP_APP_SECRET = 'fuzz-app-secret';
  process.env.WHATSAPP_VERIFY_TOKEN = 'fuzz-verify-token';
  server = await startServerOnTable(db);
  const tenant = tenantId('fuzz');
  keys = {
    admin: (await tenantWithKey(['admin'], tenant)).key,
    gateOnly: (await tenantWithKey(['gate:check'], tenant)).key,
  };
  // Real data, so generated paths can name things that exist and the "no change" check has content.
  const api = client(server.url, keys.admin);
  const subject = { phone: phone() };
  const granted = await api.post('/v1/consents', grantBody({ subject }));
  expect(granted.status).toBe(201);
  const erasure = await api.post('/v1/erasure-requests', { subjects: [{ phone: phone() }], requestedVia: 'email' });
  expect(erasure.status).toBe(202);
  const policy = await api.get('/v1/policy');
  known = { subjectKey: granted.body.subjectKey, requestId: erasure.body.requestId, policy: policy.body, subject };
});

afterAll(async () => {
  await server?.close();
  delete process.env.WHATSAPP_APP_SECRET;
  delete process.env.WHATSAPP_VERIFY_TOKEN;
});

/** The whole table, in a stable order: what "nothing stored" is compared against. */
async function snapshot(): Promise<string[]> {
  const items: string[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const page = await db.client.send(
      new ScanCommand({ TableName: db.table, ExclusiveStartKey: start, ConsistentRead: true }),
    );
    for (const item of page.Items ?? []) items.push(JSON.stringify(item, Object.keys(item).sort()));
    start = page.LastEvaluatedKey;
  } while (start);
  return items.sort();
}

// --- Generators ---------------------------------------------------------------------------------

const HUGE = 'x'.repeat(1024 * 1024 + 10);
const DEEP_ARRAY = `${'['.repeat(20_000)}${']'.repeat(20_000)}`;
const DEEP_OBJECT = `${'{"a":'.repeat(5_000)}1${'}'.repeat(5_000)}`;
const ascii = fc.string({ unit: 'grapheme-ascii', maxLength: 40 });
const anyText = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 60 }),
  fc.string({ unit: 'grapheme', maxLength: 60 }),
  ascii,
);
const jsonish = fc.jsonValue({ maxDepth: 4 });

/** A plausible body for each write route: mutated one field at a time it reaches deep validation. */
function template(route: Route): Record<string, unknown> {
  const subject = { phone: phone() };
  const now = new Date().toISOString();
  const bodies: Record<string, Record<string, unknown>> = {
    'POST /v1/consents': grantBody({ subject }),
    'POST /v1/consents/withdraw': { subject, channel: 'whatsapp', purpose: 'marketing' },
    'POST /v1/subjects/lookup': { subject: known.subject },
    'POST /v1/subjects/access': { subject: known.subject },
    'POST /v1/gate/check': { subject: known.subject, channel: 'whatsapp', record: true },
    'POST /v1/gate/check-batch': { channel: 'whatsapp', items: [{ subject }, { subject: known.subject }] },
    'POST /v1/erasure-requests': { subjects: [subject], requestedVia: 'email' },
    'POST /v1/optout-links': { subject, channel: 'whatsapp', purpose: 'marketing' },
    'POST /v1/signals': { subject, channel: 'whatsapp', type: 'message_sent', observedAt: now, messageId: 'wamid.x' },
    'PUT /v1/policy': structuredClone(known.policy) as Record<string, unknown>,
  };
  return bodies[routeKey(route)] ?? {};
}

/** Breaks one field of a valid body: wrong type, null, huge, removed, or an extra field. */
const mutated = (route: Route) =>
  fc
    .record({
      field: fc.nat(),
      how: fc.constantFrom('replace', 'delete', 'extra', 'nested'),
      value: fc.oneof(jsonish, anyText, fc.constant(null), fc.constant('x'.repeat(70_000)), fc.constant(-0)),
      extraName: ascii,
    })
    .map(({ field, how, value, extraName }) => {
      const body = template(route);
      const names = Object.keys(body);
      const name = names.length ? names[field % names.length] : 'any';
      if (how === 'replace') body[name] = value;
      else if (how === 'delete') delete body[name];
      else if (how === 'extra') body[extraName || 'extra'] = value;
      else body[name] = { [extraName]: value, nested: [body[name]] };
      return JSON.stringify(body);
    });

const bodyFor = (route: Route) =>
  fc.oneof(
    { weight: 4, arbitrary: mutated(route) },
    { weight: 3, arbitrary: jsonish.map((v) => JSON.stringify(v)) },
    { weight: 2, arbitrary: anyText },
    { weight: 1, arbitrary: fc.constantFrom(HUGE, DEEP_ARRAY, DEEP_OBJECT, '', 'null', '[]', '{}', '{"subject":') },
    { weight: 1, arbitrary: fc.constant('List-Unsubscribe=One-Click') },
  );

const contentType = fc.oneof(
  { weight: 5, arbitrary: fc.constant('application/json') },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      'application/json; charset=utf-8',
      'text/plain',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=zzz',
      'application/problem+json',
      'application/vnd.api+json',
      'application/octet-stream',
      'text/html',
      '',
    ),
  },
  { weight: 1, arbitrary: ascii },
);

const authorization = fc.oneof(
  { weight: 5, arbitrary: fc.constant(() => `Bearer ${keys.admin}`) },
  { weight: 1, arbitrary: fc.constant(() => `Bearer ${keys.gateOnly}`) },
  { weight: 1, arbitrary: fc.constant(() => undefined) },
  {
    weight: 2,
    arbitrary: fc
      .oneof(
        ascii.map((s) => `Bearer ${s}`),
        ascii.map((s) => `Basic ${s}`),
        fc.constant(`Bearer ${'k'.repeat(9_000)}`),
        fc.constant('Bearer'),
        fc.constant(`bearer   cg_${'A'.repeat(43)}`),
      )
      .map((v) => () => v),
  },
);

const headers = fc.record(
  {
    authorization,
    contentType,
    idempotencyKey: fc.oneof(ascii, fc.constant(''), fc.constant('k'.repeat(300))),
    extra: fc.tuple(fc.stringMatching(/^x-[a-z]{1,12}$/), ascii),
    hubSignature: fc.oneof(ascii, fc.constant(`sha256=${'0'.repeat(64)}`)),
  },
  { requiredKeys: ['authorization', 'contentType'] },
);

/** A path parameter: one that exists, a near miss, or garbage (percent-encoded, unicode, long). */
const param = (name: string) =>
  fc.oneof(
    fc.constant(name === 'subjectKey' ? known.subjectKey : name === 'requestId' ? known.requestId : 'token'),
    ascii.filter((s) => s.length > 0),
    anyText.filter((s) => s.length > 0).map(encodeURIComponent),
    fc.constantFrom('%', '%E0%A4%A', '..', 'x'.repeat(3000), `${known.subjectKey}x`, 'er_00000000000000000000000000'),
  );

const query = fc.option(
  fc
    .array(
      fc.tuple(
        fc.constantFrom('from', 'to', 'format', 'limit', 'cursor', 'status', 'hub.mode', 'hub.verify_token', 'x'),
        fc.oneof(
          ascii,
          fc.constantFrom('2026-01-01', '2026-13-45T99:00:00Z', '-1', '1e309', 'csv', 'ndjson', 'overdue'),
        ),
      ),
      { maxLength: 4 },
    )
    .map((pairs) => `?${new URLSearchParams(pairs).toString()}`),
  { nil: '' },
);

function pathOf(route: Route) {
  const names = [...route.path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
  return fc.tuple(...names.map(param), query).map((parts) => {
    const q = parts.pop() as string;
    let i = 0;
    return route.path.replace(/\{\w+\}/g, () => parts[i++] as string) + q;
  });
}

// --- The checks ---------------------------------------------------------------------------------

interface Sent {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string;
}

const isJsonRoute = (path: string, route?: Route) =>
  path.startsWith('/v1/') && !route?.rawBody && !path.startsWith('/v1/webhooks/');

async function send(req: Sent) {
  const res = await fetch(`${server.url}${req.path}`, {
    method: req.method,
    headers: req.headers,
    body: req.method === 'GET' || req.method === 'HEAD' ? undefined : req.body,
    redirect: 'manual',
  });
  return { status: res.status, type: res.headers.get('content-type') ?? '', text: await res.text() };
}

/** Sends one request and checks the three promises; returns the table as it now is. */
async function checkOne(req: Sent, route: Route | undefined, before: string[]): Promise<string[]> {
  const res = await send(req);
  const where = `${req.method} ${req.path.slice(0, 120)} → ${res.status} ${res.text.slice(0, 200)}`;
  expect(res.status, where).toBeLessThan(500);
  if (res.status >= 400 && isJsonRoute(req.path.split('?')[0], route)) {
    expect(res.type, where).toBe('application/problem+json');
    if (req.method === 'HEAD') return checkUnchanged(req, res.status, before, where);
    const problem = JSON.parse(res.text);
    expect(problem.status, where).toBe(res.status);
    expect(typeof problem.code, where).toBe('string');
  }
  return checkUnchanged(req, res.status, before, where);
}

/** A rejected request, or any read, leaves the table as it was. */
async function checkUnchanged(req: Sent, status: number, before: string[], where: string): Promise<string[]> {
  const after = await snapshot();
  if (status >= 400 || req.method === 'GET' || req.method === 'HEAD') {
    expect(after, `${where}: the table changed`).toEqual(before);
  }
  return after;
}

function toHeaders(h: {
  authorization: () => string | undefined;
  contentType: string;
  idempotencyKey?: string;
  extra?: [string, string];
  hubSignature?: string;
}): Record<string, string> {
  const out: Record<string, string> = {};
  const auth = h.authorization();
  if (auth !== undefined) out.authorization = auth;
  if (h.contentType) out['content-type'] = h.contentType;
  if (h.idempotencyKey !== undefined) out['idempotency-key'] = h.idempotencyKey;
  if (h.extra) out[h.extra[0]] = h.extra[1];
  if (h.hubSignature !== undefined) out['x-hub-signature-256'] = h.hubSignature;
  return out;
}

describe('hostile input on every route', () => {
  it.each(ROUTES.map((r) => [routeKey(r), r] as const))('%s', async (_key, route) => {
    let table = await snapshot();
    await fc.assert(
      fc.asyncProperty(pathOf(route), headers, bodyFor(route), async (path, h, body) => {
        table = await checkOne({ method: route.method, path, headers: toHeaders(h), body }, route, table);
      }),
      { seed: SEED, numRuns: RUNS_PER_ROUTE, endOnFailure: true },
    );
  });

  it('wrong methods, unknown paths and odd requests', async () => {
    let table = await snapshot();
    const anyRoute = fc.constantFrom(...ROUTES);
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          anyRoute.chain((r) => pathOf(r)),
          fc.array(fc.oneof(ascii, anyText.map(encodeURIComponent)), { maxLength: 5 }).map((s) => `/${s.join('/')}`),
          fc.constantFrom('/v1', '/v1/', '/v1/gate/check/', '//v1/gate/check', '/v1/GATE/CHECK', '/v1/gate/check%00'),
        ),
        fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD'),
        headers,
        fc.oneof(
          jsonish.map((v) => JSON.stringify(v)),
          anyText,
        ),
        async (path, method, h, body) => {
          const match = ROUTES.find(
            (r) =>
              r.method === method && new RegExp(`^${r.path.replace(/\{\w+\}/g, '[^/]+')}$`).test(path.split('?')[0]),
          );
          table = await checkOne({ method, path, headers: toHeaders(h), body }, match, table);
        },
      ),
      { seed: SEED, numRuns: Number(process.env.FUZZ_RUNS_ANY ?? 60), endOnFailure: true },
    );
  });

  it('a malformed Host header or a "//" path is a 4xx, not a 500', async () => {
    const before = await snapshot();
    const { port } = new URL(server.url);
    for (const [host, path] of [
      ['a b', '/v1/health'],
      ['evil.example/v1/consents', '/v1/health'],
      ['[::1', '/v1/gate/check'],
      [`127.0.0.1:${port}`, '//evil.example/v1/gate/check'],
    ]) {
      const status = await new Promise<number>((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port, path, method: 'POST', headers: { host } }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.end('{}');
      });
      expect(status, `${host} ${path}`).toBeLessThan(500);
    }
    expect(await snapshot()).toEqual(before);
  });

  it('a header larger than the server accepts is refused with a 4xx', async () => {
    const before = await snapshot();
    const res = await send({
      method: 'POST',
      path: '/v1/consents',
      headers: {
        authorization: `Bearer ${keys.admin}`,
        'content-type': 'application/json',
        'x-big': 'h'.repeat(70_000),
      },
      body: JSON.stringify(grantBody()),
    }).catch((error: Error) => ({ status: 0, type: '', text: String(error.cause ?? error) }));
    // Node answers 431 and closes; what matters is that nothing was stored and it was no 5xx.
    expect(res.status === 0 || (res.status >= 400 && res.status < 500)).toBe(true);
    expect(await snapshot()).toEqual(before);
  });
});
