import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tenantWithKey } from '../helpers/factories.ts';
import { client, itLocal, startServer } from '../helpers/http.ts';

let server: Awaited<ReturnType<typeof startServer>>;
let admin: ReturnType<typeof client>;

beforeAll(async () => {
  server = await startServer();
  admin = client(server.url, (await tenantWithKey(['admin'])).key);
});
afterAll(() => server.close());

describe('GET/PUT /v1/policy', () => {
  itLocal('starts with the documented defaults', async () => {
    const res = await admin.get('/v1/policy');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      consentMaxAgeDays: 1095,
      undeliveredAfterHours: 72,
      suspectedThreshold: 0.4,
      blockThreshold: 0.7,
      signalHalfLifeDays: 30,
      blockBaseRate: 0.1,
      longOfflineShare: 0.05,
      crossChannelCooldownDays: 7,
      frequencyCaps: [{ channel: '*', max: 3, perDays: 7 }],
      quietHours: null,
      defaultTimezone: 'Europe/Paris',
    });
    expect(Object.keys(res.body.signalWeights)).toEqual(
      expect.arrayContaining([
        'message_undelivered',
        'profile_photo_hidden',
        'last_seen_hidden',
        'call_failed',
        'group_add_refused',
        'channel_blocked',
      ]),
    );
    expect(res.body.noticeVersion).toBeTruthy();
    expect(res.body.controller).toMatchObject({ name: expect.any(String), privacyContact: expect.any(String) });
  });

  it('accepts back exactly what GET returns', async () => {
    const current = await admin.get('/v1/policy');
    const put = await admin.put('/v1/policy', current.body);
    expect(put.status).toBe(200);
    expect(put.body).toEqual(current.body);
  });

  it('replaces the policy whole, fills omitted fields with defaults, and the next GET shows it', async () => {
    const put = await admin.put('/v1/policy', {
      blockThreshold: 0.8,
      quietHours: { start: '21:00', end: '09:00' },
      frequencyCaps: [{ channel: 'sms', max: 1, perDays: 1 }],
      noticeVersion: '2026-11-v4',
    });
    expect(put.status).toBe(200);
    const got = await admin.get('/v1/policy');
    expect(got.body).toMatchObject({
      blockThreshold: 0.8,
      quietHours: { start: '21:00', end: '09:00' },
      frequencyCaps: [{ channel: 'sms', purpose: '*', max: 1, perDays: 1 }],
      noticeVersion: '2026-11-v4',
      consentMaxAgeDays: 1095,
    });
  });

  it('refuses an invalid policy with the field paths, and keeps the previous one', async () => {
    const before = (await admin.get('/v1/policy')).body;
    const cases: [object, string][] = [
      [{ suspectedThreshold: 0.9, blockThreshold: 0.5 }, 'suspectedThreshold'],
      [{ quietHours: { start: '25:00', end: '09:00' } }, 'quietHours.start'],
      [{ quietHours: { start: '09:00', end: '09:00' } }, 'quietHours.end'],
      [{ defaultTimezone: 'Mars/Olympus' }, 'defaultTimezone'],
      [{ signalWeights: { message_undelivered: 1.5 } }, 'signalWeights.message_undelivered'],
      [{ signalWeights: { telepathy: 0.5 } }, 'signalWeights.telepathy'],
      [{ blockBaseRate: 0 }, 'blockBaseRate'],
      [{ longOfflineShare: 0.9 }, 'longOfflineShare'],
      [{ frequencyCaps: [{ channel: 'fax', max: 1, perDays: 1 }] }, 'frequencyCaps.0.channel'],
      [{ consentMaxAgeDays: -1 }, 'consentMaxAgeDays'],
      [{ blockThresold: 0.8 }, 'blockThresold'],
    ];
    for (const [body, path] of cases) {
      const res = await admin.put('/v1/policy', body);
      expect(res.status, path).toBe(400);
      expect(res.body.code).toBe('validation_failed');
      expect(res.body.errors.map((e: { path: string }) => e.path)).toContain(path);
    }
    expect((await admin.get('/v1/policy')).body).toEqual(before);
  });

  itLocal('is for admin keys only and per tenant', async () => {
    const gateOnly = client(server.url, (await tenantWithKey(['gate:check', 'consents:write'])).key);
    expect((await gateOnly.get('/v1/policy')).status).toBe(403);
    expect((await gateOnly.put('/v1/policy', {})).status).toBe(403);
    expect((await client(server.url).get('/v1/policy')).status).toBe(401);
    const otherAdmin = client(server.url, (await tenantWithKey(['admin'])).key);
    expect((await otherAdmin.get('/v1/policy')).body.blockThreshold).toBe(0.7);
  });
});
