import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { email, grantBody, phone, tenantWithKey } from '../helpers/factories.ts';
import { client, startServer } from '../helpers/http.ts';

// One person, several identifiers: links through the real handlers and DynamoDB Local.
let server: Awaited<ReturnType<typeof startServer>>;
let api: ReturnType<typeof client>;

beforeAll(async () => {
  server = await startServer();
  const { key } = await tenantWithKey([
    'subjects:manage',
    'consents:write',
    'consents:read',
    'gate:check',
    'signals:write',
  ]);
  api = client(server.url, key);
});
afterAll(() => server.close());

const wa = () => `US.${Date.now()}${Math.floor(Math.random() * 1e6)}`;
const keyOf = async (subject: object) => (await api.post('/v1/subjects/lookup', { subject })).body.subjectKey as string;

/** A person with a phone (WhatsApp and SMS consents) and an e-mail (e-mail consent), linked. */
async function person() {
  const p = { phone: phone() };
  const e = { email: email() };
  await api.post('/v1/consents', grantBody({ subject: p, channel: 'whatsapp' }));
  await api.post('/v1/consents', grantBody({ subject: p, channel: 'sms' }));
  await api.post('/v1/consents', grantBody({ subject: e, channel: 'email' }));
  const linked = await api.post('/v1/subjects/link', { subjects: [p, e], source: 'crm' });
  expect(linked.status).toBe(200);
  return { p, e, personKey: linked.body.personKey as string, keys: linked.body.subjectKeys as string[] };
}

describe('POST /v1/subjects/link', () => {
  it('links identifiers as one person, answers the same for each, and records subject.linked on each', async () => {
    const p = { phone: phone() };
    const e = { email: email() };
    const w = { waUserId: wa() };
    const res = await api.post('/v1/subjects/link', { subjects: [p, e, w], source: 'api' });
    expect(res.status).toBe(200);
    expect(res.body.personKey).toMatch(/^per_/);
    expect(res.body.subjectKeys).toHaveLength(3);
    for (const subjectKey of res.body.subjectKeys) {
      const links = await api.get(`/v1/subjects/${subjectKey}/links`);
      expect(links.body).toEqual({ personKey: res.body.personKey, subjectKeys: res.body.subjectKeys });
      const events = await api.events(subjectKey);
      expect(events.map((ev) => ev.type)).toEqual(['subject.linked']);
      // The other identifiers are personal details (an erasure deletes them); the public part counts them.
      expect(events[0].data).toMatchObject({ members: 3 });
      expect(JSON.stringify(events[0].data)).not.toContain(res.body.personKey);
      expect(events[0].details.subjectKeys).toEqual(res.body.subjectKeys);
    }
    // The Art. 15 copy names the person's other identifiers (as subject keys).
    const copy = await api.post('/v1/subjects/access', { subject: e });
    expect(copy.body.links).toEqual({ personKey: res.body.personKey, subjectKeys: res.body.subjectKeys });
    // Linking what is already linked records nothing new.
    const again = await api.post('/v1/subjects/link', { subjects: [e, p], source: 'api' });
    expect(again.body.personKey).toBe(res.body.personKey);
    const first = await api.events(res.body.subjectKeys[0]);
    expect(first.map((ev) => ev.type).filter((t) => t !== 'access.provided')).toEqual(['subject.linked']);
  });

  it('answers 409 already_linked across persons unless merge, and 422 past 10 identifiers', async () => {
    const a = await person();
    const b = await person();
    const clash = await api.post('/v1/subjects/link', { subjects: [a.p, b.e] });
    expect(clash.status).toBe(409);
    expect(clash.body.code).toBe('already_linked');
    const merged = await api.post('/v1/subjects/link', { subjects: [a.p, b.e], merge: true });
    expect(merged.status).toBe(200);
    expect(merged.body.subjectKeys).toHaveLength(4);
    expect([a.personKey, b.personKey]).toContain(merged.body.personKey);
    const other = (await api.get(`/v1/subjects/${b.keys[0]}/links`)).body;
    expect(other.personKey).toBe(merged.body.personKey);

    const six = Array.from({ length: 6 }, () => ({ email: email() }));
    expect((await api.post('/v1/subjects/link', { subjects: six })).status).toBe(200);
    const five = [a.p, ...Array.from({ length: 2 }, () => ({ email: email() }))];
    const tooMany = await api.post('/v1/subjects/link', { subjects: [...five, six[0]], merge: true });
    expect(tooMany.status).toBe(422);
    expect(tooMany.body.code).toBe('too_many_links');
  });

  it('answers 400 for one identifier or a bad one, storing nothing', async () => {
    expect((await api.post('/v1/subjects/link', { subjects: [{ phone: phone() }] })).status).toBe(400);
    const p = { phone: phone() };
    const bad = await api.post('/v1/subjects/link', { subjects: [p, { email: 'not-an-address' }] });
    expect(bad.status).toBe(400);
    expect(bad.body.errors[0].path).toBe('subjects.1.email');
    expect((await api.post('/v1/subjects/lookup', { subject: p })).status).toBe(404);
  });
});

describe('what crosses links', () => {
  it('an objection without a channel closes every linked identifier; one channel stays on its own', async () => {
    const { p, e } = await person();
    await api.post('/v1/consents/withdraw', { subject: e, channel: 'email', source: 'api' });
    expect((await api.gateCheck(p, 'whatsapp')).body.decision).toBe('allow');

    const objection = await api.post('/v1/consents/withdraw', { subject: e, source: 'letter' });
    expect(objection.status).toBe(200);
    for (const channel of ['whatsapp', 'sms']) {
      const decision = (await api.gateCheck(p, channel)).body;
      expect(decision.decision).toBe('block');
      expect(decision.reasons[0].code).toBe('consent_withdrawn');
    }
    const phoneEvents = await api.events(await keyOf(p));
    const crossed = phoneEvents.find((ev) => ev.type === 'consent.withdrawn');
    expect(crossed).toMatchObject({ source: 'letter', channel: null, data: { linkedFrom: objection.body.eventId } });
    // Withdrawal wins on the linked identifier too: an import cannot re-open it.
    const reimport = await api.post('/v1/consents', grantBody({ subject: p, channel: 'sms', source: 'import' }));
    expect(reimport.status).toBe(409);
    expect(reimport.body.code).toBe('fresh_consent_required');
  });

  it("a likely WhatsApp block pauses the person's e-mail, and evidence against lifts it", async () => {
    const { p, e } = await person();
    expect((await api.gateCheck(e, 'email')).body.decision).toBe('allow');
    const blocked = await api.post('/v1/signals', { subject: p, channel: 'whatsapp', type: 'channel_blocked' });
    expect(blocked.body.level).toBe('likely');
    const paused = (await api.gateCheck(e, 'email')).body;
    expect(paused.decision).toBe('block');
    expect(paused.reasons).toEqual([
      expect.objectContaining({ code: 'cross_channel_cooldown', channel: 'whatsapp', linked: true }),
    ]);
    const emailEvents = await api.events(await keyOf(e));
    expect(emailEvents.at(-1)).toMatchObject({
      type: 'cooldown.updated',
      data: { windows: [{ channel: 'whatsapp' }] },
    });

    await api.post('/v1/signals', { subject: p, channel: 'whatsapp', type: 'inbound_message' });
    expect((await api.gateCheck(e, 'email')).body.decision).toBe('allow');
  });

  it('a subject linked while a cooldown runs gets it', async () => {
    const p = { phone: phone() };
    const e = { email: email() };
    await api.post('/v1/consents', grantBody({ subject: e, channel: 'email' }));
    await api.post('/v1/signals', { subject: p, channel: 'whatsapp', type: 'channel_blocked' });
    expect((await api.gateCheck(e, 'email')).body.decision).toBe('allow');
    await api.post('/v1/subjects/link', { subjects: [p, e] });
    expect((await api.gateCheck(e, 'email')).body.reasons[0].code).toBe('cross_channel_cooldown');
  });

  it('a subject linked after an objection inherits it at its own time', async () => {
    const p = { phone: phone() };
    const e = { email: email() };
    await api.post('/v1/consents/withdraw', { subject: p, source: 'phone_call' });
    await api.post('/v1/consents', grantBody({ subject: e, channel: 'email', source: 'import' }));
    await api.post('/v1/subjects/link', { subjects: [p, e] });
    const decision = (await api.gateCheck(e, 'email')).body;
    expect(decision.reasons[0].code).toBe('consent_withdrawn');
    // The person's own later act still opens it again.
    await api.post('/v1/consents', grantBody({ subject: e, channel: 'email', source: 'double_opt_in' }));
    expect((await api.gateCheck(e, 'email')).body.decision).toBe('allow');
  });

  it('an erasure with includeLinked covers every identifier of the person', async () => {
    const { p, e, keys } = await person();
    const res = await api.post('/v1/erasure-requests', { subjects: [e], requestedVia: 'email', includeLinked: true });
    expect(res.status).toBe(202);
    expect([...res.body.subjectKeys].sort()).toEqual([...keys].sort());
    expect((await api.gateCheck(p, 'sms')).body.reasons[0].code).toBe('erasure_pending');
    // Without includeLinked only the named identifier.
    const other = await person();
    const own = await api.post('/v1/erasure-requests', { subjects: [other.e], requestedVia: 'email' });
    expect(own.body.subjectKeys).toHaveLength(1);
    expect((await api.gateCheck(other.p, 'sms')).body.decision).toBe('allow');
  });

  it('an erased identifier leaves its person', async () => {
    const { p, e, keys } = await person();
    const erased = await api.post('/v1/erasure-requests', { subjects: [e], requestedVia: 'email', immediate: true });
    expect(erased.status).toBe(202);
    const phoneKey = await keyOf(p);
    expect((await api.get(`/v1/subjects/${phoneKey}/links`)).body).toEqual({
      personKey: null,
      subjectKeys: [phoneKey],
    });
    const emailKey = keys.find((k) => k !== phoneKey) as string;
    const emailEvents = await api.events(emailKey);
    expect(emailEvents.map((ev) => ev.type)).toContain('subject.unlinked');
    expect(emailEvents.find((ev) => ev.type === 'subject.linked').details).toBeUndefined();
  });
});

describe('POST /v1/subjects/unlink', () => {
  it('takes an identifier out: it keeps what it inherited and loses the cooldown', async () => {
    const { p, e } = await person();
    const w = { waUserId: wa() };
    await api.post('/v1/subjects/link', { subjects: [p, w] });
    await api.post('/v1/consents/withdraw', { subject: w, purpose: 'marketing', source: 'api' });
    await api.post('/v1/signals', { subject: p, channel: 'whatsapp', type: 'channel_blocked' });
    expect((await api.gateCheck(e, 'email')).body.reasons.map((r: { code: string }) => r.code)).toEqual([
      'consent_withdrawn',
      'cross_channel_cooldown',
    ]);
    const res = await api.post('/v1/subjects/unlink', { subjects: [e], reason: 'wrong match' });
    expect(res.status).toBe(200);
    const emailKey = await keyOf(e);
    expect(res.body.results).toContainEqual({ personKey: null, subjectKeys: [emailKey] });
    expect((await api.get(`/v1/subjects/${emailKey}/links`)).body.personKey).toBeNull();
    expect((await api.gateCheck(e, 'email')).body.reasons.map((r: { code: string }) => r.code)).toEqual([
      'consent_withdrawn',
    ]);
    const unlinked = (await api.events(emailKey)).find((ev) => ev.type === 'subject.unlinked');
    expect(unlinked.details.reason).toBe('wrong match');
    // The last two members: unlinking one dissolves the person.
    await api.post('/v1/subjects/unlink', { subjects: [w] });
    const phoneKey = await keyOf(p);
    expect((await api.get(`/v1/subjects/${phoneKey}/links`)).body.personKey).toBeNull();
  });
});
