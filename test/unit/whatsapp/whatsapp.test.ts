import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decide } from '#domain/gate.ts';
import { defaultPolicy } from '#domain/policy.ts';
import { type Change, emptyState, grantConsent, type SubjectState } from '#domain/subject-state.ts';
import { applyNotification } from '#shared/whatsapp/actions.ts';
import { parseRouting } from '#shared/whatsapp/config.ts';
import {
  buttonKeywordOf,
  keywordOf,
  MARKETING_OPT_OUT_PHRASES,
  normaliseKeyword,
  OPT_OUT_KEYWORDS,
} from '#shared/whatsapp/keywords.ts';
import { countByKind, type Notification, notificationsOf } from '#shared/whatsapp/payload.ts';
import { signatureOf, verifySignature } from '#shared/whatsapp/signature.ts';
import { change, envelope, inbound, metaFixture, preference, sign, status } from '../../helpers/whatsapp.ts';

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

  it('on a tapped button or list row, withdraws only on a marketing opt-out phrase', () => {
    for (const label of [
      'Stop promotions',
      'STOP',
      'Arrêter les promotions',
      'Stop marketing',
      'Detener promociones',
      'Darse de baja',
      'Unsubscribe',
      'Se désabonner',
      'STOP_PROMOTIONS',
      'stop-promotions',
      'opt-out',
      'Opt out',
    ]) {
      expect(buttonKeywordOf(label), label).toBe('opt_out');
    }
    // Words a business puts on its own buttons for other things: typed alone they are keywords, tapped never.
    for (const label of ['Cancel', 'End', 'Quit', 'Remove', 'Revoke', 'Arrêt', 'Arrête', 'Baja']) {
      expect(buttonKeywordOf(label), label).toBeUndefined();
      expect(keywordOf(label), label).toBe('opt_out');
    }
    expect(buttonKeywordOf('cancel-button')).toBeUndefined();
    // A button never opts in: the business wrote its label.
    for (const label of ['Start', 'UNSTOP', 'Resume promotions', 'Priority Mail Express', '']) {
      expect(buttonKeywordOf(label), label).toBeUndefined();
    }
  });

  it('every button phrase is also a keyword when typed', () => {
    for (const phrase of MARKETING_OPT_OUT_PHRASES) {
      expect(OPT_OUT_KEYWORDS.map(normaliseKeyword)).toContain(normaliseKeyword(phrase));
      expect(keywordOf(phrase)).toBe('opt_out');
    }
  });

  it('never throws on any text', () => {
    fc.assert(
      fc.property(fc.string(), (s) => {
        keywordOf(s);
        buttonKeywordOf(s);
      }),
    );
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

  it('maps statuses to signals, 131026 to unreachable, 131050 to a withdrawal, other failures to a non-clue', () => {
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
      { kind: 'signal', type: 'recipient_unreachable', messageId: 'wamid.4', errorCode: 131026 },
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
          : `${n.action.kind}:${'source' in n.action ? n.action.source : 'after' in n.action ? n.action.after : ''}`,
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

  it('reads list replies too, by id or title; a list row never opts in', () => {
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
    expect(kinds).toEqual(['withdraw', 'signal', 'signal']);
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
    expect(countByKind(skipped)).toEqual({
      unrouted_phone_number: 1,
      unknown_field: 1,
      malformed_item: 2,
      system_message: 1,
      value_error: 1,
    });
    expect(notificationsOf({ object: 'page', entry: [] }, route)).toEqual({
      notifications: [],
      skipped: [{ kind: 'unknown_object', detail: 'page' }],
    });
    expect(notificationsOf('nonsense', route).skipped).toEqual([{ kind: 'unknown_object' }]);
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

describe("Meta's documented payloads", () => {
  const parse = (name: string) => notificationsOf(metaFixture(name), routeAll);
  const ONE = { notifications: [expect.anything()], skipped: [] };

  it('a tap on the "Cancel" button of an interactive message is an inbound message, not an opt-out', () => {
    const parsed = parse('interactive-button-reply-cancel.json');
    expect(parsed).toMatchObject(ONE);
    expect(parsed.notifications[0]).toMatchObject({
      subject: { phone: '+16505551234' },
      observedAt: '2025-06-15T22:05:36.000Z',
      action: { kind: 'signal', type: 'inbound_message' },
    });
  });

  it('the quick replies "Stop promotions" and "Unsubscribe" withdraw marketing (source keyword)', () => {
    for (const name of ['button-stop-promotions.json', 'button-quick-reply-unsubscribe.json']) {
      const parsed = parse(name);
      expect(parsed, name).toMatchObject(ONE);
      // Meta's example `from` has a "+": the subject is the same E.164 number either way.
      expect(parsed.notifications[0], name).toMatchObject({
        subject: { phone: '+16505551234' },
        action: { kind: 'withdraw', source: 'keyword' },
      });
    }
  });

  it('a status carrying the phone number and the business-scoped user id names both: the subject is the phone', () => {
    const [n] = parse('status-delivered-phone-and-bsuid.json').notifications;
    expect(n).toMatchObject({
      subject: { phone: '+16505551234' },
      alsoKnownAs: { waUserId: 'US.13491208655302741918' },
      action: { kind: 'signal', type: 'message_delivered' },
    });
  });

  it('a status or message of a username user (no phone number) applies to the business-scoped user id', () => {
    const [status] = parse('status-delivered-bsuid-only.json').notifications;
    expect(status.subject).toEqual({ waUserId: 'US.13491208655302741918' });
    expect(status.alsoKnownAs).toBeUndefined();
    // Meta's example has a typo in the contact's user_id ("uUS.…"): the message's own from_user_id counts.
    const message = parse('message-text-bsuid-only.json');
    expect(message).toMatchObject(ONE);
    expect(message.notifications[0]).toMatchObject({
      subject: { waUserId: 'US.13491208655302741918' },
      action: { kind: 'signal', type: 'inbound_message' },
    });
    expect(message.notifications[0].alsoKnownAs).toBeUndefined();
  });

  it('user_changed_number is a number change on the old number, with the new one', () => {
    const parsed = parse('system-user-changed-number.json');
    expect(parsed.skipped).toEqual([]);
    expect(parsed.notifications).toEqual([
      expect.objectContaining({
        subject: { phone: '+16505551234' },
        observedAt: '2025-06-18T17:55:42.000Z',
        action: {
          kind: 'number_changed',
          newPhone: '+12195555358',
          messageId: 'wamid.HBgLMTk4MzU1NTE5NzQVAgASGAoxMTgyMDg2MjY3AA==',
        },
      }),
    ]);
  });

  it('131026 is recipient_unreachable, with its code', () => {
    const [n] = parse('status-failed-131026.json').notifications;
    expect(n.action).toEqual({
      kind: 'signal',
      type: 'recipient_unreachable',
      messageId: 'wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI0QUQ2MjA4NEYyRkExNjMyREUA',
      errorCode: 131026,
    });
  });

  it('a played voice message is evidence of reach, like a read receipt', () => {
    expect(parse('status-played.json').notifications[0].action).toMatchObject({ type: 'message_read' });
  });

  it('counts, by kind, what it does not apply: errors at value level, group statuses and messages, other fields', () => {
    expect(parse('value-errors.json')).toEqual({
      notifications: [],
      skipped: [{ kind: 'value_error', detail: '130429' }],
    });
    expect(parse('status-group-read.json')).toEqual({ notifications: [], skipped: [{ kind: 'group_status' }] });
    expect(parse('group-message-text.json')).toEqual({ notifications: [], skipped: [{ kind: 'group_message' }] });
    expect(parse('template-status-update.json')).toEqual({
      notifications: [],
      skipped: [{ kind: 'unknown_field', detail: 'message_template_status_update' }],
    });
  });
});

describe('who a notification is about', () => {
  const at = '2026-11-24T10:00:00Z';
  const one = (value: Record<string, unknown>) => notificationsOf(envelope([change('111', value)]), routeAll);

  it('links the phone and the business-scoped user id of one contact, never two different people', () => {
    const both = one({
      contacts: [{ profile: { name: 'Ana' }, wa_id: '33612345678', user_id: 'FR.AbC123' }],
      messages: [{ from: '33612345678', id: 'wamid.1', timestamp: '1795000000', type: 'text', text: { body: 'hi' } }],
    });
    expect(both.notifications[0]).toMatchObject({ subject: { phone: PHONE }, alsoKnownAs: { waUserId: 'FR.AbC123' } });
    // Two senders in one change: each message keeps its own contact, none borrows the other's id.
    const two = one({
      contacts: [
        { wa_id: '33612345678', user_id: 'FR.AbC123' },
        { wa_id: '33698765432', user_id: 'FR.XyZ789' },
      ],
      messages: [
        { from: '33698765432', id: 'wamid.2', timestamp: '1795000000', type: 'text', text: { body: 'a' } },
        { from: '33611111111', id: 'wamid.3', timestamp: '1795000001', type: 'text', text: { body: 'b' } },
      ],
    });
    expect(two.notifications.map((n) => [n.subject, n.alsoKnownAs])).toEqual([
      [{ phone: '+33698765432' }, { waUserId: 'FR.XyZ789' }],
      [{ phone: '+33611111111' }, undefined],
    ]);
  });

  it("takes a message's only contact as its sender's even when Meta's wa_id differs from the number", () => {
    const { notifications } = one({
      contacts: [{ wa_id: '5215512345678', user_id: 'MX.1349120865' }],
      messages: [{ from: '525512345678', id: 'wamid.4', timestamp: '1795000000', type: 'text', text: { body: 'x' } }],
    });
    expect(notifications[0]).toMatchObject({
      subject: { phone: '+525512345678' },
      alsoKnownAs: { waUserId: 'MX.1349120865' },
    });
  });

  it('prefers the person’s own BSUID to a parent BSUID, and keeps a parent BSUID when it is all there is', () => {
    const withContact = one({
      contacts: [{ user_id: 'US.13491208655302741918', parent_user_id: 'US.ENT.11815799212886844830' }],
      statuses: [
        { id: 'wamid.5', status: 'read', timestamp: '1795000000', recipient_user_id: 'US.ENT.11815799212886844830' },
      ],
    });
    expect(withContact.notifications[0].subject).toEqual({ waUserId: 'US.13491208655302741918' });
    const alone = one({
      statuses: [
        { id: 'wamid.6', status: 'read', timestamp: '1795000000', recipient_user_id: 'US.ENT.11815799212886844830' },
      ],
    });
    expect(alone.notifications[0].subject).toEqual({ waUserId: 'US.ENT.11815799212886844830' });
  });

  it('reads number changes in every documented form; one without a new identifier is counted, not applied', () => {
    const system = (fields: Record<string, unknown>, from: Record<string, string> = { from: '33612345678' }) =>
      one({ messages: [{ ...from, id: 'wamid.7', timestamp: '1795000000', type: 'system', system: fields }] });
    expect(
      system({ body: 'User A changed from …', new_wa_id: '33698765432', type: 'user_changed_number' }),
    ).toMatchObject({ notifications: [{ subject: { phone: PHONE }, action: { newPhone: '+33698765432' } }] });
    // With business-scoped user ids: the new BSUID, and the new number when Meta may share it.
    const bsuid = system({ body: 'User A changed …', user_id: 'FR.NEW123', type: 'user_changed_user_id' });
    expect(bsuid.notifications[0].action).toEqual({
      kind: 'number_changed',
      newWaUserId: 'FR.NEW123',
      messageId: 'wamid.7',
    });
    const fromBsuid = system(
      { wa_id: '33698765432', user_id: 'FR.NEW123', type: 'user_changed_user_id' },
      { from_user_id: 'FR.OLD123' },
    );
    expect(fromBsuid.notifications[0]).toMatchObject({
      subject: { waUserId: 'FR.OLD123' },
      action: { newPhone: '+33698765432', newWaUserId: 'FR.NEW123' },
    });
    expect(system({ body: 'User A changed …', type: 'user_changed_number' }).skipped).toEqual([
      { kind: 'number_change_incomplete', detail: 'user_changed_number' },
    ]);
    expect(system({ type: 'customer_identity_changed' }).skipped).toEqual([
      { kind: 'system_message', detail: 'customer_identity_changed' },
    ]);
  });

  it('counts preferences it does not apply, items for an unrouted number, and items with no contact', () => {
    const prefs = one({
      user_preferences: [
        { wa_id: '33612345678', category: 'other_messages', value: 'stop', timestamp: '1795000000' },
        { wa_id: '33612345678', category: 'marketing_messages', value: 'interested', timestamp: '1795000000' },
        { category: 'marketing_messages', value: 'stop', timestamp: '1795000000' },
      ],
    });
    expect(prefs).toEqual({
      notifications: [],
      skipped: [
        { kind: 'preference_other_category', detail: 'other_messages' },
        { kind: 'preference_other_value', detail: 'interested' },
        { kind: 'no_contact' },
      ],
    });
    const unrouted = notificationsOf(
      envelope([
        change('999', { statuses: [status({ phone: PHONE }, 'read', at), status({ phone: PHONE }, 'sent', at)] }),
      ]),
      () => undefined,
    );
    expect(countByKind(unrouted.skipped)).toEqual({ unrouted_phone_number: 2 });
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
