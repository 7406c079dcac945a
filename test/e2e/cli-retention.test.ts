import { beforeAll, expect, it } from 'vitest';
import { getDb } from '#store/db.ts';
import { getState } from '#store/subjects.ts';
import { randomSubjectKey } from '../helpers/audit-seed.ts';
import { cli } from '../helpers/cli.ts';
import { tenantId } from '../helpers/factories.ts';
import { describeLocal } from '../helpers/http.ts';
import { daysBefore, grantAt, signalAt } from '../helpers/retention-seed.ts';

const NOW = new Date().toISOString();
const tenant = tenantId('cli-ret');
const inactive = randomSubjectKey();
const active = randomSubjectKey();

beforeAll(async () => {
  const db = getDb();
  await grantAt(db, tenant, inactive, daysBefore(NOW, 4 * 365));
  await signalAt(db, tenant, active, daysBefore(NOW, 365), 'wamid.OLD');
  await grantAt(db, tenant, active, daysBefore(NOW, 30));
});

describeLocal('consent-gate retention run', () => {
  it('reports on a dry run, as JSON, what it would purge, and changes nothing', async () => {
    const run = await cli('retention', 'run', '--tenant', tenant, '--dry-run', '--json');
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual({
      tenant,
      dryRun: true,
      purged: [{ subjectKey: inactive, reason: 'inactive' }],
      redactedEvents: 1,
      expiredConsents: 0,
      failed: 0,
    });
    expect((await getState(getDb(), tenant, inactive))?.erasure).toBeUndefined();
  });

  it('purges and says what it did', async () => {
    const run = await cli('retention', 'run', '--tenant', tenant);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(`PURGED  ${tenant}  ${inactive}  inactive`);
    expect(run.stdout).toContain(`${tenant}: 1 subject(s) purged, 1 event detail(s) deleted`);
    expect((await getState(getDb(), tenant, inactive))?.erasure).toMatchObject({ reason: 'retention' });
    expect((await getState(getDb(), tenant, active))?.erasure).toBeUndefined();
    const again = await cli('retention', 'run', '--tenant', tenant, '--json');
    expect(JSON.parse(again.stdout)).toMatchObject({ purged: [], redactedEvents: 0 });
  });

  it('refuses bad usage with exit code 2', async () => {
    expect((await cli('retention', 'run', '--tenant', 'Not A Tenant')).code).toBe(2);
    expect((await cli('retention', 'sweep')).code).toBe(2);
    expect((await cli('retention', 'run', '--days', '3')).code).toBe(2);
  });
});
