import type * as z from 'zod';
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

/** Parses with a schema or throws a 400 listing every field problem; `path` prefixes the field paths. */
export function parseOrThrow<S extends z.ZodType>(schema: S, value: unknown, path?: string): z.infer<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const errors = fieldErrors(result.error, path ? path.split('.') : []);
  const first = errors.slice(0, 3).map((e) => `${e.path}: ${e.message}`);
  const what = path ?? 'the request body';
  throw new ValidationError(`${what} is invalid — ${first.join('; ')}${errors.length > 3 ? '; …' : ''}`, errors);
}
