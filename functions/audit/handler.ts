import { contactBlockLevel } from '#domain/audit-summary.ts';
import { api, publicRoute } from '#http/api.ts';
import { dispatch } from '#http/dispatch.ts';
import { NotFoundError } from '#http/errors.ts';
import { API_HEADERS } from '#http/problem.ts';
import { dashboardAsset, dashboardHeaders, dashboardPage } from '#shared/pages/dashboard/page.ts';
import { negotiateLang } from '#shared/pages/i18n.ts';
import { AuditErasuresQuerySchema, AuditEventsQuerySchema, AuditRangeQuerySchema } from '#shared/schemas/audit.ts';
import { auditPage } from '#shared/services/audit-export.ts';
import { verifyRange } from '#shared/services/audit-verify.ts';
import { erasureDeadlines } from '#shared/services/erasure-deadlines.ts';
import { decodeCursor } from '#store/audit-index.ts';
import { summarise } from '#store/audit-summary.ts';
import { getDb } from '#store/db.ts';
import { getPolicy } from '#store/policy.ts';

const CONTENT_TYPES = { ndjson: 'application/x-ndjson; charset=utf-8', csv: 'text/csv; charset=utf-8' } as const;

/**
 * GET /v1/audit/events — one page of the tenant's events in `[from, to)`, in time order. The next
 * page's cursor is in `X-Next-Cursor` (absent on the last page); a CSV header row only on the first page,
 * so the pages concatenate into one file.
 */
export const events = api('GET /v1/audit/events', { query: AuditEventsQuerySchema }, async ({ query: q, tenant }) => {
  const range = { from: q.from, to: q.to };
  const after = q.cursor ? decodeCursor(q.cursor, range) : undefined;
  const page = await auditPage(getDb(), tenant, range, { format: q.format, limit: q.limit, after, header: !after });
  return {
    statusCode: 200,
    headers: {
      ...API_HEADERS,
      'content-type': CONTENT_TYPES[q.format],
      'x-event-count': String(page.count),
      ...(page.nextCursor ? { 'x-next-cursor': page.nextCursor } : {}),
    },
    body: page.body,
  };
});

/** GET /v1/audit/verify — every chain touched in the range, re-computed. */
export const verify = api(
  'GET /v1/audit/verify',
  { query: AuditRangeQuerySchema },
  async ({ query: range, tenant }) => {
    const report = await verifyRange(getDb(), tenant, range);
    return { status: 200, body: { from: range.from, to: range.to, ...report } };
  },
);

/** GET /v1/audit/summary — counts per day × type × channel, and contacts by block level. */
export const summary = api(
  'GET /v1/audit/summary',
  { query: AuditRangeQuerySchema },
  async ({ query: range, tenant }) => {
    const db = getDb();
    const policy = await getPolicy(db, tenant);
    const now = new Date().toISOString();
    return { status: 200, body: await summarise(db, tenant, range, (state) => contactBlockLevel(state, policy, now)) };
  },
);

/** GET /v1/audit/erasures — erasure requests with deadlines, for the dashboard (audit:read, read-only). */
export const erasures = api(
  'GET /v1/audit/erasures',
  { query: AuditErasuresQuerySchema },
  async ({ query: q, tenant }) => {
    const now = Date.now();
    const requests = await erasureDeadlines(getDb(), tenant, q, now);
    return { status: 200, body: { now: new Date(now).toISOString(), requests } };
  },
);

/** GET /dashboard — the DPO dashboard (public page; it signs in with an audit:read key). */
export const dashboard = publicRoute('GET /dashboard', async (event) => {
  const lang = negotiateLang(event.headers?.['accept-language'], event.queryStringParameters?.lang);
  return { statusCode: 200, headers: dashboardHeaders(lang), body: dashboardPage(lang) };
});

/** GET /dashboard/assets/{file} — the page's script, style sheet and the bundled chart library. */
export const asset = publicRoute('GET /dashboard/assets/{file}', async (event) => {
  const found = dashboardAsset(event.pathParameters?.file ?? '');
  if (!found) throw new NotFoundError('no such dashboard asset');
  return found;
});

export const handler = dispatch('audit', [events, verify, summary, erasures, dashboard, asset]);
