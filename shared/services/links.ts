// Identifier links: linking, unlinking, and the changes that cross links (docs/api.md#one-person-several-identifiers).
import { AlreadyLinked, DomainError, ErasurePending, SubjectErased, TooManyLinks } from '#domain/errors.ts';
import type { Actor } from '#domain/ledger.ts';
import {
  type Cooldowns,
  cooldownChange,
  cooldownsFrom,
  crossClosings,
  linkChange,
  MAX_LINKED_SUBJECTS,
  mergeCooldowns,
  personOf,
  unlinkChange,
} from '#domain/links.ts';
import { kindOf, type Policy } from '#domain/policy.ts';
import {
  type Change,
  effectiveScope,
  type GrantInput,
  grantConsent,
  grantPurposes,
  type KindOf,
  type NextEvent,
  type SubjectState,
  withdrawConsent,
} from '#domain/subject-state.ts';
import type { ScopeKey } from '#domain/vocabulary.ts';
import type { IdentifierKind } from '#shared/identity/subject.ts';
import type { Db } from '#store/db.ts';
import {
  type LinkedWrite,
  type Links,
  linkedWrite,
  newPersonKey,
  type PersonRecord,
  personOfSubject,
} from '#store/links.ts';
import {
  AlreadyAppliedError,
  type Appended,
  type AppendOptions,
  appendChange,
  markerExists,
  onceItems,
} from '#store/subjects.ts';

export { unlinkSubjects } from '#store/links.ts';

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

/** The windows each member's own signals give, by member. */
const ownCooldowns = (write: LinkedWrite, keys: readonly string[], policy: Policy, now: string) =>
  new Map(keys.map((k) => [k, cooldownsFrom(write.state(k), policy, now)]));

/** What one member is given: the other members' windows, merged. */
const othersCooldowns = (own: Map<string, Cooldowns>, of: string): Cooldowns =>
  mergeCooldowns([...own].filter(([k]) => k !== of).map(([, w]) => w));

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
  options: Omit<LinkOptions, 'merge' | 'actor'> & {
    merged?: boolean;
    whatsapp?: Record<string, string>;
    /** Closings of a member being replaced (a changed number), given to all. */
    closings?: ReturnType<typeof crossClosings>;
  },
) {
  const keys = members.map((m) => m.subjectKey);
  const closings = [...keys.flatMap((k) => crossClosings(write.state(k))), ...(options.closings ?? [])];
  const own = ownCooldowns(write, keys, options.policy, options.now);
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
          cooldowns: othersCooldowns(own, m.subjectKey),
          merged: options.merged,
        },
        next,
        kindOf(options.policy),
      ),
    );
  }
  const existing = write.persons.get(personKey);
  const whatsapp = options.whatsapp ?? Object.assign({}, ...absorbed.map((p) => p.whatsapp ?? {}));
  write.putPerson({
    personKey,
    members: members.map((m) => ({ subjectKey: m.subjectKey, ...(m.kind ? { kind: m.kind } : {}) })),
    ...(Object.keys(whatsapp).length > 0 ? { whatsapp } : {}),
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
    const own = ownCooldowns(write, [subjectKey, ...others], policy, now);
    for (const other of others)
      write.change(other, (current) => cooldownChange(current, othersCooldowns(own, other), now));
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

/**
 * The phone a WhatsApp business-scoped user id stands for: the phone it was linked with by a WhatsApp
 * payload carrying both, else the person's only phone. Undefined when it is linked to no phone, or to
 * several with none paired by WhatsApp (the notification then stays on the BSUID's own subject).
 */
export async function linkedPhoneOf(db: Db, tenant: string, waUserKey: string): Promise<string | undefined> {
  const { person } = await personOfSubject(db, tenant, waUserKey);
  if (!person) return undefined;
  const paired = person.whatsapp?.[waUserKey];
  if (paired && person.members.some((m) => m.subjectKey === paired)) return paired;
  const phones = person.members.filter((m) => m.kind === 'phone');
  return phones.length === 1 ? phones[0].subjectKey : undefined;
}

/**
 * Links a phone and the BSUID a WhatsApp payload gave together (source `whatsapp`), and remembers the pair.
 * Already paired: nothing is written. A phone or BSUID of another person → they are merged (Meta vouches
 * that both are one account); past 10 identifiers, or an erased side, nothing is linked.
 */
export async function pairWhatsApp(
  db: Db,
  tenant: string,
  phoneKey: string,
  waUserKey: string,
  options: { actor: Actor; policy: Policy; now: string },
): Promise<void> {
  await linkedWrite(
    db,
    tenant,
    [phoneKey, waUserKey],
    (write) => {
      if ([phoneKey, waUserKey].some((k) => write.states.get(k)?.erasure)) return;
      const involved = [...write.persons.values()].sort((a, b) => a.createdAt.localeCompare(b.createdAt));
      const target = involved[0];
      if (involved.length === 1 && target.whatsapp?.[waUserKey] === phoneKey) return;
      const members = new Map<string, LinkedSubject>();
      for (const p of involved) for (const m of p.members) members.set(m.subjectKey, m);
      const before = members.size;
      if (!members.has(phoneKey)) members.set(phoneKey, { subjectKey: phoneKey, kind: 'phone' });
      if (!members.has(waUserKey)) members.set(waUserKey, { subjectKey: waUserKey, kind: 'waUserId' });
      if (members.size > MAX_LINKED_SUBJECTS) return;
      const whatsapp = Object.assign({}, ...involved.map((p) => p.whatsapp ?? {}), { [waUserKey]: phoneKey });
      if (involved.length === 1 && members.size === before) {
        write.putPerson({ ...target, whatsapp, updatedAt: options.now });
        return;
      }
      const personKey = target?.personKey ?? newPersonKey();
      planMembership(write, personKey, [...members.values()], involved, {
        ...options,
        source: 'whatsapp',
        merged: involved.length > 1,
        whatsapp,
      });
    },
    {
      actor: options.actor,
      kinds: new Map<string, IdentifierKind>([
        [phoneKey, 'phone'],
        [waUserKey, 'waUserId'],
      ]),
    },
  );
}

export interface NumberChange {
  oldKey: string;
  newKey: string;
  /** The new identifier's kind: a phone, or a new business-scoped user id (`user_changed_user_id`). */
  newKind?: IdentifierKind;
  /** A replay marker written with the change (the webhook notification's), see `appendChange`. */
  once?: string;
  /** When WhatsApp says the person changed number. */
  at: string;
  /** Meta's message, as keyed references only (personal details of the events). */
  evidence: Record<string, unknown>;
  policy: Policy;
  actor: Actor;
  now: string;
}

/**
 * WhatsApp's `user_changed_number`: the person's WhatsApp consents move to the new number and the old number
 * is closed, so its next holder never inherits them. One transaction:
 * - old number: `subject.number_changed` (`role: old`), then `consent.withdrawn` of everything (source
 *   `number_changed`: not the person's objection, so it does not cross links), and it leaves its person;
 * - new number: `subject.number_changed` (`role: new`, `moved` scopes), the old number's place in its person
 *   (with the person's closings and cooldowns, the old number's own objections included), then one
 *   `consent.granted` (source `number_changed`) of the WhatsApp scopes that were granted, each with its
 *   original time, notice and expiry — a scope the new number has closed stays closed (withdrawal wins).
 * Nothing recorded for an old number never seen, or erased.
 */
export async function changeNumber(db: Db, tenant: string, input: NumberChange): Promise<boolean> {
  const { oldKey, newKey, at, policy } = input;
  const kinds = kindOf(policy);
  const { result } = await linkedWrite(
    db,
    tenant,
    [oldKey, newKey],
    (write) => {
      const old = write.states.get(oldKey);
      if (!old || old.erasure || oldKey === newKey) return false;
      const moved = whatsappGrants(old, kinds);
      const scopes = moved.map((m) => ({ channel: 'whatsapp', purpose: m.purpose }));
      const data = (role: 'old' | 'new') => ({ role, moved: scopes });
      const involved = [...write.persons.values()]
        .filter((p) => p.members.some((m) => m.subjectKey === oldKey || m.subjectKey === newKey))
        .sort((a, b) => a.createdAt.localeCompare(b.createdAt));
      const oldPerson = involved.find((p) => p.members.some((m) => m.subjectKey === oldKey));
      write.change(oldKey, (current) => ({
        state: current,
        event: {
          type: 'subject.number_changed',
          at,
          source: 'whatsapp',
          data: data('old'),
          details: { ...input.evidence, newSubjectKey: newKey },
        },
      }));
      const members = new Map<string, LinkedSubject>();
      for (const p of involved) for (const m of p.members) if (m.subjectKey !== oldKey) members.set(m.subjectKey, m);
      members.set(newKey, { subjectKey: newKey, kind: input.newKind ?? 'phone' });
      if (oldPerson) {
        write.change(oldKey, (current) =>
          unlinkChange(current, {
            source: 'number_changed',
            at: input.now,
            remaining: members.size > 1 ? members.size : 0,
          }),
        );
      }
      write.change(oldKey, (current, next) =>
        withdrawConsent(current, { source: 'number_changed', at }, next, input.now, kinds),
      );
      write.change(newKey, (current) => ({
        state: current,
        event: {
          type: 'subject.number_changed',
          at,
          source: 'whatsapp',
          data: data('new'),
          details: { ...input.evidence, oldSubjectKey: oldKey },
        },
      }));
      if (members.size > 1) {
        // The new number takes the old one's place: the person's closings, the old number's own included.
        planMembership(write, (oldPerson ?? involved[0]).personKey, [...members.values()], involved, {
          policy,
          now: input.now,
          source: 'number_changed',
          whatsapp: Object.fromEntries(
            involved.flatMap((p) => Object.entries(p.whatsapp ?? {})).map(([w, p]) => [w, p === oldKey ? newKey : p]),
          ),
          closings: crossClosings(old),
        });
      } else {
        for (const p of involved) write.deletePerson(p.personKey);
        if (write.state(newKey).person) {
          write.change(newKey, (current) =>
            unlinkChange(current, { source: 'number_changed', at: input.now, remaining: 0 }),
          );
        }
      }
      const grantable = moved.filter((m) => grantsCleanly(write.state(newKey), m, kinds));
      if (grantable.length > 0) {
        write.change(newKey, (current, next) =>
          grantPurposes(
            current,
            'whatsapp',
            grantable.map((m) => m.purpose),
            (state, purpose) => {
              const m = grantable.find((g) => g.purpose === purpose) as MovedGrant;
              return grantConsent(state, { ...m.input, data: { movedFrom: 'number_changed' } }, next, input.now, kinds);
            },
          ),
        );
      }
      return true;
    },
    {
      actor: input.actor,
      kinds: new Map<string, IdentifierKind>([[newKey, input.newKind ?? 'phone']]),
      extra: input.once ? onceItems(db, tenant, oldKey, input.once, 30) : [],
      onExtraFailed: () => new AlreadyAppliedError(),
    },
  );
  return result;
}

interface MovedGrant {
  purpose: string;
  input: GrantInput;
}

/** The WhatsApp scopes granted on a subject, as grants to repeat elsewhere with their original terms. */
function whatsappGrants(state: SubjectState, kinds: KindOf): MovedGrant[] {
  return (Object.keys(state.scopes) as ScopeKey[])
    .map((k) => k.split('|'))
    .filter(([c, p]) => c === 'whatsapp' && p !== '*' && !p.startsWith('@'))
    .flatMap(([, purpose]) => {
      const scope = effectiveScope(state, 'whatsapp', purpose, kinds);
      if (scope?.status !== 'granted' || !scope.grantedAt) return [];
      return [
        {
          purpose,
          input: {
            channel: 'whatsapp' as const,
            purpose,
            source: 'number_changed',
            noticeVersion: scope.noticeVersion ?? '',
            ...(scope.noticeHash ? { noticeHash: scope.noticeHash } : {}),
            grantedAt: scope.grantedAt,
            ...(scope.expiresAt ? { expiresAt: scope.expiresAt } : {}),
          },
        },
      ];
    });
}

/** Whether a moved grant may be recorded on the new number (a closed scope there stays closed). */
function grantsCleanly(state: SubjectState, m: MovedGrant, kinds: KindOf): boolean {
  try {
    grantConsent(state, m.input, { seq: 0, eventId: '' }, m.input.grantedAt, kinds);
    return true;
  } catch (error) {
    if (error instanceof DomainError) return false;
    throw error;
  }
}
