import { afterAll, beforeAll, expect, it } from 'vitest';
import { grantBody, phone, tenantWithKey } from '../helpers/factories.ts';
import { client, describeLocal, startServer } from '../helpers/http.ts';
import { change, envelope, sign, status } from '../helpers/whatsapp.ts';

let server: Awaited<ReturnType<typeof startServer>>;
let api: ReturnType<typeof client>;
const SECRET = 'webhook-delivery-app-secret';
const PHONE_NUMBER_ID = '106540352240077';

beforeAll(async () => {
  server = await startServer();
  const t = await tenantWithKey();
  api = client(server.url, t.key);
  process.env.WHATSAPP_APP_SECRET = SECRET;
  process.env.WHATSAPP_PHONE_NUMBER_TENANTS = `${PHONE_NUMBER_ID}:${t.tenant}`;
});
afterAll(async () => {
  await server.close();
  delete process.env.WHATSAPP_APP_SECRET;
  delete process.env.WHATSAPP_PHONE_NUMBER_TENANTS;
});

describeLocal('a large WhatsApp delivery', () => {
  it("applies many subjects' statuses in parallel and each subject's in the order they came", async () => {
    const people = Array.from({ length: 40 }, () => phone());
    for (const person of people) {
      expect((await api.post('/v1/consents', grantBody({ subject: { phone: person } }))).status).toBe(201);
    }
    // The same timestamp for all three: only the delivery's order can put them in sequence.
    const at = new Date(Date.now() - 60_000).toISOString();
    const steps = ['sent', 'delivered', 'read'] as const;
    const statuses = steps.flatMap((s) => people.map((person) => status({ phone: person }, s, at)));
    const raw = JSON.stringify(envelope([change(PHONE_NUMBER_ID, { statuses })]));
    const res = await api.post('/v1/webhooks/whatsapp', undefined, {
      raw,
      headers: { 'content-type': 'application/json', 'x-hub-signature-256': sign(raw, SECRET) },
    });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ received: 120, recorded: 120, replayed: 0, invalid: 0 });
    for (const person of people) {
      const key = (await api.lookup({ phone: person })).body.subjectKey as string;
      const signals = (await api.events(key)).filter((e) => e.type === 'signal.recorded');
      expect(signals.map((e) => e.data.type)).toEqual(['message_sent', 'message_delivered', 'message_read']);
    }
    // Redelivered whole, as Meta does after a failure: nothing new.
    const again = await api.post('/v1/webhooks/whatsapp', undefined, {
      raw,
      headers: { 'content-type': 'application/json', 'x-hub-signature-256': sign(raw, SECRET) },
    });
    expect(again.body).toMatchObject({ received: 120, recorded: 0, replayed: 120 });
  });
});
