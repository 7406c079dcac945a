import createClient, { type Client, type Middleware } from 'openapi-fetch';
import type { components, paths } from './schema.d.ts';

export type { components, paths };

/** An RFC 9457 problem document as the API answers it. */
export type Problem = components['schemas']['Problem'];

/** A problem answer (4xx/5xx application/problem+json) as an error: status, stable `code`, `detail`. */
export class ConsentGateProblem extends Error {
  readonly status: number;
  readonly code: Problem['code'] | 'unexpected_response';
  readonly title: string;
  readonly detail: string;
  readonly errors: { path: string; message: string }[];

  constructor(status: number, problem: Partial<Problem> | undefined) {
    super(
      `${status} ${problem?.code ?? 'unexpected_response'}: ${problem?.detail ?? 'the response was not a problem document'}`,
    );
    this.name = 'ConsentGateProblem';
    this.status = status;
    this.code = problem?.code ?? 'unexpected_response';
    this.title = problem?.title ?? '';
    this.detail = problem?.detail ?? '';
    this.errors = problem?.errors ?? [];
  }
}

export interface ConsentGateClientOptions {
  /** The API's base URL, e.g. https://abc.execute-api.eu-west-1.amazonaws.com or http://127.0.0.1:3000. */
  baseUrl: string;
  /** An API key (sent as `Authorization: Bearer …`). */
  apiKey?: string;
  /** Another fetch (tests, proxies). */
  fetch?: typeof globalThis.fetch;
  /** Retries of a 503 (which always carries Retry-After); 0 turns retrying off. Default 2. */
  maxRetries?: number;
  /** The longest wait between two attempts, whatever Retry-After says. Default 5000 ms. */
  maxRetryDelayMs?: number;
}

const WRITES = new Set(['POST', 'PUT', 'DELETE', 'PATCH']);

/** Seconds or an HTTP date, as Retry-After allows (RFC 9110 §10.2.3); capped. */
function retryDelayMs(value: string | null, capMs: number): number {
  if (!value) return 0;
  const seconds = Number(value);
  const ms = Number.isFinite(seconds) ? seconds * 1000 : Date.parse(value) - Date.now();
  return Math.min(Math.max(ms, 0), capMs);
}

/**
 * A fetch that retries a 503 after its Retry-After, at most `maxRetries` times. The request (with its
 * Idempotency-Key) is sent again unchanged, so a retried write is never recorded twice.
 */
function retrying(fetchImpl: typeof globalThis.fetch, maxRetries: number, capMs: number) {
  return async (input: Request): Promise<Response> => {
    for (let attempt = 0; ; attempt++) {
      const response = await fetchImpl(input.clone());
      if (response.status !== 503 || attempt >= maxRetries) return response;
      const delay = retryDelayMs(response.headers.get('retry-after'), capMs);
      await response.body?.cancel();
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  };
}

/** One page of a cursor-paged listing: its body (JSON, or text for NDJSON/CSV) and the response. */
export interface Page<T = unknown> {
  body: T;
  response: Response;
}

/** GET paths that page with `?cursor=` and answer the next cursor in `X-Next-Cursor`. */
export type PagedPath = {
  [P in keyof paths]: paths[P] extends { get: { parameters: { query?: { cursor?: string } } } } ? P : never;
}[keyof paths];

type QueryOf<P extends PagedPath> = paths[P] extends { get: { parameters: { query?: infer Q } } } ? Q : never;

export type ConsentGateClient = Client<paths> & {
  /** Every page of a cursor-paged listing, following `X-Next-Cursor` until the last page. */
  pages<P extends PagedPath>(path: P, query: Omit<NonNullable<QueryOf<P>>, 'cursor'>): AsyncGenerator<Page>;
};

/**
 * The consent-gate client: an openapi-fetch client typed from the API's OpenAPI document
 * (`const { data, error } = await cg.POST('/v1/gate/check', { body })`), with an automatic
 * Idempotency-Key (a UUID) on every write, bounded retries of 503 after Retry-After, and `pages()`.
 * Use {@link orThrow} to turn a problem answer into a {@link ConsentGateProblem}.
 */
export function createConsentGateClient(options: ConsentGateClientOptions): ConsentGateClient {
  const baseUrl = options.baseUrl.replace(/\/+$/, '');
  const fetchImpl = retrying(
    options.fetch ?? globalThis.fetch,
    options.maxRetries ?? 2,
    options.maxRetryDelayMs ?? 5000,
  );
  const headers: Record<string, string> = options.apiKey ? { authorization: `Bearer ${options.apiKey}` } : {};
  const client = createClient<paths>({ baseUrl, fetch: fetchImpl, headers });
  const idempotencyKeys: Middleware = {
    onRequest({ request }) {
      if (WRITES.has(request.method) && !request.headers.has('idempotency-key')) {
        request.headers.set('idempotency-key', crypto.randomUUID());
      }
      return request;
    },
  };
  client.use(idempotencyKeys);
  async function* pages<P extends PagedPath>(path: P, query: Omit<NonNullable<QueryOf<P>>, 'cursor'>) {
    let cursor: string | undefined;
    do {
      const url = new URL(`${baseUrl}${path}`);
      for (const [name, value] of Object.entries(query as Record<string, unknown>)) {
        if (value !== undefined) url.searchParams.set(name, String(value));
      }
      if (cursor) url.searchParams.set('cursor', cursor);
      const response = await fetchImpl(new Request(url, { headers }));
      const type = response.headers.get('content-type') ?? '';
      if (!response.ok) throw new ConsentGateProblem(response.status, await problemBody(response));
      const body = /\bjson\b/.test(type) ? await response.json() : await response.text();
      yield { body, response } satisfies Page;
      cursor = response.headers.get('x-next-cursor') ?? undefined;
    } while (cursor);
  }
  return Object.assign(client, { pages });
}

async function problemBody(response: Response): Promise<Partial<Problem> | undefined> {
  try {
    return (await response.json()) as Partial<Problem>;
  } catch {
    return undefined;
  }
}

/**
 * The data of an openapi-fetch result, or a {@link ConsentGateProblem} thrown for a problem answer:
 * `const decision = await orThrow(cg.POST('/v1/gate/check', { body }))`.
 */
export async function orThrow<T, E>(result: Promise<{ data?: T; error?: E; response: Response }>): Promise<T> {
  const { data, error, response } = await result;
  if (response.ok && error === undefined) return data as T;
  throw new ConsentGateProblem(response.status, error as Partial<Problem> | undefined);
}
