import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { GENESIS_HASH, hashEvent, type LedgerEvent, verifyChain } from '#domain/ledger.ts';

function chain(n: number): LedgerEvent[] {
  const events: LedgerEvent[] = [];
  let prev = GENESIS_HASH;
  for (let seq = 1; seq <= n; seq++) {
    const unhashed = {
      eventId: `ev${seq}`,
      seq,
      type: 'consent.granted' as const,
      at: new Date(Date.UTC(2026, 0, seq)).toISOString(),
      channel: 'whatsapp',
      purpose: 'marketing',
      source: 'web_form',
      data: { noticeVersion: `v${seq}`, nested: { b: 1, a: [1, 2] } },
      prevHash: prev,
    };
    const ev = { ...unhashed, hash: hashEvent(unhashed) };
    events.push(ev);
    prev = ev.hash;
  }
  return events;
}

describe('hash chain', () => {
  it('hashes canonical JSON: key order does not matter', () => {
    const [ev] = chain(1);
    const reordered = { ...ev, data: { nested: { a: [1, 2], b: 1 }, noticeVersion: 'v1' } };
    expect(hashEvent(reordered)).toBe(ev.hash);
    expect(ev.prevHash).toBe('0'.repeat(64));
  });

  it('accepts an intact chain and reports its head', () => {
    const events = chain(5);
    expect(verifyChain(events)).toEqual({ valid: true, length: 5, head: events[4].hash, breaks: [] });
  });

  it('finds any edited event', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 7 }), fc.string({ minLength: 1 }), (i, text) => {
        const events = chain(8);
        events[i] = { ...events[i], data: { ...events[i].data, noticeVersion: `x${text}` } };
        const report = verifyChain(events);
        expect(report.valid).toBe(false);
        expect(report.breaks).toContainEqual({ seq: i + 1, reason: 'hash_mismatch' });
      }),
      { numRuns: 50 },
    );
  });

  it('finds a deleted event, also the first one', () => {
    const events = chain(5);
    expect(verifyChain([...events.slice(0, 2), ...events.slice(3)]).breaks).toContainEqual({
      seq: 4,
      reason: 'seq_gap',
    });
    expect(verifyChain(events.slice(1)).breaks).toContainEqual({ seq: 2, reason: 'seq_gap' });
  });

  it('finds an inserted event even when re-hashed', () => {
    const events = chain(3);
    const forged = { ...events[1], eventId: 'forged' };
    forged.hash = hashEvent(forged);
    const report = verifyChain([events[0], events[1], { ...forged, seq: 3 }, { ...events[2], seq: 4 }]);
    expect(report.valid).toBe(false);
  });
});
