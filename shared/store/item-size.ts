/**
 * The size DynamoDB gives an item, by AWS's documented rules ("DynamoDB item sizes and formats",
 * https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html): the
 * UTF-8 bytes of every attribute name plus its value — a string its UTF-8 bytes, a number one byte per two
 * significant digits plus one, a binary its raw bytes, a boolean or null one byte, a list or map three bytes
 * plus one per element (plus the element's name in a map), a set the sum of its members. A strongly
 * consistent read costs one read unit per started 4 KB of this size.
 */
export function itemSize(item: Record<string, unknown>): number {
  let total = 0;
  for (const [name, value] of Object.entries(item)) {
    if (value !== undefined) total += Buffer.byteLength(name) + valueSize(value);
  }
  return total;
}

/** Read units of a strongly consistent GetItem of an item of `bytes` (eventually consistent: half). */
export const readUnits = (bytes: number) => Math.max(1, Math.ceil(bytes / 4096));

/** Significant digits of a number as DynamoDB keeps it: no sign, point, exponent, leading or trailing zeros. */
function significantDigits(n: number): number {
  const [mantissa] = Math.abs(n).toExponential().split('e');
  const digits = mantissa.replace('.', '').replace(/0+$/, '');
  return Math.max(1, digits.length);
}

function valueSize(value: unknown): number {
  if (typeof value === 'string') return Buffer.byteLength(value);
  if (typeof value === 'number') return Math.ceil(significantDigits(value) / 2) + 1;
  if (typeof value === 'bigint') return Math.ceil(significantDigits(Number(value)) / 2) + 1;
  if (typeof value === 'boolean' || value === null) return 1;
  if (value instanceof Uint8Array) return value.byteLength;
  if (value instanceof Set) return [...value].reduce((n: number, member) => n + valueSize(member), 0);
  if (Array.isArray(value)) return 3 + value.reduce((n: number, e) => n + 1 + valueSize(e), 0);
  if (typeof value === 'object') {
    return (
      3 +
      Object.entries(value as Record<string, unknown>)
        .filter(([, e]) => e !== undefined)
        .reduce((n, [k, e]) => n + 1 + Buffer.byteLength(k) + valueSize(e), 0)
    );
  }
  return 0;
}
