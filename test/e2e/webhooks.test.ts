import { randomInt } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { grantBody, phone, tenantWithKey } from '../helpers/factories.ts';
import { client, describeLocal, startServer } from '../helpers/http.ts';
import {
  bsuid,
  change,
  envelope,
  type FixtureOwn,
  inbound,
  metaFixture,
  preference,
  sign,
  status,
  unix,
  wamid,
} from '../helpers/whatsapp.ts';

const SECRET = 'whatsapp-app-secret-e2e';
const VERIFY = 'verify-token-e2e';
const PNID = String(randomInt(1e14, 2e14));
const OTHER_PNID = String(randomInt(2e14, 3e14));

let server: Awaited<ReturnType<typeof startServer>>;
let api: ReturnType<typeof client>;
let other: ReturnType<typeof client>;
let anonymous: ReturnType<typeof client>;

beforeAll(async () => {
  server = await startServer();
  const a = await tenantWithKey(['admin']);
  const b = await tenantWithKey(['admin']);
  api = client(server.url, a.key);
  other = client(server.url, b.key);
  anonymous = client(server.url);
  process.env.WHATSAPP_PHONE_NUMBER_TENANTS = `${PNID}:${a.tenant},${OTHER_PNID}:${b.tenant}`;
  await api.put('/v1/policy', { noticeVersion: 'wa-notice-2026-11' });
});
beforeEach(() => {
  process.env.WHATSAPP_APP_SECRET = SECRET;
  process.env.WHATSAPP_VERIFY_TOKEN = VERIFY;
});
afterAll(async () => {
  delete process.env.WHATSAPP_APP_SECRET;
  delete process.env.WHATSAPP_VERIFY_TOKEN;
  delete process.env.WHATSAPP_PHONE_NUMBER_TENANTS;
  await server.close();
});

/** Posts a payload the way Meta does: compact JSON bytes, signed. */
function deliver(payload: unknown, options: { signature?: string | null; raw?: string } = {}) {
  const raw = options.raw ?? JSON.stringify(payload);
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  const signature = options.signature === undefined ? sign(raw, SECRET) : options.signature;
  if (signature !== null) headers['x-hub-signature-256'] = signature;
  return anonymous.post('/v1/webhooks/whatsapp', undefined, { raw, headers });
}

const minutesAgo = (m: number) => new Date(Date.now() - m * 60_000).toISOString();
const eventsOf = async (subject: object) => api.events((await api.lookup(subject)).body.subjectKey);
/** One of Meta's documented payloads, routed to tenant A, with the test's own person, ids and time. */
const meta = (name: string, own: Omit<FixtureOwn, 'phoneNumberId' | 'freshIds'> = {}) =>
  metaFixture(name, { phoneNumberId: PNID, freshIds: true, at: minutesAgo(1), ...own });
/** Several payloads as one delivery (Meta batches entries). */
const together = (...payloads: Record<string, unknown>[]) => ({
  object: 'whatsapp_business_account',
  entry: payloads.flatMap((p) => p.entry as unknown[]),
});

describeLocal('GET /v1/webhooks/whatsapp — verification handshake', () => {
  it('echoes the challenge as plain text when mode and token match', async () => {
    const res = await anonymous.get(
      `/v1/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=${VERIFY}&hub.challenge=1158201444`,
    );
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(res.text).toBe('1158201444');
  });

  it('answers 403 on a wrong token or mode, and when no token is configured', async () => {
    const wrong = await anonymous.get('/v1/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=nope&hub.challenge=1');
    expect(wrong.status).toBe(403);
    const mode = await anonymous.get(
      `/v1/webhooks/whatsapp?hub.mode=unsubscribe&hub.verify_token=${VERIFY}&hub.challenge=1`,
    );
    expect(mode.status).toBe(403);
    delete process.env.WHATSAPP_VERIFY_TOKEN;
    const unset = await anonymous.get('/v1/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=&hub.challenge=1');
    expect(unset.status).toBe(403);
  });
});

describeLocal('POST /v1/webhooks/whatsapp — signature', () => {
  it('refuses a missing or wrong signature with 401 and records nothing', async () => {
    const subject = { phone: phone() };
    const payload = envelope([
      change(PNID, { statuses: [status(subject, 'failed', minutesAgo(1), { errorCode: 131026 })] }),
    ]);
    expect((await deliver(payload, { signature: null })).status).toBe(401);
    expect((await deliver(payload, { signature: sign(JSON.stringify(payload), 'wrong-secret') })).status).toBe(401);
    // Signed over other bytes (re-serialised with spaces): the signature covers the raw body.
    const spaced = JSON.stringify(payload, null, 2);
    expect((await deliver(payload, { raw: spaced, signature: sign(JSON.stringify(payload), SECRET) })).status).toBe(
      401,
    );
    expect((await api.lookup(subject)).status).toBe(404);
  });

  it('answers 503 while WHATSAPP_APP_SECRET is unset', async () => {
    delete process.env.WHATSAPP_APP_SECRET;
    const res = await deliver(envelope([]));
    expect(res.status).toBe(503);
    expect(res.body.code).toBe('webhook_not_configured');
  });
});

describeLocal('POST /v1/webhooks/whatsapp — statuses', () => {
  it('turns sent/delivered/read into signals; 131026 failures after them are no block clue but a warning', async () => {
    const subject = { phone: phone() };
    await api.post('/v1/consents', grantBody({ subject }));
    const id = wamid();
    const ok = await deliver(
      envelope([
        change(PNID, {
          statuses: [
            status(subject, 'sent', minutesAgo(50), { id }),
            status(subject, 'delivered', minutesAgo(49), { id }),
            status(subject, 'read', minutesAgo(48), { id }),
          ],
        }),
      ]),
    );
    expect(ok.status).toBe(200);
    // Reached a minute ago: the prior restarts at a tenth of blockBaseRate.
    expect((await api.lookup(subject)).body.signals.whatsapp).toMatchObject({ level: 'none', blockLikelihood: 0.01 });

    const times = [30, 20, 10].map(minutesAgo);
    const failures = times.map((at) => status(subject, 'failed', at, { errorCode: 131026 }));
    expect((await deliver(envelope([change(PNID, { statuses: failures })]))).status).toBe(200);
    // 131026 says the person cannot be reached (not on WhatsApp, terms not accepted, an old app): no clue.
    const view = (await api.lookup(subject)).body.signals.whatsapp;
    expect(view).toMatchObject({ signals: [], level: 'none', blockLikelihood: 0.01 });
    expect(view.unreachableSince).toBe(new Date(Number(unix(times[2])) * 1000).toISOString());
    const g = await api.gateCheck(subject);
    expect(g.body).toMatchObject({ decision: 'allow', warnings: [{ code: 'recipient_unreachable' }] });
    const recorded = (await eventsOf(subject)).filter((e) => e.type === 'signal.recorded');
    expect(recorded.map((e) => e.data.type)).toEqual([
      'message_sent',
      'message_delivered',
      'message_read',
      'recipient_unreachable',
      'recipient_unreachable',
      'recipient_unreachable',
    ]);
    expect(recorded[3].data).toMatchObject({ errorCode: 131026, level: 'none' });
  });

  it('131050 withdraws WhatsApp marketing (whatsapp_stop_promotions); 131049 and 130472 change nothing', async () => {
    const subject = { phone: phone() };
    await api.post('/v1/consents', grantBody({ subject, grantedAt: minutesAgo(30) }));
    const limits = [131049, 130472].map((code) => status(subject, 'failed', minutesAgo(5), { errorCode: code }));
    await deliver(envelope([change(PNID, { statuses: limits })]));
    // No block clue: the prior (blockBaseRate).
    expect((await api.gateCheck(subject)).body).toMatchObject({
      decision: 'allow',
      warnings: [],
      blockLikelihood: 0.1,
    });

    await deliver(
      envelope([change(PNID, { statuses: [status(subject, 'failed', minutesAgo(1), { errorCode: 131050 })] })]),
    );
    const g = await api.gateCheck(subject);
    expect(g.body.decision).toBe('block');
    expect(g.body.reasons[0]).toMatchObject({ code: 'consent_withdrawn' });
    const consents = (await api.lookup(subject)).body.consents;
    expect(
      consents.find((c: { channel: string; status: string }) => c.channel === 'whatsapp' && c.status === 'withdrawn'),
    ).toMatchObject({
      source: 'whatsapp_stop_promotions',
    });
  });

  it('a late delivered after a failed is evidence at its own timestamp', async () => {
    const subject = { phone: phone() };
    await api.post('/v1/consents', grantBody({ subject, grantedAt: minutesAgo(30) }));
    const id = wamid();
    // Two devices: the failure is reported first, the delivery (a minute later) arrives afterwards.
    const failures = [
      status(subject, 'failed', minutesAgo(12), { errorCode: 131026 }),
      status(subject, 'failed', minutesAgo(11), { id, errorCode: 131026 }),
    ];
    await deliver(envelope([change(PNID, { statuses: failures })]));
    expect((await api.lookup(subject)).body.signals.whatsapp.unreachableSince).not.toBeNull();
    await deliver(envelope([change(PNID, { statuses: [status(subject, 'delivered', minutesAgo(10), { id })] })]));
    expect((await api.lookup(subject)).body.signals.whatsapp).toMatchObject({
      level: 'none',
      blockLikelihood: 0.01,
      unreachableSince: null,
    });
    expect((await api.gateCheck(subject)).body).toMatchObject({ decision: 'allow', warnings: [] });
    // An old delivery arriving late does not wipe out a newer failure.
    const subject2 = { phone: phone() };
    await deliver(
      envelope([change(PNID, { statuses: [status(subject2, 'failed', minutesAgo(5), { errorCode: 131026 })] })]),
    );
    await deliver(envelope([change(PNID, { statuses: [status(subject2, 'delivered', minutesAgo(60))] })]));
    const late = (await api.lookup(subject2)).body.signals.whatsapp;
    expect(late.unreachableSince).not.toBeNull();
    expect((await api.gateCheck(subject2)).body.warnings.map((w: { code: string }) => w.code)).toEqual([
      'recipient_unreachable',
    ]);
  });
});

describeLocal('POST /v1/webhooks/whatsapp — preferences and keywords', () => {
  it('user_preferences stop withdraws, resume grants again with the policy notice version', async () => {
    const subject = { phone: phone() };
    await api.post('/v1/consents', grantBody({ subject, grantedAt: minutesAgo(30) }));
    await deliver(envelope([change(PNID, preference(subject, 'stop', minutesAgo(10)))]));
    expect((await api.gateCheck(subject)).body.reasons[0].code).toBe('consent_withdrawn');
    await deliver(envelope([change(PNID, preference(subject, 'resume', minutesAgo(5)))]));
    const g = await api.gateCheck(subject);
    expect(g.body.decision).toBe('allow');
    expect(g.body.consent.noticeVersion).toBe('wa-notice-2026-11');
    const events = await eventsOf(subject);
    expect(events.map((e) => `${e.type}:${e.source}`)).toEqual([
      'consent.granted:web_form',
      'consent.withdrawn:whatsapp_stop_promotions',
      'consent.granted:whatsapp_optin',
    ]);
  });

  it('a stop delivered after a later resume does not win', async () => {
    const subject = { phone: phone() };
    await api.post('/v1/consents', grantBody({ subject, grantedAt: minutesAgo(60) }));
    await deliver(envelope([change(PNID, preference(subject, 'resume', minutesAgo(5)))]));
    await deliver(envelope([change(PNID, preference(subject, 'stop', minutesAgo(10)))]));
    expect((await api.gateCheck(subject)).body.decision).toBe('allow');
  });

  it('an opt-out keyword as text, button or interactive reply withdraws (source keyword); START gives it back', async () => {
    const replies = [
      { type: 'text', body: '  Arrêt ' },
      { type: 'button', payload: 'STOP PROMOTIONS', text: 'Stop promotions' },
      { type: 'interactive', id: 'unsubscribe', title: 'Unsubscribe' },
    ] as const;
    for (const reply of replies) {
      const subject = { phone: phone() };
      await api.post('/v1/consents', grantBody({ subject, grantedAt: minutesAgo(30) }));
      expect((await deliver(envelope([change(PNID, inbound(subject, minutesAgo(3), reply))]))).status).toBe(200);
      const g = await api.gateCheck(subject);
      expect(g.body.reasons[0].code, reply.type).toBe('consent_withdrawn');
      expect(g.body.reasons[0].message).toContain('keyword');
      await deliver(envelope([change(PNID, inbound(subject, minutesAgo(1), { type: 'text', body: 'start' }))]));
      expect((await api.gateCheck(subject)).body.decision, reply.type).toBe('allow');
    }
  });

  it('any other inbound message is evidence against a block and the person’s own action', async () => {
    const subject = { phone: phone() };
    await api.post('/v1/consents', grantBody({ subject, grantedAt: '2023-01-01T00:00:00Z' }));
    await deliver(
      envelope([change(PNID, { statuses: [status(subject, 'failed', minutesAgo(9), { errorCode: 131026 })] })]),
    );
    expect((await api.gateCheck(subject)).body.reasons[0].code).toBe('consent_expired');
    await deliver(
      envelope([change(PNID, inbound(subject, minutesAgo(2), { type: 'text', body: 'STOP PLEASE call me tomorrow' }))]),
    );
    const g = await api.gateCheck(subject);
    expect(g.body).toMatchObject({ decision: 'allow', blockLikelihood: 0.01 });
  });
});

describeLocal('POST /v1/webhooks/whatsapp — delivery', () => {
  it('handles several entries and changes, routes by phone_number_id, ignores unknown parts, answers 200', async () => {
    const a = { phone: phone() };
    const b = { phone: phone() };
    const userId = `US.${randomInt(1e9, 9e9)}${randomInt(1e9, 9e9)}`;
    const payload = envelope(
      [
        change(PNID, {
          statuses: [status(a, 'failed', minutesAgo(4), { errorCode: 131026 })],
          brand_new_field: { x: 1 },
        }),
        change(PNID, inbound({ userId }, minutesAgo(3), { type: 'reaction', emoji: '👍' })),
        { field: 'message_template_status_update', value: { event: 'APPROVED' } } as never,
      ],
      [
        change(OTHER_PNID, { statuses: [status(b, 'failed', minutesAgo(2), { errorCode: 131026 })] }),
        change('999999', { statuses: [status(a, 'read', minutesAgo(1))] }),
        change(PNID, {
          statuses: ['junk', { status: 'teleported' }],
          errors: [{ code: 131000, title: 'Something went wrong' }],
        }),
      ],
    );
    const res = await deliver(payload);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      received: 3,
      recorded: 3,
      skipped: 5,
      skippedByKind: { unknown_field: 1, unrouted_phone_number: 1, malformed_item: 2, value_error: 1 },
    });
    // The unrouted phone number's read receipt was not applied to tenant A: A is still unreachable.
    expect((await api.lookup(a)).body.signals.whatsapp.unreachableSince).not.toBeNull();
    expect((await api.lookup({ waUserId: userId })).body.signals.whatsapp).toMatchObject({ level: 'none' });
    // B's status went to the other tenant only.
    expect((await api.lookup(b)).status).toBe(404);
    expect((await other.lookup(b)).body.signals.whatsapp.unreachableSince).not.toBeNull();
    // A non-JSON body that is correctly signed is a 400, not a 500.
    expect((await deliver(undefined, { raw: 'not json' })).status).toBe(400);
  });

  it('a replayed delivery records nothing new', async () => {
    const subject = { phone: phone() };
    await api.post('/v1/consents', grantBody({ subject, grantedAt: minutesAgo(30) }));
    const payload = envelope([
      change(PNID, {
        statuses: [status(subject, 'failed', minutesAgo(8), { errorCode: 131026 })],
        ...inbound(subject, minutesAgo(7), { type: 'text', body: 'STOP' }),
      }),
    ]);
    const first = await deliver(payload);
    expect(first.body).toMatchObject({ recorded: 2, replayed: 0 });
    const before = await eventsOf(subject);
    const again = await deliver(payload);
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ recorded: 0, replayed: 2 });
    expect(await eventsOf(subject)).toEqual(before);
  });
});

describeLocal("POST /v1/webhooks/whatsapp — Meta's documented payloads", () => {
  it('the "Cancel" button of an interactive message withdraws nothing: the send is still allowed', async () => {
    const subject = { phone: phone() };
    await api.post('/v1/consents', grantBody({ subject, grantedAt: minutesAgo(30) }));
    const res = await deliver(meta('interactive-button-reply-cancel.json', { phone: subject.phone }));
    expect(res.body).toMatchObject({ received: 1, recorded: 1, skipped: 0, skippedByKind: {} });
    expect((await api.gateCheck(subject)).body).toMatchObject({ decision: 'allow', warnings: [] });
    const events = await eventsOf(subject);
    expect(events.map((e) => e.type)).toEqual(['consent.granted', 'signal.recorded']);
    expect(events[1].data.type).toBe('inbound_message');
  });

  it('the "Stop promotions" quick reply withdraws WhatsApp marketing (source keyword)', async () => {
    const subject = { phone: phone() };
    await api.post('/v1/consents', grantBody({ subject, grantedAt: minutesAgo(30) }));
    const res = await deliver(meta('button-stop-promotions.json', { phone: subject.phone }));
    expect(res.body).toMatchObject({ received: 1, recorded: 1 });
    const g = await api.gateCheck(subject);
    expect(g.body.decision).toBe('block');
    expect(g.body.reasons[0]).toMatchObject({ code: 'consent_withdrawn' });
    expect((await eventsOf(subject)).map((e) => `${e.type}:${e.source}`)).toEqual([
      'consent.granted:web_form',
      'consent.withdrawn:keyword',
    ]);
  });

  it('131026 three times: WhatsApp warns recipient_unreachable, SMS is not paused, a delivery lifts it', async () => {
    const subject = { phone: phone() };
    for (const channel of ['whatsapp', 'sms']) {
      await api.post('/v1/consents', grantBody({ subject, channel, grantedAt: minutesAgo(90) }));
    }
    const times = [40, 30, 20].map(minutesAgo);
    for (const at of times) {
      const res = await deliver(meta('status-failed-131026.json', { phone: subject.phone, at }));
      expect(res.body).toMatchObject({ received: 1, recorded: 1 });
    }
    const sms = await api.gateCheck(subject, 'sms');
    expect(sms.body).toMatchObject({ decision: 'allow', reasons: [], warnings: [] });
    const wa = await api.gateCheck(subject);
    expect(wa.body).toMatchObject({ decision: 'allow', blockLikelihood: 0.1 });
    expect(wa.body.warnings).toEqual([
      expect.objectContaining({
        code: 'recipient_unreachable',
        since: new Date(Number(unix(times[2])) * 1000).toISOString(),
      }),
    ]);
    const events = (await eventsOf(subject)).filter((e) => e.type === 'signal.recorded');
    expect(events.map((e) => [e.data.type, e.data.errorCode])).toEqual([
      ['recipient_unreachable', 131026],
      ['recipient_unreachable', 131026],
      ['recipient_unreachable', 131026],
    ]);
    // The person updates the app: a later message is delivered, and the warning goes.
    await deliver(envelope([change(PNID, { statuses: [status(subject, 'delivered', minutesAgo(5))] })]));
    expect((await api.gateCheck(subject)).body.warnings).toEqual([]);
  });

  it('applies statuses and messages of a username user to the business-scoped user id, parent ids too', async () => {
    const userId = bsuid('US');
    const parentUserId = bsuid('US', true);
    const status = await deliver(meta('status-delivered-bsuid-only.json', { userId, parentUserId, at: minutesAgo(3) }));
    expect(status.body).toMatchObject({ received: 1, recorded: 1, invalid: 0 });
    const message = await deliver(meta('message-text-bsuid-only.json', { userId, parentUserId }));
    expect(message.body).toMatchObject({ received: 1, recorded: 1, invalid: 0 });
    const events = await eventsOf({ waUserId: userId });
    expect(events.map((e) => e.data.type)).toEqual(['message_delivered', 'inbound_message']);
    // A parent BSUID is a waUserId the API accepts too.
    expect((await api.post('/v1/consents', grantBody({ subject: { waUserId: parentUserId } }))).status).toBe(201);
    expect((await api.post('/v1/consents', grantBody({ subject: { waUserId: 'US.not-a-bsuid' } }))).status).toBe(400);
  });

  it('a status naming both the phone and the BSUID applies to the phone', async () => {
    const subject = { phone: phone() };
    const res = await deliver(
      meta('status-delivered-phone-and-bsuid.json', {
        phone: subject.phone,
        userId: bsuid('FR'),
        parentUserId: bsuid(),
      }),
    );
    expect(res.body).toMatchObject({ received: 1, recorded: 1 });
    expect((await api.lookup(subject)).body.signals.whatsapp.lastEvidenceAgainstBlockAt).not.toBeNull();
  });

  it('counts what it does not apply, by kind: value-level errors, group traffic, other fields', async () => {
    const subject = { phone: phone() };
    const res = await deliver(
      together(
        meta('value-errors.json'),
        meta('status-group-read.json', { phone: subject.phone }),
        meta('group-message-text.json', { phone: subject.phone }),
        meta('template-status-update.json'),
        meta('status-played.json', { phone: subject.phone }),
        meta('system-user-changed-number.json', { phone: subject.phone, newPhone: phone() }),
      ),
    );
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      received: 2,
      skipped: 4,
      skippedByKind: { value_error: 1, group_status: 1, group_message: 1, unknown_field: 1 },
    });
    // The played voice message is evidence of reach; the number change closed the old number; the group
    // traffic wrote nothing more.
    const events = await eventsOf(subject);
    expect(events.filter((e) => e.type === 'signal.recorded').map((e) => e.data.type)).toEqual(['message_read']);
    expect(events.filter((e) => e.type !== 'signal.recorded').map((e) => e.type)).toEqual([
      'subject.number_changed',
      'consent.withdrawn',
    ]);
  });
});
