import { randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { verifyChain } from '#domain/ledger.ts';
import { PolicySchema } from '#domain/policy.ts';
import { ensureTable } from '#infra/local/bootstrap.ts';
import { scheduleRetention } from '#infra/local/runtime.ts';
import { runRetention } from '#shared/services/retention.ts';
import { type Db, getDb } from '#store/db.ts';
import { eraseSubject } from '#store/erasure.ts';
import { putPolicy } from '#store/policy.ts';
import { getState, listEvents } from '#store/subjects.ts';
import { randomSubjectKey } from '../helpers/audit-seed.ts';
import { tenantId } from '../helpers/factories.ts';
import { daysBefore, grantAt, SEED_ACTOR, signalAt } from '../helpers/retention-seed.ts';

const NOW = new Date().toISOString();
const daysAgo = (days: number) => daysBefore(NOW, days);

describe('the retention job against DynamoDB Local', () => {
  const db = getDb();
  const tenant = tenantId('ret');
  const s = {
    inactive: randomSubjectKey(),
    oldSignals: randomSubjectKey(),
    oldSignalsOnly: randomSubjectKey(),
    newSignalsOnly: randomSubjectKey(),
    oldErasure: randomSubjectKey(),
    newErasure: randomSubjectKey(),
  };

  beforeAll(async () => {
    // Consented four years ago, never heard of since (a signal then, too).
    await grantAt(db, tenant, s.inactive, daysAgo(4 * 365));
    await signalAt(db, tenant, s.inactive, daysAgo(4 * 365 - 1), 'wamid.INACTIVE');
    // Active: old signals (their details expire), a recent consent and a recent signal.
    await signalAt(db, tenant, s.oldSignals, daysAgo(200), 'wamid.OLD1');
    await signalAt(db, tenant, s.oldSignals, daysAgo(190), 'wamid.OLD2');
    await grantAt(db, tenant, s.oldSignals, daysAgo(10));
    await signalAt(db, tenant, s.oldSignals, daysAgo(5), 'wamid.NEW');
    // No consent, no own action: dated from their first recording.
    await signalAt(db, tenant, s.oldSignalsOnly, daysAgo(4 * 365));
    await signalAt(db, tenant, s.newSignalsOnly, daysAgo(5));
    // Erased six years ago (proof kept 5 years: expired), and ten days ago.
    await grantAt(db, tenant, s.oldErasure, daysAgo(7 * 365));
    await eraseSubject(db, tenant, s.oldErasure, {
      requestId: 'er_old',
      reason: 'request',
      now: daysAgo(6 * 365),
      actor: SEED_ACTOR,
    });
    await grantAt(db, tenant, s.newErasure, daysAgo(100));
    await eraseSubject(db, tenant, s.newErasure, {
      requestId: 'er_new',
      reason: 'request',
      now: daysAgo(10),
      actor: SEED_ACTOR,
    });
  });

  const expected = () =>
    [
      { subjectKey: s.inactive, reason: 'inactive' },
      { subjectKey: s.oldSignalsOnly, reason: 'inactive' },
      { subjectKey: s.oldErasure, reason: 'proof_expired' },
    ].sort((a, b) => a.subjectKey.localeCompare(b.subjectKey));

  it('reports on a dry run what it would purge and redact, and changes nothing', async () => {
    const before = await Promise.all(Object.values(s).map((k) => listEvents(db, tenant, k)));
    const states = await Promise.all(Object.values(s).map((k) => getState(db, tenant, k)));
    const [report] = await runRetention(db, { tenant, dryRun: true, now: NOW });
    expect(report).toEqual({
      tenant,
      dryRun: true,
      purged: expected(),
      redactedEvents: 2,
      expiredConsents: 0,
      failed: 0,
    });
    expect(await Promise.all(Object.values(s).map((k) => listEvents(db, tenant, k)))).toEqual(before);
    expect(await Promise.all(Object.values(s).map((k) => getState(db, tenant, k)))).toEqual(states);
  });

  it('purges inactive subjects to a tombstone, ends expired proof, deletes old signal details', async () => {
    const [report] = await runRetention(db, { tenant, dryRun: false, now: NOW });
    expect(report).toEqual({
      tenant,
      dryRun: false,
      purged: expected(),
      redactedEvents: 2,
      expiredConsents: 0,
      failed: 0,
    });

    // Inactive: erased like a request, reason retention, recorded by the job; the public proof stays.
    for (const key of [s.inactive, s.oldSignalsOnly]) {
      const state = await getState(db, tenant, key);
      expect(state?.erasure).toMatchObject({ status: 'completed', reason: 'retention', erasedAt: NOW });
      expect(state?.scopes).toEqual({});
      const events = await listEvents(db, tenant, key);
      expect(events.at(-1)).toMatchObject({ type: 'erasure.completed', actor: { type: 'system', job: 'retention' } });
      expect(verifyChain(events).valid).toBe(true);
      for (const item of await listEvents(db, tenant, key)) expect(item.details).toBeUndefined();
    }
    expect((await listEvents(db, tenant, s.inactive)).map((e) => e.type)).toContain('consent.granted');

    // Old signals: details gone from the two old ones only; the chain still verifies; the consent stands.
    const items = await listEvents(db, tenant, s.oldSignals);
    expect(items.map((i) => [i.type, i.details !== undefined, i.detailsSalt !== undefined])).toEqual([
      ['signal.recorded', false, false],
      ['signal.recorded', false, false],
      ['consent.granted', false, false],
      ['signal.recorded', true, true],
    ]);
    expect(items.every((i) => typeof i.detailsDigest === 'string' || i.detailsDigest === null)).toBe(true);
    expect(verifyChain(await listEvents(db, tenant, s.oldSignals)).valid).toBe(true);
    expect((await getState(db, tenant, s.oldSignals))?.erasure).toBeUndefined();

    // Expired proof: every event deleted, the tombstone stays and says when.
    expect(await listEvents(db, tenant, s.oldErasure)).toEqual([]);
    expect((await getState(db, tenant, s.oldErasure))?.erasure).toMatchObject({
      status: 'completed',
      requestId: 'er_old',
      proofPurgedAt: NOW,
    });

    // Kept as they were.
    expect((await listEvents(db, tenant, s.newErasure)).length).toBeGreaterThan(0);
    expect((await getState(db, tenant, s.newSignalsOnly))?.erasure).toBeUndefined();
  });

  it('finds nothing more to do on the next run', async () => {
    const [report] = await runRetention(db, { tenant, dryRun: false, now: NOW });
    expect(report).toEqual({ tenant, dryRun: false, purged: [], redactedEvents: 0, expiredConsents: 0, failed: 0 });
  });
});

describe('the retention job across tenants', () => {
  it('applies each tenant its own policy', async () => {
    // The same subject, active 400 days ago: past the strict tenant's period (and its consents' age).
    // A table of its own: a run without a tenant walks the whole table.
    const db: Db = { client: getDb().client, table: `retention-${randomBytes(4).toString('hex')}` };
    await ensureTable(db);
    const [strict, lenient] = [tenantId('strict'), tenantId('lenient')];
    await putPolicy(
      db,
      strict,
      PolicySchema.parse({ consentMaxAgeDays: 365, retention: { inactiveSubjectDays: 365 } }),
    );
    const [a, b] = [randomSubjectKey(), randomSubjectKey()];
    await grantAt(db, strict, a, daysAgo(400));
    await grantAt(db, lenient, b, daysAgo(400));

    const dry = await runRetention(db, { dryRun: true, now: NOW });
    expect(dry).toEqual(
      [
        { tenant: lenient, dryRun: true, purged: [], redactedEvents: 0, expiredConsents: 0, failed: 0 },
        {
          tenant: strict,
          dryRun: true,
          purged: [{ subjectKey: a, reason: 'inactive' }],
          redactedEvents: 0,
          expiredConsents: 0,
          failed: 0,
        },
      ].sort((x, y) => x.tenant.localeCompare(y.tenant)),
    );
    await runRetention(db, { dryRun: false, now: NOW });
    expect((await getState(db, strict, a))?.erasure?.reason).toBe('retention');
    expect((await getState(db, lenient, b))?.erasure).toBeUndefined();
  });
});

describe("the local runtime's retention schedule", () => {
  it('runs at start and on its interval, and runs no more once stopped', async () => {
    const db: Db = { client: getDb().client, table: `retention-${randomBytes(4).toString('hex')}` };
    await ensureTable(db);
    const tenant = tenantId('local');
    const erased = async (subjectKey: string) => (await getState(db, tenant, subjectKey))?.erasure !== undefined;
    const until = async (subjectKey: string) => {
      for (let i = 0; i < 100 && !(await erased(subjectKey)); i++) await new Promise((r) => setTimeout(r, 50));
      return erased(subjectKey);
    };
    const [first, second, third] = [randomSubjectKey(), randomSubjectKey(), randomSubjectKey()];
    await grantAt(db, tenant, first, daysAgo(4 * 365));
    const stop = scheduleRetention(db, 300);
    expect(await until(first)).toBe(true);
    await grantAt(db, tenant, second, daysAgo(4 * 365));
    expect(await until(second)).toBe(true);
    await stop();
    await grantAt(db, tenant, third, daysAgo(4 * 365));
    await new Promise((r) => setTimeout(r, 900));
    expect(await erased(third)).toBe(false);
  });
});
