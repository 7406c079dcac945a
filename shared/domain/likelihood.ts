import { createHash } from 'node:crypto';
import { DAY_SECONDS, toSec } from '#shared/time.ts';
import { SubjectErased } from './errors.ts';
import type { BlockClue, Policy, SignalType } from './policy.ts';
import { type Change, latest, type SubjectState } from './subject-state.ts';
import type { Channel } from './vocabulary.ts';

/**
 * Block likelihood (docs/signals-and-policy.md, "The model"): the posterior probability of a block, from
 * the prior `blockBaseRate` and the log-likelihood ratios of the clues recorded since the last evidence
 * against a block — correlated clues counted once, undelivered messages weighing more the longer they wait,
 * other clues decaying. The state keeps a bounded summary per channel; every signal itself stays in the
 * ledger. Times inside the summary are epoch seconds (numbers keep the state item small).
 */

/**
 * A block clue: its type, when it was observed (epoch s), for message clues a short message reference, and
 * `1` when it was inferred (a send not delivered in time) rather than reported: `at` is then the send
 * time, and the clue counts from `at + undeliveredAfterHours`.
 */
export type Clue = [type: BlockClue, at: number, ref?: string, inferred?: 1];
/** A message sent and not yet delivered: when (epoch s) and a short message reference ('' when unknown). */
export type PendingSend = [at: number, ref: string];

/** A stored clue, under its type: `[at]`, `[at, ref]`, or `[sentAt, ref, 1]` when inferred. */
export type ClueEntry = [at: number, ref?: string, inferred?: 1];

/** What the state keeps per channel: bounded whatever the number of signals (type names stored once). */
export interface ChannelSignals {
  /** Last evidence against a block (delivery, read receipt, inbound message), epoch s. */
  clearedAt?: number;
  /**
   * The latest report that the contact could not be reached at all (`recipient_unreachable`: Meta 131026, a
   * hard bounce), epoch s; kept only while no evidence of reach (`clearedAt`) came after it. No block clue.
   */
  unreachableAt?: number;
  /** Clues observed after `clearedAt`, per type, newest first: the latest ones and the oldest. */
  clues: Partial<Record<BlockClue, ClueEntry[]>>;
  /** Sends still waiting for a delivery, newest first: the latest ones and the oldest. */
  pending: PendingSend[];
  /** Messages recently delivered, read or failed: a `sent` arriving after them is not pending. */
  resolved?: string[];
  /** Signals recorded on this channel, all time. */
  count: number;
}

/** Clues that describe a lasting state of the profile: seeing it again is no new evidence, only the latest counts. */
const STATE_CLUES: ReadonlySet<BlockClue> = new Set([
  'profile_photo_hidden',
  'last_seen_hidden',
  'read_receipts_missing',
]);
/** Event clues (undelivered messages, failed calls, refused group adds, channel blocks) kept per type: the latest and the oldest. */
export const EVENT_CLUES_PER_TYPE = 3;
/** Sends waiting for a delivery kept per channel (the newest). */
export const PENDING_MAX = 4;
/** Recently resolved messages remembered per channel. */
export const RESOLVED_MAX = 6;

const EVIDENCE_AGAINST: ReadonlySet<string> = new Set(['message_delivered', 'message_read', 'inbound_message']);

/**
 * What can be applied to a channel's summary: the API's signal types, plus a failure that is no block
 * evidence. `message_failed` and `recipient_unreachable` (hard bounce, Meta 131026) end a message's wait
 * and are never clues.
 */
export interface SignalInput {
  type: SignalType | 'message_failed';
  observedAt: string;
  messageId?: string;
}

/** `none` below suspectedThreshold, `suspected` from it, `likely` from blockThreshold. */
export type Level = 'none' | 'suspected' | 'likely';

/** One clue's share of the likelihood, for the explanation. */
export interface Contribution {
  type: BlockClue;
  /** When it counts from (for an inferred undelivered message: the end of the wait for a delivery). */
  observedAt: string;
  weight: number;
  /** Its likelihood ratio now: decayed, or for an undelivered message grown with the wait. */
  likelihoodRatio: number;
  /** The log-likelihood ratio it adds (0 when a stronger clue of the same kind counts instead). */
  contribution: number;
  /** A message sent and not delivered after `undeliveredAfterHours` (no one reported it). */
  inferred?: boolean;
}

export interface Likelihood {
  blockLikelihood: number;
  level: Level;
  /** The contributing clues, strongest first. */
  signals: Contribution[];
}

const toIso = (sec: number) => new Date(sec * 1000).toISOString();
const isClue = (type: string, policy: Policy): type is BlockClue => type in policy.signalWeights;

/** A short, stable reference to a message id: enough to match a delivery to its send, small in the state. */
export const messageRef = (messageId: string) => createHash('sha256').update(messageId).digest('base64url').slice(0, 8);

/** The stored clues as one list. */
function unpack(stored: ChannelSignals['clues'] | undefined): Clue[] {
  return Object.entries(stored ?? {}).flatMap(([type, entries]) =>
    (entries ?? []).map((e): Clue => {
      const clue: Clue = [type as BlockClue, e[0]];
      if (e[1]) clue.push(e[1]);
      if (e[2] === 1) clue[3] = 1;
      return clue;
    }),
  );
}

/** One list of clues as stored: per type; a lasting-state clue needs no message reference. */
function pack(clues: readonly Clue[]): ChannelSignals['clues'] {
  const stored: ChannelSignals['clues'] = {};
  for (const [type, at, ref, inferred] of clues) {
    const entry: ClueEntry = inferred === 1 ? [at, ref ?? '', 1] : ref && !STATE_CLUES.has(type) ? [at, ref] : [at];
    stored[type] = [...(stored[type] ?? []), entry];
  }
  return stored;
}

/** The summary of one channel of a subject, if any signal was recorded there. */
export function channelSignals(state: SubjectState | undefined, channel: Channel): ChannelSignals | undefined {
  return (state?.signals as Record<string, ChannelSignals> | undefined)?.[channel];
}

/**
 * Since when the contact is unreachable on this channel, if the latest word on reach is a report that it
 * could not be reached (`recipient_unreachable`) with no delivery, read receipt or inbound message after it.
 */
export function unreachableSince(summary: ChannelSignals | undefined): string | undefined {
  if (summary?.unreachableAt === undefined) return undefined;
  if (summary.clearedAt !== undefined && summary.clearedAt >= summary.unreachableAt) return undefined;
  return new Date(summary.unreachableAt * 1000).toISOString();
}

/** The channels of a subject that have signals. */
export const signalChannels = (state: SubjectState | undefined): Channel[] =>
  Object.keys(state?.signals ?? {}).sort() as Channel[];

/** The first `max − 1` items and the last one (of a list sorted newest first). */
const keepNewestAndOldest = <T>(list: T[], max: number): T[] =>
  list.length <= max ? list : [...list.slice(0, max - 1), list[list.length - 1]];

/** When a clue counts from: its observation, or for an inferred one the end of the wait for a delivery. */
const countsFrom = (c: Clue, timeout: number) => (c[3] === 1 ? c[1] + timeout : c[1]);

/**
 * Keeps clues bounded: the latest state clue per type; per event type the latest ones and the oldest (the
 * oldest undelivered message measures the wait). A message's
 * reported and inferred clues are one clue for this count (the evaluation counts them once), so what is
 * kept does not depend on the order they arrived in.
 */
function compactClues(all: readonly Clue[], timeout: number): Clue[] {
  const groups = new Map<string, { latest: number; clues: Clue[] }>();
  all.forEach((c, i) => {
    const key = c[2] ? `${c[0]}|${c[2]}` : `#${i}`;
    const group = groups.get(key) ?? { latest: Number.NEGATIVE_INFINITY, clues: [] };
    group.latest = Math.max(group.latest, countsFrom(c, timeout));
    group.clues.push(c);
    groups.set(key, group);
  });
  const byType = new Map<BlockClue, { latest: number; clues: Clue[] }[]>();
  for (const group of groups.values()) {
    const type = group.clues[0][0];
    byType.set(type, [...(byType.get(type) ?? []), group]);
  }
  return [...byType].flatMap(([type, list]) => {
    list.sort((a, b) => b.latest - a.latest || a.clues[0][1] - b.clues[0][1]);
    if (STATE_CLUES.has(type)) return list[0].clues;
    if (list.length <= EVENT_CLUES_PER_TYPE) return list.flatMap((g) => g.clues);
    return [...list.slice(0, EVENT_CLUES_PER_TYPE - 1), list[list.length - 1]].flatMap((g) => g.clues);
  });
}

/**
 * Applies one signal to a channel's summary. Order-independent: evidence against a block clears every clue
 * observed up to its own time, whenever it arrives, and a clue older than the last evidence is ignored; a
 * delivery, read receipt or failure of a message ends its wait, also when it arrives before the `sent`.
 * Sends not delivered after `undeliveredAfterHours` (as of `now`) become inferred clues before older sends
 * are dropped, so the bound never loses a timed-out message. Pure.
 */
export function applySignal(
  summary: ChannelSignals | undefined,
  signal: SignalInput,
  policy: Pick<Policy, 'undeliveredAfterHours' | 'signalWeights'>,
  now: string,
): ChannelSignals {
  const at = toSec(signal.observedAt);
  const ref = signal.messageId ? messageRef(signal.messageId) : undefined;
  const timeout = policy.undeliveredAfterHours * 3600;
  const nowSec = toSec(now);
  let { clearedAt, unreachableAt } = summary ?? {};
  let clues = unpack(summary?.clues);
  let pending = (summary?.pending ?? []).map((p) => [...p] as PendingSend);
  let resolved = [...(summary?.resolved ?? [])];
  const materialise = () => {
    for (const [sentAt, r] of pending.filter((p) => p[0] + timeout <= nowSec)) {
      clues.push(['message_undelivered', sentAt, r, 1]);
    }
    pending = pending.filter((p) => p[0] + timeout > nowSec);
  };
  // A message settled (delivered, read, failed, or its undelivered report cleared by evidence) is remembered,
  // and its undelivered clues — reported or inferred — go, whichever order the reports come in.
  const resolve = (r: string) => {
    pending = pending.filter((p) => p[1] !== r);
    clues = clues.filter((c) => !(c[0] === 'message_undelivered' && c[2] === r));
    resolved = [r, ...resolved.filter((x) => x !== r)].slice(0, RESOLVED_MAX);
  };
  materialise();
  if (EVIDENCE_AGAINST.has(signal.type)) {
    clearedAt = Math.max(clearedAt ?? at, at);
    if (ref) resolve(ref);
  } else if (signal.type === 'message_sent') {
    // A message is sent once: a repeated `sent` keeps the earliest time.
    const waiting = ref ? pending.find((p) => p[1] === ref) : undefined;
    const overdue = ref ? clues.find((c) => c[3] === 1 && c[2] === ref) : undefined;
    if (waiting) waiting[0] = Math.min(waiting[0], at);
    else if (overdue) overdue[1] = Math.min(overdue[1], at);
    else if (!ref || !resolved.includes(ref)) pending.push([at, ref ?? '']);
  } else if (signal.type === 'message_failed' || signal.type === 'recipient_unreachable') {
    if (ref) resolve(ref);
    if (signal.type === 'recipient_unreachable') unreachableAt = Math.max(unreachableAt ?? at, at);
  } else if (isClue(signal.type, policy as Policy)) {
    const type = signal.type;
    // The same reported clue about the same message counts once (order-independent): at its latest report,
    // but an undelivered message at its earliest — its wait, and so its evidence, runs from then.
    const same = ref ? clues.find((c) => c[0] === type && c[2] === ref && c[3] !== 1) : undefined;
    const settled = type === 'message_undelivered' && ref !== undefined && resolved.includes(ref);
    if (settled) {
      // A message already settled: a late undelivered report about it is no new evidence.
    } else if (same) same[1] = type === 'message_undelivered' ? Math.min(same[1], at) : Math.max(same[1], at);
    else clues.push(ref ? [type, at, ref] : [type, at]);
  }
  if (clearedAt !== undefined) {
    const cleared = clearedAt;
    // Sends before the evidence are settled: remembered, so a repeated `sent` does not reopen them.
    for (const r of [
      ...pending.filter((p) => p[0] <= cleared).map((p) => p[1]),
      ...clues.filter((c) => c[0] === 'message_undelivered' && c[1] <= cleared).map((c) => c[2]),
    ]) {
      if (r) resolve(r);
    }
    clues = clues.filter((c) => c[1] > cleared);
    pending = pending.filter((p) => p[0] > cleared);
  }
  materialise();
  // Reach shown at or after the unreachable report supersedes it (whichever arrived first).
  const stillUnreachable = unreachableAt !== undefined && (clearedAt === undefined || unreachableAt > clearedAt);
  return {
    ...(clearedAt !== undefined ? { clearedAt } : {}),
    ...(stillUnreachable ? { unreachableAt } : {}),
    clues: pack(compactClues(clues, timeout)),
    pending: keepNewestAndOldest(
      pending.sort((a, b) => b[0] - a[0]),
      PENDING_MAX,
    ),
    ...(resolved.length ? { resolved } : {}),
    count: (summary?.count ?? 0) + 1,
  };
}

/**
 * The clues that count at `atSec` (observed by then): recorded ones and sends that timed out; a message's
 * clues count once (at the latest; an undelivered message at the earliest: the longest known wait), then
 * bounded per type.
 */
function countedClues(summary: ChannelSignals, policy: Policy, atSec: number): Clue[] {
  const timeout = policy.undeliveredAfterHours * 3600;
  const cleared = summary.clearedAt ?? Number.NEGATIVE_INFINITY;
  const inferred = summary.pending
    .filter((p) => p[0] > cleared && p[0] + timeout <= atSec)
    .map((p): Clue => ['message_undelivered', p[0], p[1], 1]);
  // From here on, times are when each clue counts from.
  const all = [...unpack(summary.clues).filter((c) => c[1] > cleared), ...inferred]
    .filter((c) => countsFrom(c, timeout) <= atSec)
    .map((c): Clue => (c[3] === 1 ? [c[0], c[1] + timeout, c[2], 1] : c));
  const byMessage = new Map<string, Clue>();
  const unique: Clue[] = [];
  for (const c of all) {
    if (!c[2]) unique.push(c);
    else {
      const key = `${c[0]}|${c[2]}`;
      const seen = byMessage.get(key);
      const earliest = c[0] === 'message_undelivered';
      if (!seen || (earliest ? c[1] < seen[1] : c[1] > seen[1])) byMessage.set(key, c);
    }
  }
  return compactClues([...unique, ...byMessage.values()], 0);
}

/** The level of a likelihood under a policy. */
export function levelOf(likelihood: number, policy: Pick<Policy, 'suspectedThreshold' | 'blockThreshold'>): Level {
  if (likelihood >= policy.blockThreshold) return 'likely';
  if (likelihood >= policy.suspectedThreshold) return 'suspected';
  return 'none';
}

const round = (x: number) => Math.round(x * 10_000) / 10_000;

/**
 * Clues with one cause count once, the strongest of the group: a message that stays undelivered, a call
 * that does not ring and messages that stay unread are all explained by a phone that is offline; a hidden
 * photo and a hidden last seen are one privacy setting.
 */
export const CLUE_GROUP: Record<BlockClue, 'reach' | 'privacy' | 'group_add' | 'channel'> = {
  message_undelivered: 'reach',
  call_failed: 'reach',
  read_receipts_missing: 'reach',
  profile_photo_hidden: 'privacy',
  last_seen_hidden: 'privacy',
  group_add_refused: 'group_add',
  channel_blocked: 'channel',
};
/**
 * The second clue of the privacy pair adds this share of its own log-likelihood ratio: the seed puts the
 * pair at ≈ 2.3 against ≈ 2 for one (most who hide one hide both). ln 2.3 / ln 2 − 1 ≈ 0.2.
 */
export const PRIVACY_PAIR_SHARE = 0.2;
/**
 * Half-life (hours) of the wait of contacts who are not always connected, beyond `undeliveredAfterHours`:
 * the share of non-blockers whose message is still on one tick halves every 48 h, down to `longOfflineShare`.
 */
export const OFFLINE_HALF_LIFE_HOURS = 48;
/** After evidence against a block, the prior restarts at this share of `blockBaseRate` and climbs back. */
export const RESET_PRIOR_SHARE = 0.1;
/** A weight of 1 would be certainty: likelihood ratios are capped here. */
export const MAX_LIKELIHOOD_RATIO = 10_000;

/** The likelihood ratio of a weight: w = 1 − P(clue | not blocked) / P(clue | blocked). */
export const likelihoodRatioOf = (weight: number) => Math.min(MAX_LIKELIHOOD_RATIO, 1 / (1 - weight));

/**
 * The likelihood ratio of a message on one tick for `waitSec` (≥ `undeliveredAfterHours`):
 * 1 / P(still undelivered | not blocked), with P = floor + (max(1 − w, floor) − floor)·2^(−(wait − T)/48 h)
 * and floor = `longOfflineShare` (a contact offline for weeks looks like a blocker). Non-decreasing in the
 * wait, bounded by 1 / `longOfflineShare`; weight 0 switches it off.
 */
export function undeliveredLikelihoodRatio(
  waitSec: number,
  policy: Pick<Policy, 'undeliveredAfterHours' | 'longOfflineShare' | 'signalWeights'>,
): number {
  const w = policy.signalWeights.message_undelivered;
  if (w <= 0) return 1;
  const floor = policy.longOfflineShare;
  // Those offline for weeks are among those still waiting at the timeout.
  const atTimeout = Math.max(1 / likelihoodRatioOf(w), floor);
  const beyond = Math.max(0, waitSec - policy.undeliveredAfterHours * 3600);
  return 1 / (floor + (atTimeout - floor) * 2 ** (-beyond / (OFFLINE_HALF_LIFE_HOURS * 3600)));
}

/**
 * The prior at `atSec`: `blockBaseRate`, or after evidence against a block (the contact was reachable at
 * `clearedAt`) a tenth of it climbing back with `signalHalfLifeDays`.
 */
function priorAt(summary: ChannelSignals, policy: Policy, atSec: number): number {
  const base = policy.blockBaseRate;
  if (summary.clearedAt === undefined) return base;
  const recovered = 1 - 2 ** (-Math.max(0, atSec - summary.clearedAt) / (policy.signalHalfLifeDays * DAY_SECONDS));
  return base * Math.max(RESET_PRIOR_SHARE, recovered);
}

interface Scored extends Contribution {
  exact: number;
}

/** Every counted clue with its log-likelihood ratio, and the log-odds of a block at `atSec`. */
function score(summary: ChannelSignals, policy: Policy, atSec: number, decay = true) {
  const halfLife = policy.signalHalfLifeDays * DAY_SECONDS;
  const timeout = policy.undeliveredAfterHours * 3600;
  const prior = decay ? priorAt(summary, policy, atSec) : policy.blockBaseRate;
  const scored: Scored[] = countedClues(summary, policy, atSec).map((c) => {
    const weight = policy.signalWeights[c[0]] ?? 0;
    // An undelivered message is a present state (still on one tick): it grows with the wait, never decays.
    const ratio =
      c[0] === 'message_undelivered'
        ? undeliveredLikelihoodRatio(atSec - (c[1] - timeout), policy)
        : likelihoodRatioOf(weight) ** (decay ? 2 ** (-(atSec - c[1]) / halfLife) : 1);
    return {
      type: c[0],
      observedAt: toIso(c[1]),
      weight,
      likelihoodRatio: Math.round(ratio * 100) / 100,
      contribution: 0,
      ...(c[3] === 1 ? { inferred: true } : {}),
      exact: Math.log(ratio),
    };
  });
  const byGroup = new Map<string, Scored[]>();
  for (const s of scored) {
    if (s.exact <= 0) continue;
    const group = CLUE_GROUP[s.type];
    byGroup.set(group, [...(byGroup.get(group) ?? []), s]);
  }
  let logOdds = Math.log(prior / (1 - prior));
  let counted = 0;
  for (const [group, members] of byGroup) {
    members.sort((a, b) => b.exact - a.exact);
    const [top] = members;
    top.contribution = top.exact;
    counted += top.exact;
    if (group === 'privacy') {
      const other = members.find((m) => m.type !== top.type);
      if (other) {
        other.contribution = PRIVACY_PAIR_SHARE * other.exact;
        counted += other.contribution;
      }
    }
  }
  logOdds += counted;
  const signals = scored
    .filter((s) => s.exact > 0)
    .sort((a, b) => b.contribution - a.contribution || b.exact - a.exact)
    .map(({ exact: _exact, contribution, ...c }) => ({ ...c, contribution: round(contribution) }));
  return { logOdds, signals };
}

/** The posterior as reported: 4 decimals, strictly inside (0, 1). */
const reported = (logOdds: number) => Math.min(0.9999, Math.max(0.0001, round(1 / (1 + Math.exp(-logOdds)))));

function likelihoodAt(summary: ChannelSignals, policy: Policy, atSec: number): Likelihood {
  const { logOdds, signals } = score(summary, policy, atSec);
  const blockLikelihood = reported(logOdds);
  return { blockLikelihood, level: levelOf(blockLikelihood, policy), signals };
}

/**
 * The probability that the contact blocked the business on this channel, as of `at`: the prior
 * (`blockBaseRate`) updated by the log-likelihood ratio of each group of clues since the last evidence
 * against a block (docs/signals-and-policy.md, "The model"). No summary (no signal on the channel): 0. Pure.
 */
export function blockLikelihood(summary: ChannelSignals | undefined, policy: Policy, at: string): Likelihood {
  if (!summary) return { blockLikelihood: 0, level: 'none', signals: [] };
  return likelihoodAt(summary, policy, toSec(at));
}

/** Resolution of the search for the last moment a block was likely. */
const SCAN_STEP_SEC = 3600;

/**
 * The last moment at or before `at`, and no earlier than `lookbackDays` before it, when the block on this
 * channel was `likely`, if any (never before the last evidence against a block). The posterior moves with
 * each clue's arrival, the growing wait of undelivered messages and decay, so it is evaluated at `at`, at
 * every clue's arrival and hourly in between.
 */
export function lastLikelyAt(
  summary: ChannelSignals | undefined,
  policy: Policy,
  at: string,
  lookbackDays: number,
): string | undefined {
  if (!summary) return undefined;
  const atSec = toSec(at);
  const threshold = Math.log(policy.blockThreshold / (1 - policy.blockThreshold));
  // Without decay and at the full prior, nothing in the window scores higher: most subjects stop here.
  if (score(summary, policy, atSec, false).logOdds < threshold) return undefined;
  if (likelihoodAt(summary, policy, atSec).level === 'likely') return toIso(atSec);
  const from = Math.max(atSec - lookbackDays * DAY_SECONDS, summary.clearedAt ?? Number.NEGATIVE_INFINITY);
  const arrivals = countedClues(summary, policy, atSec)
    .map((c) => c[1])
    .filter((t) => t >= from && t <= atSec);
  const instants = new Set<number>([atSec, ...arrivals]);
  for (let t = atSec - (atSec % SCAN_STEP_SEC); t >= from; t -= SCAN_STEP_SEC) instants.add(t);
  for (const t of [...instants].sort((a, b) => b - a)) {
    if (t < from) continue;
    if (likelihoodAt(summary, policy, t).level === 'likely') return toIso(t);
  }
  return undefined;
}

/**
 * Whether the block on this channel can be `likely` at any moment up to `until` if no other signal arrives:
 * the score without decay, at the full prior and with the longest wait, bounds every moment before it.
 */
export function canBeLikelyUntil(summary: ChannelSignals | undefined, policy: Policy, until: string): boolean {
  if (!summary) return false;
  const threshold = Math.log(policy.blockThreshold / (1 - policy.blockThreshold));
  return score(summary, policy, toSec(until), false).logOdds >= threshold;
}

/** A one-line explanation of the contributing clues, for reasons and warnings. */
export function describeSignals(signals: readonly Contribution[]): string {
  return signals
    .map(
      (s) =>
        `${s.type}${s.inferred ? ' (not delivered in time)' : ''} at ${s.observedAt} (×${s.likelihoodRatio}${s.contribution === 0 ? ', counted with a stronger clue of its kind' : ''})`,
    )
    .join(', ');
}

export interface RecordSignalInput extends SignalInput {
  channel: Channel;
  /** Who reported it: `api` or `whatsapp_webhook`. */
  source: string;
  /** Extra detail for the ledger (an error code…). */
  data?: Record<string, unknown>;
}

/**
 * Records one signal: the channel's bounded summary in the state, the full signal in the ledger. An
 * inbound message is the person's own action (it restarts the consent's age, docs/api.md#pre-send-gate).
 * Erased subjects keep only their tombstone, so a signal about them is refused.
 */
export function recordSignal(
  current: SubjectState,
  input: RecordSignalInput,
  policy: Policy,
  now: string,
): Change & { likelihood: Likelihood } {
  if (current.erasure?.status === 'completed') throw new SubjectErased(current.erasure.erasedAt);
  // The level before this signal, on the public part: a change from or to `likely` is a change event (block.likely, block.cleared).
  const previousLevel = blockLikelihood(channelSignals(current, input.channel), policy, now).level;
  const summary = applySignal(channelSignals(current, input.channel), input, policy, now);
  const likelihood = blockLikelihood(summary, policy, now);
  const ownAction = input.type === 'inbound_message';
  return {
    likelihood,
    state: {
      ...current,
      signals: { ...(current.signals ?? {}), [input.channel]: summary },
      ...(ownAction ? { lastOwnActionAt: latest(current.lastOwnActionAt, input.observedAt) } : {}),
    },
    event: {
      type: 'signal.recorded',
      at: input.observedAt,
      channel: input.channel,
      source: input.source,
      data: {
        type: input.type,
        observedAt: input.observedAt,
        ...input.data,
        blockLikelihood: likelihood.blockLikelihood,
        level: likelihood.level,
        previousLevel,
      },
      // A wamid encodes the recipient's phone number: only its hash is kept, and only as a detail.
      ...(input.messageId ? { details: { messageRef: messageRef(input.messageId) } } : {}),
    },
  };
}
