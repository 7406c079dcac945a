import { DAY_MS } from '#shared/time.ts';
import { DomainError } from './errors.ts';
import { keptAfterErasure } from './rights.ts';
import { type Change, type ErasureState, latest, type SubjectState } from './subject-state.ts';

/**
 * The answer deadline of a rights request: one calendar month after receipt (GDPR Art. 12(3)), the
 * same day of the next month or its last day when that month is shorter (31 Jan → 28/29 Feb).
 * `months` counts further months the same way (an extension).
 */
export function dueBy(receivedAt: string, months = 1): string {
  const d = new Date(receivedAt);
  const year = d.getUTCFullYear();
  const month = d.getUTCMonth() + months;
  const lastDay = new Date(Date.UTC(year, month + 1, 0)).getUTCDate();
  const due = new Date(d);
  due.setUTCDate(1);
  due.setUTCMonth(month);
  due.setUTCDate(Math.min(d.getUTCDate(), lastDay));
  return due.toISOString();
}

/** Until when an erasure keeps its proof events: `proofDays` after it (0: only the tombstone stays). */
export const proofUntil = (erasedAt: string, proofDays: number) =>
  new Date(Date.parse(erasedAt) + proofDays * DAY_MS).toISOString();

/**
 * What a completed request keeps, why and until when (`erasedAt + proofDays` of the current policy, as
 * the retention job reads it); null while it is not completed.
 */
export const keptOf = (request: { status: StoredErasureStatus; completedAt?: string }, proofDays: number) =>
  request.status === 'completed' && request.completedAt
    ? keptAfterErasure(proofUntil(request.completedAt, proofDays))
    : null;

/** The stored status of an erasure request. */
export type StoredErasureStatus = 'received' | 'completed' | 'cancelled';
/** The shown status: `overdue` is a received request past its due date. */
export type ErasureStatus = StoredErasureStatus | 'overdue';

/** Status shown for a request: `overdue` when received and past its due date. */
export function erasureStatus(request: { status: StoredErasureStatus; dueBy: string }, now: number): ErasureStatus {
  return request.status === 'received' && Date.parse(request.dueBy) <= now ? 'overdue' : request.status;
}

/** An erasure request as the DPO sees it: its shown status and the whole days left to its deadline (negative: late). */
export function erasureDeadline<R extends { status: StoredErasureStatus; dueBy: string }>(
  request: R,
  now: number,
): Omit<R, 'status'> & { status: ErasureStatus; daysLeft: number | null } {
  return {
    ...request,
    status: erasureStatus(request, now),
    daysLeft: request.status !== 'received' ? null : Math.trunc((Date.parse(request.dueBy) - now) / DAY_MS) || 0,
  };
}

/** What a listing of erasure requests asks for: a status and, for deadlines, a horizon in days. */
export interface ErasureQuery {
  status?: ErasureStatus | 'pending';
  dueWithinDays?: number;
}

/**
 * The stored requests a listing reads: `received` ones (only those due before `dueBefore`, when set)
 * and/or `completed` and `cancelled` ones. `pending` = every received one; `overdue` = received and past
 * `dueBy`; `dueWithinDays` = received and due before now + N days (overdue ones included: they are due
 * too); neither status nor horizon = every request.
 */
export function erasureSelection(
  query: ErasureQuery,
  now: number,
): { received: boolean; completed: boolean; cancelled: boolean; dueBefore?: string } {
  const dueBefore =
    query.dueWithinDays !== undefined
      ? now + query.dueWithinDays * DAY_MS
      : query.status === 'overdue'
        ? now
        : undefined;
  const all = query.status === undefined && query.dueWithinDays === undefined;
  return {
    received: query.status !== 'completed' && query.status !== 'cancelled',
    completed: query.status === 'completed' || all,
    cancelled: query.status === 'cancelled' || all,
    ...(dueBefore === undefined ? {} : { dueBefore: new Date(dueBefore).toISOString() }),
  };
}

/** A refused change of an erasure request (`erasure_completed`, `erasure_cancelled`, `already_extended`, `extension_too_late`). */
export class ErasureRefused extends DomainError {}

/** The request must still be received (neither carried out nor cancelled) to be changed. */
export function assertReceived(request: { requestId: string; status: StoredErasureStatus }): void {
  if (request.status === 'completed') {
    throw new ErasureRefused('erasure_completed', `erasure request ${request.requestId} was already carried out`);
  }
  if (request.status === 'cancelled') {
    throw new ErasureRefused('erasure_cancelled', `erasure request ${request.requestId} was cancelled`);
  }
}

/** A request can be cancelled while it is received; cancelling a cancelled one again changes nothing. */
export function assertCancellable(request: { requestId: string; status: StoredErasureStatus }): void {
  if (request.status !== 'cancelled') assertReceived(request);
}

/** What an extension of the deadline changes on a request. */
export interface ErasureExtension {
  dueBy: string;
  extendedAt: string;
  extensionMonths: 1 | 2;
  extensionReason: string;
}

/**
 * Extends a request's deadline (GDPR Art. 12(3)): once, while the first month runs (up to and including
 * its `dueBy`), by one or two months counted from that `dueBy`, so at most two further months in all.
 */
export function extendErasure(
  request: { requestId: string; status: StoredErasureStatus; dueBy: string; extendedAt?: string },
  input: { months: 1 | 2; reason: string },
  now: string,
): ErasureExtension {
  assertReceived(request);
  if (request.extendedAt) {
    throw new ErasureRefused(
      'already_extended',
      `the deadline of ${request.requestId} was already extended on ${request.extendedAt}: it can be extended once`,
    );
  }
  if (Date.parse(now) > Date.parse(request.dueBy)) {
    throw new ErasureRefused(
      'extension_too_late',
      `the first month of ${request.requestId} ended on ${request.dueBy}: an extension must be decided within it`,
    );
  }
  return {
    dueBy: dueBy(request.dueBy, input.months),
    extendedAt: now,
    extensionMonths: input.months,
    extensionReason: input.reason,
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
 * Takes back a subject's `erasure_pending` when its erasure request is cancelled. The subject stays
 * pending if `stillPending` (another received request that covers it) says so. A subject whose pending
 * state is another request's, or that is erased, is left as it is (nothing recorded: a repeated cancel
 * records nothing either). The reason, written by a person about a person, is a personal detail.
 */
export function cancelErasure(
  current: SubjectState,
  input: { requestId: string; reason?: string; stillPending?: ErasureState },
  now: string,
): Change | null {
  if (current.erasure?.status !== 'received' || current.erasure.requestId !== input.requestId) return null;
  const { erasure: _cleared, ...rest } = current;
  return {
    state: input.stillPending ? { ...rest, erasure: input.stillPending } : rest,
    event: {
      type: 'erasure.cancelled',
      at: now,
      data: { requestId: input.requestId },
      ...(input.reason ? { details: { reason: input.reason } } : {}),
    },
  };
}

/**
 * The tombstone that replaces an erased subject's state: no consents, signals or sends; only what keeps
 * the person out of future imports and contacts (Art. 17(3), Art. 21(3)).
 */
export function tombstone(
  current: SubjectState,
  requestId: string,
  now: string,
  kept: { reason: 'request' | 'retention'; proofUntil?: string } = { reason: 'request' },
): Change {
  // Event time decides: an earlier erasure arriving late neither moves the closing back nor drops a
  // withdrawal or the person's own consent dated after it (possible within the allowed clock skew).
  const erasedAt = current.erasure?.status === 'completed' ? (latest(current.erasure.erasedAt, now) as string) : now;
  const after = (t?: string) => !!t && Date.parse(t) > Date.parse(erasedAt);
  return {
    state: {
      subjectKey: current.subjectKey,
      kind: current.kind,
      version: current.version,
      seq: 0,
      head: '',
      scopes: Object.fromEntries(
        Object.entries(current.scopes).filter(([, e]) => after(e?.withdrawnAt) || after(e?.ownGrantAt)),
      ),
      erasure: {
        requestId,
        status: 'completed',
        receivedAt: current.erasure?.receivedAt ?? now,
        erasedAt,
        ...kept,
      },
    },
    event: { type: 'erasure.completed', at: now, data: { requestId, ...kept } },
  };
}
