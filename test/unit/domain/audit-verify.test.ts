import { describe, expect, it } from 'vitest';
import { verifySubject } from '#domain/audit-verify.ts';
import { hashEvent } from '#domain/ledger.ts';
import { chain } from '../../helpers/ledger.ts';

describe('verifySubject', () => {
  const events = chain([{}, {}, {}, {}]);
  const state = { seq: 4, head: events[3].hash };

  it('accepts an intact chain that ends at the state head', () => {
    expect(verifySubject('s', events, state)).toEqual([]);
  });

  it('reports an edited event at its seq', () => {
    const edited = events.map((e) => (e.seq === 2 ? { ...e, channel: 'sms' } : e));
    expect(verifySubject('s', edited, state)).toEqual([{ subjectKey: 's', seq: 2, reason: 'hash_mismatch' }]);
  });

  it('reports deleted events at their own seqs, in the middle or at the end', () => {
    expect(verifySubject('s', [events[0], events[3]], state)).toEqual([
      { subjectKey: 's', seq: 2, reason: 'event_missing' },
      { subjectKey: 's', seq: 3, reason: 'event_missing' },
    ]);
    expect(verifySubject('s', events.slice(0, 3), state)).toEqual([
      { subjectKey: 's', seq: 4, reason: 'event_missing' },
    ]);
  });

  it('reports an event appended behind the state, even with valid hashes', () => {
    const [extra] = chain([{}, {}, {}, {}, { eventId: 'X' }]).slice(4);
    expect(verifySubject('s', [...events, extra], state)).toEqual([
      { subjectKey: 's', seq: 5, reason: 'unexpected_event' },
    ]);
  });

  it('reports a rewritten last event whose hash no longer matches the state head', () => {
    const rewritten = { ...events[3], source: 'import' };
    rewritten.hash = hashEvent(rewritten);
    expect(verifySubject('s', [...events.slice(0, 3), rewritten], state)).toEqual([
      { subjectKey: 's', seq: 4, reason: 'head_mismatch' },
    ]);
  });
});
