import type { Context } from 'aws-lambda';
import { openapi } from '#functions/docs/handler.ts';
import type { ApiEvent } from '#http/middlewares.ts';

/** The OpenAPI document exactly as `GET /openapi.json` serves it, generated in-process from the handlers. */
export async function servedDocument(): Promise<Record<string, any>> {
  const event = {
    routeKey: 'GET /openapi.json',
    rawPath: '/openapi.json',
    headers: {},
    requestContext: { http: { method: 'GET', path: '/openapi.json' } },
  } as unknown as ApiEvent;
  const result = await openapi(event, {} as Context);
  if (result.statusCode !== 200) throw new Error(`GET /openapi.json answered ${result.statusCode}: ${result.body}`);
  return JSON.parse(String(result.body));
}
