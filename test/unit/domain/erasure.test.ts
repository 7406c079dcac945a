import { describe, expect, it } from 'vitest';
import {
  assertCancellable,
  cancelErasure,
  dueBy,
  erasureDeadline,
  erasureSelection,
  extendErasure,
  keptOf,
  requestErasure,
} from '#domain/erasure.ts';
import { emptyState } from '#domain/subject-state.ts';

describe('erasure deadlines', () => {
  const now = Date.parse('2026-11-25T12:00:00.000Z');
  it('flags received requests past dueBy as overdue, with negative days left', () => {
    expect(erasureDeadline({ status: 'received', dueBy: '2026-11-20T12:00:00.000Z' }, now)).toMatchObject({
      status: 'overdue',
      daysLeft: -5,
    });
    expect(erasureDeadline({ status: 'received', dueBy: '2026-12-02T13:00:00.000Z' }, now)).toMatchObject({
      status: 'received',
      daysLeft: 7,
    });
    expect(erasureDeadline({ status: 'completed', dueBy: '2026-11-20T12:00:00.000Z' }, now)).toMatchObject({
      status: 'completed',
      daysLeft: null,
    });
  });

  it('selects the stored requests a listing reads', () => {
    const none = { received: false, completed: false, cancelled: false };
    expect(erasureSelection({}, now)).toEqual({ received: true, completed: true, cancelled: true });
    expect(erasureSelection({ status: 'received' }, now)).toEqual({ ...none, received: true });
    expect(erasureSelection({ status: 'pending' }, now)).toEqual({ ...none, received: true });
    expect(erasureSelection({ status: 'completed' }, now)).toEqual({ ...none, completed: true });
    expect(erasureSelection({ status: 'cancelled' }, now)).toEqual({ ...none, cancelled: true });
    expect(erasureSelection({ status: 'overdue' }, now)).toEqual({
      ...none,
      received: true,
      dueBefore: '2026-11-25T12:00:00.000Z',
    });
    expect(erasureSelection({ status: 'pending', dueWithinDays: 7 }, now)).toEqual({
      ...none,
      received: true,
      dueBefore: '2026-12-02T12:00:00.000Z',
    });
  });
});

describe('extending the deadline (Art. 12(3))', () => {
  const request = {
    requestId: 'er_1',
    status: 'received' as const,
    receivedAt: '2026-01-31T10:00:00.000Z',
    dueBy: dueBy('2026-01-31T10:00:00.000Z'),
  };
  const reason = 'many requests this month';

  it('counts further months from the first due date, clamped to the shorter month', () => {
    expect(request.dueBy).toBe('2026-02-28T10:00:00.000Z');
    expect(dueBy('2026-01-31T10:00:00.000Z', 3)).toBe('2026-04-30T10:00:00.000Z');
    expect(dueBy('2026-11-15T10:00:00.000Z', 2)).toBe('2027-01-15T10:00:00.000Z');
  });

  it('extends once, by one or two months, up to and including the first due date', () => {
    expect(extendErasure(request, { months: 2, reason }, '2026-02-10T00:00:00.000Z')).toEqual({
      dueBy: '2026-04-28T10:00:00.000Z',
      extendedAt: '2026-02-10T00:00:00.000Z',
      extensionMonths: 2,
      extensionReason: reason,
    });
    expect(extendErasure(request, { months: 1, reason }, request.dueBy).dueBy).toBe('2026-03-28T10:00:00.000Z');
  });

  it('refuses after the first month, a second time, and on a completed or cancelled request', () => {
    const justAfter = new Date(Date.parse(request.dueBy) + 1).toISOString();
    const code = (fn: () => unknown) => {
      try {
        fn();
      } catch (error) {
        return (error as { code: string }).code;
      }
    };
    expect(code(() => extendErasure(request, { months: 1, reason }, justAfter))).toBe('extension_too_late');
    const extended = { ...request, extendedAt: '2026-02-01T00:00:00.000Z' };
    expect(code(() => extendErasure(extended, { months: 1, reason }, '2026-02-02T00:00:00.000Z'))).toBe(
      'already_extended',
    );
    const at = '2026-02-02T00:00:00.000Z';
    expect(code(() => extendErasure({ ...request, status: 'completed' }, { months: 1, reason }, at))).toBe(
      'erasure_completed',
    );
    expect(code(() => extendErasure({ ...request, status: 'cancelled' }, { months: 1, reason }, at))).toBe(
      'erasure_cancelled',
    );
  });
});

describe('cancelling an erasure request', () => {
  const NOW = '2026-11-10T00:00:00.000Z';
  const flagged = { ...requestErasure(emptyState('S'), 'er_1', '2026-11-01T00:00:00.000Z').state, version: 1, seq: 1 };

  it('may cancel a received or cancelled request, never a completed one', () => {
    expect(() => assertCancellable({ requestId: 'er_1', status: 'received' })).not.toThrow();
    expect(() => assertCancellable({ requestId: 'er_1', status: 'cancelled' })).not.toThrow();
    expect(() => assertCancellable({ requestId: 'er_1', status: 'completed' })).toThrow(
      expect.objectContaining({ code: 'erasure_completed' }),
    );
  });

  it("clears the subject's erasure_pending; the reason goes to the personal details", () => {
    const change = cancelErasure(flagged, { requestId: 'er_1', reason: 'asked by phone' }, NOW);
    expect(change?.state.erasure).toBeUndefined();
    expect(change?.event).toEqual({
      type: 'erasure.cancelled',
      at: NOW,
      data: { requestId: 'er_1' },
      details: { reason: 'asked by phone' },
    });
    expect(cancelErasure(flagged, { requestId: 'er_1' }, NOW)?.event).not.toHaveProperty('details');
  });

  it('keeps the subject pending for another received request, and leaves other states alone', () => {
    const other = { requestId: 'er_0', status: 'received' as const, receivedAt: '2026-10-30T00:00:00.000Z' };
    expect(cancelErasure(flagged, { requestId: 'er_1', stillPending: other }, NOW)?.state.erasure).toEqual(other);
    // Pending for another request, already cancelled (a repeat), erased: nothing to record.
    expect(cancelErasure(flagged, { requestId: 'er_9' }, NOW)).toBeNull();
    expect(cancelErasure(emptyState('S'), { requestId: 'er_1' }, NOW)).toBeNull();
    const erased = { ...flagged, erasure: { ...flagged.erasure!, status: 'completed' as const, erasedAt: NOW } };
    expect(cancelErasure(erased, { requestId: 'er_1' }, NOW)).toBeNull();
  });

  it('shows what a completed request keeps, until erasedAt + proofDays', () => {
    expect(keptOf({ status: 'received' }, 1825)).toBeNull();
    expect(keptOf({ status: 'completed', completedAt: NOW }, 1)).toMatchObject({
      proofUntil: '2026-11-11T00:00:00.000Z',
    });
    expect(keptOf({ status: 'completed', completedAt: NOW }, 0)?.proofUntil).toBe(NOW);
  });
});
