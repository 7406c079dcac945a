import { GENESIS_HASH, hashEvent, type LedgerEvent } from '#domain/ledger.ts';

/** A hash chain of events, seq 1..n, each draft's fields over a granted-consent default. */
export function chain(drafts: Partial<LedgerEvent>[]): LedgerEvent[] {
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
