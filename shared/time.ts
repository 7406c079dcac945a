/** A day in milliseconds. */
export const DAY_MS = 86_400_000;

/** A day in seconds. */
export const DAY_SECONDS = 86_400;

/** Whole epoch seconds of an ISO time or of epoch milliseconds. */
export const toSec = (at: string | number) => Math.floor((typeof at === 'string' ? Date.parse(at) : at) / 1000);

/** How far ahead of the service's clock a client-given time may be (clock skew). */
export const FUTURE_SKEW_MS = 5 * 60_000;

/** True when `at` is further in the future than the allowed clock skew. */
export const isInFuture = (at: string, now: string | number) =>
  Date.parse(at) > (typeof now === 'string' ? Date.parse(now) : now) + FUTURE_SKEW_MS;
