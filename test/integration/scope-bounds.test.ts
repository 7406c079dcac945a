import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_CLOSING_ONLY_SCOPES, MAX_GRANTED_SCOPES } from '#domain/subject-state.ts';
import { OWN_ACT_SOURCES } from '#domain/vocabulary.ts';
import { getDb } from '#store/db.ts';
import { itemSize } from '#store/item-size.ts';
import { keys } from '#store/table.ts';
import { phone, tenantWithKey } from '../helpers/factories.ts';
import { client, startServer } from '../helpers/http.ts';

/** The longest purpose slug and notice version the API accepts. */
const purpose = (i: number) => `p${String(i).padStart(2, '0')}`.padEnd(64, 'x');
const NOTICE = 'v'.repeat(128);
/** The channels a phone number reaches. */
const CHANNELS = ['whatsapp', 'sms', 'voice'] as const;
const LONGEST_OWN_SOURCE = [...OWN_ACT_SOURCES].sort((a, b) => b.length - a.length)[0];

describe('the subject state item under the scope bounds', () => {
  let api: ReturnType<typeof client>;
  let tenant: string;
  let server: Awaited<ReturnType<typeof startServer>>;
  beforeAll(async () => {
    const t = await tenantWithKey(['admin']);
    tenant = t.tenant;
    server = await startServer();
    api = client(server.url, t.key);
  });
  afterAll(() => server.close());

  it('refuses grant number 11 with 422 too_many_scopes, never a withdrawal, objection or erasure; measures the item', async () => {
    const subject = { phone: phone() };
    const t = (minute: number) => new Date(Date.now() - 86_400_000 + minute * 60_000).toISOString();
    let subjectKey = '';
    for (let i = 0; i < MAX_GRANTED_SCOPES; i++) {
      const res = await api.post('/v1/consents', {
        subject,
        channel: CHANNELS[i % CHANNELS.length],
        purpose: purpose(i),
        source: LONGEST_OWN_SOURCE,
        noticeVersion: NOTICE,
        grantedAt: t(i),
        expiresAt: '2030-01-01T00:00:00Z',
      });
      expect(res.status, res.text).toBe(201);
      subjectKey = res.body.subjectKey;
    }
    const refused = await api.post('/v1/consents', {
      subject,
      channel: 'sms',
      purpose: purpose(99),
      source: 'web_form',
      noticeVersion: NOTICE,
    });
    expect([refused.status, refused.body.code]).toEqual([422, 'too_many_scopes']);
    expect(refused.headers.get('content-type')).toBe('application/problem+json');
    // Withdraw every granted scope, object to many never granted, stop whole channels: all recorded.
    for (let i = 0; i < MAX_GRANTED_SCOPES; i++) {
      const res = await api.post('/v1/consents/withdraw', {
        subject,
        channel: CHANNELS[i % CHANNELS.length],
        purpose: purpose(i),
        source: 'self_service_link',
        at: t(100 + i),
      });
      expect(res.status, res.text).toBe(200);
    }
    for (let i = 0; i < MAX_CLOSING_ONLY_SCOPES * 3; i++) {
      const res = await api.post('/v1/consents/withdraw', {
        subject,
        ...(i % 2 ? { channel: CHANNELS[i % CHANNELS.length] } : {}),
        purpose: purpose(200 + i),
        source: 'self_service_link',
        at: t(200 + i),
      });
      expect(res.status, res.text).toBe(200);
    }
    for (const channel of CHANNELS) {
      expect((await api.post('/v1/consents/withdraw', { subject, channel, at: t(400) })).status).toBe(200);
    }
    expect((await api.post('/v1/consents/withdraw', { subject, at: t(401) })).status).toBe(200);
    const db = getDb();
    const out = await db.client.send(
      new GetCommand({
        TableName: db.table,
        Key: { PK: keys.subject(tenant, subjectKey), SK: keys.state },
        ConsistentRead: true,
        ReturnConsumedCapacity: 'TOTAL',
      }),
    );
    const bytes = itemSize(out.Item as Record<string, unknown>);
    // Every scope at its longest: 10 granted, 10 objections, the channel stops, a stop of everything, the fold.
    // Measured 7,842 bytes in the layout of earlier releases, 2,419 compact: the grants' one notice version is
    // stored once (docs/limits.md, "State item layout"; test/integration/state-item.test.ts has the worst case).
    expect(bytes).toBeLessThan(3 * 1024);
    expect(out.ConsumedCapacity?.CapacityUnits).toBe(1);
    process.stdout.write(`scope-bounds: worst-case state item ${bytes} bytes\n`);
    const erasure = await api.post('/v1/erasure-requests', { subjects: [subject], requestedVia: 'email' });
    expect(erasure.status, erasure.text).toBe(202);
  });
});
