import { afterEach, describe, expect, it } from 'vitest';
import { getDb } from '#store/db.ts';
import { claimIdempotencyKey, completeIdempotencyKey, idempotencyLeaseSeconds } from '#store/idempotency.ts';
import { tenantId } from '../helpers/factories.ts';

const T0 = Date.parse('2026-11-01T10:00:00Z');
const previous = process.env.FUNCTION_TIMEOUT_SECONDS;
afterEach(() => {
  if (previous === undefined) delete process.env.FUNCTION_TIMEOUT_SECONDS;
  else process.env.FUNCTION_TIMEOUT_SECONDS = previous;
});

describe('Idempotency-Key records of a request that crashed', () => {
  it('leases an in-progress key for the function timeout + 10 s, then lets a retry take it over', async () => {
    process.env.FUNCTION_TIMEOUT_SECONDS = '29';
    expect(idempotencyLeaseSeconds()).toBe(39);
    const db = getDb();
    const tenant = tenantId();
    expect(await claimIdempotencyKey(db, tenant, 'k1', 'req', T0)).toBeUndefined();
    // Within the lease the first request may still be running: the retry is told so.
    const during = await claimIdempotencyKey(db, tenant, 'k1', 'req', T0 + 38_000);
    expect(during).toMatchObject({ status: 'in_progress', requestHash: 'req' });
    // Past it the first request's function has been stopped by its timeout: the retry owns the key.
    expect(await claimIdempotencyKey(db, tenant, 'k1', 'req', T0 + 40_000)).toBeUndefined();
  });

  it('never takes over a completed record within its 24 h', async () => {
    delete process.env.FUNCTION_TIMEOUT_SECONDS;
    expect(idempotencyLeaseSeconds()).toBe(20); // the functions' default timeout (10 s) + 10 s
    const db = getDb();
    const tenant = tenantId();
    expect(await claimIdempotencyKey(db, tenant, 'k2', 'req', Date.now())).toBeUndefined();
    await completeIdempotencyKey(db, tenant, 'k2', { statusCode: 201, headers: {}, body: '{}' });
    const later = await claimIdempotencyKey(db, tenant, 'k2', 'req', Date.now() + 3_600_000);
    expect(later).toMatchObject({ status: 'completed', response: { statusCode: 201 } });
  });
});
