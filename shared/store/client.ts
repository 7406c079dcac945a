import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

/** Where the store lives: a table on an endpoint (DynamoDB Local) or in the account's region. */
export interface StoreConfig {
  tableName: string;
  endpoint?: string;
  region?: string;
}

/** The store's settings from the environment (read when first needed, so the local runtime can set them). */
export function storeConfigFromEnv(env: NodeJS.ProcessEnv = process.env): StoreConfig {
  return {
    tableName: env.TABLE_NAME || 'consent-gate',
    endpoint: env.DYNAMODB_ENDPOINT || undefined,
    region: env.AWS_REGION || env.AWS_DEFAULT_REGION || 'eu-west-3',
  };
}

/** The region of an AWS DynamoDB endpoint (`https://dynamodb.eu-west-3.amazonaws.com`), else undefined. */
export function awsRegionOf(endpoint: string): string | undefined {
  try {
    return /^dynamodb(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$/.exec(new URL(endpoint).hostname)?.[1];
  } catch {
    return undefined;
  }
}

/**
 * A document client with short timeouts: the gate fails closed quickly instead of hanging when the
 * store is away. SDK retries (throttling, 5xx) are bounded by maxAttempts.
 */
export function createDocumentClient(config: StoreConfig): DynamoDBDocumentClient {
  const timeout = Number(process.env.DYNAMODB_TIMEOUT_MS ?? 3000);
  const aws = config.endpoint ? awsRegionOf(config.endpoint) : undefined;
  const client = new DynamoDBClient({
    region: config.region ?? aws ?? process.env.AWS_REGION ?? 'eu-west-3',
    endpoint: config.endpoint,
    maxAttempts: 3,
    // Handler options rather than a NodeHttpHandler instance: the SDK builds its own, so the bundle does not
    // carry a second copy of @smithy (the Lambda runtime provides the SDK).
    requestHandler: {
      connectionTimeout: Math.min(timeout, 1000),
      requestTimeout: timeout,
      // Without it a request past requestTimeout only logs a warning and waits on: a silent store would
      // hang the gate until the Lambda timeout instead of failing closed (test/faults/sdk-retries.test.ts).
      throwOnRequestTimeout: true,
    },
    // DynamoDB Local accepts any credentials; a real table (no endpoint, or AWS's own endpoint) uses the
    // default provider chain: env, profile, SSO.
    ...(config.endpoint && !aws && !process.env.AWS_ACCESS_KEY_ID
      ? { credentials: { accessKeyId: 'local', secretAccessKey: 'local' } }
      : {}),
  });
  return DynamoDBDocumentClient.from(client, {
    marshallOptions: { removeUndefinedValues: true, convertEmptyValues: false },
  });
}
