import { api } from '#http/api.ts';
import { dispatch } from '#http/dispatch.ts';
import { NotFoundError } from '#http/errors.ts';
import { parseOrThrow } from '#http/validation.ts';
import { NoticeRegisterSchema, NoticeVersionSchema } from '#shared/schemas/notices.ts';
import { getDb } from '#store/db.ts';
import { getNotice, listNotices, registerNotice } from '#store/notices.ts';

/**
 * POST /v1/notices — registers one version of the privacy notice, immutable: 201 with its hash; the same
 * content again → 200 with the notice as first registered; other content for that version → 409
 * `notice_immutable`.
 */
export const register = api(
  'POST /v1/notices',
  { body: NoticeRegisterSchema, idempotent: true },
  async ({ body, tenant }) => {
    const content = { ...body, url: body.url ?? null };
    const { notice, created } = await registerNotice(getDb(), tenant, content, new Date().toISOString());
    return { status: created ? 201 : 200, body: notice };
  },
);

/** GET /v1/notices — every registered notice without its texts, by `effectiveAt`. */
export const list = api('GET /v1/notices', {}, async ({ tenant }) => ({
  status: 200,
  body: { notices: await listNotices(getDb(), tenant) },
}));

/** GET /v1/notices/{version} — one notice with its texts in every language; 404 `notice_not_found`. */
export const read = api('GET /v1/notices/{version}', {}, async ({ event, tenant }) => {
  const version = parseOrThrow(NoticeVersionSchema, event.pathParameters?.version, 'version');
  const notice = await getNotice(getDb(), tenant, version);
  if (!notice) throw new NotFoundError(`no notice ${version} is registered`, 'notice_not_found');
  return { status: 200, body: notice };
});

export const handler = dispatch('notices', [register, list, read]);
