import { DAY_MS, toSec } from '#shared/time.ts';
import type { GateRule, Reason } from './gate-rule.ts';
import {
  blockLikelihood,
  channelSignals,
  describeSignals,
  lastLikelyAt,
  signalChannels,
  unreachableSince,
} from './likelihood.ts';
import { quietUntil } from './quiet-hours.ts';
import { sendsUnderCap } from './sends.ts';

/** Likely blocked on this channel → block (`likely_blocked`); suspected → warning (`block_suspected`). */
export const blockSignalRule: GateRule = (state, req, policy) => {
  const {
    blockLikelihood: likelihood,
    level,
    signals,
  } = blockLikelihood(channelSignals(state, req.channel), policy, req.at);
  const because = describeSignals(signals);
  if (level === 'likely') {
    return {
      blockLikelihood: likelihood,
      block: [
        {
          code: 'likely_blocked',
          message: `the contact has most likely blocked the business on ${req.channel} (likelihood ${likelihood} ≥ ${policy.blockThreshold}): ${because}`,
          signals,
        },
      ],
    };
  }
  if (level === 'suspected') {
    return {
      blockLikelihood: likelihood,
      warnings: [
        {
          code: 'block_suspected',
          message: `the contact may have blocked the business on ${req.channel} (likelihood ${likelihood} ≥ ${policy.suspectedThreshold}): ${because}`,
          signals,
        },
      ],
    };
  }
  return { blockLikelihood: likelihood };
};

/**
 * The latest word on reach on this channel is that the contact could not be reached (Meta 131026: not on
 * WhatsApp, terms not accepted, an app too old; a hard bounce) and nothing reached them since: warning
 * `recipient_unreachable` with `since`. Never a block: it says nothing about consent, and it is no block
 * evidence (the send would most likely fail, not annoy). A delivery, read receipt or inbound message lifts it.
 */
export const recipientUnreachableRule: GateRule = (state, req) => {
  const since = unreachableSince(channelSignals(state, req.channel));
  if (!since) return {};
  return {
    warnings: [
      {
        code: 'recipient_unreachable',
        message: `the contact could not be reached on ${req.channel} on ${since} (not on the channel, or unable to receive) and nothing was delivered to or received from them since`,
        since,
      },
    ],
  };
};

/**
 * A likely block on one channel pauses marketing on the subject's other channels while the block is
 * likely, and for `crossChannelCooldownDays` after it stopped being likely (`cross_channel_cooldown`);
 * evidence against the block lifts it at once, `0` switches it off.
 */
export const crossChannelCooldownRule: GateRule = (state, req, policy) => {
  const tailDays = policy.crossChannelCooldownDays;
  if (tailDays === 0) return {};
  const block: Reason[] = [];
  for (const channel of signalChannels(state)) {
    if (channel === req.channel) continue;
    const likelyAt = lastLikelyAt(channelSignals(state, channel), policy, req.at, tailDays);
    if (!likelyAt) continue;
    const until = new Date(Date.parse(likelyAt) + tailDays * DAY_MS).toISOString();
    if (Date.parse(until) <= Date.parse(req.at)) continue;
    const still = Date.parse(likelyAt) === toSec(req.at) * 1000;
    block.push({
      code: 'cross_channel_cooldown',
      message: still
        ? `the contact most likely blocked the business on ${channel}: marketing on other channels pauses while the block is likely and for ${tailDays} days after (at least until ${until})`
        : `the contact most likely blocked the business on ${channel} until ${likelyAt}: marketing on other channels pauses until ${until}`,
      channel,
      until,
    });
  }
  return { block };
};

/**
 * A likely block on a LINKED identifier of the same person pauses marketing on every channel of this one, for
 * the window its signals give (carried in this subject's own state, `person.cooldowns`) plus
 * `crossChannelCooldownDays` (`cross_channel_cooldown` with `linked: true`).
 */
export const linkedCooldownRule: GateRule = (state, req, policy) => {
  const tailDays = policy.crossChannelCooldownDays;
  if (tailDays === 0 || !state?.person?.cooldowns) return {};
  const at = Date.parse(req.at);
  const block: Reason[] = [];
  for (const [channel, window] of Object.entries(state.person.cooldowns)) {
    if (Date.parse(window.from) > at) continue;
    const until = window.until === null ? null : new Date(Date.parse(window.until) + tailDays * DAY_MS).toISOString();
    if (until !== null && Date.parse(until) <= at) continue;
    block.push({
      code: 'cross_channel_cooldown',
      message:
        until === null
          ? `another identifier of the same person most likely blocked the business on ${channel}: marketing pauses on every linked identifier while the block is likely and for ${tailDays} days after`
          : `another identifier of the same person most likely blocked the business on ${channel}: marketing pauses on every linked identifier until ${until}`,
      channel,
      until,
      linked: true,
    });
  }
  return { block };
};

/** The policy's frequency caps, counting sends checked with `record: true` (`frequency_cap`). */
export const frequencyCapRule: GateRule = (state, req, policy) => {
  const block: Reason[] = [];
  for (const cap of policy.frequencyCaps) {
    if (cap.channel !== '*' && cap.channel !== req.channel) continue;
    if (cap.purpose !== '*' && cap.purpose !== req.purpose) continue;
    const sends = sendsUnderCap(state, cap, req.at);
    if (sends.length < cap.max) continue;
    // A slot frees up when the oldest of the `max` latest sends leaves the window.
    const oldest = sends[cap.max - 1];
    const availableAt = oldest === undefined ? null : new Date(oldest * 1000 + cap.perDays * DAY_MS).toISOString();
    block.push({
      code: 'frequency_cap',
      message: `${sends.length} of at most ${cap.max} ${cap.channel === '*' ? '' : `${cap.channel} `}messages${cap.purpose === '*' ? '' : ` for ${cap.purpose}`} in ${cap.perDays} days were already sent${availableAt ? `; the next one is possible from ${availableAt}` : ''}`,
      cap,
      availableAt,
    });
  }
  return { block };
};

/** Inside the policy's quiet hours, in the recipient's time zone (or the policy's): defer to their end. */
export const quietHoursRule: GateRule = (_state, req, policy) => {
  if (!policy.quietHours) return {};
  const timeZone = req.timezone ?? policy.defaultTimezone;
  const retryAfter = quietUntil(req.at, policy.quietHours, timeZone);
  if (!retryAfter) return {};
  return {
    defer: [
      {
        reason: {
          code: 'quiet_hours',
          message: `${policy.quietHours.start}–${policy.quietHours.end} in ${timeZone} are quiet hours: retry after ${retryAfter}`,
          timezone: timeZone,
        },
        retryAfter,
      },
    ],
  };
};

/** The rules of this module, in the order the gate applies them after the consent rules. */
export const signalAndPolicyRules: GateRule[] = [
  blockSignalRule,
  recipientUnreachableRule,
  crossChannelCooldownRule,
  linkedCooldownRule,
  frequencyCapRule,
  quietHoursRule,
];
