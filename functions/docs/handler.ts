import { publicRoute } from '#http/api.ts';
import { dispatch } from '#http/dispatch.ts';
import { jsonResponse } from '#http/problem.ts';
import { openApiDocument } from '#shared/openapi.ts';

let cached: string | undefined;

/** GET /openapi.json — generated from the schemas that validate requests. */
export const openapi = publicRoute(async () => {
  cached ??= JSON.stringify(openApiDocument(process.env.PUBLIC_BASE_URL));
  return { ...jsonResponse(200, null), body: cached };
});

export const handler = dispatch({ 'GET /openapi.json': openapi });
