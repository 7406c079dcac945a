import { createHmac, randomBytes, randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';

/**
 * Realistic WhatsApp Cloud API webhook payloads, built per test (shapes from Meta's webhook references,
 * linked from docs/api.md#whatsapp-webhook).
 */

export const unix = (iso: string) => String(Math.floor(Date.parse(iso) / 1000));
export const wamid = () => `wamid.HBgL${randomBytes(18).toString('base64url')}`;
/** Phone digits as WhatsApp sends them: no `+`. */
export const waId = (e164: string) => e164.replace(/^\+/, '');

export const sign = (body: string | Buffer, secret: string) =>
  `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;

type Value = Record<string, unknown>;

/** One change of field `messages` for a business phone number. */
export const change = (phoneNumberId: string, value: Value) => ({
  field: 'messages',
  value: {
    messaging_product: 'whatsapp',
    metadata: { display_phone_number: '15550001111', phone_number_id: phoneNumberId },
    ...value,
  },
});

/** The envelope: one entry per list of changes. */
export const envelope = (...entries: ReturnType<typeof change>[][]) => ({
  object: 'whatsapp_business_account',
  entry: entries.map((changes, i) => ({ id: `10293847566${i}`, changes })),
});

export function status(
  recipient: { phone?: string; userId?: string },
  s: 'sent' | 'delivered' | 'read' | 'failed',
  at: string,
  options: { id?: string; errorCode?: number } = {},
) {
  return {
    id: options.id ?? wamid(),
    status: s,
    timestamp: unix(at),
    ...(recipient.phone ? { recipient_id: waId(recipient.phone) } : {}),
    ...(recipient.userId ? { recipient_user_id: recipient.userId } : {}),
    ...(s === 'sent'
      ? {
          conversation: { id: randomBytes(16).toString('hex'), origin: { type: 'marketing' } },
          pricing: { billable: true, pricing_model: 'PMP', category: 'marketing' },
        }
      : {}),
    ...(options.errorCode
      ? {
          errors: [
            {
              code: options.errorCode,
              title: 'Message failed',
              message: 'Message failed',
              error_data: { details: 'see the Cloud API error codes' },
            },
          ],
        }
      : {}),
  };
}

/** An inbound message and its contact. */
export function inbound(
  from: { phone?: string; userId?: string },
  at: string,
  content:
    | { type: 'text'; body: string }
    | { type: 'button'; payload: string; text?: string }
    | { type: 'interactive'; id: string; title: string }
    | { type: string; [k: string]: unknown },
) {
  const base = {
    id: wamid(),
    timestamp: unix(at),
    ...(from.phone ? { from: waId(from.phone) } : {}),
    ...(from.userId ? { from_user_id: from.userId } : {}),
    type: content.type,
  };
  const body =
    content.type === 'text'
      ? { text: { body: content.body } }
      : content.type === 'button'
        ? {
            button: { payload: content.payload, text: content.text ?? content.payload },
            context: { from: '15550001111', id: wamid() },
          }
        : content.type === 'interactive'
          ? { interactive: { type: 'button_reply', button_reply: { id: content.id, title: content.title } } }
          : { [content.type]: { id: 'media-1' } };
  return {
    contacts: [
      {
        profile: { name: 'Ana' },
        ...(from.phone ? { wa_id: waId(from.phone) } : {}),
        ...(from.userId ? { user_id: from.userId } : {}),
      },
    ],
    messages: [{ ...base, ...body }],
  };
}

export const preference = (who: { phone?: string; userId?: string }, value: 'stop' | 'resume', at: string) => ({
  user_preferences: [
    {
      ...(who.phone ? { wa_id: waId(who.phone) } : {}),
      ...(who.userId ? { user_id: who.userId } : {}),
      detail: 'User requested to stop marketing messages',
      category: 'marketing_messages',
      value,
      timestamp: unix(at),
    },
  ],
});

/** A business-scoped user id as Meta shapes them: country, dot, 20 digits (`US.13491208655302741918`). */
export const bsuid = (country = 'US', parent = false) =>
  `${country}.${parent ? 'ENT.' : ''}${randomInt(1e9, 9e9)}${randomInt(1e9, 9e9)}${randomInt(10, 99)}`;

/** What a test puts in place of Meta's example values in the fixtures (test/fixtures/whatsapp/SOURCES.md). */
export interface FixtureOwn {
  /** Replaces Meta's business phone number id `106540352242922`. */
  phoneNumberId?: string;
  /** Replaces the user's number `16505551234` (E.164 or digits). */
  phone?: string;
  /** Replaces the new number of the number-change example, `12195555358`. */
  newPhone?: string;
  /** Replaces the BSUID `US.13491208655302741918` (also inside Meta's typo `uUS.…`). */
  userId?: string;
  /** Replaces the parent BSUID `US.11815799212886844830`. */
  parentUserId?: string;
  /** Every `timestamp` (unix seconds, as a string like Meta's). */
  at?: string;
  /** A fresh wamid for each wamid of the file (a replay marker is kept per message id). */
  freshIds?: boolean;
}

const FIXTURES = new URL('../fixtures/whatsapp/', import.meta.url);

/**
 * One of Meta's documented webhook payloads (test/fixtures/whatsapp), with only what the test must own
 * changed (nothing unless asked): the routing id, the person's identifiers, fresh wamids (one new id per id
 * of the file) and the timestamps. Everything else is as Meta published it.
 */
export function metaFixture(name: string, own: FixtureOwn = {}): Record<string, unknown> {
  const payload = JSON.parse(readFileSync(new URL(name, FIXTURES), 'utf8'));
  const ids = new Map<string, string>();
  const swaps: [string, string | undefined][] = [
    ['US.13491208655302741918', own.userId],
    ['US.11815799212886844830', own.parentUserId],
    ['16505551234', own.phone && waId(own.phone)],
    ['12195555358', own.newPhone && waId(own.newPhone)],
  ];
  const walk = (value: unknown, key?: string): unknown => {
    if (Array.isArray(value)) return value.map((v) => walk(v));
    if (value !== null && typeof value === 'object') {
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, walk(v, k)]));
    }
    if (typeof value !== 'string') return value;
    if (key === 'timestamp' && own.at) return unix(own.at);
    if (key === 'phone_number_id' && own.phoneNumberId) return own.phoneNumberId;
    if (own.freshIds && value.startsWith('wamid.')) {
      if (!ids.has(value)) ids.set(value, wamid());
      return ids.get(value);
    }
    return swaps.reduce((s, [from, to]) => (to ? s.replaceAll(from, to) : s), value);
  };
  return walk(payload) as Record<string, unknown>;
}
