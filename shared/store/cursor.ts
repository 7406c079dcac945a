import type * as z from 'zod';
import { InvalidCursor } from './errors.ts';

/**
 * Opaque paging cursors: a small JSON position, base64url. The store decodes and checks them against a
 * schema, so a forged or foreign cursor is a 400 `invalid_cursor`, never a store error.
 */
export const encodePosition = (position: object): string =>
  Buffer.from(JSON.stringify({ v: 1, ...position })).toString('base64url');

/** The position a cursor stands for, or {@link InvalidCursor}. */
export function decodePosition<S extends z.ZodType>(cursor: string, schema: S): z.infer<S> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    parsed = undefined;
  }
  const result = schema.safeParse(parsed);
  if (!result.success || (parsed as { v?: unknown }).v !== 1) {
    throw new InvalidCursor('cursor is not one this service handed out (X-Next-Cursor)');
  }
  return result.data;
}
