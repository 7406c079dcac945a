import { describe, expect, it } from 'vitest';
import { FreshConsentRequired, SubjectErased } from '#domain/errors.ts';
import { ConflictError, NotFoundError, ServiceUnavailableError, toProblem, ValidationError } from '#http/errors.ts';
import { InvalidCursor, StoreUnavailable, WriteContention } from '#store/errors.ts';

describe('toProblem', () => {
  it('shows a domain refusal as a 409 with its code and detail', () => {
    expect(toProblem(new FreshConsentRequired('only a fresh consent'))).toEqual(
      new ConflictError('fresh_consent_required', 'only a fresh consent'),
    );
    expect(toProblem(new SubjectErased('2026-11-01T00:00:00.000Z'))).toMatchObject({
      status: 409,
      code: 'subject_erased',
      title: 'Conflict',
      detail: "this subject's data was erased on 2026-11-01T00:00:00.000Z: no new signal is kept about them",
    });
  });

  it('shows a store failure as a 503 with Retry-After, a foreign cursor as a 400', () => {
    expect(toProblem(new StoreUnavailable())).toEqual(new ServiceUnavailableError());
    expect(toProblem(new WriteContention('retry'))).toMatchObject({
      status: 503,
      code: 'write_contention',
      detail: 'retry',
      headers: { 'retry-after': '1' },
    });
    expect(toProblem(new InvalidCursor('not ours'))).toEqual(
      new ValidationError('not ours', undefined, 'invalid_cursor'),
    );
  });

  it('passes problems through and leaves anything else to the 500', () => {
    const problem = new NotFoundError();
    expect(toProblem(problem)).toBe(problem);
    expect(toProblem(new Error('bug'))).toBeUndefined();
    expect(toProblem('thrown string')).toBeUndefined();
  });
});
