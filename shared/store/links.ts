import { GetCommand, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import type { Actor, LedgerEvent } from '#domain/ledger.ts';
import { cooldownChange, cooldownsFrom, mergeCooldowns, personOf, unlinkChange } from '#domain/links.ts';
import type { Policy } from '#domain/policy.ts';
import { type Change, emptyState, type NextEvent, type SubjectState } from '#domain/subject-state.ts';
import type { IdentifierKind } from '#shared/identity/subject.ts';
import { newUlid } from '#shared/ids.ts';
import type { Db } from './db.ts';
import { backoffMs, isWriteConflict, sleep, storeFailure, WriteContention } from './errors.ts';
import { chainEvent, changeTransaction, eventItem, getState, getStates, type TransactItem } from './subjects.ts';
import { keys } from './table.ts';

/*
 * Identifier links (docs/api.md#one-person-several-identifiers): a person item per linked person
 * (`T#<tenant>#P#<personKey>`, `PERSON`) lists its members' subjectKeys (keyed, never an identifier) and kinds;
 * each member's state carries `person` (its key, and the cooldown windows of the others). Everything that
 * changes several members — a link, an unlink, a change that crosses links — is one TransactWriteItems over
 * the members' events and states and the person items, conditioned on every version read.
 */

/** What `GET /v1/subjects/{subjectKey}/links` and the link routes answer. */
export interface Links {
  personKey: string | null;
  subjectKeys: string[];
}

export interface PersonMember {
  subjectKey: string;
  kind?: IdentifierKind;
}

export interface PersonRecord {
  personKey: string;
  members: PersonMember[];
  /** BSUID subjectKey → phone subjectKey, paired by a WhatsApp payload carrying both. */
  whatsapp?: Record<string, string>;
  version: number;
  createdAt: string;
  updatedAt: string;
}

const SK = 'PERSON';
const personItemKey = (tenant: string, personKey: string) => ({ PK: `${keys.tenant(tenant)}#P#${personKey}`, SK });

export const newPersonKey = () => `per_${newUlid()}`;

export async function getPerson(db: Db, tenant: string, personKey: string): Promise<PersonRecord | undefined> {
  try {
    const out = await db.client.send(
      new GetCommand({ TableName: db.table, Key: personItemKey(tenant, personKey), ConsistentRead: true }),
    );
    if (!out.Item) return undefined;
    const { PK: _pk, SK: _sk, ...record } = out.Item;
    return record as PersonRecord;
  } catch (error) {
    throw storeFailure(error, 'getPerson');
  }
}

/**
 * What one linked write sees and changes: the subjects' states and the person items read, the changes
 * planned (several events per subject are chained in order), the person items to put or delete.
 */
export class LinkedWrite {
  private readonly changed = new Map<string, { events: Change['event'][]; ids: NextEvent[]; state: SubjectState }>();
  private readonly personPuts = new Map<string, PersonRecord>();
  private readonly personDeletes = new Set<string>();

  constructor(
    readonly states: Map<string, SubjectState>,
    readonly persons: Map<string, PersonRecord>,
    private readonly kinds: Map<string, IdentifierKind | undefined>,
  ) {}

  /** The subject's state as planned so far. */
  state(subjectKey: string): SubjectState {
    return (
      this.changed.get(subjectKey)?.state ??
      this.states.get(subjectKey) ??
      emptyState(subjectKey, this.kinds.get(subjectKey))
    );
  }

  /** Plans a change of one subject from its planned state; null changes nothing. */
  change(subjectKey: string, apply: (current: SubjectState, next: NextEvent) => Change | null): Change | null {
    const current = this.state(subjectKey);
    const entry = this.changed.get(subjectKey);
    const next: NextEvent = { seq: current.seq + 1 + (entry?.events.length ?? 0), eventId: newUlid() };
    const result = apply(current, next);
    if (!result) return null;
    this.changed.set(subjectKey, {
      events: [...(entry?.events ?? []), result.event],
      ids: [...(entry?.ids ?? []), next],
      state: result.state,
    });
    return result;
  }

  putPerson(record: PersonRecord): void {
    this.personDeletes.delete(record.personKey);
    this.personPuts.set(record.personKey, record);
  }

  deletePerson(personKey: string): void {
    this.personPuts.delete(personKey);
    this.personDeletes.add(personKey);
  }

  get empty(): boolean {
    return this.changed.size === 0 && this.personPuts.size === 0 && this.personDeletes.size === 0;
  }

  /** The transaction's items: each changed subject's chained events and new state, and the person items. */
  items(
    db: Db,
    tenant: string,
    actor: Actor,
    extra: TransactItem[],
  ): { items: TransactItem[]; events: LedgerEvent[]; states: Map<string, SubjectState> } {
    const items: TransactItem[] = [];
    const events: LedgerEvent[] = [];
    const states = new Map<string, SubjectState>();
    const recordedAt = new Date().toISOString();
    for (const [subjectKey, planned] of this.changed) {
      const read = this.states.get(subjectKey) ?? emptyState(subjectKey, this.kinds.get(subjectKey));
      let chain = read;
      const chained = planned.events.map((draft, i) => {
        const event = chainEvent(chain, planned.ids[i], draft, actor, recordedAt);
        chain = { ...chain, seq: event.seq, head: event.hash };
        return event;
      });
      events.push(...chained);
      const state: SubjectState = {
        ...planned.state,
        kind: planned.state.kind ?? this.kinds.get(subjectKey),
        version: read.version + 1,
        seq: chain.seq,
        head: chain.head,
      };
      states.set(subjectKey, state);
      const [first, ...rest] = chained;
      items.push(...(changeTransaction(db, tenant, subjectKey, first, state).input.TransactItems ?? []));
      for (const event of rest) {
        items.push({
          Put: {
            TableName: db.table,
            Item: eventItem(tenant, subjectKey, event),
            ConditionExpression: 'attribute_not_exists(PK)',
          },
        });
      }
    }
    for (const [personKey, read] of this.persons) {
      const condition = { ConditionExpression: 'version = :v', ExpressionAttributeValues: { ':v': read.version } };
      const key = personItemKey(tenant, personKey);
      if (this.personDeletes.has(personKey)) items.push({ Delete: { TableName: db.table, Key: key, ...condition } });
      else if (!this.personPuts.has(personKey))
        items.push({ ConditionCheck: { TableName: db.table, Key: key, ...condition } });
    }
    for (const [personKey, record] of this.personPuts) {
      const read = this.persons.get(personKey);
      items.push({
        Put: {
          TableName: db.table,
          Item: { ...personItemKey(tenant, personKey), ...record, version: (read?.version ?? 0) + 1 },
          ...(read
            ? { ConditionExpression: 'version = :v', ExpressionAttributeValues: { ':v': read.version } }
            : { ConditionExpression: 'attribute_not_exists(PK)' }),
        },
      });
    }
    return { items: [...items, ...extra], events, states };
  }
}

const MAX_ATTEMPTS = 20;

export interface LinkedWriteOptions {
  actor: Actor;
  /** Identifier kinds of subjects that may be written for the first time. */
  kinds?: Map<string, IdentifierKind | undefined>;
  /** Items written in the same transaction (a replay marker). */
  extra?: TransactItem[];
  /** The error a failed `extra` condition means (its index among the items decides). */
  onExtraFailed?: () => Error;
}

/**
 * Reads `subjectKeys`, the persons they belong to and all those persons' members, lets `plan` decide, and
 * writes everything it planned in one transaction conditioned on every version read; on a concurrent
 * change it reads and plans again. `plan` may throw a domain error (nothing is written). Returns what
 * `plan` returned and the events written.
 */
export async function linkedWrite<T>(
  db: Db,
  tenant: string,
  subjectKeys: readonly string[],
  plan: (write: LinkedWrite) => T,
  options: LinkedWriteOptions,
): Promise<{ result: T; events: LedgerEvent[]; states: Map<string, SubjectState> }> {
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const states = await getStates(db, tenant, [...subjectKeys]);
    const personKeys = new Set([...states.values()].flatMap((s) => (s.person ? [s.person.key] : [])));
    const persons = new Map<string, PersonRecord>();
    await Promise.all(
      [...personKeys].map(async (key) => {
        const record = await getPerson(db, tenant, key);
        if (record) persons.set(key, record);
      }),
    );
    const more = [...persons.values()].flatMap((p) => p.members.map((m) => m.subjectKey)).filter((k) => !states.has(k));
    if (more.length > 0) for (const [k, s] of await getStates(db, tenant, more)) states.set(k, s);
    const kinds = new Map(options.kinds ?? []);
    for (const p of persons.values())
      for (const m of p.members) if (!kinds.has(m.subjectKey)) kinds.set(m.subjectKey, m.kind);
    const write = new LinkedWrite(states, persons, kinds);
    const result = plan(write);
    if (write.empty) return { result, events: [], states };
    const written = write.items(db, tenant, options.actor, options.extra ?? []);
    try {
      await db.client.send(new TransactWriteCommand({ TransactItems: written.items }));
      return { result, events: written.events, states: new Map([...states, ...written.states]) };
    } catch (error) {
      const reasons = (error as { CancellationReasons?: { Code?: string }[] }).CancellationReasons ?? [];
      const extraFrom = written.items.length - (options.extra?.length ?? 0);
      if (options.onExtraFailed && reasons.slice(extraFrom).some((r) => r.Code === 'ConditionalCheckFailed')) {
        throw options.onExtraFailed();
      }
      if (!isWriteConflict(error)) throw storeFailure(error, 'linkedWrite');
      await sleep(backoffMs(attempt));
    }
  }
  throw new WriteContention('the linked subjects kept changing; retry');
}

/** The person a subject belongs to, with its record (a dangling reference reads as not linked). */
export async function personOfSubject(
  db: Db,
  tenant: string,
  subjectKey: string,
): Promise<{ state?: SubjectState; person?: PersonRecord }> {
  const state = await getState(db, tenant, subjectKey);
  if (!state?.person) return { state };
  const person = await getPerson(db, tenant, state.person.key);
  return { state, person: person?.members.some((m) => m.subjectKey === subjectKey) ? person : undefined };
}

/**
 * Takes subjects out of their persons (`subject.unlinked`): they keep what they inherited (a withdrawal is
 * never undone by unlinking) and lose the others' cooldown windows, the others lose theirs; a person left
 * with one member is dissolved. Unlinked subjects record nothing.
 */
export async function unlinkSubjects(
  db: Db,
  tenant: string,
  subjectKeys: string[],
  options: { actor: Actor; now: string; policy: Policy; source?: string; reason?: string },
): Promise<Links[]> {
  const { result } = await linkedWrite(
    db,
    tenant,
    subjectKeys,
    (write) => {
      const leaving = new Set(subjectKeys.filter((k) => personOf(write.states.get(k))));
      const out: Links[] = [];
      for (const person of write.persons.values()) {
        const leavers = person.members.filter((m) => leaving.has(m.subjectKey));
        if (leavers.length === 0) continue;
        const staying = person.members.filter((m) => !leaving.has(m.subjectKey));
        const dissolved = staying.length <= 1;
        const gone = dissolved ? person.members : leavers;
        for (const m of gone) {
          write.change(m.subjectKey, (current) =>
            unlinkChange(current, {
              source: options.source ?? 'api',
              at: options.now,
              remaining: dissolved ? 0 : staying.length,
              ...(options.reason ? { reason: options.reason } : {}),
            }),
          );
        }
        if (dissolved) write.deletePerson(person.personKey);
        else {
          // The members who stay keep only each other's windows.
          const own = new Map(
            staying.map((m) => [m.subjectKey, cooldownsFrom(write.state(m.subjectKey), options.policy, options.now)]),
          );
          for (const m of staying) {
            const others = mergeCooldowns([...own].filter(([k]) => k !== m.subjectKey).map(([, w]) => w));
            write.change(m.subjectKey, (current) => cooldownChange(current, others, options.now));
          }
          const stays = (k: string) => staying.some((m) => m.subjectKey === k);
          const whatsapp = Object.entries(person.whatsapp ?? {}).filter(([w, p]) => stays(w) && stays(p));
          write.putPerson({
            ...person,
            members: staying,
            whatsapp: Object.fromEntries(whatsapp),
            updatedAt: options.now,
          });
        }
        out.push(
          ...leavers.map((l) => ({ personKey: null, subjectKeys: [l.subjectKey] })),
          ...(dissolved ? [] : [{ personKey: person.personKey, subjectKeys: staying.map((m) => m.subjectKey) }]),
        );
      }
      return out;
    },
    { actor: options.actor },
  );
  return result;
}
