import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { getDb } from '#store/db.ts';
import { keys } from '#store/table.ts';
import { tamperEvent } from '../helpers/audit-seed.ts';
import { grantBody, phone, tenantWithKey } from '../helpers/factories.ts';
import { client, describeLocal, startServer } from '../helpers/http.ts';

let server: Awaited<ReturnType<typeof startServer>>;
let admin: ReturnType<typeof client>;
let auditor: ReturnType<typeof client>;
let tenant: string;
const from = new Date(Date.now() - 86_400_000).toISOString().slice(0, 10);
const to = new Date(Date.now() + 2 * 86_400_000).toISOString().slice(0, 10);
const range = `from=${from}&to=${to}`;
const subjects: { phone: string }[] = [];
let erasureId: string;

beforeAll(async () => {
  server = await startServer();
  const owner = await tenantWithKey(['admin']);
  tenant = owner.tenant;
  admin = client(server.url, owner.key);
  auditor = client(server.url, (await tenantWithKey(['audit:read'], tenant)).key);
  for (let i = 0; i < 5; i++) {
    const subject = { phone: phone() };
    subjects.push(subject);
    expect((await admin.post('/v1/consents', grantBody({ subject }))).status).toBe(201);
    expect((await admin.post('/v1/consents', grantBody({ subject, channel: 'sms' }))).status).toBe(201);
  }
  expect((await admin.post('/v1/consents/withdraw', { subject: subjects[0], channel: 'whatsapp' })).status).toBe(200);
  const erasure = await admin.post('/v1/erasure-requests', { subjects: [subjects[4]], requestedVia: 'email' });
  expect(erasure.status).toBe(202);
  erasureId = erasure.body.requestId;
  // Another tenant's events must never appear.
  const other = client(server.url, (await tenantWithKey(['admin'])).key);
  await other.post('/v1/consents', grantBody());
});
afterAll(() => server.close());

const ndjson = (text: string) =>
  text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));

describeLocal('GET /v1/audit/events', () => {
  it('exports every event of the tenant in time order as NDJSON', async () => {
    const res = await auditor.get(`/v1/audit/events?${range}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/x-ndjson/);
    expect(res.headers.get('x-next-cursor')).toBeNull();
    const events = ndjson(res.text);
    // 10 grants, 1 withdrawal, 1 erasure request.
    expect(events).toHaveLength(12);
    // In the order they were recorded (a late delivery is never lost from a day already exported).
    expect(events.map((e) => `${e.recordedAt}#${e.eventId}`)).toEqual(
      events.map((e) => `${e.recordedAt}#${e.eventId}`).sort(),
    );
    expect(events.filter((e) => e.type === 'consent.granted')).toHaveLength(10);
    expect(events.filter((e) => e.type === 'consent.withdrawn')).toHaveLength(1);
    expect(events.filter((e) => e.type === 'erasure.requested')).toHaveLength(1);
    expect(Object.keys(events[0]).sort()).toEqual(
      [
        'v',
        'at',
        'recordedAt',
        'actor',
        'channel',
        'data',
        'detailsDigest',
        'eventId',
        'hash',
        'prevHash',
        'purpose',
        'seq',
        'source',
        'subjectKey',
        'type',
      ].sort(),
    );
    expect(res.text).not.toContain(subjects[0].phone);
  });

  it('pages with X-Next-Cursor until the last page, which has none', async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res: { status: number; text: string; headers: Headers } = await auditor.get(
        `/v1/audit/events?${range}&limit=5${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
      );
      expect(res.status).toBe(200);
      seen.push(...ndjson(res.text).map((e) => e.eventId));
      cursor = res.headers.get('x-next-cursor');
      pages++;
    } while (cursor);
    expect(pages).toBe(3);
    const all = ndjson((await auditor.get(`/v1/audit/events?${range}`)).text).map((e) => e.eventId);
    expect(seen).toEqual(all);
  });

  it('exports CSV with the contract header, the header on the first page only', async () => {
    const first = await auditor.get(`/v1/audit/events?${range}&format=csv&limit=4`);
    expect(first.status).toBe(200);
    expect(first.headers.get('content-type')).toMatch(/^text\/csv/);
    const lines = first.text.trimEnd().split('\r\n');
    expect(lines[0]).toBe(
      'at,eventId,subjectKey,type,channel,purpose,source,noticeVersion,prevHash,hash,recordedAt,actor',
    );
    expect(lines).toHaveLength(5);
    expect(lines[1].split(',')[7]).toBe('2026-09-privacy-v3');
    const cursor = first.headers.get('x-next-cursor')!;
    const second = await auditor.get(`/v1/audit/events?${range}&format=csv&limit=4&cursor=${cursor}`);
    expect(second.text.startsWith('at,')).toBe(false);
    expect(second.text.trimEnd().split('\r\n')).toHaveLength(4);
  });

  it.each([
    ['from=2026-11-01', 'to'],
    ['from=yesterday&to=2026-11-01', 'from'],
    ['from=2026-11-02&to=2026-11-01', 'to'],
    ['from=2026-11-01&to=2026-11-01', 'to'],
    ['from=2024-01-01&to=2026-01-01', 'to'],
    ['from=2026-11-01&to=2026-11-02&format=xml', 'format'],
    ['from=2026-11-01&to=2026-11-02&limit=100000', 'limit'],
    ['from=2026-11-01&to=2026-11-02&colour=red', 'colour'],
  ])('answers 400 with the faulty field for %s', async (query, field) => {
    const res = await auditor.get(`/v1/audit/events?${query}`);
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
    expect(res.body.errors.map((e: { path: string }) => e.path)).toContain(`query.${field}`);
  });

  it('says why a range is too long', async () => {
    const res = await auditor.get('/v1/audit/events?from=2024-01-01&to=2026-01-01');
    expect(res.body.detail).toMatch(/at most 366 days/);
  });

  it('answers 400 invalid_cursor for a forged cursor', async () => {
    const res = await auditor.get(`/v1/audit/events?${range}&cursor=Zm9yZ2Vk`);
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('invalid_cursor');
  });

  it('needs the audit:read scope', async () => {
    const writer = client(server.url, (await tenantWithKey(['consents:write', 'consents:read'], tenant)).key);
    expect((await writer.get(`/v1/audit/events?${range}`)).status).toBe(403);
    expect((await client(server.url).get(`/v1/audit/events?${range}`)).status).toBe(401);
  });
});

describeLocal('GET /v1/audit/summary', () => {
  it('counts per day, type and channel', async () => {
    const res = await auditor.get(`/v1/audit/summary?${range}`);
    expect(res.status).toBe(200);
    expect(res.body.total).toBe(12);
    expect(res.body.types).toEqual({ 'consent.granted': 10, 'consent.withdrawn': 1, 'erasure.requested': 1 });
    expect(res.body.channels).toEqual({ whatsapp: 6, sms: 5, '*': 1 });
    const today = new Date().toISOString().slice(0, 10);
    expect(res.body.days.map((d: { day: string }) => d.day)).toContain(today);
    expect(res.body.counts).toContainEqual({ day: today, type: 'consent.granted', channel: 'sms', count: 5 });
    expect(res.body.contacts.total).toBe(5);
  });
});

describeLocal('contacts by block level', () => {
  it('counts each contact once, at the highest level of its channels', async () => {
    const owner = await tenantWithKey(['admin']);
    const api = client(server.url, owner.key);
    const [calm, suspected, likely] = [{ phone: phone() }, { phone: phone() }, { phone: phone() }];
    for (const subject of [calm, suspected, likely]) await api.post('/v1/consents', grantBody({ subject }));
    const signal = (subject: { phone: string }, type: string) =>
      api.post('/v1/signals', { subject, channel: 'whatsapp', type });
    expect((await signal(suspected, 'message_undelivered')).body.level).toBe('suspected');
    await signal(likely, 'group_add_refused');
    await signal(likely, 'message_undelivered');
    expect((await signal(likely, 'call_failed')).body.level).toBe('likely');
    const res = await api.get(`/v1/audit/summary?${range}`);
    expect(res.body.contacts.total).toBe(3);
    expect(res.body.contacts.blockLevels.counts).toEqual({ none: 1, suspected: 1, likely: 1 });
    expect(res.body.contacts.blockLevels.share.likely).toBeCloseTo(1 / 3, 3);
    expect(res.body.types['signal.recorded']).toBe(4);
  });
});

describeLocal('GET /v1/audit/verify', () => {
  it('reports an intact ledger, then the exact subject and seq after a direct edit in the table', async () => {
    const ok = await auditor.get(`/v1/audit/verify?${range}`);
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ subjects: 5, events: 12, valid: true, broken: [] });

    const lookup = await admin.post('/v1/subjects/lookup', { subject: subjects[2] });
    const subjectKey = lookup.body.subjectKey;
    const db = getDb();
    await tamperEvent(db, tenant, subjectKey, 2, ['channel'], 'email');
    const broken = await auditor.get(`/v1/audit/verify?${range}`);
    expect(broken.body.valid).toBe(false);
    expect(broken.body.broken).toEqual([{ subjectKey, seq: 2, reason: 'hash_mismatch' }]);
  });
});

describeLocal('an erasure, as the audit shows it', () => {
  it('keeps the public part of the erased subject’s events as proof, and the ledger still verifies', async () => {
    const owner = await tenantWithKey(['admin']);
    const api = client(server.url, owner.key);
    const [kept, erased] = [{ phone: phone() }, { phone: phone() }];
    await api.post('/v1/consents', grantBody({ subject: kept }));
    await api.post('/v1/consents', grantBody({ subject: erased }));
    await api.post('/v1/consents', grantBody({ subject: erased, channel: 'sms' }));
    const erasedKey = (await api.post('/v1/subjects/lookup', { subject: erased })).body.subjectKey;
    const request = await api.post('/v1/erasure-requests', {
      subjects: [erased],
      requestedVia: 'web',
      immediate: true,
    });
    expect(request.body.status).toBe('completed');

    const events = ndjson((await api.get(`/v1/audit/events?${range}`)).text);
    expect(events.filter((e) => e.subjectKey === erasedKey).map((e) => e.type)).toEqual([
      'consent.granted',
      'consent.granted',
      'erasure.requested',
      'erasure.completed',
    ]);
    expect(events.filter((e) => e.subjectKey !== erasedKey).map((e) => e.type)).toEqual(['consent.granted']);
    const verify = await api.get(`/v1/audit/verify?${range}`);
    expect(verify.body).toMatchObject({ subjects: 2, events: 5, valid: true });
    const completed = await api.get('/v1/audit/erasures?status=completed');
    expect(completed.body.requests).toMatchObject([
      { requestId: request.body.requestId, status: 'completed', daysLeft: null },
    ]);
    expect(Date.parse(completed.body.requests[0].completedAt)).toBeLessThanOrEqual(
      Date.parse(completed.body.requests[0].dueBy),
    );
  });
});

describeLocal('GET /v1/audit/erasures', () => {
  it('lists pending requests with their deadline, overdue ones flagged', async () => {
    const pending = await auditor.get('/v1/audit/erasures?status=pending');
    expect(pending.status).toBe(200);
    expect(pending.body.requests).toHaveLength(1);
    expect(pending.body.requests[0]).toMatchObject({ requestId: erasureId, status: 'received' });
    expect(pending.body.requests[0].daysLeft).toBeGreaterThanOrEqual(27);

    // Age the request: received two months ago, due a month ago.
    const db = getDb();
    const receivedAt = new Date(Date.now() - 60 * 86_400_000).toISOString();
    const dueBy = new Date(Date.now() - 30 * 86_400_000).toISOString();
    await db.client.send(
      new UpdateCommand({
        TableName: db.table,
        Key: { PK: keys.erasure(tenant, erasureId), SK: 'REQ' },
        UpdateExpression: 'SET receivedAt = :r, dueBy = :d, GSI2SK = :sk',
        ExpressionAttributeValues: { ':r': receivedAt, ':d': dueBy, ':sk': `${dueBy}#${erasureId}` },
      }),
    );
    const overdue = await auditor.get('/v1/audit/erasures?status=overdue');
    expect(overdue.body.requests).toHaveLength(1);
    expect(overdue.body.requests[0]).toMatchObject({ requestId: erasureId, status: 'overdue', daysLeft: -30 });
    const due = await auditor.get('/v1/audit/erasures?dueWithinDays=7');
    expect(due.body.requests.map((r: { requestId: string }) => r.requestId)).toEqual([erasureId]);
    expect((await auditor.get('/v1/audit/erasures?status=received')).body.requests).toHaveLength(0);
    expect((await auditor.get('/v1/audit/erasures?status=late')).status).toBe(400);
  });
});

describeLocal('GET /dashboard', () => {
  it('serves the page with a strict CSP, in French when asked', async () => {
    const res = await client(server.url).get('/dashboard', { headers: { 'accept-language': 'fr-FR,fr;q=0.9' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    const csp = res.headers.get('content-security-policy')!;
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(res.text).toContain('<html lang="fr">');
    expect(res.text).toContain('Tableau de bord du DPO');
    expect(res.text).not.toMatch(/<script(?![^>]*(src=|type="application\/json"))/);
    expect((await client(server.url).get('/dashboard?lang=en')).text).toContain('DPO dashboard');
  });

  it('serves the chart library and its own script from this origin, nothing else', async () => {
    const chart = await client(server.url).get('/dashboard/assets/chart.umd.min.js');
    expect(chart.status).toBe(200);
    expect(chart.headers.get('content-type')).toMatch(/^text\/javascript/);
    expect(chart.text).toContain('Chart');
    expect((await client(server.url).get('/dashboard/assets/dashboard.js')).status).toBe(200);
    expect((await client(server.url).get('/dashboard/assets/dashboard.css')).status).toBe(200);
    expect((await client(server.url).get('/dashboard/assets/page.ts')).status).toBe(404);
    expect((await client(server.url).get('/dashboard/assets/..%2Fpage.ts')).status).toBe(404);
  });
});
