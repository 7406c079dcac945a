import { DAY_SECONDS, toSec } from '#shared/time.ts';
import { blockLikelihood, canBeLikelyUntil, channelSignals, lastLikelyAt, signalChannels } from './likelihood.ts';
import type { Policy } from './policy.ts';
import {
  type Change,
  type KindOf,
  type NextEvent,
  type SubjectState,
  UNLISTED_KEY,
  withdrawConsent,
} from './subject-state.ts';
import type { Channel, ScopeKey } from './vocabulary.ts';

/**
 * One person, several identifiers (docs/api.md#one-person-several-identifiers). What crosses a link is
 * written to every linked subject's own state when it happens, so the gate still reads one item:
 * - closings without a channel (`*|purpose`, `*|*`, `*|@marketing`: an objection to every channel) — copied
 *   at their own event time, so each subject folds them like its own;
 * - the cross-channel cooldown of a likely block: the window in which a member's block is likely, projected
 *   from its signals when they change ({@link likelyWindow}), kept by the other members under
 *   `person.cooldowns` and read by the gate's `linkedCooldownRule`.
 * Pure.
 */

/** Most identifiers one person may have. */
export const MAX_LINKED_SUBJECTS = 10;

/** When a member's block on one channel is likely: `from`, up to `until` (null: until new evidence). */
export interface LinkedCooldown {
  from: string;
  until: string | null;
}

export type Cooldowns = Partial<Record<Channel, LinkedCooldown>>;

/** The link part of a subject's state. */
export interface PersonRef {
  /** The person this subject is linked to. */
  key: string;
  /**
   * The other members' likely-block windows by channel, merged (the earliest start, the latest end): at most
   * one per channel, however many members, so the state item stays small.
   */
  cooldowns?: Cooldowns;
}

/** The person a subject belongs to, if any. */
export const personOf = (state: SubjectState | undefined): PersonRef | undefined => state?.person;

/** The state with its link part replaced (removed with `undefined`). */
export function withPerson(state: SubjectState, person: PersonRef | undefined): SubjectState {
  const { person: _old, ...rest } = state;
  if (!person) return rest;
  const cooldowns = person.cooldowns && Object.keys(person.cooldowns).length > 0 ? person.cooldowns : undefined;
  return { ...rest, person: { key: person.key, ...(cooldowns ? { cooldowns } : {}) } };
}

/** The scan: every 3 hours for two weeks (an undelivered message's wait moves fastest then), then daily. */
const SCAN_FINE_DAYS = 14;
const SCAN_FINE_STEP = 3 * 3600;
const SCAN_HORIZON_DAYS = 365;

/**
 * The window in which the block on one channel is `likely`, from the summary as it stands at `now`, if no
 * further signal arrives: from the start of the likely stretch within the policy's cooldown tail before `now`
 * (hourly; or the first likely moment after `now`) to the last likely moment within a year (every 3 hours for
 * two weeks, then daily; still likely a year on: `until` null). The posterior moves with time alone (an undelivered message's wait
 * grows, clues decay), which is why a window and not a level is carried over; a new signal recomputes it.
 */
export function likelyWindow(
  state: SubjectState,
  channel: Channel,
  policy: Policy,
  now: string,
): LinkedCooldown | undefined {
  const summary = channelSignals(state, channel);
  if (!summary) return undefined;
  const nowSec = toSec(now);
  const past = lastLikelyAt(summary, policy, now, policy.crossChannelCooldownDays);
  const likely = (sec: number) =>
    blockLikelihood(summary, policy, new Date(sec * 1000).toISOString()).level === 'likely';
  let first: number | undefined;
  let last: number | undefined;
  const end = nowSec + SCAN_HORIZON_DAYS * DAY_SECONDS;
  const fineUntil = nowSec + SCAN_FINE_DAYS * DAY_SECONDS;
  // The grid is aligned on the clock (whole 3-hour steps, then whole days), not on `now`: the same signals
  // give the same window whenever it is computed, so a window is rewritten only when the signals moved it.
  const nextStep = (t: number) => {
    const step = t < fineUntil ? SCAN_FINE_STEP : DAY_SECONDS;
    return t - (t % step) + step;
  };
  // Most summaries cannot reach `likely` within the horizon at all: no scan then.
  if (canBeLikelyUntil(summary, policy, new Date(end * 1000).toISOString())) {
    for (let t = nowSec; t <= end; t = nextStep(t)) {
      if (likely(t)) {
        first ??= t;
        last = t;
      }
    }
  }
  if (first === undefined && past === undefined) return undefined;
  // The window starts where the likely stretch reaching `past` began, within the tail: at a clue's arrival
  // (when the evidence came) or an hour on the clock.
  let start = past === undefined ? (first as number) : toSec(past);
  if (past !== undefined) {
    const earliest = nowSec - policy.crossChannelCooldownDays * DAY_SECONDS;
    const arrivals = Object.values(summary.clues).flatMap((entries) => (entries ?? []).map((e) => e[0]));
    const instants = new Set([...arrivals, ...summary.pending.map((p) => p[0] + policy.undeliveredAfterHours * 3600)]);
    for (let t = start - (start % 3600); t >= earliest; t -= 3600) instants.add(t);
    for (const t of [...instants].filter((t) => t < start && t >= earliest).sort((a, b) => b - a)) {
      if (!likely(t)) break;
      start = t;
    }
  }
  const from = new Date(start * 1000).toISOString();
  if (last !== undefined && likely(end)) return { from, until: null };
  return { from, until: last !== undefined ? new Date(last * 1000).toISOString() : (past as string) };
}

/** The windows a subject's own signals give its linked subjects, by channel. */
export function cooldownsFrom(source: SubjectState, policy: Policy, now: string): Cooldowns {
  if (policy.crossChannelCooldownDays === 0) return {};
  const out: Cooldowns = {};
  for (const channel of signalChannels(source)) {
    const window = likelyWindow(source, channel, policy, now);
    if (window) out[channel] = window;
  }
  return out;
}

const later = (a: string | null, b: string | null) => (a === null || b === null ? null : a > b ? a : b);

/** Several members' windows as one per channel: the earliest start and the latest end (blocking in between). */
export function mergeCooldowns(all: readonly Cooldowns[]): Cooldowns {
  const out: Cooldowns = {};
  for (const windows of all) {
    for (const [channel, w] of Object.entries(windows) as [Channel, LinkedCooldown][]) {
      const seen = out[channel];
      const from = seen && seen.from < w.from ? seen.from : w.from;
      out[channel] = seen ? { from, until: later(seen.until, w.until) } : w;
    }
  }
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => a.localeCompare(b)));
}

const sameCooldowns = (a: Cooldowns, b: Cooldowns) =>
  JSON.stringify(Object.entries(a).sort()) === JSON.stringify(Object.entries(b).sort());

/**
 * A linked subject given the other members' merged windows (`cooldown.updated`), or null when it holds them
 * already. The event's public part names the channels and times, never a member.
 */
export function cooldownChange(target: SubjectState, windows: Cooldowns, now: string): Change | null {
  const person = personOf(target);
  if (!person || sameCooldowns(person.cooldowns ?? {}, windows)) return null;
  return {
    state: withPerson(target, { ...person, cooldowns: windows }),
    event: {
      type: 'cooldown.updated',
      at: now,
      source: 'link',
      data: {
        windows: (Object.entries(windows) as [Channel, LinkedCooldown][]).map(([channel, w]) => ({ channel, ...w })),
      },
    },
  };
}

/** A closing without a channel that crosses links. */
interface CrossClosing {
  key: ScopeKey;
  at: string;
  source: string;
}

/** A subject's closings that hold for every channel (objections and stops given without a channel). */
export function crossClosings(state: SubjectState): CrossClosing[] {
  return (Object.entries(state.scopes) as [ScopeKey, NonNullable<SubjectState['scopes'][ScopeKey]>][])
    .filter(([key, e]) => key.startsWith('*|') && key !== UNLISTED_KEY && e.withdrawnAt)
    .map(([key, e]) => ({ key, at: e.withdrawnAt as string, source: e.withdrawnSource ?? 'api' }));
}

/**
 * The state with `closings` applied at their own times (a closing never moves earlier: each entry keeps the
 * latest), and the list of those that changed something.
 */
export function inheritClosings(
  state: SubjectState,
  closings: readonly CrossClosing[],
  next: NextEvent,
  now: string,
  kindOf?: KindOf,
): { state: SubjectState; inherited: CrossClosing[] } {
  let current = state;
  const inherited: CrossClosing[] = [];
  for (const c of closings) {
    const own = current.scopes[c.key]?.withdrawnAt;
    if (own && Date.parse(own) >= Date.parse(c.at)) continue;
    const purpose = c.key.slice(2);
    const marketing = purpose === '@marketing';
    current = withdrawConsent(
      current,
      {
        ...(purpose === '*' || marketing ? {} : { purpose }),
        ...(marketing ? { onlyKind: 'marketing' as const } : {}),
        source: c.source,
        at: c.at,
      },
      next,
      now,
      kindOf,
    ).state;
    inherited.push(c);
  }
  return { state: current, inherited };
}

export interface LinkInput {
  personKey: string;
  /** Every member after the change. */
  subjectKeys: readonly string[];
  /** How the link was made: `api`, `crm`, `whatsapp`, `self_service`, `number_changed`. */
  source: string;
  at: string;
  evidence?: Record<string, unknown>;
  /** The other members' closings without a channel, and their merged cooldown windows. */
  closings: readonly CrossClosing[];
  cooldowns: Cooldowns;
  merged?: boolean;
}

/**
 * A subject (new or already a member) joins `personKey` (`subject.linked`): it takes the person's closings
 * without a channel and the other members' cooldown windows. The members' keys and the evidence are personal
 * details (an erasure deletes them); the public part counts them.
 */
export function linkChange(current: SubjectState, input: LinkInput, next: NextEvent, kindOf?: KindOf): Change {
  const { state, inherited } = inheritClosings(current, input.closings, next, input.at, kindOf);
  const cooldowns = input.cooldowns;
  return {
    state: withPerson(state, { key: input.personKey, cooldowns }),
    event: {
      type: 'subject.linked',
      at: input.at,
      source: input.source,
      data: {
        members: input.subjectKeys.length,
        inherited: inherited.map((c) => ({ scope: c.key, at: c.at, source: c.source })),
        cooldowns: Object.keys(cooldowns).length,
        ...(input.merged ? { merged: true } : {}),
      },
      details: {
        personKey: input.personKey,
        subjectKeys: [...input.subjectKeys],
        ...(input.evidence ? { evidence: input.evidence } : {}),
      },
    },
  };
}

/**
 * A subject leaves its person (`subject.unlinked`): it keeps the closings it inherited (a withdrawal is
 * never undone by unlinking) and drops the other members' cooldown windows. `remaining`: the members left.
 */
export function unlinkChange(
  current: SubjectState,
  input: { source: string; at: string; remaining: number; reason?: string },
): Change | null {
  const person = personOf(current);
  if (!person) return null;
  return {
    state: withPerson(current, undefined),
    event: {
      type: 'subject.unlinked',
      at: input.at,
      source: input.source,
      data: { remaining: input.remaining },
      details: { personKey: person.key, ...(input.reason ? { reason: input.reason } : {}) },
    },
  };
}
