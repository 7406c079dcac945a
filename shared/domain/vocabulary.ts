import * as z from 'zod';

/** Channels a marketing message can go out on. */
export const CHANNELS = ['whatsapp', 'sms', 'voice', 'email', 'push'] as const;
export const ChannelSchema = z.enum(CHANNELS);
export type Channel = z.infer<typeof ChannelSchema>;

/** Purpose slug, e.g. `marketing`, `newsletter`. */
export const PurposeSchema = z
  .string()
  .regex(/^[a-z0-9][a-z0-9_-]{0,63}$/, 'must be a slug: lowercase letters, digits, "_" or "-", at most 64 characters');

/** Grant sources that are the person's own act: only these may re-open a scope the person closed. */
export const OWN_ACT_SOURCES = [
  'web_form',
  'double_opt_in',
  'whatsapp_optin',
  'in_store',
  'phone_call',
  'preference_center',
  // START (or another opt-in keyword) sent by the person to an SMS sender, as the provider reports it.
  'sms_optin',
] as const;

/** How a consent was collected: the person's own acts, or recorded on the business's side (`api`, `import`). */
export const GRANT_SOURCES = [...OWN_ACT_SOURCES, 'api', 'import'] as const;
export const GrantSourceSchema = z.enum(GRANT_SOURCES);

/** How a withdrawal (opt-out, objection) reached us. */
export const WITHDRAW_SOURCES = [
  'api',
  'keyword',
  'whatsapp_stop_promotions',
  'self_service_link',
  'preference_center',
  'one_click',
  'phone_call',
  'email',
  'letter',
  'in_store',
  // The person used an e-mail provider's unsubscribe link or preferences page (SendGrid unsubscribe events).
  'provider_unsubscribe',
  // The person reported a message as spam (SendGrid spamreport, an SES complaint): an objection.
  'spam_complaint',
] as const;
export const WithdrawSourceSchema = z.enum(WITHDRAW_SOURCES);

/** Ledger event types. */
export type EventType =
  | 'consent.granted'
  | 'consent.withdrawn'
  | 'signal.recorded'
  | 'send.recorded'
  | 'erasure.requested'
  | 'erasure.completed'
  | 'erasure.cancelled'
  | 'access.provided'
  | 'preferences.visited'
  // Identifier links (docs/api.md#one-person-several-identifiers).
  | 'subject.linked'
  | 'subject.unlinked'
  | 'subject.number_changed'
  | 'cooldown.updated';

/** A scope key inside the state: `<channel|*>|<purpose|*>`. `*` stands for every channel / purpose. */
export type ScopeKey = `${Channel | '*'}|${string}`;
export const scopeKey = (channel: Channel | '*', purpose: string | '*'): ScopeKey => `${channel}|${purpose}`;
