import { randomBytes, randomUUID } from 'node:crypto';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DEFAULT_BLOCK_BASE_RATE } from '#domain/policy.ts';
import { getDb } from '#store/db.ts';
import { keys } from '#store/table.ts';
import { email, grantBody, phone, tenantWithKey } from '../helpers/factories.ts';
import { client, describeLocal, startServer } from '../helpers/http.ts';
import {
  fixture,
  sendGridCall,
  sendGridKey,
  startSnsHost,
  twilioAuthToken,
  twilioCall,
  twilioSid,
} from '../helpers/providers.ts';

let server: Awaited<ReturnType<typeof startServer>>;
let sns: Awaited<ReturnType<typeof startSnsHost>>;
let api: ReturnType<typeof client>;
let anonymous: ReturnType<typeof client>;
let tenant: string;

beforeAll(async () => {
  sns = await startSnsHost();
  process.env.SNS_CERT_HOST_PATTERN = sns.pattern;
  server = await startServer();
  const a = await tenantWithKey(['admin']);
  tenant = a.tenant;
  api = client(server.url, a.key);
  anonymous = client(server.url);
  // The providers' documented examples are dated 2016–2017: consents granted before them must not have expired.
  await api.put('/v1/policy', { noticeVersion: 'connector-notice-2026-11', consentMaxAgeDays: 36_500 });
});
afterAll(async () => {
  delete process.env.SNS_CERT_HOST_PATTERN;
  await server.close();
  await sns.close();
});

/** Creates a connector; its events path and webhook URL. */
async function connector(body: object) {
  const res = await api.post('/v1/connectors', body);
  expect(res.status).toBe(201);
  return { ...res.body, path: new URL(res.body.webhookUrl).pathname } as {
    id: string;
    webhookUrl: string;
    path: string;
  };
}

const post = (path: string, call: { raw: string; headers: Record<string, string> }) =>
  anonymous.post(path, undefined, { raw: call.raw, headers: call.headers });

/** Nothing was ever recorded for the subject: no state, no event. */
async function expectNothingRecorded(subject: object) {
  expect((await api.lookup(subject)).status).toBe(404);
}

const eventsOf = async (subject: object) => api.events((await api.lookup(subject)).body.subjectKey);

const grant = (subject: object, channel: string, purpose = 'marketing', grantedAt = '2015-06-01T10:00:00Z') =>
  api.post('/v1/consents', grantBody({ subject, channel, purpose, grantedAt }));

describeLocal('connectors: create, read, delete', () => {
  it('creates a connector per provider and answers its id and webhook URL, never its secrets', async () => {
    const authToken = twilioAuthToken();
    const created = await connector({ provider: 'twilio', secrets: { authToken } });
    expect(created.id).toMatch(/^con_[A-Za-z0-9_-]{22}$/);
    expect(created.webhookUrl).toBe(`${server.url}/v1/connectors/${created.id}/events`);
    const one = await api.get(`/v1/connectors/${created.id}`);
    expect(one.status).toBe(200);
    expect(one.body).toMatchObject({ id: created.id, provider: 'twilio', purposeMap: {} });
    const list = await api.get('/v1/connectors');
    expect(list.body.connectors.map((c: { id: string }) => c.id)).toContain(created.id);
    for (const text of [one.text, list.text]) {
      expect(text).not.toContain(authToken);
      expect(text).not.toMatch(/secret/i);
    }
    // Stored sealed: the item holds no clear token.
    const item = await getDb().client.send(
      new GetCommand({ TableName: getDb().table, Key: { PK: keys.connector(created.id), SK: 'CONNECTOR' } }),
    );
    expect(JSON.stringify(item.Item)).not.toContain(authToken);
    expect(item.Item?.sealedSecrets).toMatch(/^v1\./);
    const entry = await getDb().client.send(
      new GetCommand({ TableName: getDb().table, Key: { PK: keys.tenant(tenant), SK: keys.connector(created.id) } }),
    );
    expect(entry.Item).toMatchObject({ id: created.id, provider: 'twilio' });
    expect(entry.Item?.sealedSecrets).toBeUndefined();
  });

  it('refuses secrets that are not what the provider gives, with 400 and nothing stored', async () => {
    const rsa = (await import('node:crypto'))
      .generateKeyPairSync('rsa', { modulusLength: 2048 })
      .publicKey.export({ format: 'der', type: 'spki' })
      .toString('base64');
    const before = (await api.get('/v1/connectors')).body.connectors.length;
    for (const body of [
      { provider: 'twilio', secrets: { authToken: 'not-a-token' } },
      { provider: 'sendgrid', secrets: { publicKey: rsa } },
      { provider: 'sendgrid', secrets: { publicKey: 'bm90IGEga2V5' } },
      { provider: 'ses', secrets: { topicArn: 'arn:aws:s3:::my-bucket' } },
      { provider: 'ses', secrets: { topicArn: 'arn:aws:sns:eu-west-1:123456789012:t' }, purposeMap: { 1: 'x' } },
      { provider: 'twilio', secrets: { authToken: twilioAuthToken() }, purposeMap: { '10': 'newsletter' } },
      { provider: 'mailchimp', secrets: {} },
    ]) {
      const res = await api.post('/v1/connectors', body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.headers.get('content-type')).toMatch(/problem\+json/);
    }
    expect((await api.get('/v1/connectors')).body.connectors.length).toBe(before);
  });

  it("keeps each tenant's connectors to itself, needs an admin key, and deletes: the provider is refused then", async () => {
    const authToken = twilioAuthToken();
    const created = await connector({ provider: 'twilio', secrets: { authToken } });
    const other = client(server.url, (await tenantWithKey(['admin'])).key);
    expect((await other.get(`/v1/connectors/${created.id}`)).status).toBe(404);
    expect((await other.call('DELETE', `/v1/connectors/${created.id}`)).status).toBe(404);
    const reader = client(server.url, (await tenantWithKey(['consents:read'], tenant)).key);
    expect((await reader.get('/v1/connectors')).status).toBe(403);
    expect((await api.call('DELETE', `/v1/connectors/${created.id}`)).status).toBe(204);
    expect((await api.get(`/v1/connectors/${created.id}`)).status).toBe(404);
    const person = { phone: phone() };
    const params = { ...fixture('twilio-inbound-stop.json'), From: person.phone, MessageSid: twilioSid('SM') };
    const res = await post(created.path, twilioCall(authToken, created.webhookUrl, params));
    expect(res.status).toBe(401);
    await expectNothingRecorded(person);
  });
});

describeLocal('Twilio connector', () => {
  let authToken: string;
  let c: Awaited<ReturnType<typeof connector>>;
  beforeAll(async () => {
    authToken = twilioAuthToken();
    c = await connector({ provider: 'twilio', secrets: { authToken } });
  });
  const inbound = (name: string, from: string, extra: Record<string, string> = {}) => {
    const sid = twilioSid('SM');
    return { ...fixture(name), From: from, MessageSid: sid, SmsSid: sid, SmsMessageSid: sid, ...extra };
  };
  const send = (params: Record<string, string>, token = authToken, url = c.webhookUrl) =>
    post(c.path, twilioCall(token, url, params));

  it('STOP (Advanced Opt-Out) withdraws SMS marketing as a keyword, answers empty TwiML, and the gate blocks', async () => {
    const person = { phone: phone() };
    await grant(person, 'sms');
    expect((await api.gateCheck(person, 'sms')).body.decision).toBe('allow');
    const res = await send(inbound('twilio-inbound-stop.json', person.phone));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/xml/);
    expect(res.text).toBe('<?xml version="1.0" encoding="UTF-8"?><Response></Response>');
    const last = (await eventsOf(person)).at(-1);
    expect(last).toMatchObject({
      type: 'consent.withdrawn',
      channel: 'sms',
      source: 'keyword',
      actor: { type: 'webhook', provider: 'twilio' },
      data: { provider: 'twilio', optOutType: 'STOP', via: 'connector' },
    });
    const gate = await api.gateCheck(person, 'sms');
    expect(gate.body.decision).toBe('block');
    expect(gate.body.reasons.map((r: { code: string }) => r.code)).toContain('consent_withdrawn');
    // No identifier kept: the events name the subjectKey only.
    expect(JSON.stringify(await eventsOf(person))).not.toContain(person.phone.slice(1));
  });

  it('START from the person gives back what the STOP closed; a replay of either records nothing new', async () => {
    const person = { phone: phone() };
    await grant(person, 'sms');
    const stop = inbound('twilio-inbound-stop.json', person.phone);
    await send(stop);
    const start = inbound('twilio-inbound-start.json', person.phone);
    expect((await send(start)).status).toBe(200);
    expect((await eventsOf(person)).at(-1)).toMatchObject({
      type: 'consent.granted',
      channel: 'sms',
      purpose: 'marketing',
      source: 'sms_optin',
      data: { noticeVersion: 'connector-notice-2026-11' },
    });
    expect((await api.gateCheck(person, 'sms')).body.decision).toBe('allow');
    const count = (await eventsOf(person)).length;
    expect((await send(stop)).status).toBe(200);
    expect((await send(start)).status).toBe(200);
    expect((await eventsOf(person)).length).toBe(count);
    expect((await api.gateCheck(person, 'sms')).body.decision).toBe('allow');
  });

  it('withdrawal wins: a START does not re-open what a later withdrawal through the API closed', async () => {
    const person = { phone: phone() };
    await grant(person, 'sms');
    await send(inbound('twilio-inbound-stop.json', person.phone));
    const withdrawn = await api.post('/v1/consents/withdraw', {
      subject: person,
      channel: 'sms',
      purpose: 'marketing',
    });
    expect(withdrawn.status).toBe(200);
    const count = (await eventsOf(person)).length;
    expect((await send(inbound('twilio-inbound-start.json', person.phone))).status).toBe(200);
    expect((await eventsOf(person)).length).toBe(count);
    expect((await api.gateCheck(person, 'sms')).body.decision).toBe('block');
  });

  it('a STOP keyword without Advanced Opt-Out counts too; HELP and ordinary messages record nothing', async () => {
    const person = { phone: phone() };
    const { OptOutType: _drop, ...plain } = inbound('twilio-inbound-stop.json', person.phone, { Body: 'Arrêt' });
    expect((await send(plain)).status).toBe(200);
    expect((await eventsOf(person)).at(-1)).toMatchObject({ type: 'consent.withdrawn', source: 'keyword' });
    const other = { phone: phone() };
    expect(
      (await send(inbound('twilio-inbound-stop.json', other.phone, { Body: 'HELP', OptOutType: 'HELP' }))).status,
    ).toBe(200);
    const { OptOutType: _none, ...hello } = inbound('twilio-inbound-stop.json', other.phone, { Body: 'stop please' });
    expect((await send(hello)).status).toBe(200);
    await expectNothingRecorded(other);
  });

  it('error 21610 on a status callback withdraws SMS marketing of the recipient', async () => {
    const person = { phone: phone() };
    await grant(person, 'sms');
    const params = { ...fixture('twilio-status-21610.json'), To: person.phone, MessageSid: twilioSid('SM') };
    expect((await send(params)).status).toBe(200);
    expect((await eventsOf(person)).at(-1)).toMatchObject({
      type: 'consent.withdrawn',
      channel: 'sms',
      source: 'keyword',
      data: { errorCode: 21610 },
    });
    expect((await api.gateCheck(person, 'sms')).body.decision).toBe('block');
  });

  it('WhatsApp error 63014 is strong block evidence: channel_blocked, and the gate finds the person likely blocked', async () => {
    const person = { phone: phone() };
    await grant(person, 'whatsapp');
    const params = {
      ...fixture('twilio-whatsapp-status-63014.json'),
      To: `whatsapp:${person.phone}`,
      MessageSid: twilioSid('SM'),
    };
    expect((await send(params)).status).toBe(200);
    expect((await eventsOf(person)).at(-1)).toMatchObject({
      type: 'signal.recorded',
      channel: 'whatsapp',
      data: { type: 'channel_blocked', errorCode: 63014, level: 'likely' },
    });
    const gate = await api.gateCheck(person, 'whatsapp');
    expect(gate.body.decision).toBe('block');
    expect(gate.body.reasons.map((r: { code: string }) => r.code)).toContain('likely_blocked');
  });

  it("63014 on a linked phone pauses the person's e-mail too (through the links, out of the group commit)", async () => {
    const person = { phone: phone() };
    const mail = { email: email() };
    await grant(person, 'whatsapp');
    await grant(mail, 'email');
    expect((await api.post('/v1/subjects/link', { subjects: [person, mail] })).status).toBe(200);
    const params = {
      ...fixture('twilio-whatsapp-status-63014.json'),
      To: `whatsapp:${person.phone}`,
      MessageSid: twilioSid('SM'),
    };
    expect((await send(params)).status).toBe(200);
    const paused = (await api.gateCheck(mail, 'email')).body;
    expect(paused.reasons).toEqual([expect.objectContaining({ code: 'cross_channel_cooldown', linked: true })]);
    // A redelivery of the same status records nothing, on either identifier.
    expect((await send(params)).status).toBe(200);
    const signals = (await eventsOf(person)).filter((e: { type: string }) => e.type === 'signal.recorded');
    expect(signals).toHaveLength(1);
    expect((await eventsOf(mail)).filter((e: { type: string }) => e.type === 'cooldown.updated')).toHaveLength(1);
  });

  it('a mapped messaging service withdraws only its purpose', async () => {
    const service = twilioSid('MG');
    const token = twilioAuthToken();
    const mapped = await connector({
      provider: 'twilio',
      secrets: { authToken: token },
      purposeMap: { [service]: 'newsletter' },
    });
    const person = { phone: phone() };
    await grant(person, 'sms', 'newsletter');
    await grant(person, 'sms', 'marketing');
    const params = inbound('twilio-inbound-stop.json', person.phone, { MessagingServiceSid: service });
    expect((await post(mapped.path, twilioCall(token, mapped.webhookUrl, params))).status).toBe(200);
    expect((await api.gateCheck(person, 'sms', { purpose: 'newsletter' })).body.decision).toBe('block');
    expect((await api.gateCheck(person, 'sms', { purpose: 'marketing' })).body.decision).toBe('allow');
  });

  it('refuses unsigned, mis-signed and wrong-URL calls with 401, and records nothing', async () => {
    const person = { phone: phone() };
    const params = inbound('twilio-inbound-stop.json', person.phone);
    const unsigned = twilioCall(authToken, c.webhookUrl, params);
    delete (unsigned.headers as Record<string, string>)['x-twilio-signature'];
    for (const res of [
      await post(c.path, unsigned),
      await send(params, twilioAuthToken()),
      await send(params, authToken, `${c.webhookUrl}?other=1`),
      await post(c.path, {
        ...twilioCall(authToken, c.webhookUrl, params),
        raw: new URLSearchParams({ ...params, Body: 'START' }).toString(),
      }),
      await post(
        `/v1/connectors/con_${randomBytes(16).toString('base64url')}/events`,
        twilioCall(authToken, c.webhookUrl, params),
      ),
    ]) {
      expect(res.status).toBe(401);
      expect(res.headers.get('content-type')).toMatch(/problem\+json/);
      expect(res.body.code).toBe('invalid_signature');
    }
    await expectNothingRecorded(person);
  });

  it('answers 400 to a signed call that is no messaging webhook, and records nothing', async () => {
    const person = { phone: phone() };
    const {
      MessageSid: _m,
      SmsSid: _s,
      SmsMessageSid: _x,
      ...noSid
    } = inbound('twilio-inbound-stop.json', person.phone);
    const res = await send(noSid);
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('malformed_payload');
    await expectNothingRecorded(person);
  });
});

describeLocal('SendGrid connector', () => {
  let key: ReturnType<typeof sendGridKey>;
  let c: Awaited<ReturnType<typeof connector>>;
  beforeAll(async () => {
    key = sendGridKey();
    c = await connector({
      provider: 'sendgrid',
      secrets: { publicKey: key.publicKey },
      purposeMap: { '10': 'newsletter' },
    });
  });
  /** SendGrid's documented example batch for one person, each event with its own id as in a real delivery. */
  const batch = (address: string) =>
    fixture<Record<string, unknown>[]>('sendgrid-events.json').map(
      (e): Record<string, unknown> => ({
        ...e,
        email: address,
        sg_event_id: randomUUID(),
      }),
    );
  const deliver = (events: unknown, timestamp?: number) =>
    post(c.path, sendGridCall(key.privateKey, JSON.stringify(events), timestamp));

  it("maps SendGrid's example batch: unsubscribes and the spam report close e-mail marketing, the hard bounce is recipient_unreachable", async () => {
    const person = { email: email() };
    await grant(person, 'email', 'marketing');
    await grant(person, 'email', 'newsletter');
    const events = batch(person.email);
    const res = await deliver(events);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      received: 4,
      // The spam report and the unsubscribe close the same scopes at the same second: the second closes nothing new.
      recorded: 3,
      replayed: 0,
      unchanged: 1,
      invalid: 0,
      skipped: 7,
      skippedByKind: { ignored_event: 6, not_an_own_act: 1 },
    });
    const ledger = await eventsOf(person);
    const bySource = ledger
      .filter((e: { type: string }) => e.type === 'consent.withdrawn')
      .map((e: { source: string; purpose: string | null }) => [e.source, e.purpose]);
    expect(bySource).toEqual(
      expect.arrayContaining([
        ['provider_unsubscribe', 'newsletter'],
        ['spam_complaint', null],
      ]),
    );
    expect(ledger.find((e: { type: string }) => e.type === 'signal.recorded')).toMatchObject({
      channel: 'email',
      data: { type: 'recipient_unreachable', blockLikelihood: DEFAULT_BLOCK_BASE_RATE, level: 'none' },
      actor: { type: 'webhook', provider: 'sendgrid' },
    });
    for (const purpose of ['marketing', 'newsletter']) {
      expect((await api.gateCheck(person, 'email', { purpose })).body.decision).toBe('block');
    }
    expect(JSON.stringify(ledger)).not.toContain(person.email);
    // The same delivery again (SendGrid retries): nothing new.
    const again = await deliver(events);
    expect(again.body).toMatchObject({ recorded: 0, replayed: 3, unchanged: 1 });
    expect((await eventsOf(person)).length).toBe(ledger.length);
  });

  it('a group unsubscribe closes the mapped purpose only; an unmapped group closes e-mail marketing', async () => {
    const person = { email: email() };
    await grant(person, 'email', 'marketing');
    await grant(person, 'email', 'newsletter');
    const group = batch(person.email).filter((e) => e.event === 'group_unsubscribe');
    expect((await deliver(group)).body.recorded).toBe(1);
    expect((await api.gateCheck(person, 'email', { purpose: 'newsletter' })).body.decision).toBe('block');
    expect((await api.gateCheck(person, 'email', { purpose: 'marketing' })).body.decision).toBe('allow');
    const unmapped = group.map((e) => ({ ...e, asm_group_id: 77, sg_event_id: randomUUID() }));
    expect((await deliver(unmapped)).body.recorded).toBe(1);
    expect((await api.gateCheck(person, 'email', { purpose: 'marketing' })).body.decision).toBe('block');
  });

  it('a hard bounce alone is no block evidence: the gate still allows a granted scope', async () => {
    const person = { email: email() };
    await grant(person, 'email');
    const bounce = batch(person.email).filter((e) => e.event === 'bounce');
    expect((await deliver(bounce)).body.recorded).toBe(1);
    const gate = await api.gateCheck(person, 'email');
    expect(gate.body.decision).toBe('allow');
    expect(gate.body.blockLikelihood).toBe(DEFAULT_BLOCK_BASE_RATE);
  });

  it('records the good events of a batch and counts the unusable ones', async () => {
    const person = { email: email() };
    const [unsubscribe] = batch(person.email).filter((e) => e.event === 'unsubscribe');
    const res = await deliver([
      unsubscribe,
      { ...unsubscribe, email: undefined, sg_event_id: randomUUID() },
      { ...unsubscribe, email: 'not-an-address', sg_event_id: randomUUID() },
      'junk',
    ]);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      received: 2,
      recorded: 1,
      invalid: 1,
      skipped: 2,
      skippedByKind: { invalid_item: 2 },
    });
  });

  it('refuses unsigned, mis-signed, tampered and stale deliveries with 401, and records nothing', async () => {
    const person = { email: email() };
    const events = batch(person.email);
    const raw = JSON.stringify(events);
    const signed = sendGridCall(key.privateKey, raw);
    const { 'x-twilio-email-event-webhook-signature': _s, ...noSignature } = signed.headers;
    const stranger = sendGridKey();
    for (const call of [
      { raw, headers: noSignature },
      sendGridCall(stranger.privateKey, raw),
      { ...signed, raw: raw.replace('unsubscribe', 'delivered') },
      sendGridCall(key.privateKey, raw, Math.floor(Date.now() / 1000) - 3600),
    ]) {
      const res = await post(c.path, call);
      expect(res.status).toBe(401);
      expect(res.body.code).toBe('invalid_signature');
    }
    await expectNothingRecorded(person);
  });

  it('answers 400 to a signed body that is not a JSON array of events, without quoting it', async () => {
    // Short, so that a JSON parser's error message (which quotes the start of the input) would show it.
    const local = `q${randomBytes(2).toString('hex')}`;
    const address = `${local}@x.io`;
    for (const raw of [`[${address}]`, '{"event":"unsubscribe"}']) {
      const res = await post(c.path, sendGridCall(key.privateKey, raw));
      expect(res.status).toBe(400);
      expect(res.headers.get('content-type')).toMatch(/problem\+json/);
      expect(res.text).not.toContain(local);
    }
    await expectNothingRecorded({ email: address });
  });
});

describeLocal('Amazon SES connector (through SNS)', () => {
  const topicArn = `arn:aws:sns:eu-west-1:123456789012:ses-feedback-${randomBytes(4).toString('hex')}`;
  let c: Awaited<ReturnType<typeof connector>>;
  beforeAll(async () => {
    c = await connector({ provider: 'ses', secrets: { topicArn } });
  });
  const confirmation = (overrides: Record<string, string> = {}) => {
    const token = randomBytes(32).toString('hex');
    return {
      ...fixture('sns-subscription-confirmation.json'),
      MessageId: randomUUID(),
      TopicArn: topicArn,
      Token: token,
      SubscribeURL: `${sns.origin}/confirm?Action=ConfirmSubscription&Token=${token}`,
      ...overrides,
    };
  };
  const notification = (message: unknown, messageId = randomUUID()) =>
    sns.sign({
      ...fixture('sns-notification.json'),
      MessageId: messageId,
      TopicArn: topicArn,
      Message: JSON.stringify(message),
    });
  const send = (envelope: object) =>
    anonymous.post(c.path, undefined, {
      raw: JSON.stringify(envelope),
      headers: { 'content-type': 'text/plain; charset=UTF-8' },
    });
  const confirms = () => sns.hits.filter((h) => h.startsWith('/confirm')).length;
  const complaint = (address: string) => {
    const n = fixture('ses-complaint.json');
    n.complaint.complainedRecipients[0].emailAddress = address;
    return n;
  };
  const bounce = (address: string) => {
    const n = fixture('ses-bounce-permanent.json');
    n.bounce.bouncedRecipients[0].emailAddress = address;
    return n;
  };

  it('confirms the subscription (GET of SubscribeURL) only after the signature verifies, for SignatureVersion 1 and 2', async () => {
    for (const version of ['1', '2'] as const) {
      const before = confirms();
      const res = await send(sns.sign(confirmation(), version));
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ confirmed: true });
      expect(confirms()).toBe(before + 1);
    }
  });

  it('never confirms an unsigned, mis-signed, foreign-topic or unpinned confirmation', async () => {
    const before = confirms();
    const signed = sns.sign(confirmation());
    const foreign = confirmation({ TopicArn: 'arn:aws:sns:eu-west-1:210987654321:someone-elses-topic' });
    const cases = [
      { ...confirmation(), Signature: '', SignatureVersion: '2', SigningCertURL: `${sns.origin}/cert.pem` },
      { ...signed, Token: 'changed' },
      sns.sign(foreign),
      sns.sign(confirmation(), '2', `${sns.otherOrigin}/cert.pem`),
      sns.sign(confirmation(), '2', `${sns.origin.replace('https', 'http')}/cert.pem`),
    ];
    for (const envelope of cases) {
      const res = await send(envelope);
      expect(res.status).toBe(401);
      expect(res.body.code).toBe('invalid_signature');
    }
    // Signed by SNS, but its SubscribeURL is on a host the pattern does not pin: refused, not fetched.
    const elsewhere = await send(sns.sign(confirmation({ SubscribeURL: `${sns.otherOrigin}/confirm?x=1` })));
    expect(elsewhere.status).toBe(400);
    expect(confirms()).toBe(before);
  });

  it('a complaint is an objection to e-mail marketing; a replay of the message records nothing new', async () => {
    const person = { email: email() };
    await grant(person, 'email');
    const envelope = notification(complaint(person.email));
    const res = await send(envelope);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ received: 1, recorded: 1 });
    expect((await eventsOf(person)).at(-1)).toMatchObject({
      type: 'consent.withdrawn',
      channel: 'email',
      source: 'spam_complaint',
      at: '2016-01-27T14:59:38.237Z',
      actor: { type: 'webhook', provider: 'ses' },
    });
    expect((await api.gateCheck(person, 'email')).body.decision).toBe('block');
    const count = (await eventsOf(person)).length;
    expect((await send(envelope)).body).toMatchObject({ recorded: 0, replayed: 1 });
    expect((await eventsOf(person)).length).toBe(count);
  });

  it('a permanent bounce is recipient_unreachable, no block evidence; a transient one records nothing', async () => {
    const person = { email: email() };
    const res = await send(notification(bounce(person.email)));
    expect(res.body).toMatchObject({ recorded: 1 });
    expect((await eventsOf(person)).at(-1)).toMatchObject({
      type: 'signal.recorded',
      channel: 'email',
      data: { type: 'recipient_unreachable', blockLikelihood: DEFAULT_BLOCK_BASE_RATE },
    });
    const other = { email: email() };
    const transient = bounce(other.email);
    transient.bounce.bounceType = 'Transient';
    expect((await send(notification(transient))).body).toMatchObject({
      recorded: 0,
      skippedByKind: { transient_bounce: 1 },
    });
    await expectNothingRecorded(other);
  });

  it('refuses a notification signed for another topic or not signed, and records nothing', async () => {
    const person = { email: email() };
    const good = notification(complaint(person.email));
    for (const envelope of [
      { ...good, Message: JSON.stringify(complaint(email())) },
      sns.sign({ ...good, TopicArn: 'arn:aws:sns:eu-west-1:210987654321:other' }),
    ]) {
      expect((await send(envelope)).status).toBe(401);
    }
    await expectNothingRecorded(person);
  });

  it('answers 400 to a body that is no SNS message, or a notification that is no SES notification', async () => {
    for (const raw of ['not json', JSON.stringify({ Type: 'Notification' })]) {
      const res = await anonymous.post(c.path, undefined, { raw, headers: { 'content-type': 'text/plain' } });
      expect(res.status).toBe(400);
    }
    const res = await send(notification('Hello world!'));
    expect(res.status).toBe(400);
  });
});
