import { describe, expect, it } from 'vitest';
import { ROUTE_RESPONSES } from '#http/responses.ts';
import { ROUTES, routeKey } from '#http/routes.ts';
import { servedDocument } from '../../../scripts/openapi-document.ts';
import { responseProblems } from '../../helpers/openapi-validator.ts';

/*
 * The response specification covers the route table exactly, and the document built from it is what the
 * e2e validator enforces. A route added to the table (by any branch) without its responses fails here.
 */
const doc = await servedDocument();
const operations = ROUTES.map((route) => ({
  key: routeKey(route),
  op: doc.paths[route.path][route.method.toLowerCase()] as {
    responses: Record<string, { content?: Record<string, { schema: any }> }>;
    parameters?: { name: string; in: string; required?: boolean }[];
  },
}));

const json = (body: unknown) => ({ 'content-type': 'application/json; charset=utf-8', body: JSON.stringify(body) });
const observed = (method: string, path: string, status: number, res: { 'content-type': string; body: string }) => ({
  method,
  path,
  status,
  headers: new Headers({ 'content-type': res['content-type'] }),
  text: res.body,
});

const decision = {
  decision: 'block',
  reasons: [{ code: 'consent_withdrawn', message: 'withdrawn' }],
  warnings: [],
  consent: null,
  blockLikelihood: 0,
  retryAfter: null,
  subjectKey: 'sk_1',
  decisionId: 'dec_1',
};

describe('the response specification', () => {
  it('has responses for every route of the table and for nothing else', () => {
    const keys = ROUTES.map(routeKey).sort();
    expect(Object.keys(ROUTE_RESPONSES).sort()).toEqual(keys);
  });

  it('documents a success body or text for every operation, and a 4xx for every operation', () => {
    const no4xx: string[] = [];
    for (const { key, op } of operations) {
      const success = Object.entries(op.responses).filter(([status]) => Number(status) < 300);
      expect(success.length, key).toBeGreaterThan(0);
      // A body for every success but 204 (No Content: none, by definition).
      for (const [status, response] of success)
        if (status !== '204') expect(Object.keys(response.content ?? {}).length, key).toBeGreaterThan(0);
        else expect(response.content, key).toBeUndefined();
      if (!Object.keys(op.responses).some((s) => s.startsWith('4'))) no4xx.push(key);
    }
    // Even the public GETs: their query strings are checked for ill-formed Unicode (400 invalid_unicode).
    expect(no4xx).toEqual([]);
  });

  it('lists the enumerated problem codes per status and every code in the Problem schema', () => {
    const grant = operations.find((o) => o.key === 'POST /v1/consents')?.op;
    const conflict = grant?.responses['409'].content?.['application/problem+json'].schema.allOf[1];
    expect(conflict.properties.code.enum).toEqual(
      expect.arrayContaining(['fresh_consent_required', 'idempotency_key_reused']),
    );
    expect(grant?.parameters?.map((p) => p.name)).toContain('Idempotency-Key');
    expect(doc.components.schemas.Problem.properties.code.enum).toEqual(
      expect.arrayContaining(['unauthorized', 'not_sealed', 'erasure_request_not_found', 'method_not_allowed']),
    );
  });

  it('gives the gate reason codes as an enum and "exactly one identifier" as oneOf', () => {
    const check = operations.find((o) => o.key === 'POST /v1/gate/check')?.op as any;
    const reasons = check.responses['200'].content['application/json'].schema.properties.reasons;
    expect(reasons.items.properties.code.enum).toEqual(expect.arrayContaining(['no_consent', 'quiet_hours']));
    const subject = check.requestBody.content['application/json'].schema.properties.subject;
    expect(subject.oneOf).toEqual([
      { required: ['phone'] },
      { required: ['email'] },
      { required: ['externalId'] },
      { required: ['waUserId'] },
    ]);
  });

  it('documents the webhook handshake parameters, the exports and the dashboard assets', () => {
    const handshake = operations.find((o) => o.key === 'GET /v1/webhooks/whatsapp')?.op;
    expect(handshake?.parameters?.map((p) => p.name)).toEqual(['hub.mode', 'hub.verify_token', 'hub.challenge']);
    const exportOp = operations.find((o) => o.key === 'GET /v1/audit/events')?.op as any;
    expect(Object.keys(exportOp.responses['200'].content)).toEqual(['application/x-ndjson', 'text/csv']);
    expect(exportOp.responses['200'].headers).toHaveProperty('X-Next-Cursor');
    const asset = operations.find((o) => o.key === 'GET /dashboard/assets/{file}')?.op;
    expect(Object.keys(asset?.responses['200'].content ?? {})).toEqual(['text/javascript', 'text/css']);
  });
});

describe('the response validator', () => {
  it('accepts a conforming response', async () => {
    expect(await responseProblems(observed('POST', '/v1/gate/check', 200, json(decision)))).toEqual([]);
  });

  it('rejects a body that breaks the schema, naming the field', async () => {
    const { decision: _, ...missing } = decision;
    const problems = await responseProblems(observed('POST', '/v1/gate/check', 200, json(missing)));
    expect(problems.join('\n')).toMatch(/must have required property 'decision'/);
    const badReason = { ...decision, reasons: [{ code: 'made_up', message: 'x' }] };
    expect(await responseProblems(observed('POST', '/v1/gate/check', 200, json(badReason)))).not.toEqual([]);
  });

  it('rejects an undocumented status, content type, problem code or a missing required header', async () => {
    expect(await responseProblems(observed('POST', '/v1/gate/check', 418, json({})))).toEqual([
      'status 418 is not documented',
    ]);
    const html = { 'content-type': 'text/html', body: '<p>hi</p>' };
    expect((await responseProblems(observed('POST', '/v1/gate/check', 200, html)))[0]).toMatch(/content type/);
    const problem = (code: string) => ({
      'content-type': 'application/problem+json',
      body: JSON.stringify({
        type: `https://consent-gate.dev/problems/${code}`,
        title: 'x',
        status: 404,
        code,
        detail: 'x',
      }),
    });
    expect(await responseProblems(observed('GET', '/v1/notices/v1', 404, problem('notice_not_found')))).toEqual([]);
    expect(await responseProblems(observed('GET', '/v1/notices/v1', 404, problem('subject_not_found')))).not.toEqual(
      [],
    );
    const unavailable = {
      ...problem('store_unavailable'),
      body: problem('store_unavailable').body.replace('404', '503'),
    };
    expect(await responseProblems(observed('GET', '/v1/notices/v1', 503, unavailable))).toEqual([
      'required header Retry-After is missing',
    ]);
  });
});

describe('the response validator on unrouted requests', () => {
  it('accepts the routing problems (404 no route, 405 other method) and nothing else', async () => {
    const routing = (status: number, code: string) => ({
      'content-type': 'application/problem+json',
      body: JSON.stringify({
        type: `https://consent-gate.dev/problems/${code}`,
        title: 'x',
        status,
        code,
        detail: 'x',
      }),
    });
    expect(await responseProblems(observed('GET', '/v2/nothing', 404, routing(404, 'not_found')))).toEqual([]);
    expect(await responseProblems(observed('DELETE', '/v1/policy', 405, routing(405, 'method_not_allowed')))).toEqual(
      [],
    );
    const page = { 'content-type': 'text/html', body: '<p>no</p>' };
    expect(await responseProblems(observed('GET', '/v2/nothing', 404, page))).not.toEqual([]);
  });
});
