import { DomainError } from '#domain/errors.ts';
import { logger } from '#shared/log.ts';

/**
 * Store failures. Plain errors with a stable `code`: the store knows nothing of HTTP; `toProblem` in the
 * HTTP layer shows them (503 with Retry-After, or 400 for a cursor this service never handed out).
 */
export class StoreError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** The store could not be read or written: the caller must not send (fail closed). */
export class StoreUnavailable extends StoreError {
  constructor(detail = 'the consent store is unavailable; do not send until it answers') {
    super('store_unavailable', detail);
  }
}

/** Concurrent writers kept winning: the change was not made; retrying may succeed. */
export class WriteContention extends StoreError {
  constructor(detail: string) {
    super('write_contention', detail);
  }
}

/** A paging cursor that this service did not hand out, or not for this query. */
export class InvalidCursor extends StoreError {
  constructor(detail: string) {
    super('invalid_cursor', detail);
  }
}

/** True for a cancelled transaction or failed condition caused by a concurrent writer. */
export function isWriteConflict(error: unknown): boolean {
  const e = error as { name?: string; CancellationReasons?: { Code?: string }[] };
  if (e?.name === 'ConditionalCheckFailedException' || e?.name === 'TransactionConflictException') return true;
  if (e?.name !== 'TransactionCanceledException') return false;
  const codes = (e.CancellationReasons ?? []).map((r) => r.Code ?? 'None');
  return codes.some((c) => c === 'ConditionalCheckFailed' || c === 'TransactionConflict');
}

/**
 * Anything the store throws that is not a domain answer or a store error already becomes
 * {@link StoreUnavailable}: the caller must not send. Only the error's name and code are logged (SDK
 * messages can quote key values).
 */
export function storeFailure(error: unknown, operation: string): StoreError | DomainError {
  if (error instanceof StoreError || error instanceof DomainError) return error;
  const e = error as { name?: string; $metadata?: { httpStatusCode?: number } };
  logger.error('store operation failed', {
    operation,
    errorName: e?.name ?? typeof error,
    httpStatus: e?.$metadata?.httpStatusCode,
  });
  return new StoreUnavailable();
}

/** Full-jitter exponential backoff (AWS Architecture Blog), capped. */
export function backoffMs(attempt: number, baseMs = 8, capMs = 250): number {
  return Math.random() * Math.min(capMs, baseMs * 2 ** attempt);
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
