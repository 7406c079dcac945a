import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { awsRegionOf, createDocumentClient } from '#store/client.ts';

afterEach(() => vi.unstubAllEnvs());

describe('store client: DynamoDB Local or a real table (the CLI against a deployed stage)', () => {
  it('reads the region from an AWS endpoint, and nothing from a local one', () => {
    expect(awsRegionOf('https://dynamodb.eu-west-3.amazonaws.com')).toBe('eu-west-3');
    expect(awsRegionOf('https://dynamodb.cn-north-1.amazonaws.com.cn')).toBe('cn-north-1');
    expect(awsRegionOf('http://127.0.0.1:8000')).toBeUndefined();
    expect(awsRegionOf('not a url')).toBeUndefined();
  });

  it('uses placeholder credentials for DynamoDB Local', async () => {
    vi.stubEnv('AWS_ACCESS_KEY_ID', undefined as unknown as string);
    const client = createDocumentClient({ tableName: 't', endpoint: 'http://127.0.0.1:8000' });
    expect((await client.config.credentials()).accessKeyId).toBe('local');
  });

  it("uses the operator's AWS profile, in the endpoint's region, for AWS's own endpoint", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'aws-profile-'));
    writeFileSync(
      join(dir, 'credentials'),
      '[operator]\naws_access_key_id = AKIAOPERATOR\naws_secret_access_key = operator-secret\n',
    );
    vi.stubEnv('AWS_ACCESS_KEY_ID', undefined as unknown as string);
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', undefined as unknown as string);
    vi.stubEnv('AWS_SHARED_CREDENTIALS_FILE', join(dir, 'credentials'));
    vi.stubEnv('AWS_CONFIG_FILE', join(dir, 'config'));
    vi.stubEnv('AWS_PROFILE', 'operator');
    vi.stubEnv('AWS_REGION', 'us-east-1');
    const client = createDocumentClient({ tableName: 't', endpoint: 'https://dynamodb.eu-west-3.amazonaws.com' });
    expect(await client.config.region()).toBe('eu-west-3');
    expect((await client.config.credentials()).accessKeyId).toBe('AKIAOPERATOR');
  });
});
