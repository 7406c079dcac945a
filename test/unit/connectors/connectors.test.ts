import { describe, expect, it } from 'vitest';
import { decide } from '#domain/gate.ts';
import { DEFAULT_BLOCK_BASE_RATE, defaultPolicy } from '#domain/policy.ts';
import { type Change, emptyState, grantConsent, type SubjectState, withdrawConsent } from '#domain/subject-state.ts';
import { applyProviderEvent, type ConnectorAction } from '#shared/connectors/actions.ts';
import { isP256PublicKey, sendGridEvents, verifySendGrid } from '#shared/connectors/sendgrid.ts';
import {
  InvalidHostPatternError,
  isPinnedUrl,
  type SnsEnvelope,
  sesEvents,
  snsHostPattern,
  TopicArnSchema,
} from '#shared/connectors/ses.ts';
import { MalformedTwilioCall, twilioEvents } from '#shared/connectors/twilio.ts';
import { ConnectorCreateSchema } from '#shared/schemas/connectors.ts';
import { fixture } from '../../helpers/providers.ts';

const policy = { ...defaultPolicy(), noticeVersion: 'v1' };
let seq = 0;
const next = () => ({ seq: ++seq, eventId: `ev-${seq}` });
const at = (minutes: number) => new Date(Date.UTC(2026, 10, 1, 12, minutes)).toISOString();
const NOW = at(59);

const apply = (state: SubjectState, action: ConnectorAction, when: string) =>
  applyProviderEvent(state, { action, data: { provider: 'test' } }, when, policy, next(), NOW);
const granted = (channel: 'sms' | 'email' | 'whatsapp', purpose = 'marketing', when = at(0), source = 'web_form') =>
  grantConsent(emptyState('s'), { channel, purpose, source, noticeVersion: 'v1', grantedAt: when }, next(), when).state;
const then = (state: SubjectState, change: Change | null) => (change ? change.state : state);
const gate = (state: SubjectState, channel: 'sms' | 'email' | 'whatsapp', purpose = 'marketing') =>
  decide(state, { channel, purpose, at: NOW }, policy).decision;

describe('applyProviderEvent: the consent rules', () => {
  const stop: ConnectorAction = { kind: 'withdraw', channel: 'sms', source: 'keyword' };
  const start: ConnectorAction = { kind: 'regrant', channel: 'sms' };

  it('a keyword stop closes the channel marketing; a START after it gives it back as the person’s own act', () => {
    const s1 = then(granted('sms'), apply(granted('sms'), stop, at(10)));
    expect(gate(s1, 'sms')).toBe('block');
    const change = apply(s1, start, at(20));
    expect(change?.event).toMatchObject({ type: 'consent.granted', source: 'sms_optin', purpose: 'marketing' });
    expect(gate(then(s1, change), 'sms')).toBe('allow');
  });

  it('withdrawal wins: a START dated before the stop, or after a withdrawal from elsewhere, re-opens nothing', () => {
    const s1 = then(granted('sms'), apply(granted('sms'), stop, at(10)));
    expect(apply(s1, start, at(5))).toBeNull();
    const api = withdrawConsent(
      s1,
      { channel: 'sms', purpose: 'marketing', source: 'api', at: at(15) },
      next(),
      NOW,
    ).state;
    expect(apply(api, start, at(20))).toBeNull();
    expect(gate(api, 'sms')).toBe('block');
  });

  it('a START with nothing closed by a keyword records nothing (it is no consent by itself)', () => {
    expect(apply(emptyState('s'), start, at(20))).toBeNull();
    expect(apply(granted('sms'), start, at(20))).toBeNull();
  });

  it('a stop that closes nothing new (repeated, or older than the last one) records nothing', () => {
    const s1 = then(granted('sms'), apply(granted('sms'), stop, at(10)));
    expect(apply(s1, stop, at(10))).toBeNull();
    expect(apply(s1, stop, at(5))).toBeNull();
    expect(apply(s1, stop, at(11))).not.toBeNull();
  });

  it('a mapped purpose closes only that purpose', () => {
    const both = then(
      granted('email', 'newsletter'),
      grantConsent(
        granted('email', 'newsletter'),
        { channel: 'email', purpose: 'marketing', source: 'web_form', noticeVersion: 'v1', grantedAt: at(0) },
        next(),
        at(0),
      ),
    );
    const s = then(
      both,
      apply(
        both,
        { kind: 'withdraw', channel: 'email', purpose: 'newsletter', source: 'provider_unsubscribe' },
        at(10),
      ),
    );
    expect(gate(s, 'email', 'newsletter')).toBe('block');
    expect(gate(s, 'email', 'marketing')).toBe('allow');
  });

  it('recipient_unreachable is no block evidence; channel_blocked alone makes a block likely', () => {
    const unreachable = apply(
      granted('email'),
      { kind: 'signal', channel: 'email', type: 'recipient_unreachable' },
      at(10),
    );
    // No clue: the likelihood stays at the prior (the policy's blockBaseRate), the level none.
    expect(unreachable?.event.data).toMatchObject({
      type: 'recipient_unreachable',
      blockLikelihood: DEFAULT_BLOCK_BASE_RATE,
      level: 'none',
    });
    expect(gate(then(granted('email'), unreachable), 'email')).toBe('allow');
    const blocked = apply(
      granted('whatsapp'),
      { kind: 'signal', channel: 'whatsapp', type: 'channel_blocked' },
      at(10),
    );
    expect(blocked?.event.data).toMatchObject({ type: 'channel_blocked', level: 'likely' });
    expect(gate(then(granted('whatsapp'), blocked), 'whatsapp')).toBe('block');
  });
});

describe('Twilio mapping', () => {
  const map = { MG9752274e9e519418a7406176694466fa: 'alerts' };

  it('reads STOP, START and HELP from Advanced Opt-Out, and the keyword from the body without it', () => {
    const stop = twilioEvents(fixture('twilio-inbound-stop.json'), {});
    expect(stop.events).toEqual([
      expect.objectContaining({
        subject: { phone: '+33612345678' },
        action: { kind: 'withdraw', channel: 'sms', source: 'keyword' },
        data: { provider: 'twilio', optOutType: 'STOP' },
      }),
    ]);
    expect(stop.events[0].observedAt).toBeUndefined();
    expect(twilioEvents(fixture('twilio-inbound-start.json'), {}).events[0].action).toEqual({
      kind: 'regrant',
      channel: 'sms',
    });
    expect(twilioEvents({ ...fixture('twilio-inbound-stop.json'), OptOutType: 'HELP' }, {}).skipped).toEqual({
      help: 1,
    });
    const { OptOutType: _o, ...plain } = fixture('twilio-inbound-stop.json');
    expect(twilioEvents({ ...plain, Body: 'unsubscribe' }, {}).events[0].action.kind).toBe('withdraw');
    expect(twilioEvents({ ...plain, Body: 'Hello' }, {}).skipped).toEqual({ not_a_keyword: 1 });
  });

  it('a whatsapp: sender is the WhatsApp channel and the same phone number', () => {
    const stop = twilioEvents({ ...fixture('twilio-inbound-stop.json'), From: 'whatsapp:+33612345678' }, {});
    expect(stop.events[0]).toMatchObject({
      subject: { phone: '+33612345678' },
      action: { kind: 'withdraw', channel: 'whatsapp', source: 'keyword' },
    });
  });

  it('maps the messaging service to its purpose', () => {
    expect(twilioEvents(fixture('twilio-inbound-stop.json'), map).events[0].action).toEqual({
      kind: 'withdraw',
      channel: 'sms',
      source: 'keyword',
      purpose: 'alerts',
    });
  });

  it('status callbacks: 21610 withdraws the recipient, 63014 is channel_blocked on WhatsApp, other errors are skipped', () => {
    const unsubscribed = twilioEvents(fixture('twilio-status-21610.json'), {}).events[0];
    expect(unsubscribed).toMatchObject({ subject: { phone: '+33612345678' }, data: { errorCode: 21610 } });
    expect(unsubscribed.action).toMatchObject({ kind: 'withdraw', channel: 'sms' });
    const blocked = twilioEvents(fixture('twilio-whatsapp-status-63014.json'), {}).events[0];
    expect(blocked).toMatchObject({
      subject: { phone: '+33612345678' },
      action: { kind: 'signal', channel: 'whatsapp', type: 'channel_blocked' },
    });
    expect(twilioEvents({ ...fixture('twilio-status-21610.json'), ErrorCode: '30003' }, {}).skipped).toEqual({
      ignored_error: 1,
    });
  });

  it('the replay id is the MessageSid: the same call twice has one id, another message another', () => {
    const a = twilioEvents(fixture('twilio-inbound-stop.json'), {}).events[0].replayId;
    expect(twilioEvents(fixture('twilio-inbound-stop.json'), {}).events[0].replayId).toBe(a);
    expect(twilioEvents(fixture('twilio-inbound-start.json'), {}).events[0].replayId).not.toBe(a);
  });

  it('throws on a call with no message SID or no sender', () => {
    const { MessageSid: _m, SmsSid: _s, ...noSid } = fixture('twilio-inbound-stop.json');
    expect(() => twilioEvents(noSid, {})).toThrow(MalformedTwilioCall);
    const { From: _f, ...noFrom } = fixture('twilio-inbound-stop.json');
    expect(() => twilioEvents(noFrom, {})).toThrow(MalformedTwilioCall);
  });
});

describe('SendGrid', () => {
  it("verifies SendGrid's own signed test vector with its library, at the vector's time only", () => {
    const v = fixture('sendgrid-signed-vector.json');
    const body = Buffer.from(v.payload);
    expect(verifySendGrid({ publicKey: v.publicKey }, body, v.signature, v.timestamp, Number(v.timestamp) + 10)).toBe(
      true,
    );
    expect(verifySendGrid({ publicKey: v.publicKey }, body, v.signature, v.timestamp, Number(v.timestamp) + 301)).toBe(
      false,
    );
    expect(
      verifySendGrid(
        { publicKey: v.publicKey },
        Buffer.from(`${v.payload} `),
        v.signature,
        v.timestamp,
        Number(v.timestamp),
      ),
    ).toBe(false);
    expect(verifySendGrid({ publicKey: v.publicKey }, body, undefined, v.timestamp, Number(v.timestamp))).toBe(false);
    expect(isP256PublicKey(v.publicKey)).toBe(true);
  });

  it('maps the documented example: unsubscribes, spam report, hard bounce; the rest is skipped by kind', () => {
    const parsed = sendGridEvents(fixture('sendgrid-events.json'), { 10: 'newsletter' });
    expect(parsed?.events.map((e) => [e.name, e.action])).toEqual([
      ['sendgrid.bounce', { kind: 'signal', channel: 'email', type: 'recipient_unreachable' }],
      ['sendgrid.spamreport', { kind: 'withdraw', channel: 'email', source: 'spam_complaint' }],
      ['sendgrid.unsubscribe', { kind: 'withdraw', channel: 'email', source: 'provider_unsubscribe' }],
      [
        'sendgrid.group_unsubscribe',
        { kind: 'withdraw', channel: 'email', source: 'provider_unsubscribe', purpose: 'newsletter' },
      ],
    ]);
    expect(parsed?.events[0].observedAt).toBe('2017-12-15T00:59:29.000Z');
    expect(parsed?.skipped).toEqual({ ignored_event: 6, not_an_own_act: 1 });
  });

  it('a blocked bounce is no hard bounce; items without an address or id are skipped; a non-array is malformed', () => {
    const [bounce] = fixture<Record<string, unknown>[]>('sendgrid-events.json').filter((e) => e.event === 'bounce');
    expect(sendGridEvents([{ ...bounce, type: 'blocked' }], {})?.skipped).toEqual({ blocked_bounce: 1 });
    expect(
      sendGridEvents([{ ...bounce, email: undefined }, { ...bounce, sg_event_id: undefined }, 3], {})?.skipped,
    ).toEqual({ invalid_item: 3 });
    expect(sendGridEvents({ events: [] }, {})).toBeUndefined();
  });
});

describe('Amazon SES through SNS', () => {
  const envelope = (message: unknown): SnsEnvelope => ({
    ...fixture('sns-notification.json'),
    Message: JSON.stringify(message),
  });

  it('a complaint is an objection per recipient at its time; a permanent bounce is recipient_unreachable', () => {
    const complaint = sesEvents(envelope(fixture('ses-complaint.json')));
    expect(complaint?.events).toEqual([
      expect.objectContaining({
        subject: { email: 'richard@example.com' },
        observedAt: '2016-01-27T14:59:38.237Z',
        action: { kind: 'withdraw', channel: 'email', source: 'spam_complaint' },
      }),
    ]);
    const bounce = sesEvents(envelope(fixture('ses-bounce-permanent.json')));
    expect(bounce?.events[0]).toMatchObject({
      subject: { email: 'jane@example.com' },
      action: { kind: 'signal', channel: 'email', type: 'recipient_unreachable' },
    });
  });

  it('per-recipient replay ids; transient bounces, deliveries and SES-made complaints are skipped', () => {
    const n = fixture('ses-bounce-permanent.json');
    n.bounce.bouncedRecipients.push({ emailAddress: 'mary@example.com' });
    const ids = sesEvents(envelope(n))?.events.map((e) => e.replayId);
    expect(new Set(ids).size).toBe(2);
    expect(sesEvents(envelope({ ...n, bounce: { ...n.bounce, bounceType: 'Transient' } }))?.skipped).toEqual({
      transient_bounce: 1,
    });
    expect(sesEvents(envelope({ notificationType: 'Delivery', mail: {} }))?.skipped).toEqual({ ignored_type: 1 });
    const made = fixture('ses-complaint.json');
    made.complaint.complaintSubType = 'OnAccountSuppressionList';
    expect(sesEvents(envelope(made))?.skipped).toEqual({ suppression_list: 1 });
    expect(sesEvents(envelope('Hello world!'))).toBeUndefined();
    expect(sesEvents({ ...envelope({}), Message: 'not json' })).toBeUndefined();
  });

  it('pins certificate and confirmation hosts: https, SNS hosts only by default', () => {
    const pattern = snsHostPattern({});
    expect(isPinnedUrl('https://sns.eu-west-1.amazonaws.com/x.pem', pattern)).toBe(true);
    for (const url of [
      'http://sns.eu-west-1.amazonaws.com/x.pem',
      'https://sns.eu-west-1.amazonaws.com.evil.example/x.pem',
      'https://evil.example/sns.eu-west-1.amazonaws.com',
      'https://user@sns.eu-west-1.amazonaws.com/x.pem',
      'https://s3.amazonaws.com/x.pem',
      'not a url',
    ]) {
      expect(isPinnedUrl(url, pattern), url).toBe(false);
    }
    expect(
      isPinnedUrl('https://127.0.0.1:8443/c', snsHostPattern({ SNS_CERT_HOST_PATTERN: '^127\\.0\\.0\\.1:8443$' })),
    ).toBe(true);
  });

  it('refuses a host pattern that is no regular expression (a configuration error, answered 503)', () => {
    expect(() => snsHostPattern({ SNS_CERT_HOST_PATTERN: '(' })).toThrow(InvalidHostPatternError);
  });

  it('accepts SNS topic ARNs only', () => {
    expect(TopicArnSchema.safeParse('arn:aws:sns:eu-west-1:123456789012:ses-feedback').success).toBe(true);
    expect(TopicArnSchema.safeParse('arn:aws-cn:sns:cn-north-1:123456789012:t.fifo').success).toBe(false);
    expect(TopicArnSchema.safeParse('arn:aws:sqs:eu-west-1:123456789012:q').success).toBe(false);
  });
});

describe('POST /v1/connectors body', () => {
  it('checks each provider’s secrets and purpose map keys', () => {
    const ok = ConnectorCreateSchema.safeParse({
      provider: 'sendgrid',
      secrets: { publicKey: fixture('sendgrid-signed-vector.json').publicKey },
      purposeMap: { 10: 'newsletter' },
    });
    expect(ok.success).toBe(true);
    expect(ConnectorCreateSchema.safeParse({ provider: 'sendgrid', secrets: { publicKey: 'x' } }).success).toBe(false);
    expect(
      ConnectorCreateSchema.safeParse({
        provider: 'twilio',
        secrets: { authToken: 'a'.repeat(32) },
        purposeMap: { x: 'y' },
      }).success,
    ).toBe(false);
    expect(
      ConnectorCreateSchema.safeParse({ provider: 'twilio', secrets: { authToken: 'a'.repeat(32), extra: 1 } }).success,
    ).toBe(false);
  });
});
