import type { AuditEvent, AuditRange } from './audit.ts';
import { blockLikelihood, channelSignals, signalChannels } from './likelihood.ts';
import type { Policy } from './policy.ts';
import type { SubjectState } from './subject-state.ts';

/** Channel key for events that concern no single channel (erasures, withdrawals of every channel). */
export const ALL_CHANNELS = '*';

export interface DaySummary {
  day: string;
  total: number;
  types: Record<string, number>;
  channels: Record<string, number>;
}

export interface AuditSummary {
  from: string;
  to: string;
  total: number;
  /** Every day of the range, in order, zeros included (charts need the gaps). */
  days: DaySummary[];
  /** The full cube: one row per day × type × channel that has events. */
  counts: { day: string; type: string; channel: string; count: number }[];
  types: Record<string, number>;
  channels: Record<string, number>;
}

/** Accumulates counts per day × type × channel over a stream of events. */
export class SummaryBuilder {
  private readonly cube = new Map<string, number>();

  constructor(private readonly days: readonly string[]) {}

  add(event: Pick<AuditEvent, 'at' | 'recordedAt' | 'type' | 'channel'>): void {
    // Counted on the day it was recorded, like the export: a late delivery lands in a day not yet summarised.
    const key = `${(event.recordedAt ?? event.at).slice(0, 10)}|${event.type}|${event.channel ?? ALL_CHANNELS}`;
    this.cube.set(key, (this.cube.get(key) ?? 0) + 1);
  }

  result(range: AuditRange): AuditSummary {
    const byDay = new Map<string, DaySummary>(
      this.days.map((day) => [day, { day, total: 0, types: {}, channels: {} }]),
    );
    const types: Record<string, number> = {};
    const channels: Record<string, number> = {};
    const counts: AuditSummary['counts'] = [];
    let total = 0;
    for (const [key, count] of [...this.cube].sort(([a], [b]) => a.localeCompare(b))) {
      const [day, type, channel] = key.split('|');
      counts.push({ day, type, channel, count });
      let d = byDay.get(day);
      if (!d) {
        d = { day, total: 0, types: {}, channels: {} };
        byDay.set(day, d);
      }
      d.total += count;
      d.types[type] = (d.types[type] ?? 0) + count;
      d.channels[channel] = (d.channels[channel] ?? 0) + count;
      types[type] = (types[type] ?? 0) + count;
      channels[channel] = (channels[channel] ?? 0) + count;
      total += count;
    }
    return {
      from: range.from,
      to: range.to,
      total,
      days: [...byDay.values()].sort((a, b) => a.day.localeCompare(b.day)),
      counts,
      types,
      channels,
    };
  }
}

/** Block levels of the likelihood model, and `unknown` for a contact with no readable state. */
export const BLOCK_LEVELS = ['none', 'suspected', 'likely'] as const;
export type BlockLevel = (typeof BLOCK_LEVELS)[number];

const LEVEL_RANK: Record<BlockLevel, number> = { none: 0, suspected: 1, likely: 2 };

/**
 * A contact's block level at `now`: the highest of its channels (a contact that likely blocked the
 * business on WhatsApp counts as `likely`); `none` without any signal.
 */
export function contactBlockLevel(state: SubjectState, policy: Policy, now: string): BlockLevel {
  let level: BlockLevel = 'none';
  for (const channel of signalChannels(state)) {
    const l = blockLikelihood(channelSignals(state, channel), policy, now).level;
    if (LEVEL_RANK[l] > LEVEL_RANK[level]) level = l;
  }
  return level;
}

/** Share of contacts per block level: counts and fractions (0 when there are no contacts). */
export function levelShare(levels: Iterable<BlockLevel>) {
  const counts: Record<BlockLevel, number> = { none: 0, suspected: 0, likely: 0 };
  let total = 0;
  for (const level of levels) {
    counts[level]++;
    total++;
  }
  const share = Object.fromEntries(
    BLOCK_LEVELS.map((l) => [l, total ? Math.round((counts[l] / total) * 10_000) / 10_000 : 0]),
  ) as Record<BlockLevel, number>;
  return { total, counts, share };
}
