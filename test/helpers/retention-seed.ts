import type { Actor } from '#domain/ledger.ts';
import { recordSignal } from '#domain/likelihood.ts';
import { defaultPolicy } from '#domain/policy.ts';
import { type Change, emptyState, grantConsent, type NextEvent, type SubjectState } from '#domain/subject-state.ts';
import { newUlid } from '#shared/ids.ts';
import { DAY_MS } from '#shared/time.ts';
import type { Db } from '#store/db.ts';
import { chainEvent, changeTransaction, getState } from '#store/subjects.ts';

/** An ISO time `days` before `now`. */
export const daysBefore = (now: string, days: number) => new Date(Date.parse(now) - days * DAY_MS).toISOString();

export const SEED_ACTOR: Actor = { type: 'api_key', keyId: 'key_seed' };

/** Appends a change as the store does, but recorded at `at`: a subject written years ago, for retention tests. */
export async function appendAt(
  db: Db,
  tenant: string,
  subjectKey: string,
  at: string,
  apply: (current: SubjectState, next: NextEvent) => Change,
): Promise<void> {
  const current = (await getState(db, tenant, subjectKey)) ?? emptyState(subjectKey, 'phone');
  const next = { seq: current.seq + 1, eventId: newUlid() };
  const change = apply(current, next);
  const event = chainEvent(current, next, change.event, SEED_ACTOR, at);
  const state = { ...change.state, version: current.version + 1, seq: next.seq, head: event.hash };
  await db.client.send(changeTransaction(db, tenant, subjectKey, event, state));
}

/** A WhatsApp marketing consent the person gave at `at` (a web form). */
export const grantAt = (db: Db, tenant: string, subjectKey: string, at: string) =>
  appendAt(db, tenant, subjectKey, at, (current, next) =>
    grantConsent(
      current,
      { channel: 'whatsapp', purpose: 'marketing', source: 'web_form', noticeVersion: 'v1', grantedAt: at },
      next,
      at,
    ),
  );

/** A delivery signal observed at `at`; with a message id, the event has personal details. */
export const signalAt = (db: Db, tenant: string, subjectKey: string, at: string, messageId?: string) =>
  appendAt(db, tenant, subjectKey, at, (current) =>
    recordSignal(
      current,
      { channel: 'whatsapp', type: 'message_delivered', observedAt: at, source: 'api', messageId },
      defaultPolicy(),
      at,
    ),
  );
