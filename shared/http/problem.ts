import type { APIGatewayProxyResultV2 } from 'aws-lambda';
import { type FieldError, ProblemError } from './errors.ts';

export type HttpResult = Exclude<APIGatewayProxyResultV2, string> & { statusCode: number };

/** Headers on every API response. */
export const API_HEADERS = {
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
};

/** Renders an RFC 9457 problem document. */
export function problemResponse(error: ProblemError): HttpResult {
  const body: Record<string, unknown> = {
    type: `https://consent-gate.dev/problems/${error.code}`,
    title: error.title,
    status: error.status,
    code: error.code,
    detail: error.detail,
  };
  if (error.errors?.length) body.errors = error.errors satisfies FieldError[];
  return {
    statusCode: error.status,
    headers: { ...API_HEADERS, 'content-type': 'application/problem+json', ...error.headers },
    body: JSON.stringify(body),
  };
}

/** The 500 that never echoes the error's message or stack. */
export const internalError = () =>
  problemResponse(
    new ProblemError(500, 'internal_error', 'Internal error', 'an unexpected error occurred; it has been logged'),
  );

/** A JSON response. */
export function jsonResponse(statusCode: number, body: unknown, headers: Record<string, string> = {}): HttpResult {
  return {
    statusCode,
    headers: { ...API_HEADERS, 'content-type': 'application/json; charset=utf-8', ...headers },
    body: JSON.stringify(body),
  };
}
