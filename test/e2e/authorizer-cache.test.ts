import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { AUTHORIZER_CACHE_TTL_SECONDS, revokeApiKey } from '#shared/auth/api-keys.ts';
import { getDb } from '#store/db.ts';
import { grantBody, phone, tenantWithKey } from '../helpers/factories.ts';
import { client, describeLocal, startServer } from '../helpers/http.ts';

let now = Date.now();
let server: Awaited<ReturnType<typeof startServer>>;
beforeAll(async () => {
  server = await startServer({ clock: () => now });
});
afterAll(() => server.close());

describeLocal('the local server caches the authorizer like API Gateway', () => {
  it('an HTTP gate check then costs exactly one DynamoDB read: the subject state', async () => {
    const { key } = await tenantWithKey(['admin']);
    const api = client(server.url, key);
    const subject = { phone: phone() };
    const granted = await api.post('/v1/consents', grantBody({ subject }));
    expect(granted.status).toBe(201);
    await api.gateCheck(subject); // warms the policy cache, as a warm Lambda has it
    const send = vi.spyOn(getDb().client, 'send');
    const res = await api.gateCheck(subject);
    const calls = send.mock.calls.map(([command]) => ({
      name: command.constructor.name,
      input: command.input as { Key?: Record<string, string>; ConsistentRead?: boolean },
    }));
    send.mockRestore();
    expect(res.body.decision).toBe('allow');
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({ name: 'GetCommand', input: { ConsistentRead: true } });
    expect(calls[0].input.Key?.SK).toBe('STATE');
  });

  it(`keeps a revoked key working for at most ${AUTHORIZER_CACHE_TTL_SECONDS} s, as in the cloud`, async () => {
    const t = await tenantWithKey(['gate:check']);
    const api = client(server.url, t.key);
    const check = () => api.gateCheck({ phone: phone() }, 'sms');
    expect((await check()).status).toBe(200);
    await revokeApiKey(getDb(), t.keyId);
    expect((await check()).status).toBe(200); // the cached answer
    now += AUTHORIZER_CACHE_TTL_SECONDS * 1000 - 1;
    expect((await check()).status).toBe(200);
    now += 2;
    const refused = await check();
    expect([refused.status, refused.body.code]).toEqual([401, 'unauthorized']);
    // An unknown key is asked again each time its answer expires, never kept as valid.
    expect((await client(server.url, 'cg_unknown_key_123456').gateCheck({ phone: phone() })).status).toBe(401);
  });
});
