import { type ChainBreak, type LedgerEvent, verifyChain } from './ledger.ts';
import type { SubjectState } from './subject-state.ts';

/** A break found by the audit: a chain break, or a chain that does not end where the state says. */
export interface AuditBreak {
  subjectKey: string;
  seq: number;
  reason: ChainBreak['reason'] | 'event_missing' | 'head_mismatch' | 'unexpected_event';
}

/**
 * Verifies one subject's chain against itself and against the head its state item records. A deleted
 * event is reported at its own (missing) seq; a deleted or added last event is caught by the head the
 * state holds (the state and the last event are written in one transaction).
 */
export function verifySubject(
  subjectKey: string,
  events: readonly LedgerEvent[],
  state: Pick<SubjectState, 'seq' | 'head'> | undefined,
): AuditBreak[] {
  const breaks: AuditBreak[] = [];
  const report = verifyChain(events);
  const seqs = events.map((e) => e.seq);
  for (const b of report.breaks) {
    if (b.reason === 'seq_gap') {
      const i = seqs.indexOf(b.seq);
      const expected = i > 0 ? seqs[i - 1] + 1 : 1;
      if (b.seq > expected) {
        for (let s = expected; s < b.seq; s++) breaks.push({ subjectKey, seq: s, reason: 'event_missing' });
        continue;
      }
    }
    breaks.push({ subjectKey, ...b });
  }
  if (state && state.seq > 0) {
    const last = seqs.at(-1) ?? 0;
    if (last < state.seq) {
      for (let s = last + 1; s <= state.seq; s++) breaks.push({ subjectKey, seq: s, reason: 'event_missing' });
    } else if (last > state.seq) {
      for (let s = state.seq + 1; s <= last; s++) breaks.push({ subjectKey, seq: s, reason: 'unexpected_event' });
    } else if (report.head !== state.head) {
      breaks.push({ subjectKey, seq: last, reason: 'head_mismatch' });
    }
  }
  return breaks.sort((a, b) => a.seq - b.seq || a.reason.localeCompare(b.reason));
}

/** What the verifiable log finds wrong with a leaf, an event or a checkpoint (README, "Verifiable log"). */
export type LogBreakReason = 'edited' | 'missing' | 'inserted' | 'rewritten' | 'rolled_back' | 'index_missing';

/** A break the log finds: where (leaf index, subject, event; null where it has none) and what is wrong, in words. */
export interface LogBreak {
  subjectKey: string | null;
  eventId: string | null;
  leafIndex: number | null;
  reason: LogBreakReason;
  detail: string;
}

/** The answer of a verification: subjects and events checked, and every break found. */
export interface VerifyReport {
  subjects: number;
  events: number;
  valid: boolean;
  /** Chain breaks (subject, seq) and, when the log was checked, the log's breaks (leaf index, subject, event). */
  broken: (AuditBreak | LogBreak)[];
  /** The verifiable log's side of the verification, when it was checked. */
  log?: {
    treeSize: number;
    checkpoint: { treeSize: number; rootHash: string; timestamp: string | null; anchored: boolean } | null;
    checkpoints: number;
    anchored: number;
    leaves: number;
  };
}
