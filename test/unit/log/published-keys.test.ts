import { afterEach, describe, expect, it, vi } from 'vitest';
import { MemoryAnchor } from '#shared/log/anchor.ts';

afterEach(() => {
  vi.unstubAllEnvs();
  vi.resetModules();
});

const freshLogKeys = () => import('#shared/services/log-keys.ts');

describe('the log public keys', () => {
  it('are published by the key holder and read from the anchor by a function that holds no private key', async () => {
    const anchor = new MemoryAnchor();
    vi.stubEnv('DATA_DIR', 'memory');
    const holder = await freshLogKeys();
    await holder.publishLogKeys(anchor);
    await holder.publishLogKeys(anchor);
    const derived = (await holder.logVerifierKeys(anchor)).map(holder.publicKeyView);
    expect(derived).toHaveLength(1);
    expect(await anchor.keys()).toEqual([
      expect.objectContaining({ keyId: derived[0].keyId, publicKeyPem: derived[0].publicKeyPem }),
    ]);

    vi.resetModules();
    vi.stubEnv('AWS_LAMBDA_FUNCTION_NAME', 'consent-gate-log');
    vi.stubEnv('DATA_DIR', '/nonexistent');
    const reader = await freshLogKeys();
    expect((await reader.logVerifierKeys(anchor)).map(reader.publicKeyView)).toEqual(derived);
    // Nothing published: nothing to verify with (verification then reports the checkpoints as unverifiable).
    expect(await reader.logVerifierKeys(new MemoryAnchor())).toEqual([]);
  });
});
