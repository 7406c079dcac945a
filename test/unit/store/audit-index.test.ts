import { describe, expect, it } from 'vitest';
import { daysOf, decodeCursor, encodeCursor } from '#store/audit-index.ts';

describe('index days and cursors', () => {
  it('lists the UTC days a range touches, `to` excluded', () => {
    expect(daysOf({ from: '2026-10-31T23:00:00.000Z', to: '2026-11-02T00:00:00.000Z' })).toEqual([
      '2026-10-31',
      '2026-11-01',
    ]);
    expect(daysOf({ from: '2026-11-01T00:00:00.000Z', to: '2026-11-01T00:00:00.001Z' })).toEqual(['2026-11-01']);
  });

  it('round-trips a cursor and refuses one outside the range', () => {
    const range = { from: '2026-11-01T00:00:00.000Z', to: '2026-11-02T00:00:00.000Z' };
    const key = '2026-11-01T10:00:00.000Z#01KABCDEFGHJKMNPQRSTVWXYZ0';
    expect(decodeCursor(encodeCursor(key), range)).toBe(key);
    expect(() => decodeCursor(encodeCursor('2026-11-03T10:00:00.000Z#01K'), range)).toThrow(/range/);
    expect(() => decodeCursor(encodeCursor('2026-11-01T10:00:00.000Z'), range)).toThrow(/cursor/);
  });
});
