// WhatsApp webhook processing: a verified delivery's notifications, routed to tenants and applied to the ledger.
import { DomainError } from '#domain/errors.ts';
import type { Actor } from '#domain/ledger.ts';
import type { Policy } from '#domain/policy.ts';
import { ProblemError } from '#http/errors.ts';
import { mapLimit } from '#shared/concurrency.ts';
import { resolveSubject } from '#shared/identity/resolve.ts';
import { logger } from '#shared/log.ts';
import { countWebhookEvent } from '#shared/metrics.ts';
import { tenantDigest } from '#shared/secrets.ts';
import { isInFuture } from '#shared/time.ts';
import { applyNotification } from '#shared/whatsapp/actions.ts';
import {
  countByKind,
  type Notification,
  type NumberChangedAction,
  notificationsOf,
  type Skip,
  type SkipKind,
} from '#shared/whatsapp/payload.ts';
import type { Db } from '#store/db.ts';
import { noticeOfGrant } from '#store/notices.ts';
import { getPolicy } from '#store/policy.ts';
import { AlreadyAppliedError } from '#store/subjects.ts';
import { appendAcrossLinks, changeNumber, linkedPhoneOf, pairWhatsApp } from './links.ts';
import { applyNotificationGroups } from './webhook-batches.ts';

/** The metric name of a notification: what it was, never who (e.g. `signal.message_undelivered.131026`). */
function eventName(n: Notification): string {
  const a = n.action;
  if (a.kind === 'signal') return ['signal', a.type, a.errorCode].filter((p) => p !== undefined).join('.');
  if (a.kind === 'withdraw') return `withdraw.${a.source}`;
  if (a.kind === 'number_changed') return 'number_changed';
  return `regrant.${a.via}`;
}

/** Replay markers outlive Meta's redelivery window (up to 7 days) with margin. */
const REPLAY_TTL_DAYS = 30;

/** Everything this webhook writes is recorded as Meta's. */
const WHATSAPP: Actor = { type: 'webhook', provider: 'whatsapp' };

export interface ProcessReport {
  recorded: number;
  replayed: number;
  unchanged: number;
  invalid: number;
}

/** Subjects whose notifications are applied at the same time (each one's own in order). */
export const WEBHOOK_SUBJECT_CONCURRENCY = 16;

type Resolved = Awaited<ReturnType<typeof resolveSubject>>;

/**
 * Applies one notification: one ledger append with its replay marker in the same transaction, so a
 * redelivered webhook records nothing new. Counts the outcome in `report`.
 */
async function applyOne(db: Db, n: Notification, resolved: Resolved, now: string, report: ProcessReport) {
  const policy = await getPolicy(db, n.tenant);
  const notice = n.action.kind === 'regrant' ? await noticeOfGrant(db, n.tenant, policy.noticeVersion) : {};
  // The marker is stored: keyed per tenant, since the notification it stands for names a phone number.
  const once = await tenantDigest(n.tenant, 'replay', n.replayId);
  try {
    if (n.action.kind === 'number_changed') {
      const recorded = await applyNumberChange(db, n, n.action, resolved, { policy, now, once });
      if (recorded) report.recorded++;
      else report.unchanged++;
      countWebhookEvent(eventName(n), recorded ? 'recorded' : 'unchanged');
      return;
    }
    // Through the links: a likely block here pauses the person's other identifiers in the same write.
    const { event } = await appendAcrossLinks(
      db,
      n.tenant,
      resolved.subjectKey,
      (current, next) => applyNotification(current, n, policy, next, now, notice),
      { kind: resolved.identifier.kind, actor: WHATSAPP, once, onceTtlDays: REPLAY_TTL_DAYS, policy, now },
    );
    if (event) report.recorded++;
    else report.unchanged++;
    countWebhookEvent(eventName(n), event ? 'recorded' : 'unchanged');
  } catch (error) {
    if (error instanceof DomainError) {
      // A resume dated before the erasure or withdrawal it would undo, or during a pending erasure: refused.
      logger.info('whatsapp notification refused by the consent rules', { code: error.code, event: eventName(n) });
      report.unchanged++;
      countWebhookEvent(eventName(n), 'unchanged');
      return;
    }
    if (!(error instanceof AlreadyAppliedError)) throw error;
    report.replayed++;
    countWebhookEvent(eventName(n), 'replayed');
  }
}

/**
 * `user_changed_number` (or `user_changed_user_id`): the WhatsApp consents move to the new identifier and the
 * old one is closed (`changeNumber`), Meta's message kept only as keyed references. A new identifier that is
 * not usable is no change.
 */
async function applyNumberChange(
  db: Db,
  n: Notification,
  action: NumberChangedAction,
  resolved: Resolved,
  context: { policy: Policy; now: string; once: string },
): Promise<boolean> {
  const next = action.newPhone ? { phone: action.newPhone } : { waUserId: action.newWaUserId as string };
  const target = await resolveSubject(n.tenant, next, 'whatsapp');
  return changeNumber(db, n.tenant, {
    oldKey: resolved.subjectKey,
    newKey: target.subjectKey,
    newKind: target.identifier.kind,
    at: n.observedAt,
    evidence: { messageRef: await tenantDigest(n.tenant, 'evidence', action.messageId), via: 'user_changed_number' },
    policy: context.policy,
    actor: WHATSAPP,
    now: context.now,
    once: context.once,
  });
}

/**
 * The subject a notification is applied to, and what the payload says of links: a phone given with its
 * business-scoped user id links the two (once per pair and delivery); a BSUID alone stands for the phone it is
 * linked to, which holds the person's WhatsApp consents.
 */
async function linkedTarget(
  db: Db,
  n: Notification,
  resolved: Resolved,
  seen: Map<string, Promise<string | undefined>>,
): Promise<Resolved> {
  if (n.alsoKnownAs && resolved.identifier.kind === 'phone') {
    const bsuid = await resolveSubject(n.tenant, n.alsoKnownAs, 'whatsapp');
    const pair = `pair\n${n.tenant}\n${resolved.subjectKey}\n${bsuid.subjectKey}`;
    if (!seen.has(pair)) {
      const now = new Date().toISOString();
      const policy = await getPolicy(db, n.tenant);
      const paired = pairWhatsApp(db, n.tenant, resolved.subjectKey, bsuid.subjectKey, {
        actor: WHATSAPP,
        policy,
        now,
      });
      seen.set(
        pair,
        paired.then(() => undefined),
      );
    }
    await seen.get(pair);
    return resolved;
  }
  if (resolved.identifier.kind !== 'waUserId') return resolved;
  const bsuid = `phone\n${n.tenant}\n${resolved.subjectKey}`;
  if (!seen.has(bsuid)) seen.set(bsuid, linkedPhoneOf(db, n.tenant, resolved.subjectKey));
  const phoneKey = await seen.get(bsuid);
  return phoneKey ? { subjectKey: phoneKey, identifier: { kind: 'phone', value: '' } } : resolved;
}

/**
 * Applies a delivery's notifications: different subjects together (group commits of 25 subjects, see
 * `applyInWaves`; linked subjects and number changes on their own), each subject's in the order they came —
 * a STOP then a START of the same person stay in that order, and no two appends of one subject contend. An
 * identifier the service cannot use (not a valid phone number) is skipped; a store failure propagates (503,
 * and Meta retries the whole delivery: what was already applied is then a replay).
 */
async function processNotifications(db: Db, notifications: Notification[]): Promise<ProcessReport> {
  const report: ProcessReport = { recorded: 0, replayed: 0, unchanged: 0, invalid: 0 };
  const links = new Map<string, Promise<string | undefined>>();
  // Resolved (and paired, or redirected to a linked phone) in parallel; grouped below in delivery order.
  const targets = await mapLimit(notifications, WEBHOOK_SUBJECT_CONCURRENCY, async (delivered) => {
    const now = new Date().toISOString();
    // A notification dated in the future is recorded at its arrival time: it cannot pre-empt later stops.
    const n = isInFuture(delivered.observedAt, now) ? { ...delivered, observedAt: now } : delivered;
    try {
      return {
        n,
        now,
        resolved: await linkedTarget(db, n, await resolveSubject(n.tenant, n.subject, 'whatsapp'), links),
      };
    } catch (error) {
      if (!(error instanceof ProblemError)) throw error;
      report.invalid++;
      countWebhookEvent(eventName(n), 'invalid');
      return undefined;
    }
  });
  const bySubject = new Map<string, { resolved: Resolved; items: { n: Notification; now: string }[] }>();
  for (const target of targets) {
    if (!target) continue;
    const { n, now, resolved } = target;
    const key = `${n.tenant}\n${resolved.subjectKey}`;
    const group = bySubject.get(key) ?? { resolved, items: [] };
    group.items.push({ n, now });
    bySubject.set(key, group);
  }
  // Group commit (25 subjects to a transaction, in waves: each subject's in order); a subject whose
  // notifications include a number change is written on its own (that change spans two subjects).
  const groups = [...bySubject.values()];
  const changesNumber = (g: (typeof groups)[number]) => g.items.some(({ n }) => n.action.kind === 'number_changed');
  await applyNotificationGroups(
    db,
    groups.filter((g) => !changesNumber(g)),
    report,
    eventName,
  );
  await mapLimit(groups.filter(changesNumber), WEBHOOK_SUBJECT_CONCURRENCY, async ({ resolved, items }) => {
    for (const { n, now } of items) await applyOne(db, n, resolved, now, report);
  });
  logger.info('whatsapp webhook processed', { ...report });
  return report;
}

/** Details kept per kind in the log line (Meta's field names, statuses, error codes: never an identifier). */
const DETAILS_PER_KIND = 10;

/**
 * Logs what a delivery left out, once, by kind, with up to ten distinct details per kind (which `field`,
 * which status, which error code), and counts each kind as `WebhookEvent` `skipped.<kind>`.
 */
function reportSkipped(skipped: readonly Skip[]): Partial<Record<SkipKind, number>> {
  const byKind = countByKind(skipped);
  if (skipped.length === 0) return byKind;
  const details: Partial<Record<SkipKind, string[]>> = {};
  for (const { kind, detail } of skipped) {
    if (detail === undefined) continue;
    const list = details[kind] ?? [];
    if (!list.includes(detail) && list.length < DETAILS_PER_KIND) list.push(detail);
    details[kind] = list;
  }
  logger.info('whatsapp webhook items skipped', { skippedByKind: byKind, details });
  for (const [kind, count] of Object.entries(byKind)) countWebhookEvent(`skipped.${kind}`, 'skipped', count);
  return byKind;
}

/**
 * Processes a verified webhook delivery: its notifications routed to tenants (`tenantFor`) and applied;
 * every part not applied is counted by kind (`skippedByKind`) and logged.
 */
export async function processWebhook(
  db: Db,
  payload: unknown,
  tenantFor: (phoneNumberId: string) => string | undefined,
): Promise<ProcessReport & { received: number; skipped: number; skippedByKind: Partial<Record<SkipKind, number>> }> {
  const { notifications, skipped } = notificationsOf(payload, tenantFor);
  const skippedByKind = reportSkipped(skipped);
  const report = await processNotifications(db, notifications);
  return { received: notifications.length, ...report, skipped: skipped.length, skippedByKind };
}
