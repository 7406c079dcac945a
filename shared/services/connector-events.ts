// Provider connectors, inbound: a verified delivery's events mapped onto the ledger through the consent rules.
import type { Actor } from '#domain/ledger.ts';
import type { NextEvent, SubjectState } from '#domain/subject-state.ts';
import { ProblemError } from '#http/errors.ts';
import {
  applyProviderEvent,
  type ParsedDelivery,
  type Provider,
  type ProviderEvent,
} from '#shared/connectors/actions.ts';
import { resolveSubject } from '#shared/identity/resolve.ts';
import { logger } from '#shared/log.ts';
import { countWebhookEvent } from '#shared/metrics.ts';
import { tenantDigest } from '#shared/secrets.ts';
import { isInFuture } from '#shared/time.ts';
import type { Db } from '#store/db.ts';
import { noticeOfGrant } from '#store/notices.ts';
import { getPolicy } from '#store/policy.ts';
import { applyInWaves, type SubjectChanges } from './webhook-batches.ts';

/** Replay markers outlive every provider's redelivery window (SendGrid 72 h, SNS and Twilio less) with margin. */
const REPLAY_TTL_DAYS = 30;

/** What a delivery did: events recorded, replays recognised, events that changed nothing, unusable items. */
export interface IngestReport {
  received: number;
  recorded: number;
  replayed: number;
  unchanged: number;
  invalid: number;
  skipped: number;
  /** The skipped items by reason (`invalid_item`, `ignored_event`, `not_an_own_act`…), never by person. */
  skippedByKind: Record<string, number>;
}

interface Resolved {
  event: ProviderEvent;
  subjectKey: string;
  kind: 'phone' | 'email' | 'externalId' | 'waUserId';
}

/**
 * Applies a verified delivery's events for `tenant`: each one is one ledger append with its replay marker in
 * the same transaction (a redelivery records nothing new), through the same consent rules as every other
 * path. Written in waves of group commits ({@link applyInWaves}: 25 subjects to a transaction): each
 * subject's events in the order they happened, the first of every subject in wave 1, the second in 2… An
 * identifier the service cannot use is counted as invalid. The raw identifiers end here: only subjectKeys
 * and keyed replay markers are written, and nothing naming a person is logged. A store failure propagates
 * (503: the provider retries, and what was applied is then recognised as a replay).
 */
export async function ingestDelivery(
  db: Db,
  tenant: string,
  provider: Provider,
  delivery: ParsedDelivery,
): Promise<IngestReport> {
  const skippedByKind = { ...delivery.skipped };
  const report: IngestReport = {
    received: delivery.events.length,
    recorded: 0,
    replayed: 0,
    unchanged: 0,
    invalid: 0,
    skipped: Object.values(skippedByKind).reduce((a, b) => a + b, 0),
    skippedByKind,
  };
  const bySubject = new Map<string, Resolved[]>();
  for (const event of delivery.events) {
    try {
      const { subjectKey, identifier } = await resolveSubject(tenant, event.subject, event.action.channel);
      const list = bySubject.get(subjectKey) ?? [];
      list.push({ event, subjectKey, kind: identifier.kind });
      bySubject.set(subjectKey, list);
    } catch (error) {
      if (!(error instanceof ProblemError)) throw error;
      report.invalid++;
      countWebhookEvent(event.name, 'invalid');
    }
  }
  const policy = await getPolicy(db, tenant);
  const regrants = delivery.events.some((e) => e.action.kind === 'regrant');
  const notice = regrants ? await noticeOfGrant(db, tenant, policy.noticeVersion) : {};
  const actor: Actor = { type: 'webhook', provider };
  const groups = [...bySubject.values()];
  const prepared: SubjectChanges[] = await Promise.all(
    groups.map(async (events) => ({
      tenant,
      subjectKey: events[0].subjectKey,
      changes: await Promise.all(
        events.map(async ({ event, kind }) => {
          const now = new Date().toISOString();
          // No time, or a time in the future: the arrival time (a future date could otherwise pre-empt later stops).
          const at = event.observedAt && !isInFuture(event.observedAt, now) ? event.observedAt : now;
          const once = await tenantDigest(tenant, 'replay', event.replayId);
          return {
            apply: (current: SubjectState, next: NextEvent) =>
              applyProviderEvent(current, event, at, policy, next, now, notice),
            // A block reported by the channel (Twilio 63014) pauses the person's linked identifiers too.
            crossing: { policy, now },
            options: { kind, actor, once, onceTtlDays: REPLAY_TTL_DAYS },
          };
        }),
      ),
    })),
  );
  const results = await applyInWaves(db, prepared);
  results.forEach((settled, g) => {
    settled.forEach((result, k) => {
      const { name } = groups[g][k].event;
      if (result.outcome === 'refused') {
        // Refused by the consent rules (an opt-in during a pending erasure, a signal about an erased subject).
        logger.info('connector event refused by the consent rules', { code: result.error.code, event: name });
      }
      const outcome = result.outcome === 'refused' ? 'unchanged' : result.outcome;
      report[outcome]++;
      countWebhookEvent(name, outcome);
    });
  });
  logger.info('connector delivery processed', { provider, ...report });
  return report;
}
