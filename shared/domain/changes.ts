import type { Actor } from './ledger.ts';
import { effectiveScope, type KindOf, type SubjectState } from './subject-state.ts';
import type { Channel } from './vocabulary.ts';

/**
 * Change events (docs/events.md): what a sender's CRM or sending tool needs to hear about, derived from the
 * ledger's own writes (one change per ledger event that matters) and from the retention job's expiry
 * records. Pure: a stored item in, a change body out. Only public fields are read — never `details` —
 * and they are picked one by one, so no phone number, e-mail or IP can reach an outgoing event.
 */
export const CHANGE_TYPES = [
  'consent.granted',
  'consent.withdrawn',
  'consent.expired',
  'erasure.requested',
  'erasure.completed',
  'block.likely',
  'block.cleared',
  'subject.purged',
  'subject.linked',
  'subject.unlinked',
  'subject.number_changed',
  'cooldown.updated',
] as const;
export type ChangeType = (typeof CHANGE_TYPES)[number];

/** The type `POST /v1/event-endpoints/{id}/test` sends; never derived from the ledger. */
export const TEST_TYPE = 'endpoint.test';

/** A scope a change closed or opened; `*` stands for every channel / purpose (a pattern). */
export interface ChangeScope {
  channel: string;
  purpose: string;
}

/** The body of a change event, as delivered and as `GET /v1/changes` lists it. */
export interface ChangeBody {
  type: ChangeType | typeof TEST_TYPE;
  /** When the change was recorded (`recordedAt`): the feed's order. */
  timestamp: string;
  data: {
    eventId: string;
    subjectKey: string;
    channel: string | null;
    purpose: string | null;
    source: string | null;
    at: string;
    recordedAt: string;
    actor: Actor | null;
    scopes: ChangeScope[];
    [field: string]: unknown;
  };
}

/** A change with where it comes from: its tenant, its feed position and its delivery id. */
export interface DerivedChange {
  tenant: string;
  /** `webhook-id` of its deliveries: the same on every retry and replay. */
  webhookId: string;
  /** Position in the tenant's feed: `<recordedAt>#<id>` (the audit index's sort key for a ledger event). */
  sortKey: string;
  body: ChangeBody;
}

const SUBJECT_PK = /^T#([a-z0-9][a-z0-9-]{0,62})#S#([^#]+)$/;

/** Sort-key prefix of an expiry record in a subject's partition (`EXP#<grant eventId>`). */
export const EXPIRY_PREFIX = 'EXP#';

const str = (value: unknown): string | null => (typeof value === 'string' ? value : null);

function scopesOf(value: unknown): ChangeScope[] {
  if (!Array.isArray(value)) return [];
  return value
    .filter((s): s is { channel: unknown; purpose: unknown } => typeof s === 'object' && s !== null)
    .map((s) => ({ channel: String(s.channel), purpose: String(s.purpose) }));
}

const pick = (data: Record<string, unknown>, fields: readonly string[]) =>
  Object.fromEntries(fields.filter((f) => data[f] !== undefined).map((f) => [f, data[f]]));

/** Which change a ledger event is, if any; and its type-specific public fields. */
function classify(
  type: string,
  data: Record<string, unknown>,
  channel: string | null,
  purpose: string | null,
): { type: ChangeType; scopes: ChangeScope[]; extra: Record<string, unknown> } | undefined {
  switch (type) {
    case 'consent.granted':
      return {
        type,
        scopes: channel && purpose ? [{ channel, purpose }] : [],
        extra: pick(data, ['noticeVersion', 'noticeHash', 'grantedAt', 'expiresAt']),
      };
    case 'consent.withdrawn':
      return { type, scopes: scopesOf(data.scopes), extra: { objection: data.objection === true } };
    case 'erasure.requested':
      return { type, scopes: [], extra: pick(data, ['requestId']) };
    case 'erasure.completed': {
      // An erasure closes every scope; a retention purge is the same act for an inactive subject.
      const scopes = [{ channel: '*', purpose: '*' }];
      const extra = pick(data, ['requestId', 'reason', 'proofUntil']);
      return data.reason === 'retention' ? { type: 'subject.purged', scopes, extra } : { type, scopes, extra };
    }
    case 'signal.recorded': {
      // A block is a transition of the channel's level to or from `likely`; a signal that leaves it is no change.
      const level = str(data.level);
      const previous = str(data.previousLevel);
      if (previous === null || level === null || (level === 'likely') === (previous === 'likely')) return undefined;
      return {
        type: level === 'likely' ? 'block.likely' : 'block.cleared',
        scopes: [],
        extra: { signal: str(data.type), blockLikelihood: data.blockLikelihood, level, previousLevel: previous },
      };
    }
    // Identifier links (docs/api.md#one-person-several-identifiers): the public part only, never the other keys.
    case 'subject.linked':
      return { type, scopes: [], extra: pick(data, ['members', 'inherited', 'merged']) };
    case 'subject.unlinked':
      return { type, scopes: [], extra: pick(data, ['remaining']) };
    case 'subject.number_changed':
      return { type, scopes: [], extra: pick(data, ['role', 'moved']) };
    case 'cooldown.updated':
      return { type, scopes: [], extra: pick(data, ['windows']) };
    default:
      return undefined;
  }
}

/**
 * The change a stored ledger event item (subject partition, `EV#` sort key) stands for; undefined for an
 * event that is no change for a sender (a send, an access copy, a signal that moves no block level…).
 */
export function changeFromEventItem(item: Record<string, unknown>): DerivedChange | undefined {
  const pk = SUBJECT_PK.exec(String(item.PK ?? ''));
  if (!pk || !String(item.SK ?? '').startsWith('EV#')) return undefined;
  const [, tenant, subjectKey] = pk;
  const eventId = str(item.eventId);
  const at = str(item.at);
  if (!eventId || !at) return undefined;
  const recordedAt = str(item.recordedAt) ?? at;
  const channel = str(item.channel);
  const purpose = str(item.purpose);
  const data = (item.data ?? {}) as Record<string, unknown>;
  const found = classify(String(item.type), data, channel, purpose);
  if (!found) return undefined;
  return {
    tenant,
    webhookId: `msg_${eventId}`,
    sortKey: `${recordedAt}#${eventId}`,
    body: {
      type: found.type,
      timestamp: recordedAt,
      data: {
        eventId,
        subjectKey,
        channel,
        purpose,
        source: str(item.source),
        at,
        recordedAt,
        actor: (item.actor as Actor | undefined) ?? null,
        scopes: found.scopes,
        ...found.extra,
      },
    },
  };
}

/** What the retention job records when a consent's `expiresAt` has passed (no ledger event: docs/events.md). */
export interface ExpiryRecord {
  tenant: string;
  subjectKey: string;
  /** The grant that expired. */
  grantEventId: string;
  channel: string;
  purpose: string;
  source: string | null;
  expiresAt: string;
  noticeVersion?: string;
  recordedAt: string;
}

/** The expiry record's own id (its change's `webhook-id` is `msg_<id>`). */
export const expiryId = (grantEventId: string) => `exp_${grantEventId}`;

/** The stored form's public fields, as the stream and the feed read them back. */
export function changeFromExpiry(record: ExpiryRecord): DerivedChange {
  const id = expiryId(record.grantEventId);
  return {
    tenant: record.tenant,
    webhookId: `msg_${id}`,
    sortKey: `${record.recordedAt}#${id}`,
    body: {
      type: 'consent.expired',
      timestamp: record.recordedAt,
      data: {
        eventId: record.grantEventId,
        subjectKey: record.subjectKey,
        channel: record.channel,
        purpose: record.purpose,
        source: record.source,
        at: record.expiresAt,
        recordedAt: record.recordedAt,
        actor: { type: 'system', job: 'retention' },
        scopes: [{ channel: record.channel, purpose: record.purpose }],
        expiresAt: record.expiresAt,
        ...(record.noticeVersion ? { noticeVersion: record.noticeVersion } : {}),
      },
    },
  };
}

/** The change an expiry record item (subject partition, `EXP#` sort key) stands for. */
export function changeFromExpiryItem(item: Record<string, unknown>): DerivedChange | undefined {
  const pk = SUBJECT_PK.exec(String(item.PK ?? ''));
  if (!pk || !String(item.SK ?? '').startsWith(EXPIRY_PREFIX)) return undefined;
  const grantEventId = str(item.grantEventId);
  const expiresAt = str(item.expiresAt);
  const recordedAt = str(item.recordedAt);
  const channel = str(item.channel);
  const purpose = str(item.purpose);
  if (!grantEventId || !expiresAt || !recordedAt || !channel || !purpose) return undefined;
  return changeFromExpiry({
    tenant: pk[1],
    subjectKey: pk[2],
    grantEventId,
    channel,
    purpose,
    source: str(item.source),
    expiresAt,
    recordedAt,
    ...(str(item.noticeVersion) ? { noticeVersion: str(item.noticeVersion) as string } : {}),
  });
}

/** The change any stored item stands for (ledger event or expiry record), if any. */
export const changeFromItem = (item: Record<string, unknown>) =>
  String(item.SK ?? '').startsWith(EXPIRY_PREFIX) ? changeFromExpiryItem(item) : changeFromEventItem(item);

/** A consent whose `expiresAt` passed: what becomes a `consent.expired` record. */
export interface ExpiredGrant {
  grantEventId: string;
  channel: string;
  purpose: string;
  source: string | null;
  expiresAt: string;
  noticeVersion?: string;
}

/**
 * The consents of a subject whose `expiresAt` fell in `(since, now]` and that are still granted otherwise
 * (a withdrawn consent's change was its withdrawal): what the retention job turns into `consent.expired`
 * records.
 */
export function expiredGrants(state: SubjectState, since: string, now: string, kindOf?: KindOf): ExpiredGrant[] {
  const from = Date.parse(since);
  const to = Date.parse(now);
  const found: ExpiredGrant[] = [];
  for (const key of Object.keys(state.scopes)) {
    const [channel, purpose] = key.split('|');
    if (channel === '*' || purpose === '*' || purpose.startsWith('@')) continue;
    const scope = effectiveScope(state, channel as Channel, purpose, kindOf);
    if (scope?.status !== 'granted' || !scope.expiresAt || !scope.eventId) continue;
    const expires = Date.parse(scope.expiresAt);
    if (!(expires > from && expires <= to)) continue;
    found.push({
      grantEventId: scope.eventId,
      channel,
      purpose,
      source: scope.source || null,
      expiresAt: scope.expiresAt,
      ...(scope.noticeVersion ? { noticeVersion: scope.noticeVersion } : {}),
    });
  }
  return found;
}
