import { validateRequest } from 'twilio/lib/webhooks/webhooks.js';
import type { Channel } from '#domain/vocabulary.ts';
import { keywordOf } from '#shared/whatsapp/keywords.ts';
import { type ConnectorAction, type ParsedDelivery, type ProviderEvent, skip } from './actions.ts';

/**
 * Twilio Programmable Messaging webhooks (docs/connectors.md, "Twilio"): the incoming-message webhook (a
 * STOP/START keyword, or Advanced Opt-Out's `OptOutType`) and status callbacks (error 21610, WhatsApp's
 * 63014), form-encoded and signed with `X-Twilio-Signature` (HMAC-SHA1 under the account's Auth Token over
 * the URL Twilio called and the sorted POST parameters), checked with the `twilio` package's own
 * `validateRequest`.
 */

/** The Twilio secrets a connector keeps (sealed). */
export interface TwilioSecrets {
  authToken: string;
}

/**
 * Whether the request is Twilio's: `url` must be the public URL Twilio called (the connector's webhook URL
 * and its query string, exactly as configured at Twilio), `params` the decoded form body.
 */
export function verifyTwilio(
  secrets: TwilioSecrets,
  signature: string | undefined,
  url: string,
  params: Record<string, string>,
): boolean {
  if (!signature) return false;
  try {
    return validateRequest(secrets.authToken, signature, url, params);
  } catch {
    return false;
  }
}

/** A form body as Twilio sends it (application/x-www-form-urlencoded); a repeated name keeps its last value. */
export function parseForm(body: string): Record<string, string> {
  return Object.fromEntries(new URLSearchParams(body));
}

/** `whatsapp:+336…` → the WhatsApp channel and `+336…`; anything else is SMS. */
function addressOf(value: string): { channel: Channel; phone: string } {
  return value.startsWith('whatsapp:')
    ? { channel: 'whatsapp', phone: value.slice('whatsapp:'.length) }
    : { channel: 'sms', phone: value };
}

/** Twilio's error codes the connector acts on. */
const UNSUBSCRIBED_RECIPIENT = 21610;
const BLOCKED_BY_USER = 63014;

/** A signed call lacks what every Twilio message webhook carries. */
export class MalformedTwilioCall extends Error {}

/**
 * The event of one verified Twilio call, or why it was skipped. Throws {@link MalformedTwilioCall} when
 * the call has no MessageSid (SmsSid) or no address: not a messaging webhook at all. Pure.
 */
export function twilioEvents(params: Record<string, string>, purposeMap: Record<string, string>): ParsedDelivery {
  const sid = params.MessageSid || params.SmsSid;
  if (!sid || !/^(SM|MM|IM)[0-9a-fA-F]{32}$/.test(sid)) {
    throw new MalformedTwilioCall('MessageSid is missing or is not a Twilio message SID');
  }
  const skipped: Record<string, number> = {};
  const mapped = params.MessagingServiceSid ? purposeMap[params.MessagingServiceSid] : undefined;
  const scope = (channel: Channel) => ({ channel, ...(mapped ? { purpose: mapped } : {}) });
  const errorCode = Number(params.ErrorCode);
  const status = params.MessageStatus ?? params.SmsStatus;
  const event = (address: string, action: ConnectorAction, kind: string, data: Record<string, string | number>) => {
    const { channel, phone } = addressOf(address);
    if (!phone) {
      throw new MalformedTwilioCall('the address is empty');
    }
    const fixed = { ...action, channel } as ConnectorAction;
    const provider: ProviderEvent = {
      subject: { phone },
      action: fixed,
      replayId: ['twilio', sid, kind].join('\n'),
      name: `twilio.${kind}`,
      data: { provider: 'twilio', ...data },
    };
    return { events: [provider], skipped };
  };
  if (params.ErrorCode && (status === 'failed' || status === 'undelivered')) {
    if (!params.To) throw new MalformedTwilioCall('To is missing');
    if (errorCode === UNSUBSCRIBED_RECIPIENT) {
      return event(params.To, { kind: 'withdraw', ...scope('sms'), source: 'keyword' }, `error.${errorCode}`, {
        errorCode,
      });
    }
    if (errorCode === BLOCKED_BY_USER) {
      return event(params.To, { kind: 'signal', channel: 'whatsapp', type: 'channel_blocked' }, `error.${errorCode}`, {
        errorCode,
      });
    }
    skip(skipped, 'ignored_error');
    return { events: [], skipped };
  }
  if (params.Body === undefined && params.OptOutType === undefined) {
    skip(skipped, 'ignored_status');
    return { events: [], skipped };
  }
  if (!params.From) throw new MalformedTwilioCall('From is missing');
  // Advanced Opt-Out names the keyword's meaning; without it, the whole message is compared with the keywords.
  const optOut = params.OptOutType?.toUpperCase();
  const said = optOut === 'STOP' ? 'opt_out' : optOut === 'START' ? 'opt_in' : optOut ? 'help' : keywordOf(params.Body);
  if (said === 'opt_out') {
    return event(params.From, { kind: 'withdraw', ...scope('sms'), source: 'keyword' }, 'stop', {
      ...(optOut ? { optOutType: optOut } : {}),
    });
  }
  if (said === 'opt_in') {
    return event(params.From, { kind: 'regrant', ...scope('sms') }, 'start', {
      ...(optOut ? { optOutType: optOut } : {}),
    });
  }
  // HELP and ordinary messages carry no consent: not recorded (the connector keeps opt-outs, not conversations).
  skip(skipped, said === 'help' ? 'help' : 'not_a_keyword');
  return { events: [], skipped };
}
