import { erasureStatus } from './erasure.ts';
import { type ChainBreak, type LedgerEvent, verifyChain } from './ledger.ts';
import { blockLikelihood, channelSignals, signalChannels } from './likelihood.ts';
import type { Policy } from './policy.ts';
import type { SubjectState } from './subject-state.ts';
import { type ConsentView, consentViews, signalViews } from './views.ts';

/** A half-open time range `[from, to)`, both ISO instants in UTC with milliseconds. */
export interface AuditRange {
  from: string;
  to: string;
}

/** An event as the audit export shows it: a ledger event with its subject. */
export interface AuditEvent extends LedgerEvent {
  subjectKey: string;
}

// ---------------------------------------------------------------------------------------------- export

/** The CSV columns, in order (API.md). `noticeVersion` comes from the event's data. */
export const CSV_COLUMNS = [
  'at',
  'eventId',
  'subjectKey',
  'type',
  'channel',
  'purpose',
  'source',
  'noticeVersion',
  'prevHash',
  'hash',
] as const;

/** Columns whose values the service itself generates in a fixed alphabet: never formula-guarded, so they stay verifiable. */
const GENERATED = new Set(['at', 'eventId', 'subjectKey', 'type', 'prevHash', 'hash']);

/** Cells a spreadsheet would run as a formula (OWASP "CSV injection"). */
const FORMULA_START = /^[=+\-@\t\r]/;

/**
 * One CSV cell (RFC 4180): quoted when it holds a comma, quote or line break, quotes doubled. A
 * caller-controlled value that a spreadsheet would evaluate (`=`, `+`, `-`, `@`, tab, CR first) gets a
 * leading `'` so opening the export in Excel or LibreOffice cannot run it.
 */
export function csvCell(value: unknown, guard = true): string {
  let text = value === null || value === undefined ? '' : typeof value === 'string' ? value : JSON.stringify(value);
  if (guard && FORMULA_START.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** The CSV header line. */
export const csvHeader = () => `${CSV_COLUMNS.join(',')}\r\n`;

/** One event as a CSV line (CRLF-terminated, RFC 4180). */
export function csvRow(event: AuditEvent): string {
  const notice = event.data?.noticeVersion;
  const values: Record<(typeof CSV_COLUMNS)[number], unknown> = {
    at: event.at,
    eventId: event.eventId,
    subjectKey: event.subjectKey,
    type: event.type,
    channel: event.channel,
    purpose: event.purpose,
    source: event.source,
    noticeVersion: typeof notice === 'string' ? notice : null,
    prevHash: event.prevHash,
    hash: event.hash,
  };
  return `${CSV_COLUMNS.map((c) => csvCell(values[c], !GENERATED.has(c))).join(',')}\r\n`;
}

/** One event as an NDJSON line: everything its hash covers, plus its subject, so a reader can re-verify it. */
export function ndjsonLine(event: AuditEvent): string {
  const { at, eventId, subjectKey, seq, type, channel, purpose, source, data, prevHash, hash } = event;
  return `${JSON.stringify({ at, eventId, subjectKey, seq, type, channel, purpose, source, data, prevHash, hash })}\n`;
}

// ---------------------------------------------------------------------------------------------- summary

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

  add(event: Pick<AuditEvent, 'at' | 'type' | 'channel'>): void {
    const key = `${event.at.slice(0, 10)}|${event.type}|${event.channel ?? ALL_CHANNELS}`;
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

// ---------------------------------------------------------------------------------------------- verify

/** A break found by the audit: a chain break, or a chain that does not end where the state says. */
export interface AuditBreak {
  subjectKey: string;
  seq: number;
  reason: ChainBreak['reason'] | 'event_missing' | 'head_mismatch' | 'unexpected_event';
}

/**
 * Verifies one subject's chain against itself and against the head its state item records. A deleted
 * event is reported at its own (missing) seq; a deleted or added last event is caught by the head the
 * state holds (the state and the last event are written in one transaction).
 */
export function verifySubject(
  subjectKey: string,
  events: readonly LedgerEvent[],
  state: Pick<SubjectState, 'seq' | 'head'> | undefined,
): AuditBreak[] {
  const breaks: AuditBreak[] = [];
  const report = verifyChain(events);
  const seqs = events.map((e) => e.seq);
  for (const b of report.breaks) {
    if (b.reason === 'seq_gap') {
      const i = seqs.indexOf(b.seq);
      const expected = i > 0 ? seqs[i - 1] + 1 : 1;
      if (b.seq > expected) {
        for (let s = expected; s < b.seq; s++) breaks.push({ subjectKey, seq: s, reason: 'event_missing' });
        continue;
      }
    }
    breaks.push({ subjectKey, ...b });
  }
  if (state && state.seq > 0) {
    const last = seqs.at(-1) ?? 0;
    if (last < state.seq) {
      for (let s = last + 1; s <= state.seq; s++) breaks.push({ subjectKey, seq: s, reason: 'event_missing' });
    } else if (last > state.seq) {
      for (let s = state.seq + 1; s <= last; s++) breaks.push({ subjectKey, seq: s, reason: 'unexpected_event' });
    } else if (report.head !== state.head) {
      breaks.push({ subjectKey, seq: last, reason: 'head_mismatch' });
    }
  }
  return breaks.sort((a, b) => a.seq - b.seq || a.reason.localeCompare(b.reason));
}

/** The answer of a verification: subjects and events checked, and every break found. */
export interface VerifyReport {
  subjects: number;
  events: number;
  valid: boolean;
  broken: AuditBreak[];
}

// ---------------------------------------------------------------------------------------------- access

/** Withdrawal methods offered to every person (GDPR Art. 7(3): as easy as giving consent). */
const WITHDRAWAL_METHODS: Record<string, string> = {
  whatsapp: 'reply STOP to a message, use "Stop promotions" in WhatsApp, or the opt-out link in any message',
  sms: 'reply STOP, or use the opt-out link in any message',
  email: 'use the unsubscribe link in any e-mail (one click)',
  voice: 'say so during a call, or contact the controller',
  push: 'turn notifications off, or use the preference centre',
};

const receiptState = (status: ConsentView['status']) =>
  status === 'granted' ? 'active' : status === 'withdrawn' ? 'withdrawn' : 'expired';

/**
 * A consent receipt for one scope, with the terms of ISO/IEC TS 27560:2023 and the Kantara Initiative
 * Consent Receipt Specification v1.1 (the field names follow Kantara; the 27560 name is noted where
 * it differs).
 */
export function consentReceipt(view: ConsentView, subjectKey: string, policy: Policy, events: readonly LedgerEvent[]) {
  const grant = events.find((e) => e.type === 'consent.granted' && e.data?.grantedAt === view.grantedAt);
  const withdrawal = view.status === 'withdrawn' ? events.find((e) => e.eventId === view.eventId) : undefined;
  return {
    version: 'KI-CR-v1.1.0',
    /** 27560: consent record identifier. The ledger event that recorded the grant (or the decisive event). */
    consentReceiptID: grant?.eventId ?? view.eventId,
    jurisdiction: 'EU (GDPR, Regulation (EU) 2016/679)',
    /** 27560: ConsentTimestamp. */
    consentTimestamp: view.grantedAt,
    /** 27560: CollectionMethod (how the consent was given: web form, double opt-in, in store…). */
    collectionMethod: grant?.source ?? (view.grantedAt ? view.source : null),
    /** 27560: PiiPrincipalId — the pseudonymous key; the identifier itself is never stored. */
    piiPrincipalId: subjectKey,
    piiControllers: [{ piiController: policy.controller.name, contact: policy.controller.privacyContact }],
    /** 27560: Notice — the version of the text the person agreed to. */
    notice: { noticeVersion: view.noticeVersion },
    policyUrl: null,
    services: [
      {
        service: view.channel === '*' ? 'every channel' : view.channel,
        purposes: [
          {
            purpose: view.purpose === '*' ? 'every purpose' : view.purpose,
            purposeCategory: ['direct marketing'],
            consentType: 'EXPLICIT',
            legalBasis: 'consent (GDPR Art. 6(1)(a))',
            piiCategory: ['contact identifier'],
            primaryPurpose: true,
            termination: view.expiresAt ?? 'until withdrawn',
            thirdPartyDisclosure: false,
          },
        ],
      },
    ],
    sensitive: false,
    spiCat: [],
    /** 27560: State — active, withdrawn or expired. */
    state: receiptState(view.status),
    expiresAt: view.expiresAt,
    objection: view.objection ?? false,
    withdrawal: {
      /** 27560: WithdrawalMethod — how the person can withdraw. */
      method: `${WITHDRAWAL_METHODS[view.channel] ?? 'use the opt-out link or the preference centre'}, or write to ${policy.controller.privacyContact}`,
      withdrawnAt: view.withdrawnAt,
      withdrawnVia: withdrawal?.source ?? (view.status === 'withdrawn' ? view.source : null),
    },
  };
}

/** What the person sent (echoed in the reply only; never stored). */
export interface AccessIdentifier {
  kind: string;
  value: string;
}

/**
 * The Art. 15 copy of a subject's data: controller, current consents with receipts, full ledger with
 * its verification, erasure status. `identifier` is what the caller sent, normalised.
 */
export function accessReport(input: {
  subjectKey: string;
  identifier: AccessIdentifier;
  state: SubjectState | undefined;
  events: readonly LedgerEvent[];
  policy: Policy;
  now: string;
}) {
  const { subjectKey, identifier, state, events, policy, now } = input;
  const consents = state ? consentViews(state, policy, now) : [];
  const chain = verifyChain(events);
  return {
    generatedAt: now,
    legalBasis: 'GDPR Art. 15 (right of access by the data subject)',
    controller: { name: policy.controller.name, privacyContact: policy.controller.privacyContact },
    subject: { subjectKey, identifierKind: identifier.kind, identifier: identifier.value },
    dataHeld: {
      stored:
        'a pseudonymous key (keyed hash) of the identifier, consents and withdrawals with their evidence (IP addresses only as keyed hashes), delivery and blocking signals, send counts, erasure requests',
      notStored: 'the phone number, e-mail address or other identifier itself; raw IP addresses',
      retention:
        'consent records are kept while the consent is in force and as proof afterwards; erasure leaves only a suppression tombstone',
      recipients: 'none: the service only answers whether a message may be sent',
    },
    consents,
    signals: state ? signalViews(state, policy, now) : {},
    receipts: consents.map((view) => consentReceipt(view, subjectKey, policy, events)),
    erasure: state?.erasure
      ? {
          requestId: state.erasure.requestId,
          status: state.erasure.status,
          receivedAt: state.erasure.receivedAt,
          erasedAt: state.erasure.erasedAt ?? null,
        }
      : null,
    events,
    chain: { valid: chain.valid, length: chain.length, head: chain.head },
  };
}

// ---------------------------------------------------------------------------------------------- erasures

/** An erasure request as the DPO sees it: its shown status and the whole days left to its deadline (negative: late). */
export function erasureDeadline<R extends { status: 'received' | 'completed'; dueBy: string }>(
  request: R,
  now: number,
): Omit<R, 'status'> & { status: 'received' | 'completed' | 'overdue'; daysLeft: number | null } {
  return {
    ...request,
    status: erasureStatus(request, now),
    daysLeft: request.status === 'completed' ? null : Math.trunc((Date.parse(request.dueBy) - now) / 86_400_000) || 0,
  };
}
