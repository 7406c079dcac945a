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

/** A lone UTF-16 surrogate: JSON's `"\\ud800"` parses to one, and no byte encoding (UTF-8, DynamoDB, hashes) can carry it. */
const LONE_SURROGATE = /\p{Surrogate}/u;

/**
 * DynamoDB stores numbers from 1E-130 to 9.9999999999999999999999999999999999999E+125 (and 0): anything
 * else would be refused by the store, a 503 for what is bad input. JSON numbers outside are refused here.
 */
const storableNumber = (n: number) => n === 0 || (Math.abs(n) >= 1e-130 && Math.abs(n) < 1e125);

/**
 * Checks a parsed request value once, whatever the route's schema: every string (object keys included) is
 * well-formed Unicode (400 `invalid_unicode` otherwise) and every number is one the store can keep (400
 * `validation_failed`). `path` names where the value came from (`query`, `requestId`) in the field errors.
 */
export function assertWellFormed(value: unknown, path: readonly PropertyKey[] = []): void {
  // Iterative, with each node's path built only on failure: a body nested 100,000 levels deep (valid JSON)
  // neither overflows the stack nor costs quadratic time.
  type Node = { value: unknown; key?: PropertyKey; parent?: Node };
  const where = (node: Node) => {
    const keys: PropertyKey[] = [];
    for (let n: Node | undefined = node; n?.parent; n = n.parent) keys.unshift(n.key as PropertyKey);
    return issuePath([...path, ...keys]) || '(body)';
  };
  const stack: Node[] = [{ value }];
  for (let node = stack.pop(); node; node = stack.pop()) {
    const v = node.value;
    if (typeof v === 'string') {
      if (LONE_SURROGATE.test(v)) {
        const message = 'is not well-formed Unicode (it holds a lone UTF-16 surrogate)';
        throw new ValidationError(`${where(node)} ${message}`, [{ path: where(node), message }], 'invalid_unicode');
      }
    } else if (typeof v === 'number') {
      if (!storableNumber(v)) {
        const message = 'must be 0 or between 1e-130 and 1e125 in magnitude';
        throw new ValidationError(`${where(node)} ${message}`, [{ path: where(node), message }]);
      }
    } else if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) stack.push({ value: v[i], key: i, parent: node });
    } else if (v && typeof v === 'object') {
      for (const [key, item] of Object.entries(v).reverse()) {
        stack.push({ value: item, key, parent: node }, { value: key, key, parent: node });
      }
    }
  }
}

/**
 * A copy of a parsed value with every lone surrogate replaced by U+FFFD, for payloads that cannot be refused
 * (a provider's signed webhook: a 4xx makes it redeliver the whole batch, STOPs included, forever).
 */
export function withWellFormedStrings<T>(value: T): T {
  if (typeof value === 'string') return value.replace(/\p{Surrogate}/gu, '\uFFFD') as T;
  if (Array.isArray(value)) return value.map(withWellFormedStrings) as T;
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [withWellFormedStrings(k), withWellFormedStrings(v)]),
    ) as T;
  }
  return value;
}
