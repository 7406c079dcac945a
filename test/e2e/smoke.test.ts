import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { grantBody, tenantWithKey } from '../helpers/factories.ts';
import { client, startServer } from '../helpers/http.ts';

let server: Awaited<ReturnType<typeof startServer>>;
let api: ReturnType<typeof client>;

beforeAll(async () => {
  server = await startServer();
  const { key } = await tenantWithKey();
  api = client(server.url, key);
});
afterAll(() => server.close());

describe('smoke', () => {
  it('grants a consent and the gate then allows', async () => {
    const body = grantBody();
    const granted = await api.post('/v1/consents', body);
    expect(granted.status).toBe(201);
    const gate = await api.post('/v1/gate/check', { subject: body.subject, channel: 'whatsapp' });
    expect(gate.body.decision).toBe('allow');
  });
});
