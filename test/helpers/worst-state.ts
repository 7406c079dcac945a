import { randomBytes } from 'node:crypto';
import { ulid } from 'ulid';
import { recordSignal } from '#domain/likelihood.ts';
import { type Policy, PolicySchema, type SignalType } from '#domain/policy.ts';
import { recordSend } from '#domain/sends.ts';
import {
  emptyState,
  grantConsent,
  MAX_CLOSING_ONLY_SCOPES,
  MAX_GRANTED_SCOPES,
  type SubjectState,
  withdrawConsent,
} from '#domain/subject-state.ts';
import { CHANNELS, type Channel, OWN_ACT_SOURCES, WITHDRAW_SOURCES } from '#domain/vocabulary.ts';

/**
 * The largest state item any accepted input can produce (docs/limits.md, "State item layout"), folded with the
 * domain's own pure functions: every bound reached at once, every value at its longest, every id, time and
 * message distinct. `spread` is the seconds between consecutive signal and send times (a larger spread makes
 * the stored time deltas longer).
 */
export interface WorstCase {
  /** Longest purpose slug and notice version the API accepts. */
  purposeLength: number;
  noticeLength: number;
  /** Seconds between consecutive signals of a channel and between the sends of a scope. */
  spread?: number;
  /** Sends kept per granted scope: the largest frequency cap `max` (31 at most, the default). */
  sendsPerScope?: number;
  /** The last event time (ISO); defaults to a fixed instant. */
  now?: string;
}

const longest = (list: readonly string[]) => [...list].sort((a, b) => b.length - a.length)[0];
const hex = () => randomBytes(32).toString('hex');

/** A purpose slug of `length` characters, distinct per `i`. */
export const longPurpose = (i: number, length: number) => `p${String(i).padStart(3, '0')}`.padEnd(length, 'x');
/** A notice version of `length` characters, distinct per `i`. */
export const longNotice = (i: number, length: number) => `v${String(i).padStart(3, '0')}`.padEnd(length, '.');

/** The policy of the worst case: a cap of 31 sends on every granted purpose, sends kept 365 days. */
export function worstPolicy(purposeLength: number, sendsPerScope = 31): Policy {
  return PolicySchema.parse({
    undeliveredAfterHours: 1,
    frequencyCaps: [
      ...Array.from({ length: MAX_GRANTED_SCOPES }, (_, i) => ({
        channel: '*',
        purpose: longPurpose(i, purposeLength),
        max: sendsPerScope,
        perDays: 1,
      })),
      { channel: 'push', purpose: 'keep', max: 31, perDays: 365 },
    ],
  });
}

/** The worst-case state of `subjectKey` (an externalId subject: every channel reaches it). */
export function worstState(subjectKey: string, options: WorstCase): SubjectState {
  const { purposeLength, noticeLength } = options;
  const spread = options.spread ?? 60;
  const end = Date.parse(options.now ?? '2026-06-01T00:00:00.000Z');
  const sendsPerScope = options.sendsPerScope ?? 31;
  const policy = worstPolicy(purposeLength, sendsPerScope);
  // Every event recorded at the end, however far back its own time (an import of old consents): the ids'
  // times are as far from the events' as the item's times allow, so their deltas are the longest.
  const recordedId = () => ulid(end);
  // Times: the scopes' events in the first year, then the signal floods and the sends (with ms, never whole seconds).
  let clock = end - 2 * 365 * 86_400_000;
  const tick = () => {
    clock += 3_600_001;
    return new Date(clock).toISOString();
  };
  let state = emptyState(subjectKey, 'externalId');
  let seq = 0;
  const apply = (
    change: (s: SubjectState, next: { seq: number; eventId: string }, now: string) => { state: SubjectState },
  ) => {
    seq++;
    state = { ...change(state, { seq, eventId: recordedId() }, tick()).state, seq, version: seq, head: hex() };
  };
  const channel = (i: number) => CHANNELS[i % CHANNELS.length];
  const ownSource = longest(OWN_ACT_SOURCES);
  const withdrawSource = longest(WITHDRAW_SOURCES);
  for (let i = 0; i < MAX_GRANTED_SCOPES; i++) {
    const grant = (source: string) => (s: SubjectState, next: { seq: number; eventId: string }, now: string) =>
      grantConsent(
        s,
        {
          channel: channel(i),
          purpose: longPurpose(i, purposeLength),
          source,
          noticeVersion: longNotice(i, noticeLength),
          noticeHash: hex(),
          grantedAt: now,
          expiresAt: new Date(end + (i + 1) * 86_400_001).toISOString(),
          data: {},
        },
        next,
        now,
      );
    // The person's own grant, then a later one recorded by the business: grantedAt and ownGrantAt differ.
    apply(grant(ownSource));
    apply(grant('import'));
  }
  // Sends on every granted scope while granted: 31 kept per scope (caps of 31 per day, kept 365 days).
  const sendStart = end - 360 * 86_400_000;
  for (let i = 0; i < MAX_GRANTED_SCOPES; i++) {
    for (let n = 0; n < 31; n++) {
      const at = new Date(sendStart + (i * sendsPerScope + n) * spread * 1000 + 1).toISOString();
      state = recordSend(
        state,
        { channel: channel(i), purpose: longPurpose(i, purposeLength), at, decisionId: `dec_${recordedId()}` },
        policy,
        at,
      ).state;
    }
  }
  const withdraw =
    (input: { channel?: Channel; purpose?: string; onlyKind?: 'marketing' }) =>
    (s: SubjectState, next: { seq: number; eventId: string }, now: string) =>
      withdrawConsent(s, { ...input, source: withdrawSource, at: now }, next, now);
  for (let i = 0; i < MAX_GRANTED_SCOPES; i++) {
    apply(withdraw({ channel: channel(i), purpose: longPurpose(i, purposeLength) }));
  }
  // Objections to scopes never granted (half of them on every channel), then more, folded.
  for (let i = 0; i < MAX_CLOSING_ONLY_SCOPES + 5; i++) {
    const purpose = longPurpose(100 + i, purposeLength);
    apply(withdraw(i % 2 ? { channel: channel(i), purpose } : { purpose }));
  }
  for (const c of CHANNELS) {
    apply(withdraw({ channel: c }));
    apply(withdraw({ channel: c, onlyKind: 'marketing' }));
  }
  apply(withdraw({ onlyKind: 'marketing' }));
  apply(withdraw({}));
  // Signals flooded on every channel: every clue type with its own messages, sends waiting, messages resolved.
  let at = end - 30 * 86_400_000;
  const signal = (c: Channel, type: SignalType | 'message_failed', messageId?: string) => {
    at += spread * 1000;
    const observedAt = new Date(at).toISOString();
    state = recordSignal(
      state,
      { channel: c, type: type as SignalType, observedAt, ...(messageId ? { messageId } : {}), source: 'api' },
      policy,
      observedAt,
    ).state;
  };
  for (const c of CHANNELS) {
    const id = (kind: string, n: number) => `wamid.${c}.${kind}.${n}.${recordedId()}`;
    for (let n = 0; n < 8; n++) signal(c, 'message_delivered', id('delivered', n));
    for (let n = 0; n < 5; n++) {
      const undelivered = id('undelivered', n);
      signal(c, 'message_sent', undelivered);
      signal(c, 'message_undelivered', undelivered);
    }
    at += 2 * 3600_000; // the sends above wait past undeliveredAfterHours: inferred clues too
    for (const type of ['call_failed', 'group_add_refused', 'channel_blocked'] as const) {
      for (let n = 0; n < 5; n++) signal(c, type, id(type, n));
    }
    for (const type of ['profile_photo_hidden', 'last_seen_hidden', 'read_receipts_missing'] as const) {
      signal(c, type, id(type, 0));
    }
    for (let n = 0; n < 6; n++) signal(c, 'message_sent', id('pending', n));
    for (let n = 0; n < 20; n++) signal(c, 'message_failed', id('failed', n));
    for (let n = 0; n < 6; n++) signal(c, 'message_sent', id('pending2', n));
    at = end - 30 * 86_400_000;
  }
  // An erasure request received and pending.
  state = {
    ...state,
    erasure: { requestId: `er_${recordedId()}`, status: 'received', receivedAt: new Date(end).toISOString() },
  };
  return state;
}
