import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { grantBody, phone, tenantWithKey } from '../helpers/factories.ts';
import { client, deployed, itLocal, startServer } from '../helpers/http.ts';

let server: Awaited<ReturnType<typeof startServer>>;
let api: ReturnType<typeof client>;
let key: string;

beforeAll(async () => {
  server = await startServer();
  ({ key } = await tenantWithKey(
    deployed ? ['admin'] : ['signals:write', 'consents:write', 'consents:read', 'gate:check'],
  ));
  api = client(server.url, key);
});
afterAll(() => server.close());

const minutesAgo = (m: number) => new Date(Date.now() - m * 60_000).toISOString();
const signal = (subject: object, type: string, extra: object = {}) =>
  api.post('/v1/signals', { subject, channel: 'whatsapp', type, ...extra });

describe('POST /v1/signals', () => {
  it('accepts every signal type and answers 202 with the likelihood and level', async () => {
    const subject = { phone: phone() };
    for (const type of [
      'message_sent',
      'message_delivered',
      'message_read',
      'message_undelivered',
      'profile_photo_hidden',
      'last_seen_hidden',
      'call_failed',
      'group_add_refused',
      'inbound_message',
      'read_receipts_missing',
      'recipient_unreachable',
      'channel_blocked',
    ]) {
      const res = await signal(subject, type, { messageId: `wamid.${type}` });
      expect(res.status, type).toBe(202);
      expect(res.body).toMatchObject({
        channel: 'whatsapp',
        level: expect.stringMatching(/^(none|suspected|likely)$/),
      });
      expect(res.body.blockLikelihood).toBeGreaterThanOrEqual(0);
      expect(res.body.subjectKey).toMatch(/^[A-Za-z0-9_-]{43}$/);
    }
  });

  it('rises with clues, reports it in the lookup and the gate, and falls back to none after a delivery', async () => {
    const subject = { phone: phone() };
    await api.post('/v1/consents', grantBody({ subject }));
    const first = await signal(subject, 'message_undelivered', { messageId: 'wamid.a', observedAt: minutesAgo(30) });
    expect(first.body.level).toBe('suspected');
    const gateSuspected = await api.post('/v1/gate/check', { subject, channel: 'whatsapp' });
    expect(gateSuspected.body.decision).toBe('allow');
    expect(gateSuspected.body.warnings[0].code).toBe('block_suspected');

    await signal(subject, 'profile_photo_hidden', { observedAt: minutesAgo(20) });
    const third = await signal(subject, 'group_add_refused', { observedAt: minutesAgo(10) });
    expect(third.body.level).toBe('likely');
    expect(third.body.blockLikelihood).toBeGreaterThanOrEqual(0.7);

    const gate = await api.post('/v1/gate/check', { subject, channel: 'whatsapp' });
    expect(gate.body.decision).toBe('block');
    expect(gate.body.reasons[0].code).toBe('likely_blocked');
    expect(gate.body.reasons[0].message).toMatch(
      /message_undelivered.*group_add_refused|group_add_refused.*message_undelivered/,
    );
    expect(gate.body.reasons[0].signals.map((s: { type: string }) => s.type).sort()).toEqual([
      'group_add_refused',
      'message_undelivered',
      'profile_photo_hidden',
    ]);
    expect(gate.body.blockLikelihood).toBe(third.body.blockLikelihood);

    const lookup = await api.post('/v1/subjects/lookup', { subject });
    expect(lookup.body.signals.whatsapp).toMatchObject({
      level: 'likely',
      blockLikelihood: third.body.blockLikelihood,
    });

    // A delivery resets: no clue left, the prior restarts at a tenth of blockBaseRate.
    const delivered = await signal(subject, 'message_delivered', { messageId: 'wamid.b' });
    expect(delivered.body).toMatchObject({ blockLikelihood: 0.01, level: 'none', signals: [] });
    expect((await api.post('/v1/gate/check', { subject, channel: 'whatsapp' })).body.decision).toBe('allow');
    const after = await api.post('/v1/subjects/lookup', { subject });
    expect(after.body.signals.whatsapp).toMatchObject({ blockLikelihood: 0.01, level: 'none' });
  });

  it('records each signal in the ledger, keeping only a hash of the message id', async () => {
    const subject = { phone: phone() };
    const res = await signal(subject, 'message_sent', { messageId: 'wamid.HBgLMzM2OTk5OTk5OTkVAgARGBI' });
    const events = await api.get(`/v1/subjects/${res.body.subjectKey}/events`);
    expect(events.body.events).toHaveLength(1);
    expect(events.body.events[0]).toMatchObject({ type: 'signal.recorded', channel: 'whatsapp', source: 'api' });
    expect(events.body.events[0].data.type).toBe('message_sent');
    expect(events.text).not.toContain('HBgLMzM2OTk5OTk5OTkVAgARGBI');
    expect(events.body.chain.valid).toBe(true);
  });

  it('an inbound message is the person’s own action: it restarts the consent’s age', async () => {
    const subject = { phone: phone() };
    await api.post('/v1/consents', grantBody({ subject, grantedAt: '2023-01-01T00:00:00Z' }));
    expect((await api.post('/v1/gate/check', { subject, channel: 'whatsapp' })).body.reasons[0].code).toBe(
      'consent_expired',
    );
    await signal(subject, 'inbound_message');
    expect((await api.post('/v1/gate/check', { subject, channel: 'whatsapp' })).body.decision).toBe('allow');
  });

  it('refuses bad input with a useful 400 and stores nothing', async () => {
    const subject = { phone: phone() };
    const future = await signal(subject, 'call_failed', { observedAt: new Date(Date.now() + 3_600_000).toISOString() });
    expect(future.status).toBe(400);
    expect(future.body.errors[0].path).toBe('observedAt');
    const unknownType = await signal(subject, 'blocked_for_sure');
    expect(unknownType.status).toBe(400);
    expect(unknownType.body.errors[0].path).toBe('type');
    const typo = await api.post('/v1/signals', { subject, channel: 'whatsapp', type: 'call_failed', observed: 'x' });
    expect(typo.status).toBe(400);
    const mismatch = await api.post('/v1/signals', {
      subject: { email: 'a@example.org' },
      channel: 'whatsapp',
      type: 'call_failed',
    });
    expect(mismatch.body.code).toBe('identifier_channel_mismatch');
    expect((await api.post('/v1/subjects/lookup', { subject })).status).toBe(404);
  });

  itLocal('needs the signals:write scope', async () => {
    const { key: readOnly } = await tenantWithKey(['consents:read']);
    const res = await client(server.url, readOnly).post('/v1/signals', {
      subject: { phone: phone() },
      channel: 'sms',
      type: 'call_failed',
    });
    expect(res.status).toBe(403);
    expect((await client(server.url).post('/v1/signals', {})).status).toBe(401);
  });

  it('honours Idempotency-Key', async () => {
    const subject = { phone: phone() };
    const headers = { 'idempotency-key': `k-${Date.now()}` };
    const body = { subject, channel: 'sms', type: 'call_failed' };
    const a = await api.post('/v1/signals', body, { headers });
    const b = await api.post('/v1/signals', body, { headers });
    expect(b.body).toEqual(a.body);
    const events = await api.get(`/v1/subjects/${a.body.subjectKey}/events`);
    expect(events.body.events).toHaveLength(1);
  });
});
