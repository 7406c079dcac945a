import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ConsentGateClient,
  ConsentGateProblem,
  createConsentGateClient,
  orThrow,
} from '../../clients/typescript/src/index.ts';
import { grantBody, phone, tenantWithKey } from '../helpers/factories.ts';
import { describeLocal, startServer } from '../helpers/http.ts';
import { assertConforms } from '../helpers/openapi-validator.ts';

// The typed client (clients/typescript) against the local server. This file is type-checked with the rest
// (`npm run typecheck`): the `@ts-expect-error` lines prove the responses are typed from the document.

let server: Awaited<ReturnType<typeof startServer>>;
let key: string;
/** Every request the client sent, as the server received it (after the client's middlewares). */
const sent: Request[] = [];

/** The real fetch, recording requests and validating every response against the OpenAPI document. */
const recordingFetch: typeof fetch = async (input, init) => {
  const request = new Request(input, init);
  sent.push(request.clone());
  const response = await fetch(request);
  await assertConforms({
    method: request.method,
    path: new URL(request.url).pathname,
    status: response.status,
    headers: response.headers,
    text: await response.clone().text(),
  });
  return response;
};

let cg: ConsentGateClient;
beforeAll(async () => {
  server = await startServer();
  key = (await tenantWithKey(['admin'])).key;
  cg = createConsentGateClient({ baseUrl: server.url, apiKey: key, fetch: recordingFetch });
});
afterAll(() => server.close());

const from = new Date(Date.now() - 86_400_000).toISOString().slice(0, 10);
const to = new Date(Date.now() + 2 * 86_400_000).toISOString().slice(0, 10);

describeLocal('@consent-gate/client', () => {
  it('types the gate decision from the document: data.decision is "allow" | "block" | "defer"', async () => {
    const subject = { phone: phone() };
    const granted = await cg.POST('/v1/consents', {
      body: { subject, channel: 'whatsapp', source: 'web_form', noticeVersion: 'v1' },
    });
    expect(granted.response.status).toBe(201);
    expect(granted.data?.status).toBe('granted');
    const { data, error } = await cg.POST('/v1/gate/check', { body: { subject, channel: 'whatsapp' } });
    expect(error).toBeUndefined();
    const decision: 'allow' | 'block' | 'defer' | undefined = data?.decision;
    expect(decision).toBe('allow');
    expect(data?.reasons).toEqual([]);
    // @ts-expect-error a field the document does not define does not compile
    expect(data?.verdict).toBeUndefined();
    // @ts-expect-error a body without the required channel does not compile
    await cg.POST('/v1/gate/check', { body: { subject } });
  });

  it("sends a fresh UUID Idempotency-Key on every write, keeps a caller's own, and none on reads", async () => {
    sent.length = 0;
    const body = grantBody({ subject: { phone: phone() } });
    await cg.POST('/v1/consents', { body: body as never });
    await cg.POST('/v1/consents', { body: body as never });
    await cg.POST('/v1/consents', { body: body as never, headers: { 'Idempotency-Key': 'mine-1' } });
    await cg.GET('/v1/policy');
    const keys = sent.map((r) => r.headers.get('idempotency-key'));
    expect(keys[0]).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(keys[1]).not.toBe(keys[0]);
    expect(keys.slice(2)).toEqual(['mine-1', null]);
  });

  it('throws a ConsentGateProblem carrying status, code and detail for a problem answer', async () => {
    const error = await orThrow(cg.POST('/v1/subjects/lookup', { body: { subject: { phone: phone() } } })).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ConsentGateProblem);
    expect(error).toMatchObject({ status: 404, code: 'subject_not_found' });
    expect((error as ConsentGateProblem).detail).toMatch(/was ever recorded/);
    const invalid = await orThrow(cg.POST('/v1/gate/check', { body: { subject: {}, channel: 'sms' } })).catch(
      (e: ConsentGateProblem) => e,
    );
    expect(invalid).toMatchObject({ status: 400, code: 'validation_failed' });
    expect((invalid as ConsentGateProblem).errors.length).toBeGreaterThan(0);
    const policy = await orThrow(cg.GET('/v1/policy'));
    expect(policy.consentMaxAgeDays).toBeGreaterThan(0);
  });

  it('follows X-Next-Cursor page by page to the end', async () => {
    for (let i = 0; i < 3; i++) await orThrow(cg.POST('/v1/consents', { body: grantBody() as never }));
    const bodies: string[] = [];
    for await (const page of cg.pages('/v1/audit/events', { from, to, limit: 2, format: 'ndjson' })) {
      bodies.push(page.body as string);
      expect(page.response.headers.get('content-type')).toMatch(/^application\/x-ndjson/);
    }
    const lines = bodies.join('').split('\n').filter(Boolean);
    expect(bodies.length).toBe(Math.ceil(lines.length / 2));
    expect(bodies.length).toBeGreaterThan(1);
    expect(new Set(lines.map((l) => JSON.parse(l).eventId)).size).toBe(lines.length);
  });
});

describe('@consent-gate/client retries', () => {
  /** A fetch that answers 503 (Retry-After: 0) `failures` times, then passes to the server. */
  const flaky = (failures: number) => {
    const calls: string[] = [];
    const impl: typeof fetch = async (input, init) => {
      const request = new Request(input, init);
      calls.push(request.headers.get('idempotency-key') ?? '');
      if (calls.length <= failures) {
        const problem = {
          type: 'x',
          title: 'Service unavailable',
          status: 503,
          code: 'store_unavailable',
          detail: 'x',
        };
        return new Response(JSON.stringify(problem), {
          status: 503,
          headers: { 'content-type': 'application/problem+json', 'retry-after': '0' },
        });
      }
      return fetch(request);
    };
    return { calls, impl };
  };

  it('retries a 503 after Retry-After with the same Idempotency-Key, then succeeds', async () => {
    const { calls, impl } = flaky(2);
    const retrying = createConsentGateClient({ baseUrl: server.url, apiKey: key, fetch: impl });
    const granted = await orThrow(retrying.POST('/v1/consents', { body: grantBody() as never }));
    expect(granted.status).toBe('granted');
    expect(calls).toHaveLength(3);
    expect(new Set(calls).size).toBe(1);
  });

  it('gives up after maxRetries and answers the 503 as a problem', async () => {
    const { calls, impl } = flaky(10);
    const retrying = createConsentGateClient({ baseUrl: server.url, apiKey: key, fetch: impl, maxRetries: 1 });
    const error = await orThrow(retrying.GET('/v1/policy')).catch((e: ConsentGateProblem) => e);
    expect(error).toMatchObject({ status: 503, code: 'store_unavailable' });
    expect(calls).toHaveLength(2);
  });
});
