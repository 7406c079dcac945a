import { describe, expect, it } from 'vitest';
import { levelShare, SummaryBuilder } from '#domain/audit-summary.ts';

describe('summary', () => {
  it('counts per day × type × channel, with every day of the range present', () => {
    const b = new SummaryBuilder(['2026-11-01', '2026-11-02', '2026-11-03']);
    b.add({ at: '2026-11-01T10:00:00.000Z', type: 'consent.granted', channel: 'whatsapp' });
    b.add({ at: '2026-11-01T11:00:00.000Z', type: 'consent.granted', channel: 'whatsapp' });
    b.add({ at: '2026-11-03T11:00:00.000Z', type: 'erasure.requested', channel: null });
    const s = b.result({ from: '2026-11-01T00:00:00.000Z', to: '2026-11-04T00:00:00.000Z' });
    expect(s.total).toBe(3);
    expect(s.days.map((d) => [d.day, d.total])).toEqual([
      ['2026-11-01', 2],
      ['2026-11-02', 0],
      ['2026-11-03', 1],
    ]);
    expect(s.counts).toEqual([
      { day: '2026-11-01', type: 'consent.granted', channel: 'whatsapp', count: 2 },
      { day: '2026-11-03', type: 'erasure.requested', channel: '*', count: 1 },
    ]);
    expect(s.types).toEqual({ 'consent.granted': 2, 'erasure.requested': 1 });
    expect(s.channels).toEqual({ whatsapp: 2, '*': 1 });
  });

  it('shares contacts by block level', () => {
    expect(levelShare(['none', 'none', 'likely', 'suspected'])).toEqual({
      total: 4,
      counts: { none: 2, suspected: 1, likely: 1 },
      share: { none: 0.5, suspected: 0.25, likely: 0.25 },
    });
    expect(levelShare([]).share).toEqual({ none: 0, suspected: 0, likely: 0 });
  });
});
