import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decide } from '#domain/gate.ts';
import { defaultPolicy } from '#domain/policy.ts';
import { type Change, emptyState, grantConsent, type SubjectState } from '#domain/subject-state.ts';
import { applyNotification } from '#shared/whatsapp/actions.ts';
import { parseRouting } from '#shared/whatsapp/config.ts';
import { keywordOf, OPT_OUT_KEYWORDS } from '#shared/whatsapp/keywords.ts';
import { type Notification, notificationsOf } from '#shared/whatsapp/payload.ts';
import { signatureOf, verifySignature } from '#shared/whatsapp/signature.ts';
import { change, envelope, inbound, preference, sign, status } from '../../helpers/whatsapp.ts';

const SECRET = 'app-secret-for-tests';
const PHONE = '+33612345678';
const routeAll = () => 'acme';

describe('webhook signature', () => {
  const body = Buffer.from(JSON.stringify(envelope([change('111', {})])));

  it('accepts the HMAC-SHA-256 of the exact raw bytes', () => {
    expect(verifySignature(body, sign(body, SECRET), SECRET)).toBe(true);
    expect(signatureOf(body, SECRET)).toBe(sign(body, SECRET));
  });

  it('refuses a missing, malformed, truncated or foreign signature, or a changed body', () => {
    expect(verifySignature(body, undefined, SECRET)).toBe(false);
    expect(verifySignature(body, '', SECRET)).toBe(false);
    expect(verifySignature(body, sign(body, SECRET).slice(0, -2), SECRET)).toBe(false);
    expect(verifySignature(body, sign(body, 'other'), SECRET)).toBe(false);
    expect(verifySignature(Buffer.concat([body, Buffer.from(' ')]), sign(body, SECRET), SECRET)).toBe(false);
    expect(verifySignature(body, sign(body, SECRET).replace('sha256=', 'sha1='), SECRET)).toBe(false);
  });
});

describe('keywords', () => {
  it('recognises every opt-out keyword, case-, accent- and space-insensitively, as the whole message', () => {
    for (const k of OPT_OUT_KEYWORDS) {
      expect(keywordOf(k)).toBe('opt_out');
      expect(keywordOf(`  ${k.toLowerCase()}  `)).toBe('opt_out');
    }
    expect(keywordOf('Arrêt')).toBe('opt_out');
    expect(keywordOf('ARRÊTE')).toBe('opt_out');
    expect(keywordOf('désabonner')).toBe('opt_out');
    expect(keywordOf('Désinscrire')).toBe('opt_out');
    expect(keywordOf('stop   pub')).toBe('opt_out');
    expect(keywordOf('Stop.')).toBe('opt_out');
    expect(keywordOf('Stop promotions')).toBe('opt_out');
  });

  it('ignores a keyword inside a longer message', () => {
    for (const text of ['STOP PLEASE', 'please stop', 'stop it', "don't stop", 'STOPP', 'ending', '']) {
      expect(keywordOf(text)).toBeUndefined();
    }
  });

  it('knows START and UNSTOP', () => {
    expect(keywordOf('start')).toBe('opt_in');
    expect(keywordOf(' Unstop ')).toBe('opt_in');
    expect(keywordOf('YES')).toBeUndefined();
  });

  it('never throws on any text', () => {
    fc.assert(fc.property(fc.string(), (s) => void keywordOf(s)));
  });
});

describe('tenant routing', () => {
  it('sends every phone number id to the dev tenant when unset', () => {
    expect(parseRouting(undefined, 'demo')('123')).toBe('demo');
    // In the cloud there is no dev tenant: an unconfigured routing sends nothing anywhere.
    expect(parseRouting(undefined, undefined)('123')).toBeUndefined();
  });
  it('routes listed ids and ignores the others', () => {
    const route = parseRouting('111:acme, 222:beta,bad,333:NOT_A_TENANT', 'demo');
    expect(route('111')).toBe('acme');
    expect(route('222')).toBe('beta');
    expect(route('333')).toBeUndefined();
    expect(route('999')).toBeUndefined();
  });
});

describe('notifications of a webhook', () => {
  const at = '2026-11-24T10:00:00Z';

  it('maps statuses to signals, 131026 to undelivered, 131050 to a withdrawal, other failures to a non-clue', () => {
    const { notifications } = notificationsOf(
      envelope([
        change('111', {
          statuses: [
            status({ phone: PHONE }, 'sent', at, { id: 'wamid.1' }),
            status({ phone: PHONE }, 'delivered', at, { id: 'wamid.2' }),
            status({ phone: PHONE }, 'read', at, { id: 'wamid.3' }),
            status({ phone: PHONE }, 'failed', at, { id: 'wamid.4', errorCode: 131026 }),
            status({ phone: PHONE }, 'failed', at, { id: 'wamid.5', errorCode: 131050 }),
            status({ phone: PHONE }, 'failed', at, { id: 'wamid.6', errorCode: 131049 }),
            status({ phone: PHONE }, 'failed', at, { id: 'wamid.7', errorCode: 130472 }),
          ],
        }),
      ]),
      routeAll,
    );
    expect(notifications.map((n) => n.action)).toEqual([
      { kind: 'signal', type: 'message_sent', messageId: 'wamid.1' },
      { kind: 'signal', type: 'message_delivered', messageId: 'wamid.2' },
      { kind: 'signal', type: 'message_read', messageId: 'wamid.3' },
      { kind: 'signal', type: 'message_undelivered', messageId: 'wamid.4', errorCode: 131026 },
      { kind: 'withdraw', source: 'whatsapp_stop_promotions', messageId: 'wamid.5', errorCode: 131050 },
      { kind: 'signal', type: 'message_failed', messageId: 'wamid.6', errorCode: 131049 },
      { kind: 'signal', type: 'message_failed', messageId: 'wamid.7', errorCode: 130472 },
    ]);
    expect(notifications.every((n) => n.tenant === 'acme' && n.subject.phone === PHONE)).toBe(true);
  });

  it('maps preferences, keyword replies (text, button, interactive) and other messages', () => {
    const { notifications } = notificationsOf(
      envelope(
        [
          change('111', preference({ phone: PHONE }, 'stop', at)),
          change('111', preference({ phone: PHONE }, 'resume', at)),
        ],
        [
          change('111', inbound({ phone: PHONE }, at, { type: 'text', body: ' Arrêt ' })),
          change(
            '111',
            inbound({ phone: PHONE }, at, { type: 'button', payload: 'STOP PROMOTIONS', text: 'Stop promotions' }),
          ),
          change('111', inbound({ phone: PHONE }, at, { type: 'interactive', id: 'opt-out', title: 'Unsubscribe' })),
          change('111', inbound({ phone: PHONE }, at, { type: 'text', body: 'START' })),
          change('111', inbound({ phone: PHONE }, at, { type: 'text', body: 'STOP PLEASE' })),
          change('111', inbound({ phone: PHONE }, at, { type: 'image' })),
        ],
      ),
      routeAll,
    );
    expect(
      notifications.map((n) =>
        n.action.kind === 'signal'
          ? n.action.type
          : `${n.action.kind}:${'source' in n.action ? n.action.source : n.action.after}`,
      ),
    ).toEqual([
      'withdraw:whatsapp_stop_promotions',
      'regrant:whatsapp_stop_promotions',
      'withdraw:keyword',
      'withdraw:keyword',
      'withdraw:keyword',
      'regrant:keyword',
      'inbound_message',
      'inbound_message',
    ]);
  });

  it('reads list replies too, by id or title', () => {
    const message = (list_reply: object) => ({
      contacts: [{ wa_id: '33612345678' }],
      messages: [
        {
          from: '33612345678',
          id: 'wamid.L',
          timestamp: '1795000000',
          type: 'interactive',
          interactive: { type: 'list_reply', list_reply },
        },
      ],
    });
    const kinds = [
      { id: 'opt-out-all', title: 'Désabonner' },
      { id: 'START', title: 'Reprendre' },
      { id: 'size-m', title: 'M' },
    ].map((reply) => notificationsOf(envelope([change('111', message(reply))]), routeAll).notifications[0].action.kind);
    expect(kinds).toEqual(['withdraw', 'regrant', 'signal']);
  });

  it('uses the business-scoped user id when there is no phone number', () => {
    const { notifications } = notificationsOf(
      envelope([
        change('111', { statuses: [status({ userId: 'US.13491208655302741918' }, 'delivered', at)] }),
        change('111', inbound({ userId: 'US.13491208655302741918' }, at, { type: 'text', body: 'hello' })),
      ]),
      routeAll,
    );
    expect(notifications.map((n) => n.subject)).toEqual([
      { waUserId: 'US.13491208655302741918' },
      { waUserId: 'US.13491208655302741918' },
    ]);
  });

  it('orders by event time, routes by phone_number_id and skips what it does not know without failing', () => {
    const route = parseRouting('111:acme,222:beta', 'demo');
    const payload = envelope(
      [
        change('111', {
          statuses: [status({ phone: PHONE }, 'read', '2026-11-24T10:05:00Z')],
          surprise: { nested: true },
        }),
        change('333', { statuses: [status({ phone: PHONE }, 'read', at)] }),
        { field: 'account_update', value: { event: 'VERIFIED' } } as never,
      ],
      [
        change('222', {
          statuses: [status({ phone: PHONE }, 'delivered', '2026-11-24T10:00:00Z'), { status: 'sent' }, 'junk'],
          messages: [{ id: 'x', timestamp: unixNow(), type: 'system', system: { body: 'changed number' } }],
          errors: [{ code: 131000 }],
        }),
      ],
    );
    const { notifications, skipped } = notificationsOf(payload, route);
    expect(notifications.map((n) => [n.tenant, n.observedAt])).toEqual([
      ['beta', '2026-11-24T10:00:00.000Z'],
      ['acme', '2026-11-24T10:05:00.000Z'],
    ]);
    expect(skipped).toContain('unrouted_phone_number');
    expect(skipped).toContain('unknown_item');
    expect(notificationsOf({ object: 'page', entry: [] }, route).notifications).toEqual([]);
    expect(notificationsOf('nonsense', route).notifications).toEqual([]);
  });

  it('gives a redelivered notification the same replay id, and a different one to another status', () => {
    const s = status({ phone: PHONE }, 'delivered', at, { id: 'wamid.same' });
    const a = notificationsOf(envelope([change('111', { statuses: [s] })]), routeAll).notifications[0];
    const b = notificationsOf(envelope([change('111', { statuses: [{ ...s }] })]), routeAll).notifications[0];
    const c = notificationsOf(envelope([change('111', { statuses: [{ ...s, status: 'read' }] })]), routeAll)
      .notifications[0];
    expect(a.replayId).toBe(b.replayId);
    expect(c.replayId).not.toBe(a.replayId);
  });
});

function unixNow() {
  return String(Math.floor(Date.now() / 1000));
}

describe('applying notifications', () => {
  const policy = { ...defaultPolicy(), noticeVersion: 'wa-2026-11' };
  const T = (m: number) => new Date(Date.parse('2026-11-24T10:00:00Z') + m * 60_000).toISOString();
  const note = (action: Notification['action'], minute: number): Notification => ({
    tenant: 'acme',
    subject: { phone: PHONE },
    observedAt: T(minute),
    action,
    replayId: `r${minute}`,
  });
  function run(state: SubjectState, ...notes: Notification[]): SubjectState {
    for (const n of notes) {
      const next = { seq: state.seq + 1, eventId: `ev${state.seq + 1}` };
      const c: Change | null = applyNotification(state, n, policy, next, n.observedAt);
      if (c) state = { ...c.state, seq: next.seq, version: state.version + 1 };
    }
    return state;
  }
  const gate = (s: SubjectState, purpose = 'marketing') =>
    decide(s, { channel: 'whatsapp', purpose, at: T(100) }, policy);
  const consented = () => {
    const g = grantConsent(
      emptyState('sk', 'phone'),
      {
        channel: 'whatsapp',
        purpose: 'marketing',
        source: 'web_form',
        noticeVersion: 'v1',
        grantedAt: T(-60),
        data: {},
      },
      { seq: 1, eventId: 'ev1' },
      T(-60),
    );
    return { ...g.state, seq: 1, version: 1 };
  };
  const stop = { kind: 'withdraw', source: 'keyword' } as const;
  const start = { kind: 'regrant', after: 'keyword', via: 'keyword' } as const;
  const waStop = { kind: 'withdraw', source: 'whatsapp_stop_promotions' } as const;
  const resume = { kind: 'regrant', after: 'whatsapp_stop_promotions', via: 'user_preferences' } as const;

  it('STOP withdraws WhatsApp marketing, START gives it back', () => {
    const stopped = run(consented(), note(stop, 1));
    expect(gate(stopped).reasons[0]).toMatchObject({ code: 'consent_withdrawn' });
    expect(gate(stopped).reasons[0].message).toContain('keyword');
    const started = run(stopped, note(start, 2));
    expect(gate(started).decision).toBe('allow');
    expect(gate(started).consent?.noticeVersion).toBe('wa-2026-11');
  });

  it('START does not undo a withdrawal made another way; it is then just an inbound message', () => {
    const s = run(consented(), note(waStop, 1), note(start, 2));
    expect(gate(s).decision).toBe('block');
    expect(s.lastOwnActionAt).toBe(T(2));
  });

  it('a stop that arrives after a later resume changes nothing (unordered delivery)', () => {
    const inOrder = run(consented(), note(waStop, 1), note(resume, 2));
    const reversed = run(consented(), note(resume, 2), note(waStop, 1));
    expect(gate(inOrder).decision).toBe('allow');
    expect(gate(reversed).decision).toBe('allow');
  });

  it('a resume with no WhatsApp consent on record grants marketing as the person’s own action', () => {
    const s = run(emptyState('sk', 'phone'), note(resume, 1));
    expect(gate(s).decision).toBe('allow');
    expect(s.lastOwnActionAt).toBe(T(1));
  });

  it('records no signal about an erased subject', () => {
    const tomb: SubjectState = {
      ...emptyState('sk'),
      erasure: { requestId: 'r', status: 'completed', receivedAt: T(0), erasedAt: T(0) },
    };
    const next = { seq: 1, eventId: 'e' };
    expect(applyNotification(tomb, note({ kind: 'signal', type: 'message_read' }, 1), policy, next, T(1))).toBeNull();
  });
});
