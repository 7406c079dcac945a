import { describe, expect, it } from 'vitest';
import { erasureDeadline, erasureSelection } from '#domain/erasure.ts';

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
    expect(erasureSelection({}, now)).toEqual({ received: true, completed: true });
    expect(erasureSelection({ status: 'received' }, now)).toEqual({ received: true, completed: false });
    expect(erasureSelection({ status: 'pending' }, now)).toEqual({ received: true, completed: false });
    expect(erasureSelection({ status: 'completed' }, now)).toEqual({ received: false, completed: true });
    expect(erasureSelection({ status: 'overdue' }, now)).toEqual({
      received: true,
      completed: false,
      dueBefore: '2026-11-25T12:00:00.000Z',
    });
    expect(erasureSelection({ status: 'pending', dueWithinDays: 7 }, now)).toEqual({
      received: true,
      completed: false,
      dueBefore: '2026-12-02T12:00:00.000Z',
    });
  });
});
