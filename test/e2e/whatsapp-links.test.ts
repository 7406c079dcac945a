import { randomInt } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { email, grantBody, phone, tenantWithKey } from '../helpers/factories.ts';
import { client, startServer } from '../helpers/http.ts';
import { bsuid, metaFixture, sign } from '../helpers/whatsapp.ts';

// Links from WhatsApp payloads (Meta's documented examples, test/fixtures/whatsapp/SOURCES.md) through the
// real webhook: a phone given with its BSUID links them, a BSUID alone reaches the linked phone, and a number
// change moves the consents and closes the old number.
const SECRET = 'whatsapp-app-secret-links';
const PNID = String(randomInt(3e14, 4e14));

let server: Awaited<ReturnType<typeof startServer>>;
let api: ReturnType<typeof client>;
let anonymous: ReturnType<typeof client>;

beforeAll(async () => {
  server = await startServer();
  const a = await tenantWithKey(['admin']);
  api = client(server.url, a.key);
  anonymous = client(server.url);
  process.env.WHATSAPP_PHONE_NUMBER_TENANTS = `${PNID}:${a.tenant}`;
  process.env.WHATSAPP_APP_SECRET = SECRET;
});
afterAll(async () => {
  delete process.env.WHATSAPP_APP_SECRET;
  delete process.env.WHATSAPP_PHONE_NUMBER_TENANTS;
  await server.close();
});

function deliver(payload: unknown) {
  const raw = JSON.stringify(payload);
  return anonymous.post('/v1/webhooks/whatsapp', undefined, {
    raw,
    headers: { 'content-type': 'application/json', 'x-hub-signature-256': sign(raw, SECRET) },
  });
}
const minutesAgo = (m: number) => new Date(Date.now() - m * 60_000).toISOString();
/** Meta's `user_changed_number` example, from `oldPhone` to `newPhone`, a minute ago. */
const numberChange = (oldPhone: string, newPhone: string) =>
  metaFixture('system-user-changed-number.json', {
    phoneNumberId: PNID,
    freshIds: true,
    at: minutesAgo(1),
    phone: oldPhone,
    newPhone,
  });
const keyOf = async (subject: object) => (await api.lookup(subject)).body.subjectKey as string;
const linksOf = async (subjectKey: string) => (await api.get(`/v1/subjects/${subjectKey}/links`)).body;

describe('WhatsApp payloads and links', () => {
  it("links the phone and the BSUID of a status that carries both (Meta's example), once", async () => {
    const p = { phone: phone() };
    const userId = bsuid();
    const payload = metaFixture('status-delivered-phone-and-bsuid.json', {
      phoneNumberId: PNID,
      freshIds: true,
      at: minutesAgo(1),
      phone: p.phone,
      userId,
    });
    expect((await deliver(payload)).status).toBe(200);
    const phoneKey = await keyOf(p);
    const userKey = await keyOf({ waUserId: userId });
    expect((await linksOf(phoneKey)).subjectKeys.sort()).toEqual([phoneKey, userKey].sort());
    const linked = (await api.events(userKey)).filter((e) => e.type === 'subject.linked');
    expect(linked).toEqual([expect.objectContaining({ source: 'whatsapp' })]);
    // The next status of the same pair links nothing again.
    const again = metaFixture('status-delivered-phone-and-bsuid.json', {
      phoneNumberId: PNID,
      freshIds: true,
      at: minutesAgo(0),
      phone: p.phone,
      userId,
    });
    expect((await deliver(again)).status).toBe(200);
    expect((await api.events(userKey)).filter((e) => e.type === 'subject.linked')).toHaveLength(1);
  });

  it("a STOP that carries only the BSUID withdraws the linked phone's WhatsApp marketing", async () => {
    const p = { phone: phone() };
    const userId = bsuid();
    await api.post('/v1/consents', grantBody({ subject: p, grantedAt: minutesAgo(60) }));
    const own = { phoneNumberId: PNID, freshIds: true, phone: p.phone, userId };
    await deliver(metaFixture('status-delivered-phone-and-bsuid.json', { ...own, at: minutesAgo(30) }));
    const stop = metaFixture('message-text-bsuid-only.json', { ...own, at: minutesAgo(1) });
    const change = (stop.entry as { changes: { value: { messages: { text: { body: string } }[] } }[] }[])[0].changes[0];
    change.value.messages[0].text.body = 'STOP';
    expect((await deliver(stop)).body).toMatchObject({ recorded: 1 });
    const decision = (await api.gateCheck(p, 'whatsapp')).body;
    expect(decision.reasons[0]).toMatchObject({ code: 'consent_withdrawn' });
    expect((await api.events(await keyOf(p))).at(-1)).toMatchObject({ type: 'consent.withdrawn', source: 'keyword' });
  });

  it('user_changed_number moves the WhatsApp consents to the new number, closes the old one, and replays record nothing', async () => {
    const old = { phone: phone() };
    const renewed = { phone: phone() };
    const mail = { email: email() };
    const granted = await api.post(
      '/v1/consents',
      grantBody({ subject: old, grantedAt: minutesAgo(120), noticeVersion: 'n-1' }),
    );
    await api.post('/v1/consents', grantBody({ subject: old, channel: 'sms', grantedAt: minutesAgo(120) }));
    await api.post('/v1/subjects/link', { subjects: [old, mail] });
    const payload = numberChange(old.phone, renewed.phone);
    expect((await deliver(payload)).body).toMatchObject({ recorded: 1 });

    const moved = (await api.gateCheck(renewed, 'whatsapp')).body;
    expect(moved.decision).toBe('allow');
    // The consent moves with its own terms: when and under which notice the person gave it.
    expect(moved.consent).toMatchObject({ grantedAt: granted.body.grantedAt, noticeVersion: 'n-1' });
    for (const channel of ['whatsapp', 'sms']) {
      const closed = (await api.gateCheck(old, channel)).body;
      expect(closed.reasons[0]).toMatchObject({ code: 'consent_withdrawn' });
      expect(closed.reasons[0].message).toContain('number_changed');
    }
    // The new number takes the old one's place in the person.
    const oldKey = await keyOf(old);
    const newKey = await keyOf(renewed);
    const mailKey = await keyOf(mail);
    expect((await linksOf(mailKey)).subjectKeys.sort()).toEqual([mailKey, newKey].sort());
    expect((await linksOf(oldKey)).personKey).toBeNull();
    expect((await api.events(oldKey)).slice(-3).map((e) => e.type)).toEqual([
      'subject.number_changed',
      'subject.unlinked',
      'consent.withdrawn',
    ]);
    const newEvents = await api.events(newKey);
    expect(newEvents.map((e) => e.type)).toEqual(['subject.number_changed', 'subject.linked', 'consent.granted']);
    expect(newEvents[0].data).toMatchObject({ role: 'new', moved: [{ channel: 'whatsapp', purpose: 'marketing' }] });
    expect(JSON.stringify(newEvents)).not.toContain(renewed.phone.slice(1));
    expect(newEvents[2]).toMatchObject({ source: 'number_changed', channel: 'whatsapp' });

    const replay = await deliver(payload);
    expect(replay.body).toMatchObject({ recorded: 0, replayed: 1 });
    expect(await api.events(newKey)).toHaveLength(3);
  });

  it('a number change never re-opens what the new number closed', async () => {
    const old = { phone: phone() };
    const renewed = { phone: phone() };
    await api.post('/v1/consents', grantBody({ subject: old, grantedAt: minutesAgo(120) }));
    await api.post('/v1/consents/withdraw', {
      subject: renewed,
      channel: 'whatsapp',
      source: 'keyword',
      at: minutesAgo(60),
    });
    const payload = numberChange(old.phone, renewed.phone);
    await deliver(payload);
    expect((await api.gateCheck(renewed, 'whatsapp')).body.reasons[0].code).toBe('consent_withdrawn');
    expect((await api.gateCheck(old, 'whatsapp')).body.reasons[0].code).toBe('consent_withdrawn');
  });
});
