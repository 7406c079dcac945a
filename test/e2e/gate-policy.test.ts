import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultPolicy } from '#domain/policy.ts';
import { grantBody, phone, tenantWithKey } from '../helpers/factories.ts';
import { client, startServer } from '../helpers/http.ts';

let server: Awaited<ReturnType<typeof startServer>>;
let api: ReturnType<typeof client>;

beforeAll(async () => {
  server = await startServer();
  api = client(server.url, (await tenantWithKey(['admin'])).key);
});
afterAll(() => server.close());

/** Each test sets the whole policy it needs (a full replacement), starting from the defaults. */
const setPolicy = async (overrides: object) => {
  const res = await api.put('/v1/policy', { ...defaultPolicy(), ...overrides });
  expect(res.status).toBe(200);
};
const hoursAgo = (h: number) => new Date(Date.now() - h * 3_600_000).toISOString();
const sendEvents = async (subjectKey: string) =>
  (await api.events(subjectKey)).filter((e) => e.type === 'send.recorded');

describe('the gate applies the tenant policy', () => {
  it('consentMaxAgeDays', async () => {
    await setPolicy({ consentMaxAgeDays: 10 });
    const subject = { phone: phone() };
    await api.post('/v1/consents', grantBody({ subject, grantedAt: hoursAgo(24 * 11) }));
    expect((await api.gateCheck(subject, 'whatsapp')).body.reasons[0].code).toBe('consent_expired');
    await setPolicy({ consentMaxAgeDays: 30 });
    expect((await api.gateCheck(subject, 'whatsapp')).body.decision).toBe('allow');
  });

  it('signal weights and thresholds: one strong clue blocks under a strict policy', async () => {
    const subject = { phone: phone() };
    await api.post('/v1/consents', grantBody({ subject }));
    await api.post('/v1/signals', { subject, channel: 'whatsapp', type: 'last_seen_hidden' });
    await setPolicy({});
    expect((await api.gateCheck(subject, 'whatsapp')).body).toMatchObject({ decision: 'allow', warnings: [] });
    // Weight 0.9: a likelihood ratio of 10; at the prior 0.1 the posterior is 0.53.
    await setPolicy({ signalWeights: { ...defaultPolicy().signalWeights, last_seen_hidden: 0.9 } });
    expect((await api.gateCheck(subject, 'whatsapp')).body.warnings[0].code).toBe('block_suspected');
    await setPolicy({
      signalWeights: { ...defaultPolicy().signalWeights, last_seen_hidden: 0.9 },
      blockThreshold: 0.45,
    });
    expect((await api.gateCheck(subject, 'whatsapp')).body.reasons[0].code).toBe('likely_blocked');
    // A higher prior (blockBaseRate) makes the same clue weigh more.
    await setPolicy({ signalWeights: { ...defaultPolicy().signalWeights, last_seen_hidden: 0.9 }, blockBaseRate: 0.3 });
    expect((await api.gateCheck(subject, 'whatsapp')).body.reasons[0].code).toBe('likely_blocked');
  });

  it('undeliveredAfterHours: a send never delivered counts as undelivered, without any further call', async () => {
    await setPolicy({ undeliveredAfterHours: 2 });
    const subject = { phone: phone() };
    await api.post('/v1/consents', grantBody({ subject }));
    for (const [h, id] of [
      [5, 'a'],
      [4, 'b'],
      [3, 'c'],
    ] as const) {
      await api.post('/v1/signals', {
        subject,
        channel: 'whatsapp',
        type: 'message_sent',
        messageId: `wamid.${id}`,
        observedAt: hoursAgo(h),
      });
    }
    // Undelivered messages alone are suspected, never likely (a phone can be off for weeks).
    const g = await api.gateCheck(subject, 'whatsapp');
    expect(g.body).toMatchObject({ decision: 'allow', warnings: [{ code: 'block_suspected' }] });
    expect(g.body.warnings[0].signals.every((s: { inferred?: boolean }) => s.inferred)).toBe(true);
    await setPolicy({ undeliveredAfterHours: 72 });
    expect((await api.gateCheck(subject, 'whatsapp')).body).toMatchObject({ decision: 'allow', warnings: [] });
  });

  it('crossChannelCooldownDays: a likely block on WhatsApp pauses SMS and voice marketing', async () => {
    await setPolicy({});
    const subject = { phone: phone() };
    for (const channel of ['whatsapp', 'sms', 'voice']) await api.post('/v1/consents', grantBody({ subject, channel }));
    for (const [h, type] of [
      [3, 'message_undelivered'],
      [2, 'group_add_refused'],
      [1, 'profile_photo_hidden'],
    ] as const) {
      await api.post('/v1/signals', { subject, channel: 'whatsapp', type, observedAt: hoursAgo(h) });
    }
    const sms = await api.gateCheck(subject, 'sms');
    expect(sms.body.decision).toBe('block');
    expect(sms.body.reasons).toEqual([
      expect.objectContaining({
        code: 'cross_channel_cooldown',
        channel: 'whatsapp',
        message: expect.stringContaining('whatsapp'),
      }),
    ]);
    expect((await api.gateCheck(subject, 'voice')).body.reasons[0].code).toBe('cross_channel_cooldown');
    expect((await api.gateCheck(subject, 'whatsapp')).body.reasons[0].code).toBe('likely_blocked');
    // Checked before the block was likely, SMS was fine; with no cooldown it is fine now.
    expect((await api.gateCheck(subject, 'sms', { at: hoursAgo(2.5) })).body.decision).toBe('allow');
    await setPolicy({ crossChannelCooldownDays: 0 });
    expect((await api.gateCheck(subject, 'sms')).body.decision).toBe('allow');
  });

  it('frequencyCaps with record: true count allowed sends; a blocked check records nothing', async () => {
    await setPolicy({ frequencyCaps: [{ channel: '*', purpose: '*', max: 2, perDays: 7 }] });
    const subject = { phone: phone() };
    await api.post('/v1/consents', grantBody({ subject }));
    const dry = await api.gateCheck(subject, 'whatsapp');
    expect(dry.body.decision).toBe('allow');
    for (let i = 0; i < 2; i++)
      expect((await api.gateCheck(subject, 'whatsapp', { record: true })).body.decision).toBe('allow');
    const capped = await api.gateCheck(subject, 'whatsapp', { record: true });
    expect(capped.body.decision).toBe('block');
    expect(capped.body.reasons[0]).toMatchObject({ code: 'frequency_cap' });
    expect(capped.body.reasons[0].availableAt).toBeTruthy();
    expect(await sendEvents(capped.body.subjectKey)).toHaveLength(2);
    // An unknown subject with record: true writes nothing either.
    const unknown = await api.gateCheck({ phone: phone() }, 'whatsapp', { record: true });
    expect(unknown.body.reasons[0].code).toBe('no_consent');
    expect((await api.get(`/v1/subjects/${unknown.body.subjectKey}/events`)).status).toBe(404);
  });

  it('a race of 20 parallel recorded checks cannot exceed a cap of 3', async () => {
    await setPolicy({ frequencyCaps: [{ channel: 'whatsapp', purpose: 'marketing', max: 3, perDays: 1 }] });
    const subject = { phone: phone() };
    await api.post('/v1/consents', grantBody({ subject }));
    const results = await Promise.all(
      Array.from({ length: 20 }, () => api.gateCheck(subject, 'whatsapp', { record: true })),
    );
    expect(results.every((r) => r.status === 200)).toBe(true);
    const decisions = results.map((r) => r.body.decision);
    expect(decisions.filter((d) => d === 'allow')).toHaveLength(3);
    expect(decisions.filter((d) => d === 'block')).toHaveLength(17);
    expect(await sendEvents(results[0].body.subjectKey)).toHaveLength(3);
  });

  it('quietHours: defer to the end of the quiet period in the recipient’s time zone, across DST', async () => {
    await setPolicy({ quietHours: { start: '21:00', end: '09:00' }, frequencyCaps: [] });
    const subject = { phone: phone() };
    await api.post('/v1/consents', grantBody({ subject, grantedAt: '2026-01-01T00:00:00Z' }));
    // Spring forward in Paris (29 March 2026): 23:00 CET → 09:00 CEST = 07:00 UTC.
    const spring = await api.gateCheck(subject, 'whatsapp', { at: '2026-03-28T22:00:00Z' });
    expect(spring.body).toMatchObject({ decision: 'defer', retryAfter: '2026-03-29T07:00:00.000Z' });
    expect(spring.body.reasons[0].code).toBe('quiet_hours');
    // Fall back (25 October 2026): 22:00 CEST → 09:00 CET = 08:00 UTC.
    const fall = await api.gateCheck(subject, 'whatsapp', { at: '2026-10-24T20:00:00Z' });
    expect(fall.body.retryAfter).toBe('2026-10-25T08:00:00.000Z');
    // The request's time zone wins over the policy's default.
    const ny = await api.gateCheck(subject, 'whatsapp', { at: '2026-11-24T10:00:00Z', timezone: 'America/New_York' });
    expect(ny.body.retryAfter).toBe('2026-11-24T14:00:00.000Z');
    expect((await api.gateCheck(subject, 'whatsapp', { at: '2026-11-24T10:00:00Z' })).body.decision).toBe('allow');
    // A deferred recorded check counts nothing.
    const deferred = await api.gateCheck(subject, 'whatsapp', { at: '2026-03-28T22:00:00Z', record: true });
    expect(deferred.body.decision).toBe('defer');
    expect(await sendEvents(deferred.body.subjectKey)).toHaveLength(0);
    // The batch applies it too, with per-item time zones.
    const batch = await api.post('/v1/gate/check-batch', {
      channel: 'whatsapp',
      at: '2026-11-24T10:00:00Z',
      items: [{ subject }, { subject, timezone: 'America/New_York' }],
    });
    expect(batch.body.results.map((r: { decision: string }) => r.decision)).toEqual(['allow', 'defer']);
  });
});
