import type { IdentifierKind } from '#shared/identity/subject.ts';
import { ErasurePending, FreshConsentRequired, StaleConsent, TooManyScopes } from './errors.ts';
import type { PersonRef } from './links.ts';
import type { PurposeKind } from './policy.ts';
import { type Channel, type EventType, OWN_ACT_SOURCES, type ScopeKey, scopeKey } from './vocabulary.ts';

export const isOwnAct = (source: string) => (OWN_ACT_SOURCES as readonly string[]).includes(source);

/** A purpose's kind (policy `purposes`): marketing, or a service message such as order updates. */
export type KindOf = (purpose: string) => PurposeKind;

/**
 * One stored scope entry (a channel × purpose, or a `*` pattern, or `<channel>|@marketing` for a stop that
 * covers the channel's marketing-kind purposes only). It folds the scope's events by EVENT time, so the
 * order they arrive in never matters: the latest grant, the latest own-act grant, the latest closing
 * (withdrawal or objection). Each is a maximum, so applying events in any order gives the same entry.
 */
export interface ScopeEntry {
  /** The latest grant by `grantedAt`. */
  grantedAt?: string;
  grantEventId?: string;
  grantSource?: string;
  noticeVersion?: string;
  noticeHash?: string;
  expiresAt?: string;
  /** The latest grant that was the person's own act. */
  ownGrantAt?: string;
  /** The latest withdrawal or objection by event time. */
  withdrawnAt?: string;
  withdrawnEventId?: string;
  withdrawnSource?: string;
  /** That withdrawal was recorded while nothing it covers was granted: an objection. */
  objection?: boolean;
}

/** What a concrete scope says, from its entry and the patterns that cover it. */
export interface ScopeState {
  status: 'granted' | 'withdrawn';
  /** The event that decides the status, and its source. */
  eventId: string;
  source: string;
  /** The latest grant's details (kept after a withdrawal). */
  noticeVersion?: string;
  noticeHash?: string;
  grantedAt?: string;
  expiresAt?: string;
  withdrawnAt?: string;
  objection?: boolean;
}

/** Erasure status carried by the state item (and by the tombstone that replaces it). */
export interface ErasureState {
  requestId: string;
  status: 'received' | 'completed';
  receivedAt: string;
  erasedAt?: string;
  /** Completed: why (`request`, or `retention` for an inactive subject) and until when the proof is kept. */
  reason?: 'request' | 'retention';
  proofUntil?: string;
  /** When the kept proof (the events' public parts) was purged: only this tombstone remains. */
  proofPurgedAt?: string;
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
  scopes: Partial<Record<ScopeKey, ScopeEntry>>;
  /** Last action of the person themself (inbound message, preference-centre visit, fresh consent). */
  lastOwnActionAt?: string;
  erasure?: ErasureState;
  signals?: Record<string, unknown>;
  sends?: Record<string, unknown>;
  /** Linked to other identifiers of the same person (shared/domain/links.ts). */
  person?: PersonRef;
}

/**
 * The event a change appends; the store gives it eventId, seq, recordedAt, actor and hashes. `at` is the
 * event time; `data` the public part; `details` the personal part (evidence, reasons, message ids), which
 * erasure and retention delete while the chain keeps verifying.
 */
export interface EventDraft {
  type: EventType;
  at: string;
  channel?: string | null;
  purpose?: string | null;
  source?: string | null;
  data: Record<string, unknown>;
  details?: Record<string, unknown>;
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

const ms = (iso: string | undefined) => (iso ? Date.parse(iso) : Number.NEGATIVE_INFINITY);

/**
 * The bounds that keep the state item small whatever is recorded (docs/limits.md): at most
 * `MAX_GRANTED_SCOPES` channel × purpose scopes with a grant (one more grant → `too_many_scopes`), at most
 * `MAX_CLOSING_ONLY_SCOPES` scopes or `*|purpose` patterns closed without a grant of their own (objections),
 * and the bounded patterns (`*|*`, `<channel>|*`, the marketing stops). A withdrawal or objection is never
 * refused: past the second bound it is folded into {@link UNLISTED_KEY}.
 */
export const MAX_GRANTED_SCOPES = 10;
export const MAX_CLOSING_ONLY_SCOPES = 10;

/**
 * The entry that closes every concrete scope WITHOUT a grant of its own, at the latest time of the
 * objections folded into it. Equivalent to their own entries for those scopes (a closing is a maximum of
 * event times); its one coarsening, once a subject has objected to more than `MAX_CLOSING_ONLY_SCOPES`
 * scopes it never granted: a scope without a grant is closed as of the LATEST such objection.
 */
export const UNLISTED_KEY: ScopeKey = '*|@unlisted';

/** A key whose purpose is a slug (`<channel>|p` or `*|p`): unbounded in number, unlike the patterns. */
const namesPurpose = (key: string) => {
  const purpose = key.slice(key.indexOf('|') + 1);
  return purpose !== '*' && !purpose.startsWith('@');
};

/** Scopes holding a grant (what `MAX_GRANTED_SCOPES` counts). */
export const grantedScopeCount = (state: SubjectState) =>
  Object.entries(state.scopes).filter(([key, e]) => namesPurpose(key) && e?.grantedAt).length;

const closingOnlyCount = (state: SubjectState) =>
  Object.entries(state.scopes).filter(([key, e]) => namesPurpose(key) && !e?.grantedAt).length;

/** A pattern entry that closes only the marketing-kind purposes of a channel (WhatsApp's marketing stop). */
export const marketingKey = (channel: Channel | '*'): ScopeKey => `${channel}|@marketing`;

/** The entries that can decide a concrete scope: its own and the patterns covering it. */
function coveringKeys(state: SubjectState, channel: Channel, purpose: string, kindOf?: KindOf): ScopeKey[] {
  const keys = [scopeKey(channel, purpose), scopeKey('*', purpose), scopeKey(channel, '*'), scopeKey('*', '*')];
  if (!state.scopes[scopeKey(channel, purpose)]?.grantedAt) keys.push(UNLISTED_KEY);
  // Without a registry every purpose counts as marketing: a marketing stop then covers it (fail closed).
  if ((kindOf?.(purpose) ?? 'marketing') === 'marketing') keys.push(marketingKey(channel), marketingKey('*'));
  return keys;
}

interface Closing {
  at: string;
  eventId: string;
  source: string;
  objection?: boolean;
}

/** The latest closing event (withdrawal, objection, completed erasure) that covers a concrete scope. */
export function closingOf(
  state: SubjectState,
  channel: Channel,
  purpose: string,
  kindOf?: KindOf,
): Closing | undefined {
  let closing: Closing | undefined;
  for (const key of coveringKeys(state, channel, purpose, kindOf)) {
    const e = state.scopes[key];
    if (e?.withdrawnAt && (!closing || ms(e.withdrawnAt) > ms(closing.at))) {
      closing = {
        at: e.withdrawnAt,
        eventId: e.withdrawnEventId ?? '',
        source: e.withdrawnSource ?? '',
        objection: e.objection,
      };
    }
  }
  const erasure = state.erasure;
  if (erasure?.status === 'completed' && erasure.erasedAt && (!closing || ms(erasure.erasedAt) > ms(closing.at))) {
    closing = { at: erasure.erasedAt, eventId: erasure.requestId, source: 'erasure' };
  }
  return closing;
}

/**
 * What a concrete scope says. By event time: the scope is granted when it has a grant and either nothing
 * closed it or the person's own grant came strictly after the latest closing; a closing at the same
 * instant as a grant wins. Arrival order plays no part.
 */
export function effectiveScope(
  state: SubjectState | undefined,
  channel: Channel,
  purpose: string,
  kindOf?: KindOf,
): ScopeState | undefined {
  if (!state) return undefined;
  const entry = state.scopes[scopeKey(channel, purpose)];
  const closing = closingOf(state, channel, purpose, kindOf);
  const grant = entry?.grantedAt
    ? {
        noticeVersion: entry.noticeVersion,
        ...(entry.noticeHash ? { noticeHash: entry.noticeHash } : {}),
        grantedAt: entry.grantedAt,
        ...(entry.expiresAt ? { expiresAt: entry.expiresAt } : {}),
      }
    : {};
  if (entry?.grantedAt && (!closing || ms(entry.ownGrantAt) > ms(closing.at))) {
    return { status: 'granted', eventId: entry.grantEventId ?? '', source: entry.grantSource ?? '', ...grant };
  }
  if (!closing) return undefined;
  return {
    status: 'withdrawn',
    eventId: closing.eventId,
    source: closing.source,
    ...grant,
    withdrawnAt: closing.at,
    ...(closing.objection ? { objection: true } : {}),
  };
}

/** A stored entry read on its own (a `*` pattern in a lookup). */
export function entryScope(entry: ScopeEntry): ScopeState {
  const closed = entry.withdrawnAt && !(ms(entry.ownGrantAt) > ms(entry.withdrawnAt));
  return closed
    ? {
        status: 'withdrawn',
        eventId: entry.withdrawnEventId ?? '',
        source: entry.withdrawnSource ?? '',
        withdrawnAt: entry.withdrawnAt,
        ...(entry.objection ? { objection: true } : {}),
      }
    : { status: 'granted', eventId: entry.grantEventId ?? '', source: entry.grantSource ?? '' };
}

export interface GrantInput {
  channel: Channel;
  purpose: string;
  source: string;
  noticeVersion: string;
  /** SHA-256 of the registered notice, when the version is registered. */
  noticeHash?: string;
  /** Event time: when the person agreed. */
  grantedAt: string;
  expiresAt?: string;
  /** Public extras for the event (e.g. `via`). */
  data?: Record<string, unknown>;
  /** Personal details (evidence text, IP hash, user agent, page URL). */
  details?: Record<string, unknown>;
}

/**
 * Grants several purposes of one channel as a single ledger event (a provider's or the person's opt-in that
 * gives back what one stop closed): `grant` is applied per purpose, the event names the purpose when there is
 * one and lists every scope in `data.scopes`.
 */
export function grantPurposes(
  current: SubjectState,
  channel: string,
  purposes: readonly string[],
  grant: (state: SubjectState, purpose: string) => Change,
): Change {
  let change = grant(current, purposes[0]);
  for (const p of purposes.slice(1)) change = { ...change, state: grant(change.state, p).state };
  return {
    state: change.state,
    event: {
      ...change.event,
      purpose: purposes.length === 1 ? purposes[0] : null,
      data: { ...change.event.data, scopes: purposes.map((purpose) => ({ channel, purpose })) },
    },
  };
}

/**
 * Records a consent, by event time. A scope closed by a withdrawal, an objection or an erasure re-opens
 * only by the person's own act dated after it: an `import` or `api` grant there → `fresh_consent_required`,
 * a person's grant dated at or before the closing → `stale_consent`; while an erasure is pending →
 * `erasure_pending`. A grant older than the scope's latest grant is kept in the ledger but decides nothing.
 */
export function grantConsent(
  current: SubjectState,
  input: GrantInput,
  next: NextEvent,
  _now: string,
  kindOf?: KindOf,
): Change {
  if (current.erasure?.status === 'received') throw new ErasurePending(current.erasure.requestId);
  const key = scopeKey(input.channel, input.purpose);
  const prior = current.scopes[key] ?? {};
  const own = isOwnAct(input.source);
  const closing = closingOf(current, input.channel, input.purpose, kindOf);
  const scope = `${input.channel}/${input.purpose}`;
  if (closing) {
    const what = closing.source === 'erasure' ? 'the erasure' : `the withdrawal (${closing.source})`;
    if (ms(input.grantedAt) <= ms(closing.at)) {
      const detail = `${scope} was closed by ${what} on ${closing.at}; a grant dated ${input.grantedAt} cannot re-open it`;
      throw own ? new StaleConsent(detail) : new FreshConsentRequired(detail);
    }
    if (!own && !(ms(prior.ownGrantAt) > ms(closing.at))) {
      throw new FreshConsentRequired(
        `${scope} was closed by ${what} on ${closing.at}: only a fresh consent from the person (not ${input.source}) can grant it again`,
      );
    }
  }
  if (!prior.grantedAt && grantedScopeCount(current) >= MAX_GRANTED_SCOPES) {
    throw new TooManyScopes(MAX_GRANTED_SCOPES, scope);
  }
  const newest = ms(input.grantedAt) >= ms(prior.grantedAt);
  const entry: ScopeEntry = {
    ...prior,
    ...(newest
      ? {
          grantedAt: input.grantedAt,
          grantEventId: next.eventId,
          grantSource: input.source,
          noticeVersion: input.noticeVersion,
          noticeHash: input.noticeHash,
          expiresAt: input.expiresAt,
        }
      : {}),
    ...(own ? { ownGrantAt: latest(prior.ownGrantAt, input.grantedAt) } : {}),
  };
  for (const k of Object.keys(entry) as (keyof ScopeEntry)[]) if (entry[k] === undefined) delete entry[k];
  return {
    state: {
      ...current,
      scopes: { ...current.scopes, [key]: entry },
      ...(own ? { lastOwnActionAt: latest(current.lastOwnActionAt, input.grantedAt) } : {}),
    },
    event: {
      type: 'consent.granted',
      at: input.grantedAt,
      channel: input.channel,
      purpose: input.purpose,
      source: input.source,
      data: {
        noticeVersion: input.noticeVersion,
        ...(input.noticeHash ? { noticeHash: input.noticeHash } : {}),
        grantedAt: input.grantedAt,
        expiresAt: input.expiresAt ?? null,
        ...input.data,
      },
      ...(input.details ? { details: input.details } : {}),
    },
  };
}

export interface WithdrawInput {
  channel?: Channel;
  purpose?: string;
  /** With no purpose: close only the channel's marketing-kind purposes (WhatsApp's marketing stop). */
  onlyKind?: 'marketing';
  source: string;
  /** Event time; defaults to `now`. */
  at?: string;
  data?: Record<string, unknown>;
  details?: Record<string, unknown>;
}

export interface Withdrawal extends Change {
  withdrawn: { channel: string; purpose: string }[];
}

/**
 * Records a withdrawal at its event time. An omitted channel or purpose means every one (`*`), now and in
 * the future. `withdrawn` lists the scopes the subject had that this withdrawal covers, and the pattern
 * itself. A withdrawal dated before the person's own later grant is kept in the ledger and does not close it.
 */
export function withdrawConsent(
  current: SubjectState,
  input: WithdrawInput,
  next: NextEvent,
  now: string,
  kindOf?: KindOf,
): Withdrawal {
  const at = input.at ?? now;
  const channel = input.channel ?? '*';
  const purpose = input.purpose ?? '*';
  const kindOnly = input.onlyKind && purpose === '*';
  const covered = (Object.keys(current.scopes) as ScopeKey[])
    .map((k) => k.split('|') as [string, string])
    .filter(([c, p]) => c !== '*' && p !== '*' && !p.startsWith('@'))
    .filter(([c, p]) => (channel === '*' || c === channel) && (purpose === '*' || p === purpose))
    .filter(([, p]) => !kindOnly || (kindOf?.(p) ?? 'marketing') === 'marketing')
    .map(([c, p]) => ({ channel: c, purpose: p }));
  const key = kindOnly ? marketingKey(channel) : scopeKey(channel, purpose);
  const withdrawn = covered.some((s) => scopeKey(s.channel as Channel, s.purpose) === key)
    ? covered
    : [...covered, { channel, purpose: kindOnly ? '@marketing' : purpose }];
  const hadConsent = covered.some(
    (s) => effectiveScope(current, s.channel as Channel, s.purpose, kindOf)?.status === 'granted',
  );
  const close = (prior: ScopeEntry): ScopeEntry => {
    const entry: ScopeEntry =
      ms(at) > ms(prior.withdrawnAt)
        ? {
            ...prior,
            withdrawnAt: at,
            withdrawnEventId: next.eventId,
            withdrawnSource: input.source,
            ...(hadConsent ? { objection: undefined } : { objection: true }),
          }
        : prior;
    if (entry.objection === undefined) delete entry.objection;
    return entry;
  };
  // A new entry for a purpose (an objection to a scope never granted, a `*|purpose` stop) past the bound:
  // the scopes it covers that have a grant are closed in their own entries, the others by UNLISTED_KEY.
  const fold = namesPurpose(key) && !current.scopes[key] && closingOnlyCount(current) >= MAX_CLOSING_ONLY_SCOPES;
  const scopes = { ...current.scopes };
  if (fold) {
    for (const s of covered) {
      const k = scopeKey(s.channel as Channel, s.purpose);
      if (scopes[k]?.grantedAt) scopes[k] = close(scopes[k] as ScopeEntry);
    }
    scopes[UNLISTED_KEY] = close(scopes[UNLISTED_KEY] ?? {});
  } else {
    scopes[key] = close(current.scopes[key] ?? {});
  }
  return {
    withdrawn,
    state: { ...current, scopes },
    event: {
      type: 'consent.withdrawn',
      at,
      channel: input.channel ?? null,
      purpose: input.purpose ?? null,
      source: input.source,
      data: { scopes: withdrawn, objection: !hadConsent, ...input.data },
      ...(input.details ? { details: input.details } : {}),
    },
  };
}

/** The later of two ISO timestamps (either may be missing). */
export function latest(a: string | undefined, b: string | undefined): string | undefined {
  if (!a) return b;
  if (!b) return a;
  return Date.parse(a) >= Date.parse(b) ? a : b;
}
