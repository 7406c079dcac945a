// A webhook delivery's many events applied to the ledger in waves of group commits (issue 15).
import { DomainError } from '#domain/errors.ts';
import type { Actor } from '#domain/ledger.ts';
import type { Policy } from '#domain/policy.ts';
import type { NextEvent, SubjectState } from '#domain/subject-state.ts';
import { mapLimit } from '#shared/concurrency.ts';
import type { ResolvedSubject } from '#shared/identity/resolve.ts';
import { logger } from '#shared/log.ts';
import { countWebhookEvent } from '#shared/metrics.ts';
import { tenantDigest } from '#shared/secrets.ts';
import { applyNotification } from '#shared/whatsapp/actions.ts';
import type { Notification } from '#shared/whatsapp/payload.ts';
import { appendChanges, type BatchChange, type BatchResult } from '#store/batch-append.ts';
import type { Db } from '#store/db.ts';
import { noticeOfGrant } from '#store/notices.ts';
import { getPolicy } from '#store/policy.ts';
import { AlreadyAppliedError } from '#store/subjects.ts';
import { appendAcrossLinks } from './links.ts';

/** One change of a delivery; `crossing`: it may cross links (a linked subject's goes through them). */
export type DeliveryChange = Omit<BatchChange, 'subjectKey'> & { crossing?: { policy: Policy; now: string } };

/** One subject's changes from a delivery, in the order they must be applied. */
export interface SubjectChanges {
  tenant: string;
  subjectKey: string;
  changes: DeliveryChange[];
}

/** A change of a linked subject met in a group commit: it is made through the links instead. */
class LinkedSubject extends DomainError {
  constructor() {
    super('linked_subject', 'the subject is linked: its change is written with its linked subjects');
  }
}

const isLinked = (r: BatchResult | undefined) => r?.outcome === 'refused' && r.error instanceof LinkedSubject;

/** One change made on its own through the links ({@link appendAcrossLinks}), as a batch result. */
async function settleLinked(db: Db, tenant: string, subjectKey: string, change: DeliveryChange): Promise<BatchResult> {
  const crossing = change.crossing as { policy: Policy; now: string };
  try {
    const appended = await appendAcrossLinks(db, tenant, subjectKey, change.apply, { ...change.options, ...crossing });
    return { outcome: appended.event ? 'recorded' : 'unchanged', appended };
  } catch (error) {
    if (error instanceof AlreadyAppliedError) return { outcome: 'replayed' };
    if (error instanceof DomainError) return { outcome: 'refused', error };
    throw error;
  }
}

/**
 * Applies a delivery's changes, grouped by subject (one group per tenant and subject), in waves: wave k
 * holds the k-th change of every subject that has one, and is one {@link appendChanges} per tenant — its
 * subjects' states read in one BatchGetItem pass and written 25 subjects to a transaction. A wave starts
 * when the one before has settled, so each subject's changes apply in their order (a STOP then a START stay
 * in that order) and no two changes of one subject contend. Returns each change's result, aligned with
 * `groups[i].changes[j]`. A store failure propagates (fail closed: 503, and the provider's retry of the
 * whole delivery then finds what was applied as replays).
 */
export async function applyInWaves(db: Db, groups: readonly SubjectChanges[]): Promise<BatchResult[][]> {
  const results = groups.map((g) => new Array<BatchResult>(g.changes.length));
  // A linked subject's change that may cross links is refused by the group commit and made below.
  const guarded = (c: DeliveryChange): DeliveryChange =>
    c.crossing
      ? {
          ...c,
          apply: (current, next) => {
            if (current.person) throw new LinkedSubject();
            return c.apply(current, next);
          },
        }
      : c;
  const waves = Math.max(0, ...groups.map((g) => g.changes.length));
  for (let wave = 0; wave < waves; wave++) {
    const byTenant = new Map<string, number[]>();
    groups.forEach((g, i) => {
      if (g.changes.length > wave) byTenant.set(g.tenant, [...(byTenant.get(g.tenant) ?? []), i]);
    });
    // Tenants one after the other (a delivery rarely spans several): nothing is in flight after a failure.
    for (const [tenant, members] of byTenant) {
      const settled = await appendChanges(
        db,
        tenant,
        members.map((i) => ({ subjectKey: groups[i].subjectKey, ...guarded(groups[i].changes[wave]) })),
      );
      settled.forEach((result, k) => {
        results[members[k]][wave] = result;
      });
    }
  }
  // Linked subjects (a handful in a delivery): each one's changes in order, through the links.
  const linked = groups.flatMap((_, i) => (results[i].some(isLinked) ? [i] : []));
  await mapLimit(linked, LINKED_CONCURRENCY, async (i) => {
    const { tenant, subjectKey, changes } = groups[i];
    for (let k = 0; k < changes.length; k++) {
      if (isLinked(results[i][k])) results[i][k] = await settleLinked(db, tenant, subjectKey, changes[k]);
    }
  });
  return results;
}

/** Linked subjects of one delivery written at the same time. */
const LINKED_CONCURRENCY = 8;

/** Replay markers outlive Meta's redelivery window (up to 7 days) with margin. */
const WHATSAPP_REPLAY_TTL_DAYS = 30;

/** Everything the WhatsApp webhook writes is recorded as Meta's. */
const WHATSAPP: Actor = { type: 'webhook', provider: 'whatsapp' };

/** A subject's WhatsApp notifications, in the order they came, each with its arrival time. */
export interface NotificationGroup {
  resolved: ResolvedSubject;
  items: { n: Notification; now: string }[];
}

/** The counts a WhatsApp delivery reports. */
export interface NotificationCounts {
  recorded: number;
  replayed: number;
  unchanged: number;
}

/**
 * The WhatsApp webhook's notifications, grouped by tenant and subject, applied with {@link applyInWaves}:
 * each one a ledger append with its replay marker in the same transaction (a redelivery records nothing
 * new), decided by `applyNotification` on the subject's state. A change refused by the consent rules (a
 * resume dated before the erasure or withdrawal it would undo, or during a pending erasure) counts as
 * unchanged. Counts each outcome in `report` and in the metrics under `eventName(n)`.
 */
export async function applyNotificationGroups(
  db: Db,
  groups: readonly NotificationGroup[],
  report: NotificationCounts,
  eventName: (n: Notification) => string,
): Promise<void> {
  const notices = new Map<string, Promise<{ noticeHash?: string }>>();
  const noticeOf = async (tenant: string, version: string) => {
    const notice = notices.get(tenant) ?? noticeOfGrant(db, tenant, version);
    notices.set(tenant, notice);
    return notice;
  };
  const prepared = await Promise.all(
    groups.map(async ({ resolved, items }) => ({
      tenant: items[0].n.tenant,
      subjectKey: resolved.subjectKey,
      changes: await Promise.all(
        items.map(async ({ n, now }) => {
          const policy = await getPolicy(db, n.tenant);
          const notice = n.action.kind === 'regrant' ? await noticeOf(n.tenant, policy.noticeVersion) : {};
          // The marker is stored: keyed per tenant, since the notification it stands for names a phone number.
          const once = await tenantDigest(n.tenant, 'replay', n.replayId);
          return {
            apply: (current: SubjectState, next: NextEvent) => applyNotification(current, n, policy, next, now, notice),
            crossing: { policy, now },
            options: {
              kind: resolved.identifier.kind,
              actor: WHATSAPP,
              once,
              onceTtlDays: WHATSAPP_REPLAY_TTL_DAYS,
            },
          };
        }),
      ),
    })),
  );
  const results = await applyInWaves(db, prepared);
  results.forEach((settled, g) => {
    settled.forEach((result, k) => {
      const name = eventName(groups[g].items[k].n);
      if (result.outcome === 'refused') {
        logger.info('whatsapp notification refused by the consent rules', { code: result.error.code, event: name });
      }
      const outcome = result.outcome === 'refused' ? 'unchanged' : result.outcome;
      report[outcome]++;
      countWebhookEvent(name, outcome);
    });
  });
}
