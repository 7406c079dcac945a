import { createHash } from 'node:crypto';
import * as z from 'zod';
import type { SignalInput } from '#domain/likelihood.ts';
import { type SubjectInput, WA_USER_ID_PATTERN } from '#shared/identity/subject.ts';
import { buttonKeywordOf, keywordOf } from './keywords.ts';

/**
 * The WhatsApp Business Cloud API webhook (Meta's `messages` and `user_preferences` webhook references,
 * linked from docs/api.md#whatsapp-webhook), read leniently: each entry, change and item on its own, so one
 * odd item never fails the whole delivery (Meta would retry it). Whatever is not applied is reported with
 * the reason (`Skip`): nothing is dropped silently.
 */

/** What one notification asks of the subject. */
export type WhatsAppAction =
  | { kind: 'signal'; type: SignalInput['type']; messageId?: string; errorCode?: number }
  | { kind: 'withdraw'; source: 'whatsapp_stop_promotions' | 'keyword'; messageId?: string; errorCode?: number }
  | { kind: 'regrant'; after: 'whatsapp_stop_promotions' | 'keyword'; via: 'user_preferences' | 'keyword' }
  | NumberChangedAction;

/**
 * Meta's system message `user_changed_number` (with business-scoped user ids, `user_changed_user_id`): the
 * person moved their WhatsApp account to another number. The notification's subject is the OLD number (or
 * the old BSUID when Meta gave no number); at least one of `newPhone` and `newWaUserId` is set.
 */
export interface NumberChangedAction {
  kind: 'number_changed';
  /** The new number in E.164 (`+` + the system message's `wa_id`; `new_wa_id` in older API versions). */
  newPhone?: string;
  /** The new business-scoped user id (`system.user_id`): Meta generates a new BSUID on a number change. */
  newWaUserId?: string;
  /** The system message's id (a wamid): the evidence. Its text names both numbers and is not kept. */
  messageId: string;
}

/** One thing the webhook told us about one contact. */
export interface Notification {
  tenant: string;
  /** The contact: the phone number when the payload gives one, else the business-scoped user id. */
  subject: SubjectInput;
  /**
   * The same contact's business-scoped user id, when the payload gives both it and the phone number (Meta
   * puts them in one contact or status): the two identifiers are one person. The subject stays the phone.
   */
  alsoKnownAs?: { waUserId: string };
  /** When it happened (the payload's timestamp): signals and consents are ordered by it, not by arrival. */
  observedAt: string;
  action: WhatsAppAction;
  /**
   * Stable across redeliveries of the same notification: a replay is recognised by it. A plain hash of
   * data that names the contact: never stored as it is (the stored marker is keyed per tenant).
   */
  replayId: string;
}

/** Why a part of a delivery was not applied (stable names: response `skippedByKind`, logs, metrics). */
export const SKIP_KINDS = [
  /** The body is not a `whatsapp_business_account` notification. */
  'unknown_object',
  /** An entry or change that is not an object, or a `value` without `metadata.phone_number_id`. */
  'malformed_change',
  /** A change of another webhook field (`message_template_status_update`, `account_update`, echoes…). */
  'unknown_field',
  /** Items for a business phone number `WHATSAPP_PHONE_NUMBER_TENANTS` does not route. */
  'unrouted_phone_number',
  /** A status, message or preference without a usable id or timestamp. */
  'malformed_item',
  /** No phone number and no business-scoped user id to apply it to. */
  'no_contact',
  /** A status of a message sent to a group (`recipient_type: "group"`): not one person's. */
  'group_status',
  /** A message written in a group chat (`group_id`): not addressed to the business alone. */
  'group_message',
  /** A status other than sent, delivered, read, played and failed. */
  'unknown_status',
  /** A system message other than a number change. */
  'system_message',
  /** A number change naming no new number nor new business-scoped user id. */
  'number_change_incomplete',
  /** A message without a type. */
  'unsupported_message',
  /** A `user_preferences` item of another category than `marketing_messages`. */
  'preference_other_category',
  /** A `marketing_messages` preference other than `stop` and `resume`. */
  'preference_other_value',
  /** An error Meta reports for the whole change (`value.errors[]`), not about one message. */
  'value_error',
] as const;
export type SkipKind = (typeof SKIP_KINDS)[number];

/** A part of a delivery not applied: why, and for logs what (Meta's vocabulary only, never an identifier). */
export interface Skip {
  kind: SkipKind;
  detail?: string;
}

const FIELDS: ReadonlySet<string> = new Set(['messages', 'user_preferences']);

const unixSeconds = z.union([z.string(), z.number()]).transform((v, ctx) => {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0 || n > 1e11) {
    ctx.addIssue({ code: 'custom', message: 'not a unix time' });
    return z.NEVER;
  }
  return new Date(Math.floor(n) * 1000).toISOString();
});

const phone = z
  .string()
  .regex(/^\+?[0-9]{6,20}$/)
  .optional()
  .catch(undefined);
const waUserId = z.string().regex(WA_USER_ID_PATTERN).optional().catch(undefined);
const text = z.string().optional().catch(undefined);
const list = z.array(z.unknown());

const EnvelopeSchema = z.looseObject({ object: z.string().optional().catch(undefined), entry: list.optional() });
const EntrySchema = z.looseObject({ changes: list.optional() });
const ChangeSchema = z.looseObject({ field: z.string().optional(), value: z.unknown() });

const ValueSchema = z.looseObject({
  metadata: z.looseObject({ phone_number_id: z.string().min(1) }),
  statuses: list.optional(),
  messages: list.optional(),
  contacts: list.optional(),
  user_preferences: list.optional(),
  errors: list.optional(),
});

const StatusSchema = z.looseObject({
  id: z.string().min(1).max(512),
  status: z.string().max(512),
  timestamp: unixSeconds,
  recipient_type: text,
  recipient_id: phone,
  recipient_user_id: waUserId,
  errors: z
    .array(z.looseObject({ code: z.coerce.number().optional().catch(undefined) }))
    .optional()
    .catch(undefined),
});

const ContactSchema = z.looseObject({ wa_id: phone, user_id: waUserId, parent_user_id: waUserId });

const reply = z.looseObject({ id: text, title: text }).optional().catch(undefined);
const MessageSchema = z.looseObject({
  id: z.string().min(1).max(512),
  from: phone,
  from_user_id: waUserId,
  user_id: waUserId,
  group_id: text,
  timestamp: unixSeconds,
  type: text,
  text: z.looseObject({ body: text }).optional().catch(undefined),
  button: z.looseObject({ payload: text, text }).optional().catch(undefined),
  interactive: z.looseObject({ button_reply: reply, list_reply: reply }).optional().catch(undefined),
  system: z.looseObject({ type: text, wa_id: phone, new_wa_id: phone, user_id: waUserId }).optional().catch(undefined),
});

const PreferenceSchema = z.looseObject({
  wa_id: phone,
  user_id: waUserId,
  category: z.string().max(512),
  value: z.string().max(512),
  timestamp: unixSeconds,
});

const ValueErrorSchema = z.looseObject({ code: z.coerce.number().optional().catch(undefined) });

type Contact = z.infer<typeof ContactSchema>;

/** A detail for logs: short, printable. */
const detailOf = (s: string | number | undefined) =>
  s === undefined
    ? undefined
    : String(s)
        .replace(/[^\x20-\x7E]/g, '?')
        .slice(0, 64);

const e164 = (digits: string) => (digits.startsWith('+') ? digits : `+${digits}`);
const bare = (digits: string) => digits.replace(/^\+/, '');
const isParent = (id: string) => id.slice(2, 7) === '.ENT.';

/**
 * Who an item is about: its own phone number and business-scoped user id, completed from the contact Meta
 * sent alongside for the same person (matched by either id). The subject is the phone when known; the BSUID
 * then comes along as `alsoKnownAs`. A parent BSUID is replaced by the person's own BSUID when the contact
 * gives it (one person, one `waUserId`).
 */
function identify(
  own: { phone?: string; userId?: string },
  contacts: readonly Contact[],
  soleSender = false,
): Pick<Notification, 'alsoKnownAs'> & { subject?: SubjectInput } {
  const matches = (c: Contact) =>
    (own.phone !== undefined && c.wa_id !== undefined && bare(c.wa_id) === bare(own.phone)) ||
    (own.userId !== undefined && (c.user_id === own.userId || c.parent_user_id === own.userId));
  // Meta notes that a user's wa_id and phone number may differ: the one contact of a change whose items all
  // come from one person is that person's, even when no id matches.
  const contact = contacts.find(matches) ?? (soleSender && contacts.length === 1 ? contacts[0] : undefined);
  const phone = own.phone ?? contact?.wa_id;
  let userId = own.userId ?? contact?.user_id;
  if (userId && isParent(userId) && contact?.user_id && !isParent(contact.user_id)) userId = contact.user_id;
  if (phone) return { subject: { phone: e164(phone) }, ...(userId ? { alsoKnownAs: { waUserId: userId } } : {}) };
  if (userId) return { subject: { waUserId: userId } };
  return {};
}

const STATUS_SIGNALS: Record<string, SignalInput['type']> = {
  sent: 'message_sent',
  delivered: 'message_delivered',
  read: 'message_read',
  // A voice message played: delivered and heard. WhatsApp sends play receipts even when read receipts are off.
  played: 'message_read',
};

function statusAction(s: z.infer<typeof StatusSchema>): WhatsAppAction | Skip {
  if (s.recipient_type === 'group') return { kind: 'group_status' };
  const signal = STATUS_SIGNALS[s.status];
  if (signal) return { kind: 'signal', type: signal, messageId: s.id };
  if (s.status !== 'failed') return { kind: 'unknown_status', detail: detailOf(s.status) };
  const codes = (s.errors ?? []).map((e) => e.code).filter((c): c is number => c !== undefined);
  if (codes.includes(131050)) {
    return { kind: 'withdraw', source: 'whatsapp_stop_promotions', messageId: s.id, errorCode: 131050 };
  }
  // Meta's reasons for 131026 are a number not on WhatsApp, terms not accepted, an outdated app: the contact
  // is unreachable, which says nothing about a block. It ends the message's wait; the gate warns.
  if (codes.includes(131026)) {
    return { kind: 'signal', type: 'recipient_unreachable', messageId: s.id, errorCode: 131026 };
  }
  // Any other failure (131049 and 130472 are temporary marketing limits in Meta's WhatsApp error codes:
  // https://developers.facebook.com/documentation/business-messaging/whatsapp/support/error-codes) is
  // neither consent nor block evidence: it only ends the wait for a delivery. Its code stays in the ledger for metrics.
  const errorCode = codes[0];
  return { kind: 'signal', type: 'message_failed', messageId: s.id, ...(errorCode !== undefined ? { errorCode } : {}) };
}

const NUMBER_CHANGES: ReadonlySet<string> = new Set(['user_changed_number', 'user_changed_user_id']);

function systemAction(m: z.infer<typeof MessageSchema>): WhatsAppAction | Skip {
  const system = m.system;
  if (!system?.type || !NUMBER_CHANGES.has(system.type)) {
    return { kind: 'system_message', detail: detailOf(system?.type) };
  }
  const newNumber = system.wa_id ?? system.new_wa_id;
  if (!newNumber && !system.user_id) return { kind: 'number_change_incomplete', detail: detailOf(system.type) };
  return {
    kind: 'number_changed',
    ...(newNumber ? { newPhone: e164(newNumber) } : {}),
    ...(system.user_id ? { newWaUserId: system.user_id } : {}),
    messageId: m.id,
  };
}

/**
 * What an inbound message says. Typed text: the whole keyword list. A tapped quick-reply button (`button`:
 * payload and label) or interactive reply (`button_reply`, `list_reply`: id and title): only the marketing
 * opt-out phrases, and never an opt-in — the business wrote those labels (Meta's own example button is
 * "Cancel", for an appointment). Anything else the person sent is evidence that they can be reached.
 */
function messageAction(m: z.infer<typeof MessageSchema>): WhatsAppAction | Skip {
  if (m.type === 'system') return systemAction(m);
  if (m.group_id !== undefined) return { kind: 'group_message' };
  if (!m.type) return { kind: 'unsupported_message' };
  if (m.type === 'text') {
    const said = keywordOf(m.text?.body);
    if (said === 'opt_out') return { kind: 'withdraw', source: 'keyword', messageId: m.id };
    if (said === 'opt_in') return { kind: 'regrant', after: 'keyword', via: 'keyword' };
  }
  const tapped =
    m.type === 'button'
      ? [m.button?.payload, m.button?.text]
      : m.type === 'interactive'
        ? [
            m.interactive?.button_reply?.id,
            m.interactive?.button_reply?.title,
            m.interactive?.list_reply?.id,
            m.interactive?.list_reply?.title,
          ]
        : [];
  if (tapped.some((t) => buttonKeywordOf(t) === 'opt_out')) {
    return { kind: 'withdraw', source: 'keyword', messageId: m.id };
  }
  return { kind: 'signal', type: 'inbound_message', messageId: m.id };
}

function preferenceAction(p: z.infer<typeof PreferenceSchema>): WhatsAppAction | Skip {
  if (p.category !== 'marketing_messages') return { kind: 'preference_other_category', detail: detailOf(p.category) };
  if (p.value === 'stop') return { kind: 'withdraw', source: 'whatsapp_stop_promotions' };
  if (p.value === 'resume') return { kind: 'regrant', after: 'whatsapp_stop_promotions', via: 'user_preferences' };
  return { kind: 'preference_other_value', detail: detailOf(p.value) };
}

const replayId = (parts: (string | number | undefined)[]) =>
  createHash('sha256').update(parts.join('\n')).digest('base64url');

const skipKinds: ReadonlySet<string> = new Set(SKIP_KINDS);
const isSkip = (a: WhatsAppAction | Skip): a is Skip => skipKinds.has(a.kind);

/** Whether items all come from one person (by their own ids): then the change's one contact is theirs. */
const oneSender = (ids: readonly (string | undefined)[]) => new Set(ids.map((id) => id ?? '')).size <= 1;

/**
 * Every notification of a webhook delivery (all entries, all changes), in the order they happened, and
 * every part not applied with the reason. Pure.
 */
export function notificationsOf(
  payload: unknown,
  tenantFor: (phoneNumberId: string) => string | undefined,
): { notifications: Notification[]; skipped: Skip[] } {
  const notifications: Notification[] = [];
  const skipped: Skip[] = [];
  const envelope = EnvelopeSchema.safeParse(payload);
  if (!envelope.success || envelope.data.object !== 'whatsapp_business_account') {
    skipped.push({ kind: 'unknown_object', detail: envelope.success ? detailOf(envelope.data.object) : undefined });
    return { notifications, skipped };
  }
  for (const rawEntry of envelope.data.entry ?? []) {
    const entry = EntrySchema.safeParse(rawEntry);
    if (!entry.success) {
      skipped.push({ kind: 'malformed_change' });
      continue;
    }
    for (const rawChange of entry.data.changes ?? []) {
      const change = ChangeSchema.safeParse(rawChange);
      if (!change.success) {
        skipped.push({ kind: 'malformed_change' });
        continue;
      }
      const { field } = change.data;
      if (field !== undefined && !FIELDS.has(field)) {
        skipped.push({ kind: 'unknown_field', detail: detailOf(field) });
        continue;
      }
      const value = ValueSchema.safeParse(change.data.value);
      if (!value.success) {
        skipped.push({ kind: 'malformed_change' });
        continue;
      }
      const { statuses = [], messages = [], user_preferences: preferences = [], errors = [] } = value.data;
      const tenant = tenantFor(value.data.metadata.phone_number_id);
      if (!tenant) {
        const items = statuses.length + messages.length + preferences.length + errors.length;
        for (let i = 0; i < Math.max(1, items); i++) skipped.push({ kind: 'unrouted_phone_number' });
        continue;
      }
      const contacts = (value.data.contacts ?? []).flatMap((c) => {
        const parsed = ContactSchema.safeParse(c);
        return parsed.success ? [parsed.data] : [];
      });
      const add = (
        who: ReturnType<typeof identify>,
        observedAt: string,
        action: WhatsAppAction | Skip,
        id: (string | number | undefined)[],
      ) => {
        if (isSkip(action)) skipped.push(action);
        else if (!who.subject) skipped.push({ kind: 'no_contact' });
        else {
          notifications.push({
            tenant,
            subject: who.subject,
            ...(who.alsoKnownAs ? { alsoKnownAs: who.alsoKnownAs } : {}),
            observedAt,
            action,
            replayId: replayId([tenant, ...id]),
          });
        }
      };
      for (const raw of statuses) {
        const s = StatusSchema.safeParse(raw);
        if (!s.success) skipped.push({ kind: 'malformed_item' });
        else {
          const who = identify({ phone: s.data.recipient_id, userId: s.data.recipient_user_id }, contacts);
          add(who, s.data.timestamp, statusAction(s.data), ['status', s.data.id, s.data.status, s.data.timestamp]);
        }
      }
      const parsedMessages = messages.map((raw) => MessageSchema.safeParse(raw));
      const soleSender = oneSender(
        parsedMessages.map((m) => (m.success ? (m.data.from ?? m.data.from_user_id ?? m.data.user_id) : '\0')),
      );
      for (const m of parsedMessages) {
        if (!m.success) skipped.push({ kind: 'malformed_item' });
        else {
          const own = { phone: m.data.from, userId: m.data.from_user_id ?? m.data.user_id };
          // A system message comes without contacts; its `system` ids name the new identifiers, not the sender.
          const who = m.data.type === 'system' ? identify(own, []) : identify(own, contacts, soleSender);
          add(who, m.data.timestamp, messageAction(m.data), ['message', m.data.id]);
        }
      }
      const parsedPreferences = preferences.map((raw) => PreferenceSchema.safeParse(raw));
      const solePerson = oneSender(parsedPreferences.map((p) => (p.success ? (p.data.wa_id ?? p.data.user_id) : '\0')));
      for (const p of parsedPreferences) {
        if (!p.success) skipped.push({ kind: 'malformed_item' });
        else {
          const who = identify({ phone: p.data.wa_id, userId: p.data.user_id }, contacts, solePerson);
          add(who, p.data.timestamp, preferenceAction(p.data), [
            'preference',
            p.data.wa_id ?? p.data.user_id,
            p.data.value,
            p.data.timestamp,
          ]);
        }
      }
      for (const raw of errors) {
        const e = ValueErrorSchema.safeParse(raw);
        skipped.push({ kind: 'value_error', detail: e.success ? detailOf(e.data.code) : undefined });
      }
    }
  }
  notifications.sort((a, b) => a.observedAt.localeCompare(b.observedAt));
  return { notifications, skipped };
}

/** Skipped parts counted by kind (only the kinds that occur). */
export function countByKind(skipped: readonly Skip[]): Partial<Record<SkipKind, number>> {
  const counts: Partial<Record<SkipKind, number>> = {};
  for (const { kind } of skipped) counts[kind] = (counts[kind] ?? 0) + 1;
  return counts;
}
