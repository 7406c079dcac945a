import { randomInt } from 'node:crypto';
import type { AttributeValue } from '@aws-sdk/client-dynamodb';

/** The p-th percentile (0..1) of a sample, nearest-rank. */
export function percentile(sample: readonly number[], p: number): number {
  if (sample.length === 0) return Number.NaN;
  const sorted = [...sample].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))];
}

export const median = (sample: readonly number[]) => percentile(sample, 0.5);

/** Rounds for the table: 3 significant decimals are plenty for milliseconds. */
export const round = (n: number, digits = 3) => (Number.isFinite(n) ? Number(n.toFixed(digits)) : null);

/** Milliseconds taken by an async call. */
export async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const started = performance.now();
  const value = await fn();
  return { ms: performance.now() - started, value };
}

/** A French mobile number, distinct for distinct `n` below 10^8. */
export const phoneOf = (n: number) => `+336${String(n).padStart(8, '0')}`;
export const randomPhone = () => phoneOf(randomInt(0, 100_000_000));

export { lambdaContext } from '../infra/local/server.ts';
/** Handlers are called the way the tests and the local server call them. */
export { apiEvent } from '../test/helpers/lambda.ts';

/**
 * The size DynamoDB bills for an item (its documented rules: attribute names + values, numbers by
 * significant digits, 3 bytes per map/list plus 1 per element). Good to a few bytes, which is what a
 * 4 KB budget needs.
 */
export function itemBytes(item: Record<string, AttributeValue>): number {
  let total = 0;
  for (const [name, value] of Object.entries(item)) total += Buffer.byteLength(name) + valueBytes(value);
  return total;
}

function valueBytes(v: AttributeValue): number {
  if (v.S !== undefined) return Buffer.byteLength(v.S);
  if (v.N !== undefined) return Math.ceil(v.N.replace(/^-|\.|e.*$/gi, '').replace(/^0+/, '').length / 2) + 1;
  if (v.B !== undefined) return v.B.length;
  if (v.BOOL !== undefined || v.NULL !== undefined) return 1;
  if (v.SS) return v.SS.reduce((n, s) => n + Buffer.byteLength(s), 0);
  if (v.NS) return v.NS.reduce((n, s) => n + valueBytes({ N: s }), 0);
  if (v.L) return 3 + v.L.reduce((n, e) => n + 1 + valueBytes(e), 0);
  if (v.M) return 3 + Object.entries(v.M).reduce((n, [k, e]) => n + 1 + Buffer.byteLength(k) + valueBytes(e), 0);
  return 0;
}
