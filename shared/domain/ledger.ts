import { createHash, createHmac } from 'node:crypto';
import canonicalize from 'canonicalize';
import type { EventType } from './vocabulary.ts';

/** The first event of a chain points at this. */
export const GENESIS_HASH = '0'.repeat(64);

/** Who wrote an event: an API key, the person on a self-service page, a provider's webhook, or a job. */
export type Actor =
  | { type: 'api_key'; keyId: string }
  | { type: 'self_service' }
  | { type: 'webhook'; provider: string }
  | { type: 'system'; job: string };

/**
 * A ledger event as the API shows it and as its hash covers it.
 *
 * Hash format 2 (`v: 2`) separates the public part (type, event time `at`, `recordedAt`, `actor`, channel,
 * purpose, source, `data`) from the personal `details`. The hash covers the public part and
 * `detailsDigest` = HMAC-SHA-256 keyed by a random per-event `detailsSalt` over the canonical details, so
 * deleting `details` and `detailsSalt` (redaction, on erasure or by retention) leaves the chain verifiable,
 * while the digest alone reveals nothing about the details. Events without `v` are format 1: the hash covers
 * `data` directly; they keep verifying as they are.
 */
export interface LedgerEvent {
  v?: 2;
  eventId: string;
  seq: number;
  type: EventType;
  /** When it happened (event time); decides ordering. */
  at: string;
  /** When the service recorded it (format 2). */
  recordedAt?: string;
  actor?: Actor;
  channel: string | null;
  purpose: string | null;
  source: string | null;
  /** The public part. */
  data: Record<string, unknown>;
  /** Format 2: digest of the personal details; null when the event has none. */
  detailsDigest?: string | null;
  /** The personal part; absent once redacted. */
  details?: Record<string, unknown>;
  detailsSalt?: string;
  prevHash: string;
  hash: string;
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/** The salted digest that a format-2 hash commits to in place of the details themselves. */
export function detailsDigest(details: Record<string, unknown>, salt: string): string {
  return createHmac('sha256', Buffer.from(salt, 'hex'))
    .update(canonicalize(details) as string)
    .digest('hex');
}

/** SHA-256 over the RFC 8785 canonical JSON of the event's hashed fields (prevHash included). */
export function hashEvent(event: Omit<LedgerEvent, 'hash'>): string {
  const { eventId, seq, type, at, channel, purpose, source, data, prevHash } = event;
  if (event.v !== 2) return sha256(canonicalize({ eventId, seq, type, at, channel, purpose, source, data, prevHash })!);
  const { recordedAt, actor } = event;
  const digest = event.detailsDigest ?? null;
  return sha256(
    canonicalize({
      v: 2,
      eventId,
      seq,
      type,
      at,
      recordedAt,
      actor,
      channel,
      purpose,
      source,
      data,
      detailsDigest: digest,
      prevHash,
    })!,
  );
}

/** True when the event's details are present and no longer match the digest its hash committed to. */
export function detailsTampered(event: LedgerEvent): boolean {
  if (event.v !== 2 || event.details === undefined) return false;
  if (!event.detailsDigest || !event.detailsSalt) return true;
  return detailsDigest(event.details, event.detailsSalt) !== event.detailsDigest;
}

/** True when the event's personal details were deleted (its hash still verifies). */
export const isRedacted = (event: LedgerEvent) => event.v === 2 && !!event.detailsDigest && event.details === undefined;

export interface ChainBreak {
  seq: number;
  reason: 'hash_mismatch' | 'prev_hash_mismatch' | 'seq_gap' | 'details_mismatch';
}

export interface ChainReport {
  valid: boolean;
  length: number;
  head: string;
  breaks: ChainBreak[];
}

/**
 * Re-computes a chain in seq order. An edited event fails its own hash (or, for its details, their
 * digest); a deleted or inserted one breaks the next event's prevHash or the seq sequence. Chains start at
 * seq 1 (a format-1 erasure restarted the chain at seq 1 with its `erasure.completed` event). A page of
 * a chain is verified from the event before it (`after`: its seq and hash).
 */
export function verifyChain(
  events: readonly LedgerEvent[],
  after: { seq: number; hash: string } = { seq: 0, hash: GENESIS_HASH },
): ChainReport {
  const breaks: ChainBreak[] = [];
  let prev = after.hash;
  let expectedSeq = after.seq + 1;
  for (const ev of events) {
    if (ev.seq !== expectedSeq) breaks.push({ seq: ev.seq, reason: 'seq_gap' });
    else if (ev.prevHash !== prev) breaks.push({ seq: ev.seq, reason: 'prev_hash_mismatch' });
    if (hashEvent(ev) !== ev.hash) breaks.push({ seq: ev.seq, reason: 'hash_mismatch' });
    else if (detailsTampered(ev)) breaks.push({ seq: ev.seq, reason: 'details_mismatch' });
    prev = ev.hash;
    expectedSeq = ev.seq + 1;
  }
  return { valid: breaks.length === 0, length: after.seq + events.length, head: prev, breaks };
}
