import { describe, expect, it } from 'vitest';
import { AuditEventsQuerySchema, AuditRangeQuerySchema } from '#shared/schemas/audit.ts';

describe('audit query ranges', () => {
  it('reads days and zoned times, normalised to UTC', () => {
    expect(AuditRangeQuerySchema.parse({ from: '2026-11-01', to: '2026-11-02T01:00:00+02:00' })).toEqual({
      from: '2026-11-01T00:00:00.000Z',
      to: '2026-11-01T23:00:00.000Z',
    });
  });

  it('rejects empty, reversed, over-long and zone-less ranges', () => {
    for (const bad of [
      { from: '2026-11-02', to: '2026-11-02' },
      { from: '2026-11-02', to: '2026-11-01' },
      { from: '2025-01-01', to: '2026-01-03' },
      { from: '2026-11-01T10:00:00', to: '2026-11-02' },
      { from: '2026-13-01', to: '2026-11-02' },
    ]) {
      expect(AuditRangeQuerySchema.safeParse(bad).success, JSON.stringify(bad)).toBe(false);
    }
    expect(AuditRangeQuerySchema.safeParse({ from: '2025-01-01', to: '2026-01-02' }).success).toBe(true);
  });

  it('defaults the page to NDJSON, 1000 events, and caps it at 5000', () => {
    expect(AuditEventsQuerySchema.parse({ from: '2026-11-01', to: '2026-11-02' })).toMatchObject({
      format: 'ndjson',
      limit: 1000,
    });
    expect(AuditEventsQuerySchema.safeParse({ from: '2026-11-01', to: '2026-11-02', limit: '5001' }).success).toBe(
      false,
    );
  });
});
