import type { LedgerEvent } from './ledger.ts';

/** A half-open time range `[from, to)`, both ISO instants in UTC with milliseconds. */
export interface AuditRange {
  from: string;
  to: string;
}

/** An event as the audit export shows it: a ledger event with its subject. */
export interface AuditEvent extends LedgerEvent {
  subjectKey: string;
}
