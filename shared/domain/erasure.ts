import { DAY_MS } from '#shared/time.ts';
import type { Change, SubjectState } from './subject-state.ts';

/**
 * The answer deadline of a rights request: one calendar month after receipt (GDPR Art. 12(3)), the
 * same day of the next month or its last day when that month is shorter (31 Jan → 28/29 Feb).
 */
export function dueBy(receivedAt: string): string {
  const d = new Date(receivedAt);
  const year = d.getUTCFullYear();
  const month = d.getUTCMonth() + 1;
  const lastDay = new Date(Date.UTC(year, month + 1, 0)).getUTCDate();
  const due = new Date(d);
  due.setUTCDate(1);
  due.setUTCMonth(month);
  due.setUTCDate(Math.min(d.getUTCDate(), lastDay));
  return due.toISOString();
}

/** Status shown for a request: `overdue` when received and past its due date. */
export function erasureStatus(
  request: { status: 'received' | 'completed'; dueBy: string },
  now: number,
): 'received' | 'completed' | 'overdue' {
  return request.status === 'received' && Date.parse(request.dueBy) <= now ? 'overdue' : request.status;
}

/** An erasure request as the DPO sees it: its shown status and the whole days left to its deadline (negative: late). */
export function erasureDeadline<R extends { status: 'received' | 'completed'; dueBy: string }>(
  request: R,
  now: number,
): Omit<R, 'status'> & { status: 'received' | 'completed' | 'overdue'; daysLeft: number | null } {
  return {
    ...request,
    status: erasureStatus(request, now),
    daysLeft: request.status === 'completed' ? null : Math.trunc((Date.parse(request.dueBy) - now) / DAY_MS) || 0,
  };
}

/** What a listing of erasure requests asks for: a status and, for deadlines, a horizon in days. */
export interface ErasureQuery {
  status?: 'received' | 'completed' | 'overdue' | 'pending';
  dueWithinDays?: number;
}

/**
 * The stored requests a listing reads: `received` ones (only those due before `dueBefore`, when set)
 * and/or `completed` ones. `pending` = every received one; `overdue` = received and past `dueBy`;
 * `dueWithinDays` = received and due before now + N days (overdue ones included: they are due too);
 * neither status nor horizon = every request.
 */
export function erasureSelection(
  query: ErasureQuery,
  now: number,
): { received: boolean; completed: boolean; dueBefore?: string } {
  const dueBefore =
    query.dueWithinDays !== undefined
      ? now + query.dueWithinDays * DAY_MS
      : query.status === 'overdue'
        ? now
        : undefined;
  return {
    received: query.status !== 'completed',
    completed: query.status === 'completed' || (query.status === undefined && query.dueWithinDays === undefined),
    ...(dueBefore === undefined ? {} : { dueBefore: new Date(dueBefore).toISOString() }),
  };
}

/** Marks a subject as to be erased: from now on the gate blocks it (`erasure_pending`). */
export function requestErasure(current: SubjectState, requestId: string, now: string): Change {
  return {
    state: { ...current, erasure: { requestId, status: 'received', receivedAt: now } },
    event: { type: 'erasure.requested', at: now, data: { requestId } },
  };
}

/**
 * The tombstone that replaces an erased subject's state: no consents, signals or sends; only what keeps
 * the person out of future imports and contacts (Art. 17(3), Art. 21(3)).
 */
export function tombstone(current: SubjectState, requestId: string, now: string): Change {
  return {
    state: {
      subjectKey: current.subjectKey,
      kind: current.kind,
      version: current.version,
      seq: 0,
      head: '',
      scopes: {},
      erasure: {
        requestId,
        status: 'completed',
        receivedAt: current.erasure?.receivedAt ?? now,
        erasedAt: now,
      },
    },
    event: { type: 'erasure.completed', at: now, data: { requestId } },
  };
}
