import type { Policy } from './policy.ts';
import type { Change, SubjectState } from './subject-state.ts';
import type { Channel } from './vocabulary.ts';

/**
 * Frequency caps count the sends checked with `record: true`. The state keeps, per channel and purpose,
 * the times (epoch s, newest first) of the latest SEND_LOG_MAX sends within the longest cap window: a cap's
 * `max` is at most SEND_LOG_MAX, so "max reached" is always decided exactly; older sends stay in the ledger.
 */
export const SEND_LOG_MAX = 31;
/** Sends are kept this long when the policy has no cap, so a cap added later sees recent history. */
const DEFAULT_KEEP_DAYS = 30;

/** Send times per `channel|purpose`. */
export type SendLog = Record<string, number[]>;

type Cap = Policy['frequencyCaps'][number];

const toSec = (iso: string) => Math.floor(Date.parse(iso) / 1000);

const sendLog = (state: SubjectState | undefined): SendLog => (state?.sends as SendLog | undefined) ?? {};

/** The times of the sends a cap counts in its window ending at `at` (newest first). */
export function sendsUnderCap(state: SubjectState | undefined, cap: Cap, at: string): number[] {
  const atSec = toSec(at);
  const from = atSec - cap.perDays * 86_400;
  return Object.entries(sendLog(state))
    .filter(([key]) => {
      const [channel, purpose] = key.split('|');
      return (cap.channel === '*' || cap.channel === channel) && (cap.purpose === '*' || cap.purpose === purpose);
    })
    .flatMap(([, times]) => times.filter((t) => t > from && t <= atSec))
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
  const from = toSec(now) - keepDays * 86_400;
  const log: SendLog = {};
  for (const [key, times] of Object.entries({ ...sendLog(current) })) {
    const kept = times.filter((t) => t > from);
    if (kept.length) log[key] = kept;
  }
  const key = `${send.channel}|${send.purpose}`;
  log[key] = [...(log[key] ?? []), atSec].sort((a, b) => b - a).slice(0, SEND_LOG_MAX);
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
