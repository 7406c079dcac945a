import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CHANGE_TYPES,
  changeFromEventItem,
  changeFromExpiryItem,
  changeFromItem,
  expiredGrants,
} from '#domain/changes.ts';
import { tombstone } from '#domain/erasure.ts';
import type { Actor } from '#domain/ledger.ts';
import { recordSignal } from '#domain/likelihood.ts';
import { defaultPolicy } from '#domain/policy.ts';
import { type Change, emptyState, grantConsent, type SubjectState, withdrawConsent } from '#domain/subject-state.ts';
import { RETRY_SCHEDULE, retryDelayMs } from '#shared/services/change-delivery.ts';
import { chainEvent, eventItem } from '#store/subjects.ts';

const actor: Actor = { type: 'api_key', keyId: 'key_1' };
const tenant = 'acme';
const subjectKey = 'sk-1';
const policy = defaultPolicy();
const T0 = '2026-11-20T10:00:00.000Z';

/** Appends changes as the store does, returning each stored event item (subject partition, EV# key). */
function ledger(...steps: ((state: SubjectState, next: { seq: number; eventId: string }) => Change)[]) {
  let state = emptyState(subjectKey);
  return steps.map((step, i) => {
    const next = { seq: state.seq + 1, eventId: `01JZ${String(i).padStart(22, '0')}` };
    const change = step(state, next);
    const event = chainEvent(state, next, change.event, actor, new Date(Date.parse(T0) + i * 1000).toISOString());
    state = { ...change.state, version: state.version + 1, seq: next.seq, head: event.hash };
    return eventItem(tenant, subjectKey, event);
  });
}

const grant =
  (source = 'web_form', at = T0, extra = {}) =>
  (s: SubjectState, n: { seq: number; eventId: string }) =>
    grantConsent(
      s,
      {
        channel: 'sms',
        purpose: 'marketing',
        source,
        noticeVersion: 'v3',
        grantedAt: at,
        details: { ip: '203.0.113.9', phone: '+33612345678' },
        ...extra,
      },
      n,
      at,
    );

describe('change events from ledger events', () => {
  it('turns a grant and a withdrawal into consent.granted and consent.withdrawn, with scopes, times and actor', () => {
    const [g, w] = ledger(grant(), (s, n) =>
      withdrawConsent(s, { channel: 'sms', source: 'keyword', details: { message: 'STOP from +33612345678' } }, n, T0),
    );
    expect(changeFromEventItem(g)).toEqual({
      tenant,
      webhookId: `msg_${g.eventId}`,
      sortKey: `${g.recordedAt}#${g.eventId}`,
      body: {
        type: 'consent.granted',
        timestamp: g.recordedAt,
        data: {
          eventId: g.eventId,
          subjectKey,
          channel: 'sms',
          purpose: 'marketing',
          source: 'web_form',
          at: T0,
          recordedAt: g.recordedAt,
          actor,
          scopes: [{ channel: 'sms', purpose: 'marketing' }],
          noticeVersion: 'v3',
          grantedAt: T0,
          expiresAt: null,
        },
      },
    });
    expect(changeFromEventItem(w)?.body).toMatchObject({
      type: 'consent.withdrawn',
      data: {
        channel: 'sms',
        purpose: null,
        source: 'keyword',
        objection: false,
        scopes: [
          { channel: 'sms', purpose: 'marketing' },
          { channel: 'sms', purpose: '*' },
        ],
      },
    });
  });

  it('never carries an event’s personal details (phone numbers, IP addresses, messages)', () => {
    const items = ledger(grant(), (s, n) =>
      withdrawConsent(s, { source: 'keyword', details: { message: 'STOP +33612345678', ip: '203.0.113.9' } }, n, T0),
    );
    for (const item of items) {
      const json = JSON.stringify(changeFromEventItem(item));
      expect(json).not.toContain('33612345678');
      expect(json).not.toContain('203.0.113.9');
      expect(json).not.toContain('details');
    }
  });

  it('tells an erasure from a retention purge', () => {
    const [request, done] = ledger(
      (s) => ({ state: s, event: { type: 'erasure.requested', at: T0, data: { requestId: 'er_1' } } }),
      (s) => tombstone(s, 'er_1', T0),
    );
    expect(changeFromEventItem(request)?.body).toMatchObject({
      type: 'erasure.requested',
      data: { requestId: 'er_1', scopes: [] },
    });
    expect(changeFromEventItem(done)?.body).toMatchObject({
      type: 'erasure.completed',
      data: { requestId: 'er_1', reason: 'request', scopes: [{ channel: '*', purpose: '*' }] },
    });
    const [purged] = ledger((s) => tombstone(s, 'retention_1', T0, { reason: 'retention', proofUntil: T0 }));
    expect(changeFromEventItem(purged)?.body).toMatchObject({ type: 'subject.purged', data: { reason: 'retention' } });
  });

  it('makes a block change only when a signal moves the level to or from likely', () => {
    const signal = (type: string, at: string) => (s: SubjectState) =>
      recordSignal(s, { channel: 'whatsapp', type: type as never, observedAt: at, source: 'api' }, policy, at);
    const t = (min: number) => new Date(Date.parse(T0) + min * 60_000).toISOString();
    const items = ledger(
      signal('profile_photo_hidden', t(0)),
      signal('last_seen_hidden', t(1)),
      // The channel's own word (Twilio 63014): likely on its own; more clues keep it likely.
      signal('channel_blocked', t(2)),
      signal('message_undelivered', t(3)),
      signal('call_failed', t(4)),
      signal('message_delivered', t(5)),
      signal('message_read', t(6)),
    );
    const levels = items.map((i) => [
      (i.data as { previousLevel: string }).previousLevel,
      (i.data as { level: string }).level,
    ]);
    const changes = items.map((i) => changeFromEventItem(i)?.body.type ?? null);
    // Exactly the transitions: into likely once, out of it once.
    expect(changes.filter((c) => c === 'block.likely')).toHaveLength(1);
    expect(changes.filter((c) => c === 'block.cleared')).toHaveLength(1);
    for (const [i, change] of changes.entries()) {
      const [before, after] = levels[i];
      if (change === 'block.likely') expect([before, after]).toEqual([expect.not.stringMatching(/^likely$/), 'likely']);
      else if (change === 'block.cleared') expect(before).toBe('likely');
      else expect(before === 'likely').toBe(after === 'likely');
    }
    expect(changeFromEventItem(items[changes.indexOf('block.likely')])?.body.data).toMatchObject({
      channel: 'whatsapp',
      level: 'likely',
    });
  });

  it('ignores what is no change: sends, access copies, other partitions, items that are not events', () => {
    const [send] = ledger((s) => ({ state: s, event: { type: 'send.recorded', at: T0, channel: 'sms', data: {} } }));
    expect(changeFromEventItem(send)).toBeUndefined();
    const [g] = ledger(grant());
    expect(changeFromEventItem({ ...g, SK: 'STATE' })).toBeUndefined();
    expect(changeFromEventItem({ ...g, PK: 'T#acme#LOG' })).toBeUndefined();
    expect(changeFromItem({ ...g, SK: 'REF#ONCE#x' })).toBeUndefined();
  });

  it('derives only the documented types, whatever the event', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('consent.granted', 'consent.withdrawn', 'signal.recorded', 'erasure.completed', 'x'),
        fc.dictionary(fc.string(), fc.jsonValue()),
        (type, data) => {
          const change = changeFromEventItem({
            PK: 'T#acme#S#k',
            SK: 'EV#000000000001',
            eventId: 'e',
            at: T0,
            type,
            data,
          });
          if (change) expect([...CHANGE_TYPES]).toContain(change.body.type);
        },
      ),
    );
  });
});

describe('consent.expired', () => {
  const state = () => {
    let s = emptyState(subjectKey);
    s = grantConsent(
      s,
      {
        channel: 'sms',
        purpose: 'marketing',
        source: 'web_form',
        noticeVersion: 'v3',
        grantedAt: T0,
        expiresAt: '2026-11-25T00:00:00.000Z',
      },
      { seq: 1, eventId: 'g1' },
      T0,
    ).state;
    s = grantConsent(
      s,
      {
        channel: 'email',
        purpose: 'news',
        source: 'web_form',
        noticeVersion: 'v3',
        grantedAt: T0,
        expiresAt: '2026-11-25T00:00:00.000Z',
      },
      { seq: 2, eventId: 'g2' },
      T0,
    ).state;
    s = withdrawConsent(
      s,
      { channel: 'email', source: 'api', at: '2026-11-21T00:00:00.000Z' },
      { seq: 3, eventId: 'w1' },
      T0,
    ).state;
    return s;
  };

  it('finds the consents whose expiry fell in the window and that were still granted', () => {
    expect(expiredGrants(state(), '2026-11-24T00:00:00.000Z', '2026-11-26T00:00:00.000Z')).toEqual([
      {
        grantEventId: 'g1',
        channel: 'sms',
        purpose: 'marketing',
        source: 'web_form',
        expiresAt: '2026-11-25T00:00:00.000Z',
        noticeVersion: 'v3',
      },
    ]);
    expect(expiredGrants(state(), '2026-11-25T00:00:00.000Z', '2026-11-26T00:00:00.000Z')).toEqual([]);
    expect(expiredGrants(state(), '2026-11-23T00:00:00.000Z', '2026-11-24T23:59:59.999Z')).toEqual([]);
  });

  it('reads an expiry record back as the change it stands for', () => {
    const change = changeFromExpiryItem({
      PK: 'T#acme#S#sk-1',
      SK: 'EXP#g1',
      grantEventId: 'g1',
      channel: 'sms',
      purpose: 'marketing',
      source: 'web_form',
      expiresAt: '2026-11-25T00:00:00.000Z',
      recordedAt: '2026-11-26T03:15:00.000Z',
    });
    expect(change).toMatchObject({
      webhookId: 'msg_exp_g1',
      sortKey: '2026-11-26T03:15:00.000Z#exp_g1',
      body: {
        type: 'consent.expired',
        timestamp: '2026-11-26T03:15:00.000Z',
        data: { eventId: 'g1', at: '2026-11-25T00:00:00.000Z', scopes: [{ channel: 'sms', purpose: 'marketing' }] },
      },
    });
  });
});

describe('the retry schedule', () => {
  it('starts at 5 s, doubles, is capped at 1 h, and lasts at least 72 h in about 80 attempts', () => {
    expect([1, 2, 3, 4].map((n) => retryDelayMs(n, RETRY_SCHEDULE))).toEqual([5_000, 10_000, 20_000, 40_000]);
    expect(retryDelayMs(11, RETRY_SCHEDULE)).toBe(3_600_000);
    expect(retryDelayMs(50, RETRY_SCHEDULE)).toBe(3_600_000);
    let elapsed = 0;
    let attempts = 1;
    while (elapsed < RETRY_SCHEDULE.windowMs) elapsed += retryDelayMs(attempts++, RETRY_SCHEDULE);
    expect(attempts).toBeGreaterThan(70);
    expect(attempts).toBeLessThan(90);
  });
});
