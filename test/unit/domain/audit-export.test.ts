import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CSV_COLUMNS, csvCell, csvHeader, csvRow, ndjsonLine } from '#domain/audit-export.ts';
import { GENESIS_HASH, hashEvent } from '#domain/ledger.ts';
import { chain } from '../../helpers/ledger.ts';

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

describe('CSV export', () => {
  it('writes the contract header', () => {
    expect(csvHeader()).toBe(
      'at,eventId,subjectKey,type,channel,purpose,source,noticeVersion,prevHash,hash,recordedAt,actor\r\n',
    );
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
    for (const evil of ['=HYPERLINK("http://x","y")', '+1+1', '-2+3', '@SUM(A1)', '\tx', '\rx', '\n=1+1']) {
      const [cell] = parseCsvLine(csvCell(evil));
      expect(cell).toBe(`'${evil}`);
    }
    expect(csvCell('2026-v3')).toBe('2026-v3');
  });

  it('puts noticeVersion from the data and keeps generated columns verbatim', () => {
    const [ev] = chain([{ data: { noticeVersion: '=cmd|" /C calc"!A0' } }]);
    const row = csvRow({ ...ev, subjectKey: '-abc_DEF', eventId: `-${ev.eventId}`, hash: `-${ev.hash}` });
    expect(row.endsWith('\r\n')).toBe(true);
    const cells = parseCsvLine(row.slice(0, -2));
    expect(cells).toHaveLength(CSV_COLUMNS.length);
    expect(Object.fromEntries(CSV_COLUMNS.map((c, i) => [c, cells[i]]))).toEqual({
      at: ev.at,
      eventId: `-${ev.eventId}`,
      subjectKey: '-abc_DEF',
      type: 'consent.granted',
      channel: 'whatsapp',
      purpose: 'marketing',
      source: 'web_form',
      noticeVersion: `'=cmd|" /C calc"!A0`,
      prevHash: GENESIS_HASH,
      hash: `-${ev.hash}`,
      recordedAt: '',
      actor: '',
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
