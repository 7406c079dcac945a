import { dueBy } from '#domain/erasure.ts';
import type { Actor } from '#domain/ledger.ts';
import { kindOf, type Policy } from '#domain/policy.ts';
import { effectiveScope, type SubjectState, withdrawConsent } from '#domain/subject-state.ts';
import { api, publicRoute } from '#http/api.ts';
import { dispatch } from '#http/dispatch.ts';
import { NotFoundError, NotSealedError } from '#http/errors.ts';
import type { ApiEvent } from '#http/middlewares.ts';
import { jsonResponse } from '#http/problem.ts';
import { resolveSubject } from '#shared/identity/resolve.ts';
import { mintLinks, OptoutLinkRequestSchema } from '#shared/links/links.ts';
import { PreferenceFormSchema, planPreferenceChange, preferenceRows } from '#shared/links/self-service.ts';
import { type LinkClaims, type LinkKind, verifyLink } from '#shared/links/token.ts';
import { logger } from '#shared/log.ts';
import { PageError } from '#shared/pages/errors.ts';
import type { Lang } from '#shared/pages/i18n.ts';
import { htmlResponse } from '#shared/pages/layout.ts';
import { optoutDonePage, optoutPage } from '#shared/pages/optout.ts';
import { type PreferencesPageInput, preferencesPage } from '#shared/pages/preferences.ts';
import { isOneClick, pageRoute, readForm } from '#shared/pages/route.ts';
import { getSecrets } from '#shared/secrets.ts';
import { receiptOf } from '#shared/services/log-receipts.ts';
import { getDb } from '#store/db.ts';
import { receiveErasureRequest } from '#store/erasure.ts';
import { noticeOfGrant } from '#store/notices.ts';
import { getPolicy } from '#store/policy.ts';
import { appendChange, getState } from '#store/subjects.ts';

/** Where links point: `PUBLIC_BASE_URL`, else the API's own domain. */
const baseUrl = (event: ApiEvent) => process.env.PUBLIC_BASE_URL || `https://${event.requestContext.domainName}`;

/** POST /v1/optout-links — a signed opt-out link for one scope, a preference-centre link, the e-mail headers. */
export const createLinks = api(
  'POST /v1/optout-links',
  { body: OptoutLinkRequestSchema },
  async ({ body, tenant, event }) => {
    const { subjectKey } = await resolveSubject(tenant, body.subject, body.channel);
    const { linkKeys } = await getSecrets();
    const links = mintLinks({ ...body, tenant, subjectKey, baseUrl: baseUrl(event), keys: linkKeys, now: Date.now() });
    return { status: 201, body: links };
  },
);

/**
 * Verifies the path's token for a page of `kind`. Forged, tampered or unknown-key links → 400 (and no
 * organisation is named); expired genuine links → 410 with the tenant's privacy contact; a link of the
 * other kind → 400. Nothing is ever recorded for a refused link.
 */
async function openLink<K extends LinkKind>(event: ApiEvent, kind: K, now: number) {
  const token = event.pathParameters?.token ?? '';
  const { linkKeys } = await getSecrets();
  const result = verifyLink(token, linkKeys, { now, kind });
  if (result.ok) {
    return { claims: result.claims as Extract<LinkClaims, { kind: K }>, kid: result.kid };
  }
  // Info, not warn: truncated links and scanners' guesses are everyday traffic on a public page.
  logger.info('self-service link refused', { reason: result.reason, kind, subjectKey: result.claims?.subjectKey });
  if (result.reason === 'expired' && result.claims) {
    const policy = await getPolicy(getDb(), result.claims.tenant);
    throw new PageError(410, 'link_expired', 'expired', policy.controller);
  }
  if (result.reason === 'wrong_kind') throw new PageError(400, 'wrong_link_kind', 'wrong_kind');
  throw new PageError(400, 'invalid_link', 'invalid');
}

/** Pages are used by the person themself. */
const SELF_SERVICE: Actor = { type: 'self_service' };

/** The form target: the same link, keeping the chosen language. */
const formAction = (event: ApiEvent, lang: Lang) => `${event.rawPath}?lang=${lang}`;

const subjectOf = async (claims: LinkClaims) => {
  const db = getDb();
  const [state, policy] = await Promise.all([
    getState(db, claims.tenant, claims.subjectKey),
    getPolicy(db, claims.tenant),
  ]);
  return { db, state, policy };
};

/** GET /optout/{token} — what will stop and one button. Reads only: mail scanners prefetch links. */
export const optoutGet = pageRoute('GET /optout/{token}', async (event, lang) => {
  const { claims } = await openLink(event, 'optout', Date.now());
  const { state, policy } = await subjectOf(claims);
  const scope = effectiveScope(state, claims.channel, claims.purpose, kindOf(policy));
  const page = optoutPage({
    lang,
    controller: policy.controller,
    timeZone: policy.defaultTimezone,
    channel: claims.channel,
    purpose: claims.purpose,
    action: formAction(event, lang),
    withdrawnAt: scope?.status === 'withdrawn' ? scope.withdrawnAt : undefined,
  });
  return htmlResponse(200, lang, page);
});

/**
 * POST /optout/{token} — the page's button (`self_service_link`) or a mail provider's RFC 8058 one-click
 * POST (body `List-Unsubscribe=One-Click`, recorded as `one_click`). Any POST to a valid link opts out,
 * whatever its body (none, text/plain, the RFC's §8.3 multipart): the signed link is the authority, the
 * body only names the source, and a one-click that failed on its encoding would drop an unsubscribe.
 * Already withdrawn: nothing new is recorded and the same confirmation is shown.
 */
export const optoutPost = pageRoute('POST /optout/{token}', async (event, lang) => {
  const now = new Date().toISOString();
  const { claims, kid } = await openLink(event, 'optout', Date.parse(now));
  const oneClick = await isOneClick(event);
  const { db, state, policy } = await subjectOf(claims);
  const scope = effectiveScope(state, claims.channel, claims.purpose, kindOf(policy));
  let withdrawnAt = scope?.status === 'withdrawn' ? scope.withdrawnAt : undefined;
  if (!withdrawnAt) {
    const input = {
      channel: claims.channel,
      purpose: claims.purpose,
      source: oneClick ? 'one_click' : 'self_service_link',
      data: { link: { kid, expiresAt: new Date(claims.exp * 1000).toISOString() } },
    };
    await appendChange(
      db,
      claims.tenant,
      claims.subjectKey,
      (current, next) => withdrawConsent(current, input, next, now, kindOf(policy)),
      { actor: SELF_SERVICE },
    );
    withdrawnAt = now;
  }
  const page = optoutDonePage({
    lang,
    controller: policy.controller,
    timeZone: policy.defaultTimezone,
    channel: claims.channel,
    purpose: claims.purpose,
    withdrawnAt,
  });
  return htmlResponse(200, lang, page);
});

function preferencesInput(
  event: ApiEvent,
  lang: Lang,
  state: SubjectState | undefined,
  policy: Policy,
  now: string,
  notice?: PreferencesPageInput['notice'],
): PreferencesPageInput {
  const erasure = state?.erasure;
  return {
    lang,
    controller: policy.controller,
    timeZone: policy.defaultTimezone,
    noticeVersion: policy.noticeVersion,
    action: formAction(event, lang),
    rows: preferenceRows(state, policy, now),
    purposes: policy.purposes,
    erasure:
      erasure?.status === 'received'
        ? { status: 'received', receivedAt: erasure.receivedAt, dueBy: dueBy(erasure.receivedAt) }
        : erasure?.status === 'completed'
          ? { status: 'completed', erasedAt: erasure.erasedAt ?? erasure.receivedAt }
          : undefined,
    notice,
    receiptsPath: `${event.rawPath.replace(/\/+$/, '')}/receipts`,
  };
}

/** GET /preferences/{token} — every scope with its state. Reads only (a visit alone is not recorded). */
export const preferencesGet = pageRoute('GET /preferences/{token}', async (event, lang) => {
  const now = new Date().toISOString();
  const { claims } = await openLink(event, 'preferences', Date.parse(now));
  const { state, policy } = await subjectOf(claims);
  return htmlResponse(200, lang, preferencesPage(preferencesInput(event, lang, state, policy, now)));
});

/**
 * POST /preferences/{token} — withdraw a scope, give it again (`preference_center`, the current notice
 * version), confirm the choices, or ask for erasure. Each change is the person's own action; what a form
 * does is decided by `planPreferenceChange` (pure), the handler only reads and writes.
 */
export const preferencesPost = pageRoute('POST /preferences/{token}', async (event, lang) => {
  const now = new Date().toISOString();
  const { claims } = await openLink(event, 'preferences', Date.parse(now));
  const form = PreferenceFormSchema.safeParse(Object.fromEntries(await readForm(event)));
  if (!form.success) throw new PageError(400, 'invalid_form', 'form');
  const { db, state, policy } = await subjectOf(claims);
  const registered = form.data.action === 'grant' ? await noticeOfGrant(db, claims.tenant, policy.noticeVersion) : {};
  const plan = planPreferenceChange(form.data, state, policy, now, registered);
  let after = state;
  if (plan.do === 'append') {
    after = (await appendChange(db, claims.tenant, claims.subjectKey, plan.apply, { actor: SELF_SERVICE })).state;
  }
  if (plan.do === 'erase') {
    const subjects = [{ subjectKey: claims.subjectKey }];
    await receiveErasureRequest(db, claims.tenant, { subjects, requestedVia: 'self_service' }, now, SELF_SERVICE);
    after = await getState(db, claims.tenant, claims.subjectKey);
  }
  const status = plan.do === 'nothing' ? plan.status : 200;
  const notice = plan.do === 'erase' ? undefined : plan.notice;
  return htmlResponse(status, lang, preferencesPage(preferencesInput(event, lang, after, policy, now, notice)));
});

/**
 * GET /preferences/{token}/receipts/{eventId} — the receipt of one of the link's subject's own events, as a
 * JSON file the person can check offline (`consent-gate receipt verify`). Another subject's event is 404.
 */
export const preferencesReceipt = publicRoute('GET /preferences/{token}/receipts/{eventId}', async (event) => {
  const { claims } = await openLink(event, 'preferences', Date.now());
  const eventId = event.pathParameters?.eventId ?? '';
  const result = await receiptOf(getDb(), claims.tenant, eventId, { subjectKey: claims.subjectKey });
  if (result.kind === 'not_found') throw new NotFoundError(`no event ${eventId} of yours`, 'event_not_found');
  if (result.kind === 'not_sealed') throw new NotSealedError(result.detail);
  return jsonResponse(200, result.receipt, {
    'content-disposition': `attachment; filename="receipt-${eventId.replace(/[^\w-]/g, '')}.json"`,
    'referrer-policy': 'no-referrer',
  });
});

export const handler = dispatch('selfservice', [
  createLinks,
  optoutGet,
  optoutPost,
  preferencesGet,
  preferencesPost,
  preferencesReceipt,
]);
