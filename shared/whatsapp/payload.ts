import { createHash } from 'node:crypto';
import * as z from 'zod';
import type { SignalInput } from '#domain/likelihood.ts';
import type { SubjectInput } from '#shared/identity/subject.ts';
import { keywordOf } from './keywords.ts';

/**
 * The WhatsApp Business Cloud API webhook (Meta's `messages` and `user_preferences` webhook references,
 * linked from docs/api.md#whatsapp-webhook), read leniently: unknown fields and unknown types are
 * ignored item by item, so one odd item never fails the whole delivery (Meta would retry it).
 */

const looseArray = z.array(z.unknown()).catch([]);

const EnvelopeSchema = z.looseObject({
  object: z.string().optional(),
  entry: z
    .array(
      z.looseObject({
        changes: z.array(z.looseObject({ field: z.string().optional(), value: z.unknown() })).catch([]),
      }),
    )
    .catch([]),
});

const ValueSchema = z.looseObject({
  metadata: z.looseObject({ phone_number_id: z.string() }),
  statuses: looseArray.optional(),
  messages: looseArray.optional(),
  contacts: looseArray.optional(),
  user_preferences: looseArray.optional(),
});

const unixSeconds = z.union([z.string(), z.number()]).transform((v, ctx) => {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0 || n > 1e11) {
    ctx.addIssue({ code: 'custom', message: 'not a unix time' });
    return z.NEVER;
  }
  return new Date(Math.floor(n) * 1000).toISOString();
});

const digits = z.string().regex(/^\+?[0-9]{6,20}$/);
const waUserId = z.string().regex(/^[A-Z]{2}\.[0-9]{6,40}$/);

const StatusSchema = z.looseObject({
  id: z.string().min(1).max(512),
  status: z.string(),
  timestamp: unixSeconds,
  recipient_id: digits.optional().catch(undefined),
  user_id: waUserId.optional().catch(undefined),
  recipient_user_id: waUserId.optional().catch(undefined),
  errors: z
    .array(z.looseObject({ code: z.coerce.number().optional().catch(undefined) }))
    .catch([])
    .optional(),
});

const ContactSchema = z.looseObject({
  wa_id: digits.optional().catch(undefined),
  user_id: waUserId.optional().catch(undefined),
});

const MessageSchema = z.looseObject({
  id: z.string().min(1).max(512),
  from: digits.optional().catch(undefined),
  from_user_id: waUserId.optional().catch(undefined),
  user_id: waUserId.optional().catch(undefined),
  timestamp: unixSeconds,
  type: z.string().optional(),
  text: z.looseObject({ body: z.string().optional() }).optional().catch(undefined),
  button: z.looseObject({ payload: z.string().optional(), text: z.string().optional() }).optional().catch(undefined),
  interactive: z
    .looseObject({
      button_reply: z.looseObject({ id: z.string().optional(), title: z.string().optional() }).optional(),
      list_reply: z.looseObject({ id: z.string().optional(), title: z.string().optional() }).optional(),
    })
    .optional()
    .catch(undefined),
});

const PreferenceSchema = z.looseObject({
  wa_id: digits.optional().catch(undefined),
  user_id: waUserId.optional().catch(undefined),
  category: z.string(),
  value: z.string(),
  timestamp: unixSeconds,
});

/** What one notification asks of the subject. */
export type WhatsAppAction =
  | { kind: 'signal'; type: SignalInput['type']; messageId?: string; errorCode?: number }
  | { kind: 'withdraw'; source: 'whatsapp_stop_promotions' | 'keyword'; messageId?: string; errorCode?: number }
  | { kind: 'regrant'; after: 'whatsapp_stop_promotions' | 'keyword'; via: 'user_preferences' | 'keyword' };

/** One thing the webhook told us about one contact. */
export interface Notification {
  tenant: string;
  subject: SubjectInput;
  /** When it happened (the payload's timestamp): signals and consents are ordered by it, not by arrival. */
  observedAt: string;
  action: WhatsAppAction;
  /**
   * Stable across redeliveries of the same notification: a replay is recognised by it. A plain hash of
   * data that names the contact: never stored as it is (the stored marker is keyed per tenant).
   */
  replayId: string;
}

/** Why items were left out, for logs and metrics. */
export type Skip = 'unrouted_phone_number' | 'unknown_item' | 'no_contact' | 'ignored_status';

/** The contact: `+` + the phone digits when given, else the business-scoped user id. */
function subjectOf(phone: string | undefined, userId: string | undefined): SubjectInput | undefined {
  if (phone) return { phone: phone.startsWith('+') ? phone : `+${phone}` };
  if (userId) return { waUserId: userId };
  return undefined;
}

const STATUS_SIGNALS: Record<string, SignalInput['type']> = {
  sent: 'message_sent',
  delivered: 'message_delivered',
  read: 'message_read',
};

function statusAction(s: z.infer<typeof StatusSchema>): WhatsAppAction | Skip {
  const signal = STATUS_SIGNALS[s.status];
  if (signal) return { kind: 'signal', type: signal, messageId: s.id };
  if (s.status !== 'failed') return 'ignored_status';
  const codes = (s.errors ?? []).map((e) => e.code).filter((c): c is number => c !== undefined);
  if (codes.includes(131050)) {
    return { kind: 'withdraw', source: 'whatsapp_stop_promotions', messageId: s.id, errorCode: 131050 };
  }
  if (codes.includes(131026))
    return { kind: 'signal', type: 'message_undelivered', messageId: s.id, errorCode: 131026 };
  // Any other failure (131049 and 130472 are temporary marketing limits in Meta's WhatsApp error codes:
  // https://developers.facebook.com/documentation/business-messaging/whatsapp/support/error-codes) is
  // neither consent nor block evidence: it only ends the wait for a delivery. Its code stays in the ledger for metrics.
  const errorCode = codes[0];
  return { kind: 'signal', type: 'message_failed', messageId: s.id, ...(errorCode !== undefined ? { errorCode } : {}) };
}

function messageAction(m: z.infer<typeof MessageSchema>): WhatsAppAction | Skip {
  if (m.type === 'system') return 'unknown_item';
  const texts =
    m.type === 'text'
      ? [m.text?.body]
      : m.type === 'button'
        ? [m.button?.payload, m.button?.text]
        : m.type === 'interactive'
          ? [
              m.interactive?.button_reply?.id,
              m.interactive?.button_reply?.title,
              m.interactive?.list_reply?.id,
              m.interactive?.list_reply?.title,
            ]
          : [];
  const keywords = texts.map(keywordOf);
  if (keywords.includes('opt_out')) return { kind: 'withdraw', source: 'keyword', messageId: m.id };
  if (keywords.includes('opt_in')) return { kind: 'regrant', after: 'keyword', via: 'keyword' };
  return { kind: 'signal', type: 'inbound_message', messageId: m.id };
}

const replayId = (parts: (string | number | undefined)[]) =>
  createHash('sha256').update(parts.join('\n')).digest('base64url');

/**
 * Every notification of a webhook delivery (all entries, all changes), in the order they happened, plus
 * what was skipped and why. Pure.
 */
export function notificationsOf(
  payload: unknown,
  tenantFor: (phoneNumberId: string) => string | undefined,
): { notifications: Notification[]; skipped: Skip[] } {
  const notifications: Notification[] = [];
  const skipped: Skip[] = [];
  const envelope = EnvelopeSchema.safeParse(payload);
  if (!envelope.success || envelope.data.object !== 'whatsapp_business_account') return { notifications, skipped };
  for (const entry of envelope.data.entry) {
    for (const change of entry.changes) {
      const value = ValueSchema.safeParse(change.value);
      if (!value.success) {
        skipped.push('unknown_item');
        continue;
      }
      const phoneNumberId = value.data.metadata.phone_number_id;
      const tenant = tenantFor(phoneNumberId);
      if (!tenant) {
        skipped.push('unrouted_phone_number');
        continue;
      }
      const add = (
        subject: SubjectInput | undefined,
        observedAt: string,
        action: WhatsAppAction | Skip,
        id: (string | number | undefined)[],
      ) => {
        if (typeof action === 'string') skipped.push(action);
        else if (!subject) skipped.push('no_contact');
        else notifications.push({ tenant, subject, observedAt, action, replayId: replayId([tenant, ...id]) });
      };
      for (const raw of value.data.statuses ?? []) {
        const s = StatusSchema.safeParse(raw);
        if (!s.success) skipped.push('unknown_item');
        else {
          const subject = subjectOf(s.data.recipient_id, s.data.recipient_user_id ?? s.data.user_id);
          add(subject, s.data.timestamp, statusAction(s.data), ['status', s.data.id, s.data.status, s.data.timestamp]);
        }
      }
      const contacts = (value.data.contacts ?? []).flatMap((c) => {
        const parsed = ContactSchema.safeParse(c);
        return parsed.success ? [parsed.data] : [];
      });
      for (const raw of value.data.messages ?? []) {
        const m = MessageSchema.safeParse(raw);
        if (!m.success) skipped.push('unknown_item');
        else {
          const contact =
            contacts.find((c) => c.wa_id && c.wa_id === m.data.from) ??
            (contacts.length === 1 ? contacts[0] : undefined);
          const subject = subjectOf(
            m.data.from ?? contact?.wa_id,
            m.data.from_user_id ?? m.data.user_id ?? contact?.user_id,
          );
          add(subject, m.data.timestamp, messageAction(m.data), ['message', m.data.id]);
        }
      }
      for (const raw of value.data.user_preferences ?? []) {
        const p = PreferenceSchema.safeParse(raw);
        if (!p.success || p.data.category !== 'marketing_messages' || !['stop', 'resume'].includes(p.data.value)) {
          skipped.push('unknown_item');
          continue;
        }
        const action: WhatsAppAction =
          p.data.value === 'stop'
            ? { kind: 'withdraw', source: 'whatsapp_stop_promotions' }
            : { kind: 'regrant', after: 'whatsapp_stop_promotions', via: 'user_preferences' };
        const subject = subjectOf(p.data.wa_id, p.data.user_id);
        add(subject, p.data.timestamp, action, [
          'preference',
          p.data.wa_id ?? p.data.user_id,
          p.data.value,
          p.data.timestamp,
        ]);
      }
    }
  }
  notifications.sort((a, b) => a.observedAt.localeCompare(b.observedAt));
  return { notifications, skipped };
}
