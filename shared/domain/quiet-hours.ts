/**
 * Wall-clock arithmetic in an IANA time zone with Intl only: the local time of an instant, and the
 * instant at which a local time next occurs (correct across DST changes).
 */

import { DAY_MS } from '#shared/time.ts';

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-GB', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    });
    formatters.set(timeZone, f);
  }
  return f;
}

/** Local calendar fields of an instant. */
export interface LocalTime {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
}

/** The wall-clock time of `ms` in `timeZone`. */
export function localTime(ms: number, timeZone: string): LocalTime {
  const parts: Record<string, number> = {};
  for (const p of formatter(timeZone).formatToParts(new Date(ms))) {
    if (p.type !== 'literal') parts[p.type] = Number(p.value);
  }
  return { year: parts.year, month: parts.month, day: parts.day, hour: parts.hour, minute: parts.minute };
}

/** The zone's offset from UTC at `ms`, in ms (local − UTC). */
function offsetAt(ms: number, timeZone: string): number {
  const t = localTime(ms, timeZone);
  const asUtc = Date.UTC(t.year, t.month - 1, t.day, t.hour, t.minute);
  return asUtc - Math.floor(ms / 60_000) * 60_000;
}

/**
 * The first instant (after `after`, when given) at which the local clock shows this date and time. In a
 * fall-back overlap that is the first of the two; in a spring-forward gap (the time does not exist) it is
 * the moment the clock jumps.
 */
export function zonedInstant(
  date: { year: number; month: number; day: number },
  hour: number,
  minute: number,
  timeZone: string,
  after = Number.NEGATIVE_INFINITY,
): number {
  const wall = Date.UTC(date.year, date.month - 1, date.day, hour, minute);
  const offsets = [...new Set([offsetAt(wall - DAY_MS, timeZone), offsetAt(wall + DAY_MS, timeZone)])];
  const valid = offsets.map((o) => wall - o).filter((t) => offsetAt(t, timeZone) === wall - t && t > after);
  if (valid.length) return Math.min(...valid);
  // A gap: find the transition between the two candidate instants (to the minute).
  let lo = Math.min(...offsets.map((o) => wall - o));
  let hi = Math.max(...offsets.map((o) => wall - o));
  const before = offsetAt(lo, timeZone);
  while (hi - lo > 60_000) {
    const mid = Math.floor((lo + hi) / 2 / 60_000) * 60_000;
    if (offsetAt(mid, timeZone) === before) lo = mid;
    else hi = mid;
  }
  return hi;
}

const minutes = (hhmm: string) => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));

/**
 * If `at` falls in the quiet period (local `start` ≤ time < `end`, which may span midnight), the UTC
 * instant at which it ends; otherwise undefined.
 */
export function quietUntil(at: string, quiet: { start: string; end: string }, timeZone: string): string | undefined {
  const ms = Date.parse(at);
  const local = localTime(ms, timeZone);
  const now = local.hour * 60 + local.minute;
  const start = minutes(quiet.start);
  const end = minutes(quiet.end);
  const quietNow = start < end ? now >= start && now < end : now >= start || now < end;
  if (!quietNow) return undefined;
  // The end is today when it is still ahead on the clock, else tomorrow (a period spanning midnight).
  const next = new Date(Date.UTC(local.year, local.month - 1, local.day + (now < end ? 0 : 1)));
  const until = zonedInstant(
    { year: next.getUTCFullYear(), month: next.getUTCMonth() + 1, day: next.getUTCDate() },
    Math.floor(end / 60),
    end % 60,
    timeZone,
    ms,
  );
  return new Date(until).toISOString();
}
