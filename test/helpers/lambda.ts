import { randomUUID } from 'node:crypto';
import type { ApiEvent } from '#http/middlewares.ts';

/** The API Gateway HTTP API (payload 2.0) event the cloud hands a function after the authorizer. */
export function apiEvent(
  routeKey: string,
  body: unknown,
  auth: { tenant: string; scopes: string; keyId: string },
  headers: Record<string, string> = {},
): ApiEvent {
  const [method, path] = routeKey.split(' ');
  return {
    version: '2.0',
    routeKey,
    rawPath: path,
    rawQueryString: '',
    headers: { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
    isBase64Encoded: false,
    requestContext: {
      accountId: 'local',
      apiId: 'local',
      domainName: 'localhost',
      domainPrefix: 'local',
      http: { method, path, protocol: 'HTTP/1.1', sourceIp: '0.0.0.0', userAgent: 'local' },
      requestId: randomUUID(),
      routeKey,
      stage: '$default',
      time: new Date().toUTCString(),
      timeEpoch: Date.now(),
      authorizer: { lambda: auth },
    },
  };
}
