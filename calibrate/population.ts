import type { SignalInput } from '#domain/likelihood.ts';

/**
 * Simulated contact populations for `npm run calibrate` (docs/signals-and-policy.md, "Calibration"). Every
 * assumption is a named number in `World`; the generator is deterministic for a given seed.
 */

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/** A population's written-down assumptions. Shares are of all contacts unless said otherwise. */
export interface World {
  name: string;
  /** Contacts who blocked the business before the window (the seed: 5–15 %). */
  blockerShare: number;
  /** Photo and last seen hidden from non-contacts: one setting (the seed: 45 %). */
  strictPrivacyShare: number;
  /** Among the others, who hide only the photo, or only last seen. */
  singleHiddenShare: number;
  /** Read receipts off (the seed: 30 %). */
  receiptsOffShare: number;
  /** Phones not always connected (the seed: 15 %): see `intermittentLongWait`. */
  intermittentShare: number;
  /** Of an intermittent phone's messages, the share sent while it is off for days: they wait 72 h + Exp(half-life 48 h). */
  intermittentLongWait: number;
  /** Phones offline for the whole window (lost, abroad, a drawer): their trace is a blocker's. */
  longOfflineShare: number;
  /** Numbers no longer on WhatsApp: every send fails with 131026 (`recipient_unreachable`). */
  deadShare: number;
  /** Group privacy "my contacts": a group add is refused (the seed: a refusal ≈ 5, so ≈ 20 %). */
  groupsMyContactsShare: number;
}

/** The seed's base rates (docs/signals-and-policy.md, "Calibration"). */
export const SEED_WORLD: World = {
  name: 'seed rates',
  blockerShare: 0.1,
  strictPrivacyShare: 0.45,
  singleHiddenShare: 0.1,
  receiptsOffShare: 0.3,
  intermittentShare: 0.15,
  intermittentLongWait: 0.6,
  longOfflineShare: 0,
  deadShare: 0,
  groupsMyContactsShare: 0.2,
};

/** What the business and its agents do during the window, the same in every world. */
export const HABITS = {
  windowDays: 56,
  /** One marketing message a week, from a random day of the first week. */
  sendEveryDays: 7,
  /** A regular phone gets a message after Exp(mean 1 h). */
  regularDeliveryMeanHours: 1,
  /** A message delivered is read (blue ticks, receipts on) with this probability, after Exp(mean 6 h). */
  readShare: 0.7,
  readMeanHours: 6,
  /** A delivered message gets a reply (an inbound message) with this probability, after Exp(mean 2 h). */
  replyShare: 0.05,
  /**
   * During the window an agent opens the conversation or the profile once, with this probability, and sees
   * whether the photo and last seen are shown (the Business app shows both in the chat header).
   */
  profileLookShare: 0.7,
  /** … calls once (a call that does not ring: blocked, or the phone is offline then). */
  callShare: 0.2,
  /** … adds the contact to a group once. */
  groupAddShare: 0.05,
  /** … notes that messages stay unread (reported for blockers, receipts off, and phones offline then). */
  unreadNoteShare: 0.2,
  /** Probability that a phone is offline at a given moment: regular, intermittent. */
  offlineNowRegular: 0.05,
  offlineNowIntermittent: 0.5,
} as const;

type Connectivity = 'regular' | 'intermittent' | 'long_offline' | 'dead';

/** A signal as simulated: its type, time (epoch ms) and message id. */
export interface SimSignal {
  type: SignalInput['type'];
  ms: number;
  messageId?: string;
}

/** One simulated contact: the truth, and the signals the business would record, in time order. */
export interface Contact {
  blocked: boolean;
  connectivity: Connectivity;
  signals: SimSignal[];
}

/** A simulated signal as `POST /v1/signals` takes it. */
export const toSignalInput = ({ type, ms, messageId }: SimSignal): SignalInput => ({
  type,
  observedAt: new Date(ms).toISOString(),
  ...(messageId ? { messageId } : {}),
});

/** mulberry32: a small seeded PRNG, enough for simulation. */
export function rng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
  return {
    next,
    chance: (p: number) => next() < p,
    exp: (mean: number) => -mean * Math.log(1 - next()),
    uniform: (lo: number, hi: number) => lo + (hi - lo) * next(),
  };
}
export type Rng = ReturnType<typeof rng>;

/** Generates one contact's signals over the window starting at `start` (epoch ms). */
export function simulateContact(world: World, r: Rng, start: number, id: number): Contact {
  const h = HABITS;
  const blocked = r.chance(world.blockerShare);
  const strict = r.chance(world.strictPrivacyShare);
  const photoHidden = strict || r.chance(world.singleHiddenShare / 2);
  const lastSeenHidden = strict || (!photoHidden && r.chance(world.singleHiddenShare / 2));
  const receiptsOff = r.chance(world.receiptsOffShare);
  const groupsMyContacts = r.chance(world.groupsMyContactsShare);
  // Blockers are drawn first; the connectivity of non-blockers follows the world's shares of all contacts.
  const c = r.next() * (1 - world.blockerShare);
  const connectivity: Connectivity = blocked
    ? 'regular'
    : c < world.deadShare
      ? 'dead'
      : c < world.deadShare + world.longOfflineShare
        ? 'long_offline'
        : c < world.deadShare + world.longOfflineShare + world.intermittentShare
          ? 'intermittent'
          : 'regular';
  const end = start + h.windowDays * DAY;
  const signals: SimSignal[] = [];
  const push = (type: SignalInput['type'], ms: number, messageId?: string) => {
    if (ms <= end) signals.push({ type, ms: Math.round(ms), messageId });
  };
  const offlineAt = () =>
    connectivity === 'long_offline' || connectivity === 'dead'
      ? true
      : r.chance(connectivity === 'intermittent' ? h.offlineNowIntermittent : h.offlineNowRegular);

  let delivered = 0;
  for (let t = start + r.uniform(0, h.sendEveryDays) * DAY, k = 0; t < end; t += h.sendEveryDays * DAY, k++) {
    const id_ = `wamid.sim.${id}.${k}`;
    push('message_sent', t, id_);
    if (blocked || connectivity === 'long_offline') continue;
    if (connectivity === 'dead') {
      push('recipient_unreachable', t + 2000, id_);
      continue;
    }
    const delay =
      connectivity === 'intermittent' && r.chance(world.intermittentLongWait)
        ? 72 * HOUR + r.exp((48 / Math.LN2) * HOUR)
        : r.exp(h.regularDeliveryMeanHours * HOUR);
    const d = t + delay;
    push('message_delivered', d, id_);
    if (d <= end) delivered++;
    if (!receiptsOff && r.chance(h.readShare)) push('message_read', d + r.exp(h.readMeanHours * HOUR), id_);
    if (r.chance(h.replyShare)) push('inbound_message', d + r.exp(2 * HOUR));
  }
  if (r.chance(h.profileLookShare)) {
    const t = r.uniform(start, end);
    if (blocked || photoHidden) push('profile_photo_hidden', t);
    if (blocked || lastSeenHidden) push('last_seen_hidden', t);
  }
  if (r.chance(h.callShare)) {
    const t = r.uniform(start, end);
    if (blocked || offlineAt()) push('call_failed', t);
  }
  if (r.chance(h.groupAddShare)) {
    const t = r.uniform(start, end);
    if (blocked || groupsMyContacts) push('group_add_refused', t);
  }
  if (r.chance(h.unreadNoteShare)) {
    const t = r.uniform(start, end);
    if (blocked || (receiptsOff && delivered > 0) || offlineAt()) push('read_receipts_missing', t);
  }
  signals.sort((a, b) => a.ms - b.ms);
  return { blocked, connectivity, signals };
}
