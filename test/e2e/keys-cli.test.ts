import { afterAll, beforeAll, expect, it } from 'vitest';
import { AUTHORIZER_CACHE_TTL_SECONDS } from '#shared/auth/api-keys.ts';
import { cli } from '../helpers/cli.ts';
import { tenantId } from '../helpers/factories.ts';
import { client, describeLocal, startServer } from '../helpers/http.ts';

let server: Awaited<ReturnType<typeof startServer>>;
/** The clock of the server's authorizer cache (API Gateway's): moved past its TTL after a revocation. */
let clock = Date.now();
beforeAll(async () => {
  server = await startServer({ clock: () => clock });
});
afterAll(() => server.close());

describeLocal('npm run cli -- keys', () => {
  it('creates a key (printed once), lists it, and revokes it at once', async () => {
    const tenant = tenantId('cli');
    const created = await cli(
      'keys',
      'create',
      '--tenant',
      tenant,
      '--scopes',
      'gate:check,consents:read',
      '--name',
      'crm',
      '--json',
    );
    expect(created.code).toBe(0);
    const key = JSON.parse(created.stdout);
    expect(key).toEqual({
      keyId: expect.stringMatching(/^key_/),
      key: expect.stringMatching(/^cg_/),
      tenant,
      scopes: ['gate:check', 'consents:read'],
    });

    const api = client(server.url, key.key);
    expect((await api.post('/v1/gate/check', { subject: { phone: '+33612345678' }, channel: 'sms' })).status).toBe(200);
    expect((await api.post('/v1/consents/withdraw', { subject: { phone: '+33612345678' } })).status).toBe(403);

    const listed = await cli('keys', 'list', '--tenant', tenant, '--json');
    const keys = JSON.parse(listed.stdout);
    expect(keys).toEqual([
      expect.objectContaining({ keyId: key.keyId, name: 'crm', scopes: ['gate:check', 'consents:read'] }),
    ]);
    expect(listed.stdout).not.toContain(key.key);

    const revoked = await cli('keys', 'revoke', key.keyId);
    expect(revoked.code).toBe(0);
    expect(revoked.stdout).toContain('revoked');
    clock += AUTHORIZER_CACHE_TTL_SECONDS * 1000;
    expect((await api.post('/v1/gate/check', { subject: { phone: '+33612345678' }, channel: 'sms' })).status).toBe(401);
    expect(JSON.parse((await cli('keys', 'list', '--tenant', tenant, '--json')).stdout)[0].revokedAt).toBeTruthy();
  });

  it('explains bad usage with exit code 2', async () => {
    const noScopes = await cli('keys', 'create', '--tenant', 'acme');
    expect(noScopes.code).toBe(2);
    expect(noScopes.stderr).toContain('--scopes');
    const badScope = await cli('keys', 'create', '--tenant', 'acme', '--scopes', 'gate:check,root');
    expect(badScope.code).toBe(2);
    expect(badScope.stderr).toContain('unknown: root');
    expect((await cli('keys', 'create', '--scopes', 'admin')).code).toBe(2);
    expect((await cli('frobnicate')).code).toBe(2);
    expect((await cli('keys', 'revoke', 'key_missing')).code).toBe(1);
  });
});
