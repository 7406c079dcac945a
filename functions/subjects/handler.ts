import * as z from 'zod';
import { accessProvided, accessReport, logReceiptsOf, noticeVersionsOf } from '#domain/access.ts';
import { type ChainReport, type LedgerEvent, verifyChain } from '#domain/ledger.ts';
import { lookupView } from '#domain/views.ts';
import { api } from '#http/api.ts';
import { dispatch } from '#http/dispatch.ts';
import { NotFoundError } from '#http/errors.ts';
import { parseOrThrow } from '#http/validation.ts';
import { evidenceHash, resolveSubject } from '#shared/identity/resolve.ts';
import { SubjectKeySchema } from '#shared/identity/subject.ts';
import { SubjectAccessSchema } from '#shared/schemas/audit.ts';
import { nextCursorHeader, type PageQuery, PageQuerySchema } from '#shared/schemas/common.ts';
import { SubjectLookupSchema } from '#shared/schemas/consents.ts';
import { LinkSchema, UnlinkSchema } from '#shared/schemas/links.ts';
import { linkSubjects, linksOf, unlinkSubjects } from '#shared/services/links.ts';
import { decodePosition, encodePosition } from '#store/cursor.ts';
import { getDb } from '#store/db.ts';
import { InvalidCursor } from '#store/errors.ts';
import { getNotices } from '#store/notices.ts';
import { getPolicy } from '#store/policy.ts';
import { appendChange, getEventItem, getState, listEvents, listEventsPage } from '#store/subjects.ts';

/** POST /v1/subjects/lookup — a subject's consents, block signals and erasure status. */
export const lookup = api('POST /v1/subjects/lookup', { body: SubjectLookupSchema }, async ({ body, tenant }) => {
  const { subjectKey } = await resolveSubject(tenant, body.subject);
  const db = getDb();
  const [state, policy] = await Promise.all([getState(db, tenant, subjectKey), getPolicy(db, tenant)]);
  if (!state)
    throw new NotFoundError('no consent, withdrawal or signal was ever recorded for this subject', 'subject_not_found');
  return { status: 200, body: lookupView(state, policy, new Date().toISOString()) };
});

/** A ledger cursor: the seq of the last event handed out. */
const LedgerPositionSchema = z.object({ seq: z.number().int().min(1) });
const ledgerCursor = (events: readonly LedgerEvent[]) => encodePosition({ seq: events[events.length - 1].seq });

/** The chain as a page shows it: verified, and linked to the event before the page. */
const chainView = (chain: ChainReport) => ({
  valid: chain.valid,
  length: chain.length,
  head: chain.head,
  ...(chain.valid ? {} : { broken: chain.breaks }),
});

/**
 * One page of a subject's ledger after a cursor: the events, verified from the event the cursor names (so
 * a page proves it continues the one before), and the next page's cursor when more follow.
 */
async function ledgerPage(tenant: string, subjectKey: string, query: PageQuery) {
  const db = getDb();
  const afterSeq = query.cursor ? decodePosition(query.cursor, LedgerPositionSchema).seq : 0;
  const [page, previous] = await Promise.all([
    listEventsPage(db, tenant, subjectKey, { afterSeq, limit: query.limit }),
    afterSeq > 0 ? getEventItem(db, tenant, subjectKey, afterSeq) : undefined,
  ]);
  if (afterSeq > 0 && !previous) throw new InvalidCursor('cursor names no event of this subject (X-Next-Cursor)');
  const chain = verifyChain(page.events, previous ? { seq: afterSeq, hash: String(previous.hash) } : undefined);
  return { events: page.events, chain, nextCursor: page.more ? ledgerCursor(page.events) : undefined };
}

/** GET /v1/subjects/{subjectKey}/events?limit=&cursor= — the ledger, verified, a page at a time. */
export const events = api(
  'GET /v1/subjects/{subjectKey}/events',
  { query: PageQuerySchema },
  async ({ event, tenant, query }) => {
    const subjectKey = parseOrThrow(SubjectKeySchema, event.pathParameters?.subjectKey, 'subjectKey');
    const page = await ledgerPage(tenant, subjectKey, query);
    if (page.events.length === 0) throw new NotFoundError('no events for this subjectKey', 'subject_not_found');
    return {
      status: 200,
      body: { subjectKey, events: page.events, chain: chainView(page.chain) },
      headers: nextCursorHeader(page.nextCursor),
    };
  },
);

/**
 * POST /v1/subjects/access — the Art. 15 copy: controller, purposes, retention, sources, consents with
 * receipts, rights, the block inference explained, full history; once erased, what is kept. The identifier
 * the caller sent is echoed back (normalised) so the copy is complete; it is never stored. Giving the copy
 * is recorded as an `access.provided` event (its actor: the API key) before the copy is answered.
 * Paged like the ledger (`?limit=&cursor=`): the first page is the whole copy with the first `limit`
 * events and their log receipts; a later page (with the cursor) carries only the next events, their log
 * receipts and the chain, and records nothing.
 */
export const access = api(
  'POST /v1/subjects/access',
  { body: SubjectAccessSchema, query: PageQuerySchema },
  async ({ body, tenant, actor, query }) => {
    const { subjectKey, identifier } = await resolveSubject(tenant, body.subject);
    if (query.cursor) {
      const page = await ledgerPage(tenant, subjectKey, query);
      return {
        status: 200,
        body: {
          subject: { subjectKey },
          events: page.events,
          logReceipts: logReceiptsOf(page.events),
          chain: chainView(page.chain),
        },
        headers: nextCursorHeader(page.nextCursor),
      };
    }
    const db = getDb();
    const [state, ledger, policy] = await Promise.all([
      getState(db, tenant, subjectKey),
      listEvents(db, tenant, subjectKey),
      getPolicy(db, tenant),
    ]);
    if (!state && ledger.length === 0) {
      throw new NotFoundError(
        'no consent, withdrawal or signal was ever recorded for this subject',
        'subject_not_found',
      );
    }
    const now = new Date().toISOString();
    const notices = await getNotices(db, tenant, noticeVersionsOf(ledger));
    const report = accessReport({
      subjectKey,
      identifier,
      state,
      events: ledger,
      policy,
      now,
      lang: body.lang,
      notices,
    });
    await appendChange(db, tenant, subjectKey, (current) => accessProvided(current, now), { actor });
    const first = ledger.slice(0, query.limit);
    const more = ledger.length > query.limit;
    const links = await linksOf(db, tenant, subjectKey);
    return {
      status: 200,
      body: { ...report, links, events: first, logReceipts: logReceiptsOf(first) },
      headers: nextCursorHeader(more ? ledgerCursor(first) : undefined),
    };
  },
);

/**
 * POST /v1/subjects/link — 2–10 identifiers of one person, linked (`subject.linked` on each). From then on an
 * objection without a channel, an erasure with `includeLinked` and a likely block's cooldown cross to every
 * one of them; each keeps its own state, so the gate still reads one item.
 */
export const link = api(
  'POST /v1/subjects/link',
  { body: LinkSchema, idempotent: true },
  async ({ body, tenant, actor }) => {
    const resolved = await Promise.all(
      body.subjects.map((s, i) => resolveSubject(tenant, s, undefined, `subjects.${i}`)),
    );
    const db = getDb();
    const { ipAddress, ...evidence } = body.evidence ?? {};
    const links = await linkSubjects(
      db,
      tenant,
      resolved.map((r) => ({ subjectKey: r.subjectKey, kind: r.identifier.kind })),
      {
        source: body.source,
        evidence: body.evidence
          ? { ...evidence, ...(ipAddress ? { ipAddressHash: await evidenceHash(tenant, ipAddress) } : {}) }
          : undefined,
        merge: body.merge,
        actor,
        policy: await getPolicy(db, tenant),
        now: new Date().toISOString(),
      },
    );
    return { status: 200, body: links };
  },
);

/** POST /v1/subjects/unlink — identifiers taken out of their persons (`subject.unlinked`). */
export const unlink = api(
  'POST /v1/subjects/unlink',
  { body: UnlinkSchema, idempotent: true },
  async ({ body, tenant, actor }) => {
    const resolved = await Promise.all(
      body.subjects.map((s, i) => resolveSubject(tenant, s, undefined, `subjects.${i}`)),
    );
    const db = getDb();
    const results = await unlinkSubjects(
      db,
      tenant,
      resolved.map((r) => r.subjectKey),
      {
        actor,
        now: new Date().toISOString(),
        policy: await getPolicy(db, tenant),
        ...(body.reason ? { reason: body.reason } : {}),
      },
    );
    const unchanged = resolved.filter((r) => !results.some((l) => l.subjectKeys.includes(r.subjectKey)));
    return {
      status: 200,
      body: { results: [...results, ...unchanged.map((r) => ({ personKey: null, subjectKeys: [r.subjectKey] }))] },
    };
  },
);

/** GET /v1/subjects/{subjectKey}/links — the subject's person and its identifiers. */
export const links = api('GET /v1/subjects/{subjectKey}/links', {}, async ({ event, tenant }) => {
  const subjectKey = parseOrThrow(SubjectKeySchema, event.pathParameters?.subjectKey, 'subjectKey');
  return { status: 200, body: await linksOf(getDb(), tenant, subjectKey) };
});

export const handler = dispatch('subjects', [access, lookup, events, link, unlink, links]);
