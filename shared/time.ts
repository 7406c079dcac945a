/** A day in milliseconds. */
export const DAY_MS = 86_400_000;

/** A day in seconds. */
export const DAY_SECONDS = 86_400;

/** Whole epoch seconds of an ISO time or of epoch milliseconds. */
export const toSec = (at: string | number) => Math.floor((typeof at === 'string' ? Date.parse(at) : at) / 1000);
