import type { IdentifierKind } from '#shared/identity/subject.ts';
import { FreshConsentRequired } from './errors.ts';
import { type Channel, type EventType, type ScopeKey, scopeKey } from './vocabulary.ts';

/** What one scope (channel × purpose, or a `*` pattern) currently says. */
export interface ScopeState {
  status: 'granted' | 'withdrawn';
  /** Ledger seq of the event that set this entry: the later seq wins between overlapping entries. */
  seq: number;
  /** The event that set the current status, and its source. */
  eventId: string;
  source: string;
  /** Details of the last grant (kept after a withdrawal). */
  noticeVersion?: string;
  grantedAt?: string;
  expiresAt?: string;
  withdrawnAt?: string;
  /** A withdrawal recorded while no consent existed: an objection that blocks future imports. */
  objection?: boolean;
}

/** Erasure status carried by the state item (and by the tombstone that replaces it). */
export interface ErasureState {
  requestId: string;
  status: 'received' | 'completed';
  receivedAt: string;
  erasedAt?: string;
}

/**
 * The subject state item: everything the gate needs in one small read. Signals and sends are owned by
 * the block-likelihood and frequency-cap modules; they keep their own bounded summaries here.
 */
export interface SubjectState {
  subjectKey: string;
  kind?: IdentifierKind;
  version: number;
  seq: number;
  head: string;
  scopes: Partial<Record<ScopeKey, ScopeState>>;
  /** Last action of the person themself (inbound message, preference-centre visit, fresh consent). */
  lastOwnActionAt?: string;
  erasure?: ErasureState;
  signals?: Record<string, unknown>;
  sends?: Record<string, unknown>;
}

/** The event a change appends; the store gives it eventId, seq and hashes. */
export interface EventDraft {
  type: EventType;
  at: string;
  channel?: string | null;
  purpose?: string | null;
  source?: string | null;
  data: Record<string, unknown>;
}

/** A change of one subject: the new state and the one event that records it. */
export interface Change {
  state: SubjectState;
  event: EventDraft;
}

/** Where the next event will sit in the chain; the store allocates it before calling a change. */
export interface NextEvent {
  seq: number;
  eventId: string;
}

export const emptyState = (subjectKey: string, kind?: IdentifierKind): SubjectState => ({
  subjectKey,
  kind,
  version: 0,
  seq: 0,
  head: '',
  scopes: {},
});

/** The entry that decides a concrete scope: the latest (by seq) of the exact entry and its `*` patterns. */
export function effectiveScope(
  state: SubjectState | undefined,
  channel: Channel,
  purpose: string,
): ScopeState | undefined {
  if (!state) return undefined;
  let best: ScopeState | undefined;
  for (const key of [scopeKey(channel, purpose), scopeKey('*', purpose), scopeKey(channel, '*'), scopeKey('*', '*')]) {
    const entry = state.scopes[key];
    if (entry && (!best || entry.seq > best.seq)) best = entry;
  }
  return best;
}

export interface GrantInput {
  channel: Channel;
  purpose: string;
  source: string;
  noticeVersion: string;
  grantedAt: string;
  expiresAt?: string;
  data: Record<string, unknown>;
}

/** Records a consent. An import cannot override a withdrawal, an objection or an erasure. */
export function grantConsent(current: SubjectState, input: GrantInput, next: NextEvent, now: string): Change {
  const prior = effectiveScope(current, input.channel, input.purpose);
  if (input.source === 'import') {
    if (current.erasure) {
      throw new FreshConsentRequired(
        'this subject asked for erasure: only a fresh consent from the person (not an import) can be recorded',
      );
    }
    if (prior?.status === 'withdrawn') {
      throw new FreshConsentRequired(
        `consent for ${input.channel}/${input.purpose} was withdrawn on ${prior.withdrawnAt}: only a fresh consent from the person (not an import) can grant it again`,
      );
    }
  }
  const entry: ScopeState = {
    status: 'granted',
    seq: next.seq,
    eventId: next.eventId,
    source: input.source,
    noticeVersion: input.noticeVersion,
    grantedAt: input.grantedAt,
    ...(input.expiresAt ? { expiresAt: input.expiresAt } : {}),
  };
  const ownAction = input.source !== 'import' && input.source !== 'api';
  return {
    state: {
      ...current,
      scopes: { ...current.scopes, [scopeKey(input.channel, input.purpose)]: entry },
      ...(ownAction ? { lastOwnActionAt: latest(current.lastOwnActionAt, input.grantedAt) } : {}),
    },
    event: {
      type: 'consent.granted',
      at: now,
      channel: input.channel,
      purpose: input.purpose,
      source: input.source,
      data: {
        noticeVersion: input.noticeVersion,
        grantedAt: input.grantedAt,
        expiresAt: input.expiresAt ?? null,
        ...input.data,
      },
    },
  };
}

export interface WithdrawInput {
  channel?: Channel;
  purpose?: string;
  source: string;
  data: Record<string, unknown>;
}

export interface Withdrawal extends Change {
  withdrawn: { channel: string; purpose: string }[];
}

/**
 * Records a withdrawal. An omitted channel or purpose means every one (`*`), now and in the future.
 * `withdrawn` lists the scopes the subject had that this withdrawal covers, and the pattern itself.
 */
export function withdrawConsent(current: SubjectState, input: WithdrawInput, next: NextEvent, now: string): Withdrawal {
  const channel = input.channel ?? '*';
  const purpose = input.purpose ?? '*';
  const covered = (Object.keys(current.scopes) as ScopeKey[])
    .map((k) => k.split('|') as [string, string])
    .filter(
      ([c, p]) => c !== '*' && p !== '*' && (channel === '*' || c === channel) && (purpose === '*' || p === purpose),
    )
    .map(([c, p]) => ({ channel: c, purpose: p }));
  const key = scopeKey(channel, purpose);
  const withdrawn = covered.some((s) => scopeKey(s.channel as Channel, s.purpose) === key)
    ? covered
    : [...covered, { channel, purpose }];
  const hadConsent = covered.some(
    (s) => effectiveScope(current, s.channel as Channel, s.purpose)?.status === 'granted',
  );
  // Keep the last grant's details on the entry so a lookup still shows what was withdrawn.
  const { objection: _previous, ...prior } = current.scopes[key] ?? {};
  const entry: ScopeState = {
    ...prior,
    status: 'withdrawn',
    seq: next.seq,
    eventId: next.eventId,
    source: input.source,
    withdrawnAt: now,
    ...(hadConsent ? {} : { objection: true }),
  };
  return {
    withdrawn,
    state: { ...current, scopes: { ...current.scopes, [key]: entry } },
    event: {
      type: 'consent.withdrawn',
      at: now,
      channel: input.channel ?? null,
      purpose: input.purpose ?? null,
      source: input.source,
      data: { scopes: withdrawn, objection: !hadConsent, ...input.data },
    },
  };
}

/** The later of two ISO timestamps (either may be missing). */
export function latest(a: string | undefined, b: string | undefined): string | undefined {
  if (!a) return b;
  if (!b) return a;
  return Date.parse(a) >= Date.parse(b) ? a : b;
}
