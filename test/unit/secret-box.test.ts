import { beforeAll, describe, expect, it } from 'vitest';
import { openSecret, sealSecret } from '#shared/secret-box.ts';

beforeAll(() => {
  process.env.DATA_DIR = 'memory';
});

describe('the tenant secret box', () => {
  it('opens what it sealed, and the sealed text does not contain the secret', async () => {
    const sealed = await sealSecret('t1', 'CONNECTOR#abc', 'twilio-auth-token-123');
    expect(sealed).not.toContain('twilio');
    expect(await openSecret('t1', 'CONNECTOR#abc', sealed)).toBe('twilio-auth-token-123');
    expect(await sealSecret('t1', 'CONNECTOR#abc', 'twilio-auth-token-123')).not.toBe(sealed);
  });

  it('refuses a sealed value moved to another tenant or item, or altered by one character', async () => {
    const sealed = await sealSecret('t1', 'CONNECTOR#abc', 'secret');
    await expect(openSecret('t2', 'CONNECTOR#abc', sealed)).rejects.toThrow();
    await expect(openSecret('t1', 'CONNECTOR#other', sealed)).rejects.toThrow();
    const parts = sealed.split('.');
    parts[2] = (parts[2][0] === 'A' ? 'B' : 'A') + parts[2].slice(1);
    await expect(openSecret('t1', 'CONNECTOR#abc', parts.join('.'))).rejects.toThrow();
    await expect(openSecret('t1', 'CONNECTOR#abc', 'plain')).rejects.toThrow('not a sealed secret');
  });
});
