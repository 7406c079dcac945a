import { describe, expect, it } from 'vitest';
import { decide } from '#domain/gate.ts';
import { blockLikelihood, channelSignals, recordSignal, type SignalInput } from '#domain/likelihood.ts';
import { cooldownChange, cooldownsFrom, crossClosings, likelyWindow, linkChange, unlinkChange } from '#domain/links.ts';
import { defaultPolicy } from '#domain/policy.ts';
import { effectiveScope, emptyState, grantConsent, type SubjectState, withdrawConsent } from '#domain/subject-state.ts';
import { DAY_MS } from '#shared/time.ts';

const NOW = '2026-11-01T10:00:00.000Z';
const policy = defaultPolicy();
const at = (days: number) => new Date(Date.parse(NOW) + days * DAY_MS).toISOString();
let n = 0;
const next = () => ({ seq: ++n, eventId: `ev${n}` });

function signal(state: SubjectState, type: SignalInput['type'], observedAt = NOW, messageId?: string): SubjectState {
  return recordSignal(state, { channel: 'whatsapp', type, observedAt, messageId, source: 'api' }, policy, observedAt)
    .state;
}

const emailGranted = () =>
  grantConsent(
    emptyState('e-subject-key-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx', 'email'),
    { channel: 'email', purpose: 'marketing', source: 'web_form', noticeVersion: 'v1', grantedAt: at(-10) },
    next(),
    NOW,
  ).state;

describe('likelyWindow', () => {
  it('is absent without signals, and for one undelivered message alone (never likely)', () => {
    const phone = emptyState('p-subject-key', 'phone');
    expect(likelyWindow(phone, 'whatsapp', policy, NOW)).toBeUndefined();
    const sent = signal(phone, 'message_sent', at(-30), 'wamid.1');
    expect(likelyWindow(sent, 'whatsapp', policy, NOW)).toBeUndefined();
  });

  it('spans exactly the time the model says the block is likely (channel_blocked decays)', () => {
    const blocked = signal(emptyState('p-subject-key', 'phone'), 'channel_blocked');
    const window = likelyWindow(blocked, 'whatsapp', policy, NOW);
    expect(window?.from).toBe(NOW);
    const until = window?.until as string;
    expect(Date.parse(until)).toBeGreaterThan(Date.parse(at(7)));
    const summary = channelSignals(blocked, 'whatsapp');
    expect(blockLikelihood(summary, policy, until).level).toBe('likely');
    expect(blockLikelihood(summary, policy, new Date(Date.parse(until) + DAY_MS).toISOString()).level).not.toBe(
      'likely',
    );
  });

  it('is the same whenever it is computed from the same signals (no rewrite on every write)', () => {
    const blocked = signal(emptyState('p-subject-key', 'phone'), 'channel_blocked', at(-1 / 24));
    const windows = [0, 1 / 86_400, 1 / 24, 0.5, 2].map((d) => likelyWindow(blocked, 'whatsapp', policy, at(d)));
    for (const w of windows) expect(w).toEqual(windows[0]);
    expect(windows[0]?.from).toBe(at(-1 / 24));
  });

  it('looks back over the cooldown tail and is emptied by evidence against the block', () => {
    const blocked = signal(emptyState('p-subject-key', 'phone'), 'channel_blocked', at(-3));
    expect(likelyWindow(blocked, 'whatsapp', policy, NOW)?.from).toBe(at(-3));
    const inbound = signal(blocked, 'inbound_message', NOW);
    expect(likelyWindow(inbound, 'whatsapp', policy, NOW)).toBeUndefined();
    expect(cooldownsFrom(inbound, policy, NOW)).toEqual({});
  });
});

describe('cooldowns across a link', () => {
  it('are carried by the other member, pause all its channels for the window plus the tail, and lift', () => {
    const phone = signal(emptyState('p-subject-key', 'phone'), 'channel_blocked');
    let email = { ...emailGranted(), person: { key: 'per_1' } };
    const windows = cooldownsFrom(phone, policy, NOW);
    const change = cooldownChange(email, windows, NOW);
    expect(change?.event).toMatchObject({ type: 'cooldown.updated', data: { windows: [{ channel: 'whatsapp' }] } });
    email = change?.state as typeof email;
    // Same windows again: nothing to record.
    expect(cooldownChange(email, windows, NOW)).toBeNull();
    const req = { channel: 'email' as const, purpose: 'marketing', at: at(1) };
    const paused = decide(email, req, policy);
    expect(paused.decision).toBe('block');
    expect(paused.reasons).toEqual([
      expect.objectContaining({ code: 'cross_channel_cooldown', channel: 'whatsapp', linked: true }),
    ]);
    const until = Date.parse(windows.whatsapp?.until as string) + policy.crossChannelCooldownDays * DAY_MS;
    expect(decide(email, { ...req, at: new Date(until - 60_000).toISOString() }, policy).decision).toBe('block');
    expect(decide(email, { ...req, at: new Date(until + 60_000).toISOString() }, policy).decision).toBe('allow');
    // crossChannelCooldownDays 0 switches it off.
    expect(decide(email, req, { ...policy, crossChannelCooldownDays: 0 }).decision).toBe('allow');
    // Evidence against: the windows empty and the pause lifts at once.
    const cleared = cooldownChange(email, cooldownsFrom(signal(phone, 'message_read', at(1)), policy, at(1)), at(1));
    expect(decide(cleared?.state, req, policy).decision).toBe('allow');
  });
});

describe('linkChange and unlinkChange', () => {
  it("inherit the others' closings without a channel at their own time; a later own act still re-opens", () => {
    const objector = withdrawConsent(
      emptyState('p-subject-key', 'phone'),
      { source: 'letter', at: at(-5) },
      next(),
      NOW,
    ).state;
    const closings = crossClosings(objector);
    expect(closings).toEqual([{ key: '*|*', at: at(-5), source: 'letter' }]);
    const linked = linkChange(
      emailGranted(),
      { personKey: 'per_1', subjectKeys: ['a', 'b'], source: 'api', at: NOW, closings, cooldowns: {} },
      next(),
    );
    expect(linked.event).toMatchObject({ type: 'subject.linked', data: { members: 2, inherited: [{ scope: '*|*' }] } });
    expect(linked.event.details).toMatchObject({ personKey: 'per_1', subjectKeys: ['a', 'b'] });
    expect(effectiveScope(linked.state, 'email', 'marketing')?.status).toBe('withdrawn');
    expect(effectiveScope(linked.state, 'email', 'marketing')?.withdrawnAt).toBe(at(-5));
    const reopened = grantConsent(
      linked.state,
      { channel: 'email', purpose: 'marketing', source: 'double_opt_in', noticeVersion: 'v1', grantedAt: NOW },
      next(),
      NOW,
    );
    expect(effectiveScope(reopened.state, 'email', 'marketing')?.status).toBe('granted');
    // A closing older than the subject's own is not inherited again.
    const twice = linkChange(
      linked.state,
      { personKey: 'per_1', subjectKeys: ['a', 'b'], source: 'api', at: NOW, closings, cooldowns: {} },
      next(),
    );
    expect(twice.event.data.inherited).toEqual([]);

    const unlinked = unlinkChange(linked.state, { source: 'api', at: NOW, remaining: 1, reason: 'mistake' });
    expect(unlinked?.state.person).toBeUndefined();
    expect(unlinked?.event.details).toEqual({ personKey: 'per_1', reason: 'mistake' });
    expect(effectiveScope(unlinked?.state, 'email', 'marketing')?.status).toBe('withdrawn');
    expect(unlinkChange(emailGranted(), { source: 'api', at: NOW, remaining: 0 })).toBeNull();
  });
});
