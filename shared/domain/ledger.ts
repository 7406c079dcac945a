import { createHash } from 'node:crypto';
import canonicalize from 'canonicalize';
import type { EventType } from './vocabulary.ts';

/** The first event of a chain points at this. */
export const GENESIS_HASH = '0'.repeat(64);

/** A ledger event as the API shows it and as its hash covers it. */
export interface LedgerEvent {
  eventId: string;
  seq: number;
  type: EventType;
  at: string;
  channel: string | null;
  purpose: string | null;
  source: string | null;
  data: Record<string, unknown>;
  prevHash: string;
  hash: string;
}

/** SHA-256 over the RFC 8785 canonical JSON of the event without `hash` (prevHash included). */
export function hashEvent(event: Omit<LedgerEvent, 'hash'>): string {
  const { eventId, seq, type, at, channel, purpose, source, data, prevHash } = event;
  const canonical = canonicalize({ eventId, seq, type, at, channel, purpose, source, data, prevHash });
  return createHash('sha256')
    .update(canonical as string)
    .digest('hex');
}

export interface ChainBreak {
  seq: number;
  reason: 'hash_mismatch' | 'prev_hash_mismatch' | 'seq_gap';
}

export interface ChainReport {
  valid: boolean;
  length: number;
  head: string;
  breaks: ChainBreak[];
}

/**
 * Re-computes a chain in seq order. An edited event fails its own hash; a deleted or inserted one
 * breaks the next event's prevHash or the seq sequence. Chains start at seq 1 (after an erasure the
 * subject's chain restarts at seq 1 with the `erasure.completed` event).
 */
export function verifyChain(events: readonly LedgerEvent[]): ChainReport {
  const breaks: ChainBreak[] = [];
  let prev = GENESIS_HASH;
  let expectedSeq = 1;
  for (const ev of events) {
    if (ev.seq !== expectedSeq) breaks.push({ seq: ev.seq, reason: 'seq_gap' });
    else if (ev.prevHash !== prev) breaks.push({ seq: ev.seq, reason: 'prev_hash_mismatch' });
    if (hashEvent(ev) !== ev.hash) breaks.push({ seq: ev.seq, reason: 'hash_mismatch' });
    prev = ev.hash;
    expectedSeq = ev.seq + 1;
  }
  return { valid: breaks.length === 0, length: events.length, head: prev, breaks };
}
