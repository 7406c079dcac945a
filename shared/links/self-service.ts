import * as z from 'zod';
import { kindOf, type Policy } from '#domain/policy.ts';
import {
  type Change,
  grantConsent,
  latest,
  type NextEvent,
  type SubjectState,
  withdrawConsent,
} from '#domain/subject-state.ts';
import { consentViews } from '#domain/views.ts';
import { type Channel, ChannelSchema, PurposeSchema } from '#domain/vocabulary.ts';
import type { PreferenceNotice, PreferenceRow } from '#shared/pages/preferences.ts';

/**
 * Pure rules of the self-service pages (no I/O, no clock): what the preference centre lists, which
 * scopes a form may touch, and how a person's own action is recorded.
 */

/** The scopes of a subject as the preference centre lists them; `*` objections cannot be changed there. */
export function preferenceRows(state: SubjectState | undefined, policy: Policy, now: string): PreferenceRow[] {
  if (!state) return [];
  return consentViews(state, policy, now).map((view) => ({
    channel: view.channel,
    purpose: view.purpose,
    status: view.status,
    grantedAt: view.grantedAt,
    withdrawnAt: view.withdrawnAt,
    changeable: view.channel !== '*' && view.purpose !== '*',
    // An erasure closes a scope by its request id, which is no event: no receipt then.
    ...(view.eventId && view.eventId !== state.erasure?.requestId ? { eventId: view.eventId } : {}),
  }));
}

const ScopeFieldSchema = z
  .string()
  .transform((value) => value.split('|'))
  .pipe(z.tuple([ChannelSchema, PurposeSchema]));

/** A preference-centre form: which button was pressed, on which scope. */
export const PreferenceFormSchema = z.discriminatedUnion('action', [
  z.object({ action: z.literal('withdraw'), scope: ScopeFieldSchema }),
  z.object({ action: z.literal('grant'), scope: ScopeFieldSchema }),
  z.object({ action: z.literal('confirm') }),
  z.object({ action: z.literal('erase'), confirm: z.literal('yes').optional() }),
]);
export type PreferenceForm = z.infer<typeof PreferenceFormSchema>;

/**
 * A form may only touch a scope the subject already has, concrete (not a `*` objection): the
 * preferences link manages what exists, it cannot add a channel or purpose nobody consented to.
 */
export function findChangeableScope(
  rows: readonly PreferenceRow[],
  channel: Channel,
  purpose: string,
): PreferenceRow | undefined {
  return rows.find((r) => r.changeable && r.channel === channel && r.purpose === purpose);
}

/**
 * Marks a change as the person's own action: it resets the consent age (`consent_expired`, docs/api.md#pre-send-gate).
 * Only POSTs of the preference centre count; showing a page never writes anything.
 */
export function asOwnAction<T extends Change>(change: T, now: string): T {
  return { ...change, state: { ...change.state, lastOwnActionAt: latest(change.state.lastOwnActionAt, now) } };
}

/** "My choices are up to date": a visit the person confirmed, recorded as their own action. */
export function confirmPreferences(current: SubjectState, now: string): Change {
  return asOwnAction(
    { state: current, event: { type: 'preferences.visited', at: now, source: 'preference_center', data: {} } },
    now,
  );
}

/** What a preference-centre POST leads to: nothing (with a status and notice), one change, or an erasure request. */
export type PreferencePlan =
  | { do: 'nothing'; status: 200 | 400; notice?: PreferenceNotice }
  | { do: 'append'; apply: (current: SubjectState, next: NextEvent) => Change; notice: PreferenceNotice }
  | { do: 'erase' };

/**
 * Decides what a preference-centre form does, from the subject's state as read. A button pressed twice
 * changes nothing the second time; a scope the subject does not have, or any change while an erasure is
 * pending, is refused (400) without recording anything. `registered`: the `noticeHash` of the policy's
 * notice version when registered (what a grant records).
 */
export function planPreferenceChange(
  form: PreferenceForm,
  state: SubjectState | undefined,
  policy: Policy,
  now: string,
  registered: { noticeHash?: string } = {},
): PreferencePlan {
  if (form.action === 'erase') {
    if (!state || state.erasure) return { do: 'nothing', status: 200 };
    if (form.confirm !== 'yes')
      return { do: 'nothing', status: 400, notice: { tone: 'warn', key: 'erase_unconfirmed' } };
    return { do: 'erase' };
  }
  const rows = preferenceRows(state, policy, now);
  if (form.action === 'confirm') {
    if (!state || state.erasure || !rows.some((r) => r.status === 'granted')) return { do: 'nothing', status: 200 };
    return {
      do: 'append',
      apply: (current) => confirmPreferences(current, now),
      notice: { tone: 'ok', key: 'confirmed' },
    };
  }
  const [channel, purpose] = form.scope;
  const row = findChangeableScope(rows, channel, purpose);
  if (!row || state?.erasure) return { do: 'nothing', status: 400, notice: { tone: 'warn', key: 'unknown_scope' } };
  if (form.action === 'withdraw') {
    const notice: PreferenceNotice = { tone: 'ok', key: 'withdrawn', channel, purpose };
    if (row.status === 'withdrawn') return { do: 'nothing', status: 200, notice };
    const input = { channel, purpose, source: 'preference_center', data: {} };
    return {
      do: 'append',
      apply: (current, next) => asOwnAction(withdrawConsent(current, input, next, now, kindOf(policy)), now),
      notice,
    };
  }
  const notice: PreferenceNotice = {
    tone: 'ok',
    key: 'granted',
    channel,
    purpose,
    noticeVersion: policy.noticeVersion,
  };
  if (row.status === 'granted') return { do: 'nothing', status: 200, notice };
  const grant = {
    channel,
    purpose,
    source: 'preference_center',
    noticeVersion: policy.noticeVersion,
    ...registered,
    grantedAt: now,
    data: {},
  };
  // grantConsent marks a preference-centre grant as the person's own action itself.
  return { do: 'append', apply: (current, next) => grantConsent(current, grant, next, now, kindOf(policy)), notice };
}
