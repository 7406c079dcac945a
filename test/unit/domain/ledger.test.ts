import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { detailsDigest, GENESIS_HASH, hashEvent, isRedacted, type LedgerEvent, verifyChain } from '#domain/ledger.ts';
import { emptyState } from '#domain/subject-state.ts';
import { chainEvent } from '#store/subjects.ts';

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

describe('hash format 2: redactable events', () => {
  const actor = { type: 'api_key' as const, keyId: 'key_1' };
  const draft = {
    type: 'consent.granted' as const,
    at: '2026-11-20T09:00:00.000Z',
    channel: 'whatsapp',
    purpose: 'marketing',
    source: 'web_form',
    data: { noticeVersion: 'v3', grantedAt: '2026-11-20T09:00:00.000Z' },
    details: { evidence: { text: 'I agree', ipAddressHash: 'abc' } },
  };
  const twoEvents = () => {
    const state = emptyState('sk');
    const first = chainEvent(state, { seq: 1, eventId: 'e1' }, draft, actor, '2026-11-21T10:00:00.000Z');
    const second = chainEvent(
      { ...state, seq: 1, head: first.hash },
      { seq: 2, eventId: 'e2' },
      { ...draft, type: 'consent.withdrawn', data: { scopes: [] }, details: { reason: 'moved away' } },
      { type: 'self_service' },
      '2026-11-22T10:00:00.000Z',
    );
    return [first, second];
  };

  it('covers the public part, recordedAt and actor, and commits to the details through a salted digest', () => {
    const events = twoEvents();
    expect(events[0]).toMatchObject({ v: 2, recordedAt: '2026-11-21T10:00:00.000Z', actor });
    expect(events[0].detailsDigest).toBe(detailsDigest(draft.details, events[0].detailsSalt as string));
    expect(verifyChain(events).valid).toBe(true);
    for (const edit of [
      { actor: { type: 'self_service' } },
      { recordedAt: '2026-11-21T10:00:01.000Z' },
      { at: '2026-01-01T00:00:00.000Z' },
    ]) {
      const report = verifyChain([{ ...events[0], ...edit } as LedgerEvent, events[1]]);
      expect(report.breaks).toContainEqual({ seq: 1, reason: 'hash_mismatch' });
    }
  });

  it('still verifies after its details and salt are deleted (redaction), and detects edited details', () => {
    const [first, second] = twoEvents();
    const { details: _d, detailsSalt: _s, ...redacted } = first;
    expect(isRedacted(redacted)).toBe(true);
    expect(verifyChain([redacted, second]).valid).toBe(true);
    const edited = { ...first, details: { evidence: { text: 'I agree to everything' } } };
    expect(verifyChain([edited, second]).breaks).toEqual([{ seq: 1, reason: 'details_mismatch' }]);
  });

  it('reveals nothing through the digest: the same details under two salts give unrelated digests', () => {
    const [a] = twoEvents();
    const [b] = twoEvents();
    expect(a.detailsDigest).not.toBe(b.detailsDigest);
  });

  it('keeps format-1 events verifying as they are', () => {
    const unhashed = {
      eventId: 'e1',
      seq: 1,
      type: 'consent.granted' as const,
      at: '2026-11-20T09:00:00.000Z',
      channel: 'whatsapp',
      purpose: 'marketing',
      source: 'web_form',
      data: { evidence: { text: 'old' } },
      prevHash: GENESIS_HASH,
    };
    const legacy = { ...unhashed, hash: hashEvent(unhashed) };
    const [, next] = twoEvents();
    expect(verifyChain([legacy]).valid).toBe(true);
    expect(hashEvent(legacy)).toBe(hashEvent({ ...legacy, v: undefined }));
    expect(next.v).toBe(2);
  });
});
