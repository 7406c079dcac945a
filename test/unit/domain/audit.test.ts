import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  accessReport,
  CSV_COLUMNS,
  csvCell,
  csvHeader,
  csvRow,
  erasureDeadline,
  levelShare,
  ndjsonLine,
  SummaryBuilder,
  verifySubject,
} from '#domain/audit.ts';
import { GENESIS_HASH, hashEvent, type LedgerEvent } from '#domain/ledger.ts';
import { defaultPolicy } from '#domain/policy.ts';
import { grantConsent, type SubjectState, withdrawConsent } from '#domain/subject-state.ts';
import { AuditEventsQuerySchema, AuditRangeQuerySchema } from '#shared/schemas/audit.ts';
import { daysOf, decodeCursor, encodeCursor } from '#store/audit.ts';
import { chainEvent } from '#store/subjects.ts';

/** A strict RFC 4180 reader for one line of cells (the test's own, to check the writer against). */
function parseCsvLine(line: string): string[] {
  const cells: string[] = [];
  let i = 0;
  for (;;) {
    let cell = '';
    if (line[i] === '"') {
      i++;
      for (;;) {
        if (line[i] === '"' && line[i + 1] === '"') {
          cell += '"';
          i += 2;
        } else if (line[i] === '"') {
          i++;
          break;
        } else if (i >= line.length) throw new Error('unterminated quote');
        else cell += line[i++];
      }
    } else {
      while (i < line.length && line[i] !== ',') cell += line[i++];
    }
    cells.push(cell);
    if (i >= line.length) return cells;
    if (line[i] !== ',') throw new Error(`unexpected ${line[i]} at ${i}`);
    i++;
  }
}

function chain(drafts: Partial<LedgerEvent>[]): LedgerEvent[] {
  let prev = GENESIS_HASH;
  return drafts.map((d, i) => {
    const unhashed = {
      eventId: `E${i + 1}`,
      seq: i + 1,
      type: 'consent.granted' as const,
      at: `2026-11-0${i + 1}T10:00:00.000Z`,
      channel: 'whatsapp',
      purpose: 'marketing',
      source: 'web_form',
      data: { noticeVersion: 'v1' },
      prevHash: prev,
      ...d,
    };
    const ev = { ...unhashed, hash: hashEvent(unhashed) };
    prev = ev.hash;
    return ev;
  });
}

describe('CSV export', () => {
  it('writes the contract header', () => {
    expect(csvHeader()).toBe('at,eventId,subjectKey,type,channel,purpose,source,noticeVersion,prevHash,hash\r\n');
  });

  it('round-trips any text through RFC 4180 quoting', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme' }), (text) => {
        const [cell] = parseCsvLine(csvCell(text, false));
        expect(cell).toBe(text);
      }),
    );
  });

  it('guards cells a spreadsheet would run as a formula', () => {
    for (const evil of ['=HYPERLINK("http://x","y")', '+1+1', '-2+3', '@SUM(A1)', '\tx', '\rx']) {
      const [cell] = parseCsvLine(csvCell(evil));
      expect(cell).toBe(`'${evil}`);
    }
    expect(csvCell('2026-v3')).toBe('2026-v3');
  });

  it('puts noticeVersion from the data and keeps generated columns verbatim', () => {
    const [ev] = chain([{ data: { noticeVersion: '=cmd|" /C calc"!A0' } }]);
    const row = csvRow({ ...ev, subjectKey: '-abc_DEF' });
    expect(row.endsWith('\r\n')).toBe(true);
    const cells = parseCsvLine(row.slice(0, -2));
    expect(cells).toHaveLength(CSV_COLUMNS.length);
    expect(Object.fromEntries(CSV_COLUMNS.map((c, i) => [c, cells[i]]))).toEqual({
      at: ev.at,
      eventId: ev.eventId,
      subjectKey: '-abc_DEF',
      type: 'consent.granted',
      channel: 'whatsapp',
      purpose: 'marketing',
      source: 'web_form',
      noticeVersion: `'=cmd|" /C calc"!A0`,
      prevHash: GENESIS_HASH,
      hash: ev.hash,
    });
  });

  it('writes NDJSON lines that re-hash to the event hash', () => {
    const [ev] = chain([{ data: { noticeVersion: 'v1', text: 'line\nbreak' } }]);
    const line = ndjsonLine({ ...ev, subjectKey: 's' });
    expect(line.indexOf('\n')).toBe(line.length - 1);
    const { subjectKey: _s, ...parsed } = JSON.parse(line);
    expect(hashEvent(parsed)).toBe(ev.hash);
  });
});

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

describe('Art. 15 access report', () => {
  const policy = { ...defaultPolicy(), controller: { name: 'ACME SAS', privacyContact: 'dpo@acme.example' } };
  let state: SubjectState = { subjectKey: 'KEY', version: 0, seq: 0, head: '', scopes: {} };
  const events: LedgerEvent[] = [];
  const apply = (
    fn: (s: SubjectState, next: { seq: number; eventId: string }) => { state: SubjectState; event: never },
  ) => {
    const next = { seq: state.seq + 1, eventId: `EV${state.seq + 1}` };
    const change = fn(state, next);
    const event = chainEvent(state, next, change.event);
    events.push(event);
    state = { ...change.state, version: state.version + 1, seq: next.seq, head: event.hash };
  };
  apply(
    (s, n) =>
      grantConsent(
        s,
        {
          channel: 'whatsapp',
          purpose: 'marketing',
          source: 'double_opt_in',
          noticeVersion: 'n-3',
          grantedAt: '2026-11-01T09:00:00.000Z',
          data: {},
        },
        n,
        '2026-11-01T09:00:01.000Z',
      ) as never,
  );
  apply(
    (s, n) =>
      grantConsent(
        s,
        {
          channel: 'email',
          purpose: 'news',
          source: 'web_form',
          noticeVersion: 'n-3',
          grantedAt: '2026-11-02T09:00:00.000Z',
          data: {},
        },
        n,
        '2026-11-02T09:00:00.000Z',
      ) as never,
  );
  apply(
    (s, n) =>
      withdrawConsent(
        s,
        { channel: 'email', purpose: 'news', source: 'one_click', data: {} },
        n,
        '2026-11-03T09:00:00.000Z',
      ) as never,
  );

  const report = accessReport({
    subjectKey: 'KEY',
    identifier: { kind: 'phone', value: '+33612345678' },
    state,
    events,
    policy,
    now: '2026-11-04T00:00:00.000Z',
  });

  it('names the controller and the subject, and carries the full verified history', () => {
    expect(report.controller).toEqual({ name: 'ACME SAS', privacyContact: 'dpo@acme.example' });
    expect(report.subject).toEqual({ subjectKey: 'KEY', identifierKind: 'phone', identifier: '+33612345678' });
    expect(report.events).toEqual(events);
    expect(report.chain).toMatchObject({ valid: true, length: 3 });
  });

  it('maps each consent onto consent-receipt terms', () => {
    const [email, whatsapp] = report.receipts;
    expect(whatsapp).toMatchObject({
      consentReceiptID: 'EV1',
      consentTimestamp: '2026-11-01T09:00:00.000Z',
      collectionMethod: 'double_opt_in',
      piiPrincipalId: 'KEY',
      piiControllers: [{ piiController: 'ACME SAS', contact: 'dpo@acme.example' }],
      notice: { noticeVersion: 'n-3' },
      state: 'active',
      services: [{ service: 'whatsapp', purposes: [{ purpose: 'marketing', consentType: 'EXPLICIT' }] }],
      withdrawal: { withdrawnAt: null },
    });
    expect(email).toMatchObject({
      consentReceiptID: 'EV2',
      collectionMethod: 'web_form',
      state: 'withdrawn',
      withdrawal: { withdrawnAt: '2026-11-03T09:00:00.000Z', withdrawnVia: 'one_click' },
    });
    expect(email.withdrawal.method).toContain('dpo@acme.example');
  });
});

describe('erasure deadlines', () => {
  const now = Date.parse('2026-11-25T12:00:00.000Z');
  it('flags received requests past dueBy as overdue, with negative days left', () => {
    expect(erasureDeadline({ status: 'received', dueBy: '2026-11-20T12:00:00.000Z' }, now)).toMatchObject({
      status: 'overdue',
      daysLeft: -5,
    });
    expect(erasureDeadline({ status: 'received', dueBy: '2026-12-02T13:00:00.000Z' }, now)).toMatchObject({
      status: 'received',
      daysLeft: 7,
    });
    expect(erasureDeadline({ status: 'completed', dueBy: '2026-11-20T12:00:00.000Z' }, now)).toMatchObject({
      status: 'completed',
      daysLeft: null,
    });
  });
});

describe('ranges and cursors', () => {
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
