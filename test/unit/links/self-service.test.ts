import { describe, expect, it } from 'vitest';
import { defaultPolicy } from '#domain/policy.ts';
import { emptyState, grantConsent, type SubjectState, withdrawConsent } from '#domain/subject-state.ts';
import {
  confirmPreferences,
  type PreferenceForm,
  PreferenceFormSchema,
  planPreferenceChange,
  preferenceRows,
} from '#shared/links/self-service.ts';

const NOW = '2026-11-25T10:00:00.000Z';
const EARLIER = '2026-01-10T09:00:00.000Z';
const policy = { ...defaultPolicy(), noticeVersion: 'notice-v4' };
let seq = 0;
const next = () => ({ seq: ++seq, eventId: `ev${seq}` });

function subject(): SubjectState {
  let state = emptyState('sk');
  for (const channel of ['whatsapp', 'sms'] as const) {
    const grant = { channel, purpose: 'marketing', source: 'api', noticeVersion: 'v1', grantedAt: EARLIER, data: {} };
    state = { ...grantConsent(state, grant, next(), EARLIER).state, seq };
  }
  return state;
}
const form = (value: Record<string, string>) => PreferenceFormSchema.parse(value) as PreferenceForm;

describe('preference centre rules', () => {
  it('parses only known actions and concrete scopes', () => {
    expect(form({ action: 'withdraw', scope: 'sms|marketing' })).toEqual({
      action: 'withdraw',
      scope: ['sms', 'marketing'],
    });
    for (const bad of [
      { action: 'withdraw', scope: '*|marketing' },
      { action: 'grant', scope: 'sms' },
      { action: 'grant', scope: 'sms|Marketing' },
      { action: 'delete' },
      {},
    ]) {
      expect(PreferenceFormSchema.safeParse(bad).success).toBe(false);
    }
  });

  it('withdraws a granted scope as the person’s own action', () => {
    const state = subject();
    const plan = planPreferenceChange(form({ action: 'withdraw', scope: 'sms|marketing' }), state, policy, NOW);
    if (plan.do !== 'append') throw new Error(`expected a change, got ${plan.do}`);
    const change = plan.apply(state, next());
    expect(change.event).toMatchObject({ type: 'consent.withdrawn', source: 'preference_center', channel: 'sms' });
    expect(change.state.lastOwnActionAt).toBe(NOW);
    expect(preferenceRows(change.state, policy, NOW).find((r) => r.channel === 'sms')?.status).toBe('withdrawn');
  });

  it('gives a withdrawn scope again with the policy’s current notice version', () => {
    const state = withdrawConsent(
      subject(),
      { channel: 'sms', purpose: 'marketing', source: 'keyword', data: {} },
      next(),
      EARLIER,
    ).state;
    const plan = planPreferenceChange(form({ action: 'grant', scope: 'sms|marketing' }), state, policy, NOW);
    if (plan.do !== 'append') throw new Error(`expected a change, got ${plan.do}`);
    const change = plan.apply(state, next());
    expect(change.event).toMatchObject({ type: 'consent.granted', source: 'preference_center' });
    expect(change.event.data.noticeVersion).toBe('notice-v4');
    expect(change.state.lastOwnActionAt).toBe(NOW);
  });

  it('does nothing the second time a button is pressed', () => {
    const state = subject();
    expect(planPreferenceChange(form({ action: 'grant', scope: 'sms|marketing' }), state, policy, NOW)).toMatchObject({
      do: 'nothing',
      status: 200,
    });
    const withdrawn = withdrawConsent(
      state,
      { channel: 'sms', purpose: 'marketing', source: 'api', data: {} },
      next(),
      NOW,
    ).state;
    expect(
      planPreferenceChange(form({ action: 'withdraw', scope: 'sms|marketing' }), withdrawn, policy, NOW),
    ).toMatchObject({ do: 'nothing', status: 200 });
  });

  it('refuses scopes the subject does not have, and any change while erasure is pending', () => {
    const state = subject();
    for (const scope of ['email|marketing', 'sms|newsletter']) {
      expect(planPreferenceChange(form({ action: 'grant', scope }), state, policy, NOW)).toMatchObject({
        do: 'nothing',
        status: 400,
      });
    }
    expect(
      planPreferenceChange(form({ action: 'grant', scope: 'sms|marketing' }), undefined, policy, NOW),
    ).toMatchObject({ do: 'nothing', status: 400 });
    const pending = { ...state, erasure: { requestId: 'er_1', status: 'received' as const, receivedAt: NOW } };
    expect(
      planPreferenceChange(form({ action: 'withdraw', scope: 'sms|marketing' }), pending, policy, NOW),
    ).toMatchObject({ do: 'nothing', status: 400 });
    expect(planPreferenceChange(form({ action: 'confirm' }), pending, policy, NOW)).toMatchObject({ do: 'nothing' });
  });

  it('asks for erasure only when confirmed, once, and only for a known subject', () => {
    const state = subject();
    expect(planPreferenceChange(form({ action: 'erase' }), state, policy, NOW)).toMatchObject({
      do: 'nothing',
      status: 400,
    });
    expect(planPreferenceChange(form({ action: 'erase', confirm: 'yes' }), state, policy, NOW)).toEqual({
      do: 'erase',
    });
    const pending = { ...state, erasure: { requestId: 'er_1', status: 'received' as const, receivedAt: NOW } };
    expect(planPreferenceChange(form({ action: 'erase', confirm: 'yes' }), pending, policy, NOW)).toMatchObject({
      do: 'nothing',
      status: 200,
    });
    expect(planPreferenceChange(form({ action: 'erase', confirm: 'yes' }), undefined, policy, NOW)).toMatchObject({
      do: 'nothing',
    });
  });

  it('records a confirmed visit as preferences.visited and an own action', () => {
    const change = confirmPreferences(subject(), NOW);
    expect(change.event).toMatchObject({ type: 'preferences.visited', source: 'preference_center' });
    expect(change.state.lastOwnActionAt).toBe(NOW);
  });

  it('lists `*` objections as rows that cannot be changed', () => {
    const state = withdrawConsent(subject(), { source: 'api', data: {} }, next(), NOW).state;
    const rows = preferenceRows(state, policy, NOW);
    expect(rows.find((r) => r.channel === '*')).toMatchObject({ changeable: false, status: 'withdrawn' });
    expect(rows.filter((r) => r.changeable).every((r) => r.status === 'withdrawn')).toBe(true);
  });
});
