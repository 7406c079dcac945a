import { DomainError, TooManyLinks, TooManyScopes } from '#domain/errors.ts';
import { InvalidCursor, StoreError } from '#store/errors.ts';

/** One field-level problem: `path` is the dotted path into the request body. */
export interface FieldError {
  path: string;
  message: string;
}

/** An error that maps onto an RFC 9457 problem document. Thrown by handlers, rendered by one middleware. */
export class ProblemError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly title: string,
    readonly detail: string,
    readonly errors?: FieldError[],
    readonly headers?: Record<string, string>,
  ) {
    super(detail);
    this.name = 'ProblemError';
  }
}

export class ValidationError extends ProblemError {
  constructor(detail: string, errors?: FieldError[], code = 'validation_failed') {
    super(400, code, 'Invalid request', detail, errors);
  }
}

export class MalformedJsonError extends ProblemError {
  constructor(detail: string) {
    super(400, 'malformed_json', 'Malformed JSON', detail);
  }
}

export class InvalidIdentifierError extends ProblemError {
  constructor(path: string, message: string) {
    super(400, 'invalid_identifier', 'Invalid identifier', `${path}: ${message}`, [{ path, message }]);
  }
}

export class IdentifierChannelMismatchError extends ProblemError {
  constructor(path: string, message: string) {
    super(400, 'identifier_channel_mismatch', 'Identifier cannot be reached on this channel', message, [
      { path, message },
    ]);
  }
}

export class UnauthorizedError extends ProblemError {
  constructor(detail = 'missing, unknown or revoked API key: send "Authorization: Bearer <api key>"') {
    super(401, 'unauthorized', 'Unauthorized', detail, undefined, { 'www-authenticate': 'Bearer' });
  }
}

export class ForbiddenError extends ProblemError {
  constructor(scope: string) {
    super(403, 'forbidden', 'Forbidden', `this API key lacks the scope "${scope}" that this route needs`);
  }
}

export class NotFoundError extends ProblemError {
  constructor(detail = 'no such resource', code = 'not_found') {
    super(404, code, 'Not found', detail);
  }
}

export class MethodNotAllowedError extends ProblemError {
  constructor(allowed: string[]) {
    super(405, 'method_not_allowed', 'Method not allowed', `this path accepts ${allowed.join(', ')}`, undefined, {
      allow: allowed.join(', '),
    });
  }
}

export class ConflictError extends ProblemError {
  constructor(code: string, detail: string) {
    super(409, code, 'Conflict', detail);
  }
}

/** 409 `not_sealed`: the event is recorded, its leaf in the log a few seconds away (retry after a second). */
export class NotSealedError extends ProblemError {
  constructor(detail: string) {
    super(409, 'not_sealed', 'Not sealed yet', detail, undefined, { 'retry-after': '1' });
  }
}

/** A consent or policy names a notice version that is not registered, while the policy requires registered ones. */
export class UnknownNoticeError extends ProblemError {
  constructor(version: string, path = 'noticeVersion') {
    const message = `notice ${version} is not registered (POST /v1/notices) and the policy requires registered notices`;
    super(422, 'unknown_notice', 'Unknown notice', message, [{ path, message: 'is not a registered notice version' }]);
  }
}

export class PayloadTooLargeError extends ProblemError {
  constructor(limit: number) {
    super(413, 'payload_too_large', 'Payload too large', `the body is larger than ${limit} bytes`);
  }
}

export class UnsupportedMediaTypeError extends ProblemError {
  constructor(expected = 'application/json') {
    super(415, 'unsupported_media_type', 'Unsupported media type', `send the body as ${expected}`);
  }
}

/** The store could not be read or written: fail closed. */
export class ServiceUnavailableError extends ProblemError {
  constructor(detail = 'the consent store is unavailable; do not send until it answers', code = 'store_unavailable') {
    super(503, code, 'Service unavailable', detail, undefined, { 'retry-after': '1' });
  }
}

/**
 * How a thrown error is shown to a caller: a domain refusal is a 409 (too many scopes or identifiers: 422), a cursor this service did not hand
 * out a 400, any other store failure a 503 (retry later); problems pass through. Undefined for anything
 * else (a bug: the caller answers 500).
 */
export function toProblem(error: unknown): ProblemError | undefined {
  if (error instanceof ProblemError) return error;
  if (error instanceof TooManyScopes) {
    return new ProblemError(422, error.code, 'Too many scopes', error.message, [
      { path: 'purpose', message: 'the subject already holds the most scopes it may' },
    ]);
  }
  if (error instanceof TooManyLinks) {
    return new ProblemError(422, error.code, 'Too many identifiers', error.message, [
      { path: 'subjects', message: 'a person has at most 10 identifiers' },
    ]);
  }
  if (error instanceof DomainError) return new ConflictError(error.code, error.message);
  if (error instanceof InvalidCursor) return new ValidationError(error.message, undefined, error.code);
  if (error instanceof StoreError) return new ServiceUnavailableError(error.message, error.code);
  return undefined;
}
