import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { publicHandler } from '#http/api.ts';
import { type ProblemError, toProblem } from '#http/errors.ts';
import { type ApiEvent, MAX_BODY_BYTES, rawBody, wellFormedRequest } from '#http/middlewares.ts';
import type { HttpResult } from '#http/problem.ts';
import type { PublicRouteKey } from '#http/routes.ts';
import { logger } from '#shared/log.ts';
import { type ErrorPageKind, errorPage, PageError } from './errors.ts';
import { type Lang, negotiateLang } from './i18n.ts';
import { htmlResponse } from './layout.ts';

const header = (event: ApiEvent, name: string) => {
  for (const [key, value] of Object.entries(event.headers ?? {})) if (key.toLowerCase() === name) return value;
  return undefined;
};

/** The language of a page request: `?lang=`, then `Accept-Language`. */
export const requestLang = (event: ApiEvent): Lang =>
  negotiateLang(header(event, 'accept-language'), event.queryStringParameters?.lang);

function errorKind(error: ProblemError): ErrorPageKind {
  if (error instanceof PageError) return error.page;
  if (error.status === 503) return 'unavailable';
  if (error.status === 413 || error.status === 415 || error.status === 400) return 'form';
  return 'generic';
}

/**
 * The handler of the public HTML page route `key`: thrown errors become HTML error pages in the visitor's
 * language with the page security headers (never problem+json, never a stack). Unknown errors are logged
 * and become a 500.
 */
export function pageRoute(key: PublicRouteKey, handler: (event: ApiEvent, lang: Lang) => Promise<HttpResult>) {
  const page = middy<ApiEvent, HttpResult, Error, Context>()
    .use({
      onError: async (request) => {
        const error = request.error;
        const lang = requestLang(request.event);
        const problem = toProblem(error);
        if (problem) {
          const controller = problem instanceof PageError ? problem.controller : undefined;
          const result = htmlResponse(problem.status, lang, errorPage(lang, errorKind(problem), controller));
          if (problem.status === 503) result.headers = { ...result.headers, 'retry-after': '30' };
          request.response = result;
          return;
        }
        logger.error('unhandled page error', { errorName: error?.name, stack: error?.stack?.split('\n').slice(1, 6) });
        request.response = htmlResponse(500, lang, errorPage(lang, 'generic'));
      },
    })
    .use(wellFormedRequest())
    .handler((event) => handler(event, requestLang(event)));
  return publicHandler(key, page);
}

/**
 * The fields of a form POST, urlencoded or multipart (mail providers send RFC 8058 one-click either way;
 * API Gateway hands multipart bodies over base64-encoded). No body = no fields. Anything unreadable is a
 * 400 page and nothing is recorded.
 */
export async function readForm(event: ApiEvent): Promise<Map<string, string>> {
  const body = rawBody(event);
  if (body.length > MAX_BODY_BYTES) throw new PageError(413, 'payload_too_large', 'form');
  const fields = new Map<string, string>();
  if (body.length === 0) return fields;
  const type = header(event, 'content-type') ?? '';
  const media = type.split(';')[0].trim().toLowerCase();
  if (media !== 'application/x-www-form-urlencoded' && media !== 'multipart/form-data') {
    throw new PageError(415, 'unsupported_media_type', 'form');
  }
  let form: FormData;
  try {
    // The platform's own (undici) parser: both encodings, boundaries and charsets handled by the spec.
    form = await new Response(body, { headers: { 'content-type': type } }).formData();
  } catch {
    throw new PageError(400, 'malformed_form', 'form');
  }
  for (const [name, value] of form) if (typeof value === 'string' && !fields.has(name)) fields.set(name, value);
  return fields;
}

/** "List-Unsubscribe" then "One-Click" as a form field in any encoding: `=`, a multipart part, JSON's `":"`. */
const ONE_CLICK = /List-Unsubscribe["'\s:=]{1,8}One-Click/;

/**
 * Whether a POST is an RFC 8058 one-click: the form field `List-Unsubscribe=One-Click`, read with the
 * form parser, else found in the body's text whatever its type (text/plain, the RFC's own §8.3 example,
 * whose multipart delimiters a strict parser refuses). Only a body over the size limit is an error (413).
 */
export async function isOneClick(event: ApiEvent): Promise<boolean> {
  const form = await readForm(event).catch((error: unknown) => {
    if (error instanceof PageError && error.status === 413) throw error;
    return undefined;
  });
  if (form?.get('List-Unsubscribe') === 'One-Click') return true;
  return ONE_CLICK.test(rawBody(event).toString('utf8'));
}
