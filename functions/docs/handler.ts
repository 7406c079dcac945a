import { handler as audit } from '#functions/audit/handler.ts';
import { handler as connectors } from '#functions/connectors/handler.ts';
import { handler as consents } from '#functions/consents/handler.ts';
import { handler as erasure } from '#functions/erasure/handler.ts';
import { handler as events } from '#functions/events/handler.ts';
import { handler as gate } from '#functions/gate/handler.ts';
import { handler as health } from '#functions/health/handler.ts';
import { handler as log } from '#functions/log/handler.ts';
import { handler as notices } from '#functions/notices/handler.ts';
import { handler as policy } from '#functions/policy/handler.ts';
import { handler as selfservice } from '#functions/selfservice/handler.ts';
import { handler as signals } from '#functions/signals/handler.ts';
import { handler as subjects } from '#functions/subjects/handler.ts';
import { handler as webhooks } from '#functions/webhooks/handler.ts';
import { publicRoute } from '#http/api.ts';
import { dispatch } from '#http/dispatch.ts';
import { jsonResponse } from '#http/problem.ts';
import { openApiDocument } from '#shared/openapi.ts';

/** The other functions: the document shows the request schemas of their route handlers. */
const DOCUMENTED = [
  audit,
  connectors,
  consents,
  erasure,
  events,
  gate,
  health,
  log,
  notices,
  policy,
  selfservice,
  signals,
  subjects,
  webhooks,
];

let cached: string | undefined;

/** GET /openapi.json — generated from the schemas that validate requests. */
export const openapi = publicRoute('GET /openapi.json', async () => {
  cached ??= JSON.stringify(
    openApiDocument(
      DOCUMENTED.flatMap((fn) => fn.routes),
      process.env.PUBLIC_BASE_URL,
    ),
  );
  return { ...jsonResponse(200, null), body: cached };
});

export const handler = dispatch('docs', [openapi]);
