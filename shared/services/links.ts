// Identifier links: linking, unlinking, and the changes that cross links (docs/api.md#one-person-several-identifiers).
import { AlreadyLinked, ErasurePending, SubjectErased, TooManyLinks } from '#domain/errors.ts';
import type { Actor } from '#domain/ledger.ts';
import {
  cooldownChange,
  cooldownsFrom,
  crossClosings,
  type LinkedCooldown,
  linkChange,
  MAX_LINKED_SUBJECTS,
  personOf,
} from '#domain/links.ts';
import { kindOf, type Policy } from '#domain/policy.ts';
import { type Change, type NextEvent, type SubjectState, withdrawConsent } from '#domain/subject-state.ts';
import type { IdentifierKind } from '#shared/identity/subject.ts';
import {
  type LinkedWrite,
  type Links,
  linkedWrite,
  newPersonKey,
  type PersonRecord,
  personOfSubject,
} from '#store/links.ts';

export { unlinkSubjects } from '#store/links.ts';

import type { Db } from '#store/db.ts';
import {
  AlreadyAppliedError,
  type Appended,
  type AppendOptions,
  appendChange,
  markerExists,
  onceItems,
} from '#store/subjects.ts';

export interface LinkedSubject {
  subjectKey: string;
  kind?: IdentifierKind;
}

export interface LinkOptions {
  source: string;
  evidence?: Record<string, unknown>;
  merge?: boolean;
  actor: Actor;
  policy: Policy;
  now: string;
}

/** Members' windows, each member given those of the others. */
function othersCooldowns(
  members: readonly string[],
  own: Map<string, Record<string, LinkedCooldown>>,
  of: string,
): Record<string, LinkedCooldown> {
  return Object.assign({}, ...members.filter((k) => k !== of).map((k) => own.get(k) ?? {}));
}

function assertLinkable(state: SubjectState | undefined) {
  if (state?.erasure?.status === 'received') throw new ErasurePending(state.erasure.requestId);
  if (state?.erasure?.status === 'completed') throw new SubjectErased(state.erasure.erasedAt);
}

/**
 * Plans a person's membership as `members` (the surviving person `personKey`; `absorbed`: persons merged
 * into it): every member gets `subject.linked` with the others' closings without a channel and their
 * cooldown windows.
 */
function planMembership(
  write: LinkedWrite,
  personKey: string,
  members: LinkedSubject[],
  absorbed: readonly PersonRecord[],
  options: Omit<LinkOptions, 'merge' | 'actor'> & { merged?: boolean },
) {
  const keys = members.map((m) => m.subjectKey);
  const closings = keys.flatMap((k) => crossClosings(write.state(k)));
  const own = new Map(keys.map((k) => [k, cooldownsFrom(write.state(k), options.policy, options.now)]));
  for (const m of members) {
    write.change(m.subjectKey, (current, next) =>
      linkChange(
        current,
        {
          personKey,
          subjectKeys: keys,
          source: options.source,
          at: options.now,
          evidence: options.evidence,
          closings,
          cooldowns: othersCooldowns(keys, own, m.subjectKey),
          merged: options.merged,
        },
        next,
        kindOf(options.policy),
      ),
    );
  }
  const existing = write.persons.get(personKey);
  write.putPerson({
    personKey,
    members: members.map((m) => ({ subjectKey: m.subjectKey, ...(m.kind ? { kind: m.kind } : {}) })),
    version: existing?.version ?? 0,
    createdAt: existing?.createdAt ?? options.now,
    updatedAt: options.now,
  });
  for (const p of absorbed) if (p.personKey !== personKey) write.deletePerson(p.personKey);
}

/**
 * Links 2–10 identifiers as one person. Subjects already in one person join it with the others; subjects of
 * different persons → `already_linked` unless `merge` (then every member of those persons joins the
 * oldest). Linking what is already linked together records nothing.
 */
export async function linkSubjects(
  db: Db,
  tenant: string,
  subjects: LinkedSubject[],
  options: LinkOptions,
): Promise<Links> {
  const given = [...new Map(subjects.map((s) => [s.subjectKey, s])).values()];
  const { result } = await linkedWrite(
    db,
    tenant,
    given.map((s) => s.subjectKey),
    (write) => {
      for (const s of given) assertLinkable(write.states.get(s.subjectKey));
      const involved = [...write.persons.values()].sort((a, b) => a.createdAt.localeCompare(b.createdAt));
      if (involved.length > 1 && !options.merge) {
        throw new AlreadyLinked(
          `these identifiers belong to ${involved.length} different persons; send "merge": true to make them one`,
        );
      }
      const target = involved[0];
      const members = new Map<string, LinkedSubject>();
      for (const p of involved) for (const m of p.members) members.set(m.subjectKey, m);
      const before = members.size;
      for (const s of given) if (!members.has(s.subjectKey)) members.set(s.subjectKey, s);
      if (members.size > MAX_LINKED_SUBJECTS) throw new TooManyLinks(MAX_LINKED_SUBJECTS, members.size);
      const personKey = target?.personKey ?? newPersonKey();
      const links = { personKey, subjectKeys: [...members.keys()] };
      if (involved.length === 1 && members.size === before) return links;
      planMembership(write, personKey, [...members.values()], involved, { ...options, merged: involved.length > 1 });
      return links;
    },
    { actor: options.actor, kinds: new Map(given.map((s) => [s.subjectKey, s.kind])) },
  );
  return result;
}

/** A subject's person and its members (a subject linked to nobody: itself alone). */
export async function linksOf(db: Db, tenant: string, subjectKey: string): Promise<Links> {
  const { person } = await personOfSubject(db, tenant, subjectKey);
  if (!person) return { personKey: null, subjectKeys: [subjectKey] };
  return { personKey: person.personKey, subjectKeys: person.members.map((m) => m.subjectKey) };
}

/** The members of a subject's person, with their kinds (empty when it is linked to nobody). */
export async function membersOf(db: Db, tenant: string, subjectKey: string): Promise<LinkedSubject[]> {
  const { person } = await personOfSubject(db, tenant, subjectKey);
  return person?.members ?? [];
}

/** Thrown inside `appendChange` when the subject is linked: the change is made as a linked write instead. */
class LinkedSubjectFound extends Error {}

/**
 * The changes a subject's change carries over to its linked subjects, planned in the same write: a
 * withdrawal or objection given without a channel (the same closing, at its time, on each: `consent.withdrawn`
 * with `data.linkedFrom`), and the cooldown windows of its likely blocks (`cooldown.updated`, when they moved).
 */
function planCrossings(
  write: LinkedWrite,
  subjectKey: string,
  change: Change,
  eventId: string,
  policy: Policy,
  now: string,
) {
  const person = write.persons.get(personOf(change.state)?.key ?? '');
  if (!person?.members.some((m) => m.subjectKey === subjectKey)) return;
  const others = person.members.filter((m) => m.subjectKey !== subjectKey).map((m) => m.subjectKey);
  const { event } = change;
  if (event.type === 'consent.withdrawn' && event.channel === null) {
    for (const other of others) {
      write.change(other, (current, next) => {
        const kindOnly = (event.data.scopes as { purpose: string }[] | undefined)?.some(
          (s) => s.purpose === '@marketing',
        );
        const withdrawal = withdrawConsent(
          current,
          {
            ...(event.purpose ? { purpose: event.purpose } : {}),
            ...(kindOnly ? { onlyKind: 'marketing' as const } : {}),
            source: event.source ?? 'api',
            at: event.at,
            data: { linkedFrom: eventId },
            details: { fromSubjectKey: subjectKey },
          },
          next,
          now,
          kindOf(policy),
        );
        return withdrawal;
      });
    }
  }
  if (event.type === 'signal.recorded' || event.type === 'consent.withdrawn') {
    const windows = cooldownsFrom(change.state, policy, now);
    for (const other of others) write.change(other, (current) => cooldownChange(current, change.state, windows, now));
  }
}

/**
 * {@link appendChange} for changes that may cross links (withdrawals, signals): an unlinked subject is
 * written exactly as by `appendChange`; a linked one in one transaction with what its change carries over
 * to the other members (see {@link planCrossings}), so the gate reads each member's own state only.
 */
export async function appendAcrossLinks<T extends Change | null>(
  db: Db,
  tenant: string,
  subjectKey: string,
  apply: (current: SubjectState, next: NextEvent) => T,
  options: AppendOptions & { policy: Policy; now: string },
): Promise<Appended<T>> {
  try {
    return await appendChange(
      db,
      tenant,
      subjectKey,
      (current, next) => {
        if (current.person) throw new LinkedSubjectFound();
        return apply(current, next);
      },
      options,
    );
  } catch (error) {
    if (!(error instanceof LinkedSubjectFound)) throw error;
  }
  const extra = options.once ? onceItems(db, tenant, subjectKey, options.once, options.onceTtlDays ?? 30) : [];
  const { result, events, states } = await linkedWrite(
    db,
    tenant,
    [subjectKey],
    (write) => {
      let eventId = '';
      const result = write.change(subjectKey, (current, next) => {
        eventId = next.eventId;
        return apply(current, next);
      }) as T;
      if (result) planCrossings(write, subjectKey, result, eventId, options.policy, options.now);
      return result;
    },
    {
      actor: options.actor,
      kinds: new Map([[subjectKey, options.kind]]),
      extra,
      onExtraFailed: () => new AlreadyAppliedError(),
    },
  );
  if (result === null && options.once && (await markerExists(db, tenant, options.once)))
    throw new AlreadyAppliedError();
  // The subject's own change is planned first, so its event is the first written.
  return { result, event: result ? events[0] : undefined, state: states.get(subjectKey) } as Appended<T>;
}
