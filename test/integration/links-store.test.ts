import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyChain } from '#domain/ledger.ts';
import { defaultPolicy } from '#domain/policy.ts';
import { effectiveScope, withdrawConsent } from '#domain/subject-state.ts';
import { appendAcrossLinks, linkSubjects } from '#shared/services/links.ts';
import { getDb } from '#store/db.ts';
import { getPerson } from '#store/links.ts';
import { getState, listEvents } from '#store/subjects.ts';
import { tenantWithKey, testActor } from '../helpers/factories.ts';
import { startServer } from '../helpers/http.ts';

// Linked writes in DynamoDB Local: concurrent changes of linked subjects never lose a crossing or fork a chain.
let server: Awaited<ReturnType<typeof startServer>>;
let tenant: string;
beforeAll(async () => {
  server = await startServer();
  ({ tenant } = await tenantWithKey(['admin']));
});
afterAll(() => server.close());

const key = (i: number, run: string) => `${run}${String(i).padStart(2, '0')}`.padEnd(43, 'k');
const policy = defaultPolicy();

describe('linked writes', () => {
  it('racing objections on every member and a link: every member ends with every objection, chains intact', async () => {
    const db = getDb();
    const run = `r${Date.now().toString(36)}`;
    const members = Array.from({ length: 6 }, (_, i) => ({ subjectKey: key(i, run), kind: 'email' as const }));
    const now = new Date().toISOString();
    await linkSubjects(db, tenant, members.slice(0, 4), { source: 'api', actor: testActor, policy, now });
    const purposes = members.map((_, i) => `p${i}`);
    await Promise.all([
      ...members
        .slice(0, 4)
        .map((m, i) =>
          appendAcrossLinks(
            db,
            tenant,
            m.subjectKey,
            (current, next) => withdrawConsent(current, { purpose: purposes[i], source: 'api' }, next, now),
            { actor: testActor, policy, now, kind: 'email' },
          ),
        ),
      linkSubjects(db, tenant, members, { source: 'crm', actor: testActor, policy, now }),
    ]);
    const person = await getPerson(db, tenant, (await getState(db, tenant, members[0].subjectKey))?.person?.key ?? '');
    expect(person?.members.map((m) => m.subjectKey).sort()).toEqual(members.map((m) => m.subjectKey).sort());
    for (const m of members) {
      const state = await getState(db, tenant, m.subjectKey);
      for (const p of purposes.slice(0, 4)) {
        expect(effectiveScope(state, 'email', p)?.status, `${m.subjectKey} ${p}`).toBe('withdrawn');
      }
      const events = await listEvents(db, tenant, m.subjectKey);
      expect(verifyChain(events).valid).toBe(true);
      expect(state?.seq).toBe(events.length);
      expect(state?.head).toBe(events.at(-1)?.hash);
    }
  });
});
