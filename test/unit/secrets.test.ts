import { createHash } from 'node:crypto';
import { describe, expect, it, vi } from 'vitest';
import { type FetchSecret, linkKeyId, loadCloud, tenantDigest, tenantKey } from '#shared/secrets.ts';

const identifierKey = `${'A'.repeat(40)}bcdefghijklmnopqrstuvwx`;
const newest = 'N'.repeat(64);
const older = 'O'.repeat(64);

/** Secrets Manager as the stack lays it out: one JSON document per secret id. */
const store = (secrets: Record<string, Record<string, unknown>>): FetchSecret & { reads: string[] } => {
  const reads: string[] = [];
  const fetch = async (id: string) => {
    reads.push(id);
    return secrets[id];
  };
  return Object.assign(fetch, { reads });
};

describe('cloud secrets (Secrets Manager layout of the CDK stack)', () => {
  it('reads the identifier key, the link keys newest first with derived kids, and the WhatsApp secret', async () => {
    const fetch = store({
      main: { identifierKey },
      links: { key: newest, previousKeys: [older] },
      wa: { appSecret: 'meta-secret', verifyToken: 'verify-me' },
    });
    const secrets = await loadCloud(
      { SECRETS_ID: 'main', LINK_KEYS_SECRET_ID: 'links', WHATSAPP_SECRET_ID: 'wa' },
      fetch,
    );
    expect(secrets.identifierKey).toEqual(Buffer.from(identifierKey, 'base64'));
    expect(secrets.linkKeys.map((k) => k.key)).toEqual([Buffer.from(newest, 'base64'), Buffer.from(older, 'base64')]);
    expect(secrets.linkKeys[0].kid).toBe(linkKeyId(Buffer.from(newest, 'base64')));
    expect(secrets.linkKeys[0].kid).not.toBe(secrets.linkKeys[1].kid);
    expect(secrets.whatsappAppSecret).toBe('meta-secret');
    expect(secrets.whatsappVerifyToken).toBe('verify-me');
  });

  it('reads only the secrets the function was given (the gate: identifier key only)', async () => {
    const fetch = store({ main: { identifierKey } });
    const secrets = await loadCloud({ SECRETS_ID: 'main' }, fetch);
    expect(fetch.reads).toEqual(['main']);
    expect(secrets.linkKeys).toEqual([]);
    expect(secrets.whatsappAppSecret).toBeUndefined();
  });

  it('leaves the WhatsApp app secret unset while it is still empty (the webhook then answers 503)', async () => {
    const secrets = await loadCloud(
      { SECRETS_ID: 'main', WHATSAPP_SECRET_ID: 'wa' },
      store({ main: { identifierKey }, wa: { appSecret: '', verifyToken: 'generated' } }),
    );
    expect(secrets.whatsappAppSecret).toBeUndefined();
    expect(secrets.whatsappVerifyToken).toBe('generated');
  });

  it('still reads the one-secret layout (identifierKey and linkKeys with kids)', async () => {
    const secrets = await loadCloud(
      { SECRETS_ID: 'main' },
      store({ main: { identifierKey, linkKeys: [{ kid: 'k1', key: newest }] } }),
    );
    expect(secrets.linkKeys).toEqual([{ kid: 'k1', key: Buffer.from(newest, 'base64') }]);
  });

  it('fails (and so the request fails closed) when the identifier key is missing or too short', async () => {
    await expect(loadCloud({ SECRETS_ID: 'main' }, store({ main: {} }))).rejects.toThrow(/identifierKey/);
    await expect(loadCloud({ SECRETS_ID: 'main' }, store({ main: { identifierKey: 'short' } }))).rejects.toThrow(
      /identifierKey/,
    );
  });

  it('loads a function that has only the log keys (the sealer): its log key, and no identifier key to derive from', async () => {
    const secrets = await loadCloud({ LOG_KEYS_SECRET_ID: 'log' }, store({ log: { key: 'x'.repeat(40) } }));
    expect(secrets.logKeys).toHaveLength(1);
    expect(secrets.logKeys[0]).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    expect(() => tenantKey(secrets, 'acme')).toThrow(/SECRETS_ID is not set/);
  });
});

describe('tenantDigest (replay markers, idempotency records, evidence)', () => {
  it('is keyed: not the plain SHA-256, different per tenant and per use, stable for one tenant and use', async () => {
    const value = 'acme\npreference\n33612345678\nstop\n1764000000';
    const digest = await tenantDigest('acme', 'replay', value);
    expect(digest).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const plain = createHash('sha256').update(value).digest();
    expect([plain.toString('base64url'), plain.toString('hex')]).not.toContain(digest);
    expect(await tenantDigest('acme', 'replay', value)).toBe(digest);
    expect(await tenantDigest('other', 'replay', value)).not.toBe(digest);
    expect(await tenantDigest('acme', 'idempotency', value)).not.toBe(digest);
  });
});

describe('getSecrets in a Lambda', () => {
  it('given no secret id (the log and audit functions), holds no key and touches no local file', async () => {
    vi.resetModules();
    vi.stubEnv('AWS_LAMBDA_FUNCTION_NAME', 'consent-gate-log');
    vi.stubEnv('DATA_DIR', '/nonexistent/read-only');
    for (const name of ['SECRETS_ID', 'LINK_KEYS_SECRET_ID', 'WHATSAPP_SECRET_ID', 'LOG_KEYS_SECRET_ID'])
      vi.stubEnv(name, '');
    try {
      const fresh = await import('#shared/secrets.ts');
      const secrets = await fresh.getSecrets();
      expect(secrets.logKeys).toEqual([]);
      expect(secrets.linkKeys).toEqual([]);
      expect(secrets.identifierKey.length).toBe(0);
    } finally {
      vi.unstubAllEnvs();
      vi.resetModules();
    }
  });
});
