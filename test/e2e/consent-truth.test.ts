import { randomInt } from 'node:crypto';
import { DeleteCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { getDb } from '#store/db.ts';
import { keys } from '#store/table.ts';
import { grantBody, phone, tenantWithKey } from '../helpers/factories.ts';
import { client, describeLocal, startServer } from '../helpers/http.ts';
import { change, envelope, preference, sign, status } from '../helpers/whatsapp.ts';

// The attacks of the "consent truth" issue, each replayed over HTTP: every one must now leave the gate blocking.
const SECRET = 'whatsapp-app-secret-truth';
const PNID = String(randomInt(3e14, 4e14));

let server: Awaited<ReturnType<typeof startServer>>;
let api: ReturnType<typeof client>;
let tenant: string;
let keyId: string;
const webhook = () => client(server.url);

beforeAll(async () => {
  server = await startServer();
  const t = await tenantWithKey(['admin']);
  ({ tenant, keyId } = t);
  api = client(server.url, t.key);
  process.env.WHATSAPP_PHONE_NUMBER_TENANTS = `${PNID}:${tenant}`;
});
beforeEach(() => {
  process.env.WHATSAPP_APP_SECRET = SECRET;
});
afterAll(async () => {
  delete process.env.WHATSAPP_APP_SECRET;
  delete process.env.WHATSAPP_PHONE_NUMBER_TENANTS;
  await server.close();
});

const daysAgo = (d: number) => new Date(Date.now() - d * 86_400_000).toISOString();
const deliver = (payload: unknown) => {
  const raw = JSON.stringify(payload);
  return webhook().post('/v1/webhooks/whatsapp', undefined, {
    raw,
    headers: { 'content-type': 'application/json', 'x-hub-signature-256': sign(raw, SECRET) },
  });
};
const decision = async (subject: object) => (await api.gateCheck(subject)).body;

describeLocal('consent truth over HTTP: nothing re-opens what the person closed', () => {
  it('a withdrawn scope cannot be re-opened by re-posting the original 2025 web_form grant (stale_consent)', async () => {
    const body = grantBody({ subject: { phone: phone() }, grantedAt: '2025-03-01T10:00:00Z' });
    expect((await api.post('/v1/consents', body)).status).toBe(201);
    expect((await api.post('/v1/consents/withdraw', { subject: body.subject, channel: 'whatsapp' })).status).toBe(200);
    const again = await api.post('/v1/consents', body);
    expect(again.status).toBe(409);
    expect(again.body.code).toBe('stale_consent');
    expect((await decision(body.subject)).reasons[0].code).toBe('consent_withdrawn');
    // Only the person's own later act re-opens it.
    const fresh = await api.post('/v1/consents', { ...body, grantedAt: undefined, source: 'double_opt_in' });
    expect(fresh.status).toBe(201);
    expect((await decision(body.subject)).decision).toBe('allow');
  });

  it('an objection or a withdrawal is not undone by an `api` grant, nor by an import (fresh_consent_required)', async () => {
    for (const closing of [{}, { channel: 'whatsapp', purpose: 'marketing' }]) {
      const subject = { phone: phone() };
      expect((await api.post('/v1/consents', grantBody({ subject, grantedAt: daysAgo(2) }))).status).toBe(201);
      expect((await api.post('/v1/consents/withdraw', { subject, ...closing })).status).toBe(200);
      for (const source of ['api', 'import']) {
        const res = await api.post('/v1/consents', grantBody({ subject, source }));
        expect(res.status).toBe(409);
        expect(res.body.code).toBe('fresh_consent_required');
      }
      expect((await decision(subject)).decision).toBe('block');
    }
  });

  it('an immediate erasure is not undone by re-posting the old grant', async () => {
    const body = grantBody({ subject: { phone: phone() }, grantedAt: daysAgo(30) });
    expect((await api.post('/v1/consents', body)).status).toBe(201);
    const erased = await api.post('/v1/erasure-requests', {
      subjects: [body.subject],
      requestedVia: 'email',
      immediate: true,
    });
    expect(erased.body.status).toBe('completed');
    const again = await api.post('/v1/consents', body);
    expect(again.status).toBe(409);
    expect(again.body.code).toBe('stale_consent');
    expect((await api.post('/v1/consents', { ...body, source: 'import', grantedAt: undefined })).body.code).toBe(
      'fresh_consent_required',
    );
    expect((await decision(body.subject)).reasons[0].code).toBe('subject_erased');
  });

  it('while an erasure is pending, no grant is recorded (erasure_pending)', async () => {
    const subject = { phone: phone() };
    await api.post('/v1/erasure-requests', { subjects: [subject], requestedVia: 'email' });
    const res = await api.post('/v1/consents', grantBody({ subject, source: 'double_opt_in' }));
    expect(res.status).toBe(409);
    expect(res.body.code).toBe('erasure_pending');
  });

  it('a WhatsApp "resume" dated before an erasure and delivered after it grants nothing', async () => {
    const subject = { phone: phone() };
    await api.post('/v1/consents', grantBody({ subject, grantedAt: daysAgo(10) }));
    const before = new Date(Date.now() - 60_000).toISOString();
    await api.post('/v1/erasure-requests', { subjects: [subject], requestedVia: 'email', immediate: true });
    const res = await deliver(envelope([change(PNID, preference(subject, 'resume', before))]));
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ recorded: 0 });
    expect((await decision(subject)).reasons[0].code).toBe('subject_erased');
  });

  it('a "resume" dated in 2100 is recorded at its arrival, so a later STOP still withdraws', async () => {
    const subject = { phone: phone() };
    await api.post('/v1/consents', grantBody({ subject, grantedAt: daysAgo(10) }));
    await deliver(envelope([change(PNID, preference(subject, 'stop', daysAgo(1)))]));
    await deliver(envelope([change(PNID, preference(subject, 'resume', '2100-01-01T00:00:00Z'))]));
    expect((await decision(subject)).decision).toBe('allow');
    const resume = (await api.events((await api.lookup(subject)).body.subjectKey)).at(-1);
    expect(Date.parse(resume.at)).toBeLessThanOrEqual(Date.now());
    await new Promise((r) => setTimeout(r, 1100)); // WhatsApp timestamps are whole seconds
    await deliver(envelope([change(PNID, preference(subject, 'stop', new Date().toISOString()))]));
    expect((await decision(subject)).reasons[0].code).toBe('consent_withdrawn');
  });

  it('a STOP dated 400 days ago does not withdraw a newer consent; replayed after its marker expired, it records nothing', async () => {
    const subject = { phone: phone() };
    await api.post('/v1/consents', grantBody({ subject, grantedAt: daysAgo(5) }));
    const old = envelope([
      change(PNID, { statuses: [status(subject, 'failed', daysAgo(400), { errorCode: 131050 })] }),
    ]);
    await deliver(old);
    expect((await decision(subject)).decision).toBe('allow');
    const subjectKey = (await api.lookup(subject)).body.subjectKey;
    const count = (await api.events(subjectKey)).length;
    // The replay marker's TTL ran out: delete it (and its reference) as DynamoDB's TTL sweeper would.
    const db = getDb();
    const refs = await db.client.send(
      new QueryCommand({
        TableName: db.table,
        KeyConditionExpression: 'PK = :pk AND begins_with(SK, :ref)',
        ExpressionAttributeValues: { ':pk': keys.subject(tenant, subjectKey), ':ref': 'REF#ONCE#' },
      }),
    );
    expect(refs.Items?.length).toBeGreaterThan(0);
    for (const item of refs.Items ?? []) {
      await db.client.send(new DeleteCommand({ TableName: db.table, Key: item.ref }));
      await db.client.send(new DeleteCommand({ TableName: db.table, Key: { PK: item.PK, SK: item.SK } }));
    }
    const replay = await deliver(old);
    expect(replay.body).toMatchObject({ recorded: 0, replayed: 0 });
    expect(await api.events(subjectKey)).toHaveLength(count);
    expect((await decision(subject)).decision).toBe('allow');
  });

  it('refuses client times more than 5 minutes ahead with 400 time_in_future, storing nothing', async () => {
    const subject = { phone: phone() };
    const ahead = new Date(Date.now() + 10 * 60_000).toISOString();
    const grant = await api.post('/v1/consents', grantBody({ subject, grantedAt: ahead }));
    expect(grant.status).toBe(400);
    expect(grant.body.code).toBe('time_in_future');
    expect((await api.post('/v1/consents/withdraw', { subject, at: ahead })).body.code).toBe('time_in_future');
    expect((await api.lookup(subject)).status).toBe(404);
    const skewed = new Date(Date.now() + 60_000).toISOString();
    expect((await api.post('/v1/consents', grantBody({ subject, grantedAt: skewed }))).status).toBe(201);
  });

  it('every event carries its event time, when it was recorded and who wrote it; details are redacted by erasure', async () => {
    const subject = { phone: phone() };
    const grantedAt = daysAgo(3);
    await api.post('/v1/consents', grantBody({ subject, grantedAt, evidence: { text: 'I agree to offers' } }));
    const subjectKey = (await api.lookup(subject)).body.subjectKey;
    const [granted] = await api.events(subjectKey);
    expect(granted).toMatchObject({
      v: 2,
      at: grantedAt,
      actor: { type: 'api_key', keyId },
      details: { evidence: { text: 'I agree to offers' } },
      detailsDigest: expect.stringMatching(/^[0-9a-f]{64}$/),
    });
    expect(Date.parse(granted.recordedAt)).toBeGreaterThan(Date.parse(grantedAt));
    await api.post('/v1/erasure-requests', { subjects: [subject], requestedVia: 'email', immediate: true });
    const after = await api.get(`/v1/subjects/${subjectKey}/events`);
    expect(after.body.chain.valid).toBe(true);
    expect(after.body.events.map((e: { type: string }) => e.type)).toEqual([
      'consent.granted',
      'erasure.requested',
      'erasure.completed',
    ]);
    expect(after.body.events[0].details).toBeUndefined();
    expect(after.text).not.toContain('I agree to offers');
  });

  it('an erasure deletes the subject’s idempotency records and WhatsApp replay markers', async () => {
    const subject = { phone: phone() };
    const granted = await api.post('/v1/consents', grantBody({ subject, grantedAt: daysAgo(1) }), {
      headers: { 'idempotency-key': `truth-${randomInt(1e9)}` },
    });
    await deliver(envelope([change(PNID, preference(subject, 'stop', new Date().toISOString()))]));
    const db = getDb();
    const partition = async () =>
      (
        await db.client.send(
          new QueryCommand({
            TableName: db.table,
            KeyConditionExpression: 'PK = :pk',
            ExpressionAttributeValues: { ':pk': keys.subject(tenant, granted.body.subjectKey) },
          }),
        )
      ).Items ?? [];
    const refs = (await partition()).filter((item) => String(item.SK).startsWith('REF#'));
    expect(refs.map((item) => String(item.SK).split('#')[1]).sort()).toEqual(['IDEM', 'ONCE']);
    await api.post('/v1/erasure-requests', { subjects: [subject], requestedVia: 'email', immediate: true });
    expect((await partition()).filter((item) => String(item.SK).startsWith('REF#'))).toEqual([]);
    for (const ref of refs) {
      const { Items } = await db.client.send(
        new QueryCommand({
          TableName: db.table,
          KeyConditionExpression: 'PK = :pk',
          ExpressionAttributeValues: { ':pk': ref.ref.PK },
        }),
      );
      expect(Items).toEqual([]);
    }
  });
});
