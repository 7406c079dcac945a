import { DAY_SECONDS, toSec } from '#shared/time.ts';
import type { Policy } from './policy.ts';
import type { Change, SubjectState } from './subject-state.ts';
import type { Channel } from './vocabulary.ts';

/**
 * Frequency caps count the sends checked with `record: true`. The state keeps, per channel and purpose,
 * the times (epoch s, newest first) of the latest sends within the longest cap window: as many as the
 * largest cap on that scope counts (at least SEND_LOG_MIN, at most SEND_LOG_MAX, the highest `max` a cap
 * may have), so "max reached" is decided exactly; older sends stay in the ledger.
 */
export const SEND_LOG_MAX = 31;
const SEND_LOG_MIN = 3;
/** Sends are kept this long when the policy has no cap, so a cap added later sees recent history. */
const DEFAULT_KEEP_DAYS = 30;

/** Send times per `channel|purpose`. */
export type SendLog = Record<string, number[]>;

type Cap = Policy['frequencyCaps'][number];

const sendLog = (state: SubjectState | undefined): SendLog => (state?.sends as SendLog | undefined) ?? {};

/**
 * The times of the sends a cap counts at `at` (newest first): those of its window, and any recorded with a
 * later time (parallel checks each take their own `now`: a send counted a moment "after" still counts).
 */
export function sendsUnderCap(state: SubjectState | undefined, cap: Cap, at: string): number[] {
  const from = toSec(at) - cap.perDays * DAY_SECONDS;
  return Object.entries(sendLog(state))
    .filter(([key]) => {
      const [channel, purpose] = key.split('|');
      return (cap.channel === '*' || cap.channel === channel) && (cap.purpose === '*' || cap.purpose === purpose);
    })
    .flatMap(([, times]) => times.filter((t) => t > from))
    .sort((a, b) => b - a);
}

/** Counts one allowed send in the state (bounded) and records it in the ledger. Pure. */
export function recordSend(
  current: SubjectState,
  send: { channel: Channel; purpose: string; at: string; decisionId: string },
  policy: Policy,
  now: string,
): Change {
  const atSec = toSec(send.at);
  const keepDays = Math.max(DEFAULT_KEEP_DAYS, ...policy.frequencyCaps.map((c) => c.perDays));
  const from = toSec(now) - keepDays * DAY_SECONDS;
  const log: SendLog = {};
  for (const [key, times] of Object.entries({ ...sendLog(current) })) {
    const kept = times.filter((t) => t > from);
    if (kept.length) log[key] = kept;
  }
  const key = `${send.channel}|${send.purpose}`;
  const needed = policy.frequencyCaps
    .filter(
      (c) => (c.channel === '*' || c.channel === send.channel) && (c.purpose === '*' || c.purpose === send.purpose),
    )
    .reduce((n, c) => Math.max(n, c.max), SEND_LOG_MIN);
  log[key] = [...(log[key] ?? []), atSec].sort((a, b) => b - a).slice(0, Math.min(needed, SEND_LOG_MAX));
  return {
    state: { ...current, sends: log },
    event: {
      type: 'send.recorded',
      at: now,
      channel: send.channel,
      purpose: send.purpose,
      source: 'gate',
      data: { decisionId: send.decisionId, sentAt: send.at },
    },
  };
}
