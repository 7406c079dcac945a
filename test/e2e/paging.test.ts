import { afterAll, beforeAll, expect, it } from 'vitest';
import { mapLimit } from '#shared/concurrency.ts';
import { grantBody, phone, tenantWithKey } from '../helpers/factories.ts';
import { client, describeLocal, startServer, type TestResponse } from '../helpers/http.ts';

let server: Awaited<ReturnType<typeof startServer>>;
let api: ReturnType<typeof client>;

beforeAll(async () => {
  server = await startServer();
  api = client(server.url, (await tenantWithKey()).key);
});
afterAll(() => server.close());

/** Every page of a listing, following X-Next-Cursor from `first` until it is absent. */
async function allPages(first: string, fetchPage: (url: string) => Promise<TestResponse>) {
  const pages: TestResponse[] = [];
  let url: string | undefined = first;
  while (url) {
    const page = await fetchPage(url);
    expect(page.status, page.text).toBe(200);
    pages.push(page);
    const next = page.headers.get('x-next-cursor');
    url = next ? `${first}${first.includes('?') ? '&' : '?'}cursor=${encodeURIComponent(next)}` : undefined;
    expect(pages.length).toBeLessThan(50);
  }
  return pages;
}

/** A subject with one grant and `signals` signals: 1 + signals events. */
async function subjectWithEvents(signals: number) {
  const subject = { phone: phone() };
  const granted = await api.post('/v1/consents', grantBody({ subject }));
  expect(granted.status).toBe(201);
  await mapLimit(
    Array.from({ length: signals }, (_, i) => i),
    4,
    async (i) => {
      const res = await api.post('/v1/signals', {
        subject,
        channel: 'whatsapp',
        type: 'message_undelivered',
        observedAt: new Date(Date.now() - (signals - i) * 1000).toISOString(),
      });
      expect(res.status, res.text).toBe(202);
    },
  );
  return { subject, subjectKey: granted.body.subjectKey as string, total: 1 + signals };
}

describeLocal('GET /v1/subjects/{subjectKey}/events pages', () => {
  it('by ?limit= with X-Next-Cursor, absent on the last page; each page verified and linked to the one before', async () => {
    const { subjectKey, total } = await subjectWithEvents(6);
    const pages = await allPages(`/v1/subjects/${subjectKey}/events?limit=3`, (url) => api.get(url));
    expect(pages.map((p) => p.body.events.length)).toEqual([3, 3, 1]);
    const seqs = pages.flatMap((p) => p.body.events.map((e: { seq: number }) => e.seq));
    expect(seqs).toEqual(Array.from({ length: total }, (_, i) => i + 1));
    for (const page of pages) expect(page.body.chain.valid).toBe(true);
    const last = pages.at(-1)?.body;
    expect(last.chain).toMatchObject({ length: total, head: last.events.at(-1).hash });
  });

  it('answers 100 events by default, at most 1000, and 400 for a cursor it did not hand out', async () => {
    const { subjectKey, total } = await subjectWithEvents(101);
    const first = await api.get(`/v1/subjects/${subjectKey}/events`);
    expect(first.body.events).toHaveLength(100);
    expect(first.headers.get('x-next-cursor')).toBeTruthy();
    const all = await api.get(`/v1/subjects/${subjectKey}/events?limit=1000`);
    expect(all.body.events).toHaveLength(total);
    expect(all.headers.get('x-next-cursor')).toBeNull();
    expect((await api.get(`/v1/subjects/${subjectKey}/events?limit=1001`)).status).toBe(400);
    expect((await api.get(`/v1/subjects/${subjectKey}/events?limit=0`)).status).toBe(400);
    const forged = await api.get(`/v1/subjects/${subjectKey}/events?cursor=not-a-cursor`);
    expect([forged.status, forged.body.code]).toEqual([400, 'invalid_cursor']);
  });
});

describeLocal('POST /v1/subjects/access pages its history', () => {
  it('the first page is the whole copy with the first events; later pages carry the next events only', async () => {
    const { subject, subjectKey, total } = await subjectWithEvents(4);
    const pages = await allPages('/v1/subjects/access?limit=2', (url) => api.post(url, { subject }));
    expect(pages.length).toBeGreaterThanOrEqual(3);
    expect(pages[0].body.events).toHaveLength(2);
    expect(pages[0].body).toMatchObject({ subject: { subjectKey }, legalBasis: expect.any(String) });
    expect(pages[0].body.consents).toHaveLength(1);
    for (const page of pages.slice(1)) expect(page.body.consents).toBeUndefined();
    const seqs = pages.flatMap((p) => p.body.events.map((e: { seq: number }) => e.seq));
    // The copy records one access.provided event, after the first page was taken: later pages may show it.
    expect(seqs.slice(0, total)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
    const ledger = (await api.get(`/v1/subjects/${subjectKey}/events?limit=1000`)).body.events;
    expect(ledger.filter((e: { type: string }) => e.type === 'access.provided')).toHaveLength(1);
  });
});

describeLocal('GET /v1/erasure-requests pages', () => {
  it('across received and completed requests, without repeating or skipping one', async () => {
    const own = client(server.url, (await tenantWithKey()).key);
    const created: string[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await own.post('/v1/erasure-requests', {
        subjects: [{ phone: phone() }],
        requestedVia: 'email',
        immediate: i % 2 === 0,
      });
      expect(res.status, res.text).toBe(202);
      created.push(res.body.requestId);
    }
    const pages = await allPages('/v1/erasure-requests?limit=2', (url) => own.get(url));
    expect(pages.map((p) => p.body.requests.length)).toEqual([2, 2, 1]);
    const ids = pages.flatMap((p) => p.body.requests.map((r: { requestId: string }) => r.requestId));
    expect([...ids].sort()).toEqual([...created].sort());
    const statuses = pages.flatMap((p) => p.body.requests.map((r: { status: string }) => r.status));
    expect(statuses).toEqual(['received', 'received', 'completed', 'completed', 'completed']);
    expect((await own.get('/v1/erasure-requests?limit=1001')).status).toBe(400);
    const forged = await own.get('/v1/erasure-requests?cursor=eyJ2IjoxfQ');
    expect([forged.status, forged.body.code]).toEqual([400, 'invalid_cursor']);
  });
});
