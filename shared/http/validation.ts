import type * as z from 'zod';
import { isInFuture } from '#shared/time.ts';
import { type FieldError, ValidationError } from './errors.ts';

/** A zod issue path as the dotted path of the API (`items.3.subject.phone`). */
export const issuePath = (path: readonly PropertyKey[]) => path.map(String).join('.');

/** zod issues as API field errors. Unknown keys are reported one path each, so typos are easy to find. */
export function fieldErrors(error: z.ZodError, prefix: readonly PropertyKey[] = []): FieldError[] {
  return error.issues.flatMap((issue) => {
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((k) => ({ path: issuePath([...prefix, ...issue.path, k]), message: 'unknown field' }));
    }
    return [{ path: issuePath([...prefix, ...issue.path]) || '(body)', message: issue.message }];
  });
}

/** A client-given time, or a 400 `time_in_future` when it is ahead of `now` by more than the allowed clock skew. */
export function notInFuture(at: string | undefined, path: string, now: string): string | undefined {
  if (at && isInFuture(at, now)) {
    throw new ValidationError(
      `${path} is in the future`,
      [{ path, message: 'is more than 5 minutes in the future' }],
      'time_in_future',
    );
  }
  return at;
}

/** Parses with a schema or throws a 400 listing every field problem; `path` prefixes the field paths. */
export function parseOrThrow<S extends z.ZodType>(schema: S, value: unknown, path?: string): z.infer<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const errors = fieldErrors(result.error, path ? path.split('.') : []);
  const first = errors.slice(0, 3).map((e) => `${e.path}: ${e.message}`);
  const what = path ?? 'the request body';
  throw new ValidationError(`${what} is invalid — ${first.join('; ')}${errors.length > 3 ? '; …' : ''}`, errors);
}
