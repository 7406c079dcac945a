import { createPublicKey } from 'node:crypto';
import { EventWebhook } from '@sendgrid/eventwebhook';
import * as z from 'zod';
import { type ParsedDelivery, type ProviderEvent, skip } from './actions.ts';

/**
 * SendGrid's Event Webhook (docs/connectors.md, "SendGrid"): a JSON array of events, signed with ECDSA P-256
 * over the timestamp header followed by the raw body (`X-Twilio-Email-Event-Webhook-Signature`,
 * `X-Twilio-Email-Event-Webhook-Timestamp`), checked with `@sendgrid/eventwebhook`.
 */

/** The SendGrid secrets a connector keeps (sealed): the verification key as SendGrid's console shows it. */
export interface SendGridSecrets {
  publicKey: string;
}

/** A signature older or newer than this is refused (a captured delivery cannot be replayed later). */
export const SENDGRID_TOLERANCE_SECONDS = 300;

/** True when `publicKey` (base64 DER, or PEM) is an EC P-256 public key, the only kind SendGrid signs with. */
export function isP256PublicKey(publicKey: string): boolean {
  try {
    const body = publicKey.replace(/-----(BEGIN|END) PUBLIC KEY-----/g, '').replace(/\s+/g, '');
    const key = createPublicKey({ key: Buffer.from(body, 'base64'), format: 'der', type: 'spki' });
    if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') return false;
    new EventWebhook().convertPublicKeyToECDSA(publicKey);
    return true;
  } catch {
    return false;
  }
}

/** Whether a delivery is SendGrid's, signed within {@link SENDGRID_TOLERANCE_SECONDS} of `nowSec`. */
export function verifySendGrid(
  secrets: SendGridSecrets,
  body: Buffer,
  signature: string | undefined,
  timestamp: string | undefined,
  nowSec: number,
): boolean {
  if (!signature || !timestamp || !/^\d{1,12}$/.test(timestamp)) return false;
  if (Math.abs(nowSec - Number(timestamp)) > SENDGRID_TOLERANCE_SECONDS) return false;
  try {
    const webhook = new EventWebhook();
    return webhook.verifySignature(webhook.convertPublicKeyToECDSA(secrets.publicKey), body, signature, timestamp);
  } catch {
    return false;
  }
}

const SendGridEventSchema = z.looseObject({
  email: z.string().min(3).max(254),
  timestamp: z.number().int().positive().max(1e11),
  event: z.string(),
  sg_event_id: z.string().min(1).max(200),
  asm_group_id: z.union([z.number(), z.string()]).optional(),
  type: z.string().optional(),
});

/** The events of one verified delivery (undefined when the body is no JSON array: a malformed delivery). Pure. */
export function sendGridEvents(payload: unknown, purposeMap: Record<string, string>): ParsedDelivery | undefined {
  if (!Array.isArray(payload)) return undefined;
  const events: ProviderEvent[] = [];
  const skipped: Record<string, number> = {};
  for (const raw of payload) {
    const parsed = SendGridEventSchema.safeParse(raw);
    if (!parsed.success) {
      skip(skipped, 'invalid_item');
      continue;
    }
    const e = parsed.data;
    const base = {
      subject: { email: e.email },
      observedAt: new Date(e.timestamp * 1000).toISOString(),
      replayId: ['sendgrid', e.sg_event_id].join('\n'),
      name: `sendgrid.${e.event}`,
    };
    const data = { provider: 'sendgrid', event: e.event };
    if (e.event === 'unsubscribe' || e.event === 'spamreport') {
      const source = e.event === 'unsubscribe' ? 'provider_unsubscribe' : 'spam_complaint';
      events.push({ ...base, data, action: { kind: 'withdraw', channel: 'email', source } });
    } else if (e.event === 'group_unsubscribe') {
      const group = e.asm_group_id === undefined ? undefined : String(e.asm_group_id);
      const purpose = group ? purposeMap[group] : undefined;
      events.push({
        ...base,
        data: { ...data, ...(group ? { asmGroupId: group } : {}) },
        action: { kind: 'withdraw', channel: 'email', source: 'provider_unsubscribe', ...(purpose ? { purpose } : {}) },
      });
    } else if (e.event === 'bounce' && (e.type ?? 'bounce') === 'bounce') {
      events.push({ ...base, data, action: { kind: 'signal', channel: 'email', type: 'recipient_unreachable' } });
    } else if (e.event === 'group_resubscribe') {
      // The sender can resubscribe a recipient too: SendGrid does not say it was the person (docs/connectors.md).
      skip(skipped, 'not_an_own_act');
    } else {
      skip(skipped, e.event === 'bounce' ? 'blocked_bounce' : 'ignored_event');
    }
  }
  events.sort((a, b) => (a.observedAt ?? '').localeCompare(b.observedAt ?? ''));
  return { events, skipped };
}
