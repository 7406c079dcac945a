import * as z from 'zod';
import {
  AccessContinuationSchema,
  AccessResponseSchema,
  AuditErasuresResponseSchema,
  AuditSummaryResponseSchema,
  AuditVerifyResponseSchema,
  ChangesResponseSchema,
  CheckpointViewSchema,
  ConnectorListSchema,
  ConnectorReportSchema,
  ConnectorSchema,
  ConsentGrantedResponseSchema,
  ConsentWithdrawnResponseSchema,
  ConsistencyResponseSchema,
  DeliveriesResponseSchema,
  EndpointTestResponseSchema,
  ErasureListResponseSchema,
  ErasureRequestViewSchema,
  EventEndpointListSchema,
  EventEndpointSchema,
  EventEndpointWithSecretSchema,
  GateBatchResponseSchema,
  GateDecisionResponseSchema,
  HealthResponseSchema,
  LeavesResponseSchema,
  LinksResponseSchema,
  LookupResponseSchema,
  NoticeListResponseSchema,
  NoticeSchema,
  OptoutLinksResponseSchema,
  PolicyResponseSchema,
  PublicKeyResponseSchema,
  ReceiptResponseSchema,
  ReplayResponseSchema,
  SignalResponseSchema,
  SnsConfirmationResponseSchema,
  SubjectEventsResponseSchema,
  UnlinkResponseSchema,
  WebhookReportResponseSchema,
} from '#shared/schemas/responses.ts';
import type { RouteKey } from './routes.ts';

/**
 * What each route answers: every status with its media types and body schema, the problem `code`s it
 * may carry, and its headers. `shared/openapi.ts` turns this into the document's responses; the parts
 * every route of a kind shares (401/403 for API keys, 413/415 for bodies, 409 for Idempotency-Key) are
 * added there from the handler's own options, so they cannot drift from what the middlewares do.
 */

/** A body: a zod schema (JSON), or `text` (a string: HTML, CSV, NDJSON, a script). */
export type BodySpec = z.ZodType | 'text';

export interface HeaderSpec {
  description: string;
  /** The header is on every response of this status (the e2e validator checks it). */
  required?: boolean;
}

export interface ResponseSpec {
  description: string;
  /** Media type → body. Absent with `codes`: application/problem+json. */
  content?: Record<string, BodySpec>;
  /** The problem `code`s of this status (an RFC 9457 body). */
  codes?: readonly string[];
  headers?: Record<string, HeaderSpec>;
}

export interface ParameterSpec {
  name: string;
  in: 'query' | 'header';
  description: string;
  required?: boolean;
  schema: Record<string, unknown>;
}

export interface RouteResponses {
  responses: Record<number, ResponseSpec>;
  /** Parameters no zod query schema describes (webhook handshakes, signature headers, page languages). */
  parameters?: readonly ParameterSpec[];
  /** The body of a raw-body route (forms, signed webhooks), which no zod body schema describes. */
  requestBody?: { required: boolean; description: string; content: Record<string, Record<string, unknown>> };
}

/** Only the frame: the document's own meta-schema is OpenAPI's. */
const OpenApiDocumentSchema = z.looseObject({
  openapi: z.literal('3.1.0'),
  info: z.looseObject({ title: z.string(), version: z.string() }),
  paths: z.record(z.string(), z.unknown()),
});

const json = (schema: z.ZodType) => ({ 'application/json': schema });
const html = { 'text/html': 'text' } as const;

/** A public HTML page: errors are HTML pages too (never problem+json). */
const page = (ok: string, extra: Record<number, ResponseSpec> = {}): RouteResponses => ({
  parameters: [LANG],
  responses: {
    200: { description: ok, content: html },
    400: { description: 'A forged, tampered or wrong-kind link, or an unreadable form (HTML page)', content: html },
    410: { description: 'An expired link (HTML page naming the privacy contact)', content: html },
    500: { description: 'Unexpected error (HTML page)', content: html },
    503: {
      description: 'The store is unavailable (HTML page); nothing was changed',
      content: html,
      headers: { 'Retry-After': RETRY_AFTER },
    },
    ...extra,
  },
});

const RETRY_AFTER: HeaderSpec = { description: 'Seconds to wait before retrying', required: true };

const LANG: ParameterSpec = {
  name: 'lang',
  in: 'query',
  description: 'Page language (else Accept-Language)',
  schema: { type: 'string', enum: ['en', 'fr', 'de', 'es', 'it'] },
};

/** A form POST of a page: urlencoded or multipart, possibly empty (RFC 8058 one-click bodies vary). */
const FORM_BODY = (description: string): RouteResponses['requestBody'] => ({
  required: false,
  description,
  content: {
    'application/x-www-form-urlencoded': { schema: { type: 'object', additionalProperties: { type: 'string' } } },
    'multipart/form-data': { schema: { type: 'object', additionalProperties: { type: 'string' } } },
  },
});

const FORM_ERRORS: Record<number, ResponseSpec> = {
  413: { description: 'The form is larger than 1 MiB (HTML page)', content: html },
  415: { description: 'The body is neither urlencoded nor multipart (HTML page)', content: html },
};

/** Codes of a body that names a subject: the identifier is checked after the schema. */
const IDENTIFIER = ['invalid_identifier', 'identifier_channel_mismatch'] as const;
const GRANT_REFUSALS = ['fresh_consent_required', 'subject_erased', 'stale_consent', 'erasure_pending'] as const;
const NOT_SEALED: ResponseSpec = {
  description: 'Recorded, not yet in the log: retry in a second',
  codes: ['not_sealed'],
  headers: { 'Retry-After': RETRY_AFTER },
};
const NEXT_CURSOR: HeaderSpec = { description: "The next page's cursor; absent on the last page" };

const ENDPOINT_NOT_FOUND: ResponseSpec = { description: 'No such event endpoint', codes: ['endpoint_not_found'] };
const CONNECTOR_NOT_FOUND: ResponseSpec = {
  description: 'No such connector in this tenant',
  codes: ['connector_not_found'],
};

const ERASURE_NOT_FOUND: ResponseSpec = {
  description: 'No such erasure request',
  codes: ['erasure_request_not_found'],
};

/** Every route's own responses. `satisfies Record<RouteKey, …>`: a route without one does not compile. */
export const ROUTE_RESPONSES = {
  'GET /v1/health': {
    responses: { 200: { description: 'The store answers', content: json(HealthResponseSchema) } },
  },
  'POST /v1/consents': {
    responses: {
      201: { description: 'The consent is recorded', content: json(ConsentGrantedResponseSchema) },
      400: { description: 'Invalid request', codes: [...IDENTIFIER, 'time_in_future'] },
      409: { description: 'Refused by the consent rules', codes: GRANT_REFUSALS },
      422: {
        description: 'The notice version is not registered, or the subject already holds the most scopes it may',
        codes: ['unknown_notice', 'too_many_scopes'],
      },
    },
  },
  'POST /v1/consents/withdraw': {
    responses: {
      200: { description: 'The withdrawal (or objection) is recorded', content: json(ConsentWithdrawnResponseSchema) },
      400: { description: 'Invalid request', codes: [...IDENTIFIER, 'time_in_future'] },
      409: { description: 'The subject was erased', codes: ['subject_erased'] },
    },
  },
  'POST /v1/subjects/lookup': {
    responses: {
      200: { description: "The subject's consents, signals and erasure status", content: json(LookupResponseSchema) },
      400: { description: 'Invalid request', codes: IDENTIFIER },
      404: { description: 'Nothing was ever recorded for this subject', codes: ['subject_not_found'] },
    },
  },
  'GET /v1/subjects/{subjectKey}/events': {
    responses: {
      200: {
        description: 'A page of the ledger and its chain verification',
        content: json(SubjectEventsResponseSchema),
        headers: { 'X-Next-Cursor': NEXT_CURSOR },
      },
      400: { description: 'Not a subject key, or an invalid cursor', codes: ['validation_failed', 'invalid_cursor'] },
      404: { description: 'No events for this subject key', codes: ['subject_not_found'] },
    },
  },
  'POST /v1/subjects/link': {
    responses: {
      200: { description: 'The person and all its identifiers', content: json(LinksResponseSchema) },
      400: { description: 'Invalid request', codes: IDENTIFIER },
      409: {
        description: 'A subject belongs to another person (send merge: true), or is erased or being erased',
        codes: ['already_linked', 'subject_erased', 'erasure_pending'],
      },
      422: { description: 'The person would have more than 10 identifiers', codes: ['too_many_links'] },
    },
  },
  'POST /v1/subjects/unlink': {
    responses: {
      200: { description: 'What each person looks like now', content: json(UnlinkResponseSchema) },
      400: { description: 'Invalid request', codes: IDENTIFIER },
    },
  },
  'GET /v1/subjects/{subjectKey}/links': {
    responses: {
      200: { description: "The subject's person and its identifiers", content: json(LinksResponseSchema) },
      400: { description: 'Not a subject key', codes: ['validation_failed'] },
    },
  },
  'POST /v1/gate/check': {
    responses: {
      200: {
        description: 'The decision: allow, block (with reasons) or defer (with retryAfter)',
        content: json(GateDecisionResponseSchema),
      },
      400: { description: 'Invalid request', codes: IDENTIFIER },
    },
  },
  'POST /v1/gate/check-batch': {
    responses: {
      200: {
        description: 'One result per item, in order; a bad item is an error in its slot',
        content: json(GateBatchResponseSchema),
      },
    },
  },
  'POST /v1/erasure-requests': {
    responses: {
      202: {
        description: 'Received (the gate blocks the subjects at once); completed with immediate: true',
        content: json(ErasureRequestViewSchema),
      },
      400: { description: 'Invalid request', codes: IDENTIFIER },
    },
  },
  'GET /v1/erasure-requests': {
    responses: {
      200: {
        description: 'A page of erasure requests by status',
        content: json(ErasureListResponseSchema),
        headers: { 'X-Next-Cursor': NEXT_CURSOR },
      },
      400: { description: 'Invalid query or cursor', codes: ['validation_failed', 'invalid_cursor'] },
    },
  },
  'GET /v1/erasure-requests/{requestId}': {
    responses: {
      200: { description: 'The request', content: json(ErasureRequestViewSchema) },
      404: ERASURE_NOT_FOUND,
    },
  },
  'POST /v1/erasure-requests/{requestId}/complete': {
    responses: {
      200: { description: 'Carried out (or already was)', content: json(ErasureRequestViewSchema) },
      404: ERASURE_NOT_FOUND,
      409: { description: 'The request was cancelled', codes: ['erasure_cancelled'] },
    },
  },
  'POST /v1/erasure-requests/{requestId}/cancel': {
    responses: {
      200: { description: 'Cancelled', content: json(ErasureRequestViewSchema) },
      404: ERASURE_NOT_FOUND,
      409: { description: 'Already carried out or cancelled', codes: ['erasure_completed', 'erasure_cancelled'] },
    },
  },
  'POST /v1/erasure-requests/{requestId}/extend': {
    responses: {
      200: { description: 'The deadline is extended', content: json(ErasureRequestViewSchema) },
      404: ERASURE_NOT_FOUND,
      409: {
        description: 'Not extendable',
        codes: ['already_extended', 'extension_too_late', 'erasure_completed', 'erasure_cancelled'],
      },
    },
  },
  'POST /v1/optout-links': {
    responses: {
      201: {
        description: 'Signed links and the values of the List-Unsubscribe and List-Unsubscribe-Post e-mail headers',
        content: json(OptoutLinksResponseSchema),
      },
      400: { description: 'Invalid request', codes: IDENTIFIER },
    },
  },
  'GET /optout/{token}': page('The opt-out page (a GET never changes anything)'),
  'POST /optout/{token}': {
    ...page('The confirmation page (already withdrawn: the same page, nothing new recorded)', FORM_ERRORS),
    requestBody: FORM_BODY('The page\'s form, or the RFC 8058 one-click body "List-Unsubscribe=One-Click"'),
  },
  'GET /preferences/{token}': page('The preference centre'),
  'POST /preferences/{token}': {
    ...page('The preference centre after the change', {
      ...FORM_ERRORS,
      400: {
        description: 'A forged or wrong-kind link, an invalid form or an unknown scope (HTML page)',
        content: html,
      },
    }),
    requestBody: FORM_BODY('action=withdraw|grant|confirm|erase with its fields'),
  },
  'GET /preferences/{token}/receipts/{eventId}': {
    responses: {
      200: {
        description: 'The receipt, as a file to check offline',
        content: json(ReceiptResponseSchema),
        headers: { 'Content-Disposition': { description: 'attachment; filename="receipt-….json"', required: true } },
      },
      400: { description: 'A forged, tampered or wrong-kind link', codes: ['invalid_link', 'wrong_link_kind'] },
      404: { description: "Not one of the link's subject's events", codes: ['event_not_found'] },
      409: NOT_SEALED,
      410: { description: 'The link expired', codes: ['link_expired'] },
    },
  },
  'POST /v1/subjects/access': {
    responses: {
      200: {
        description: 'The Art. 15 copy (recorded as access.provided); later pages carry only events',
        content: json(z.union([AccessResponseSchema, AccessContinuationSchema])),
        headers: { 'X-Next-Cursor': NEXT_CURSOR },
      },
      400: { description: 'Invalid request or cursor', codes: [...IDENTIFIER, 'invalid_cursor'] },
      404: { description: 'Nothing was ever recorded for this subject', codes: ['subject_not_found'] },
    },
  },
  'GET /v1/audit/events': {
    responses: {
      200: {
        description: 'One page of events in time order (CSV: header row on the first page only)',
        content: { 'application/x-ndjson': 'text', 'text/csv': 'text' },
        headers: {
          'X-Next-Cursor': { description: "The next page's cursor; absent on the last page" },
          'X-Event-Count': { description: 'Events in this page', required: true },
        },
      },
      400: { description: 'Invalid query or cursor', codes: ['invalid_cursor'] },
    },
  },
  'GET /v1/audit/verify': {
    responses: { 200: { description: 'The verification report', content: json(AuditVerifyResponseSchema) } },
  },
  'GET /v1/audit/summary': {
    responses: { 200: { description: 'Counts and block levels', content: json(AuditSummaryResponseSchema) } },
  },
  'GET /v1/audit/erasures': {
    responses: { 200: { description: 'Requests with deadlines', content: json(AuditErasuresResponseSchema) } },
  },
  'GET /v1/log/checkpoint': {
    parameters: [
      {
        name: 'Accept',
        in: 'header',
        description: 'application/json for the note and its fields; else the C2SP signed note as text',
        schema: { type: 'string' },
      },
    ],
    responses: {
      200: {
        description: 'The latest signed checkpoint',
        content: { 'text/plain': 'text', 'application/json': CheckpointViewSchema },
      },
      404: { description: 'Nothing sealed yet', codes: ['no_checkpoint'] },
    },
  },
  'GET /v1/log/public-key': {
    responses: {
      200: { description: 'The public key (every key with ?all=true)', content: json(PublicKeyResponseSchema) },
      400: { description: 'Invalid query', codes: ['validation_failed'] },
    },
  },
  'GET /v1/log/consistency': {
    responses: {
      200: { description: 'The consistency proof', content: json(ConsistencyResponseSchema) },
      500: { description: 'A node of the log is missing', codes: ['internal_error'] },
    },
  },
  'GET /v1/log/leaves': {
    responses: { 200: { description: 'The leaves (none past the tree)', content: json(LeavesResponseSchema) } },
  },
  'GET /v1/receipts/{eventId}': {
    responses: {
      200: { description: 'The receipt', content: json(ReceiptResponseSchema) },
      404: { description: 'No such event', codes: ['event_not_found'] },
      409: NOT_SEALED,
    },
  },
  'GET /dashboard': {
    parameters: [LANG],
    responses: { 200: { description: 'The DPO dashboard page', content: html } },
  },
  'GET /dashboard/assets/{file}': {
    responses: {
      200: {
        description: 'dashboard.js, chart.umd.min.js (JavaScript) or dashboard.css',
        content: { 'text/javascript': 'text', 'text/css': 'text' },
      },
      404: { description: 'No such asset', codes: ['not_found'] },
    },
  },
  'POST /v1/signals': {
    responses: {
      202: {
        description: "The signal is recorded; the channel's likelihood after it",
        content: json(SignalResponseSchema),
      },
      400: { description: 'Invalid request', codes: [...IDENTIFIER, 'time_in_future'] },
      409: { description: 'The subject was erased', codes: ['subject_erased'] },
    },
  },
  'GET /v1/webhooks/whatsapp': {
    parameters: [
      {
        name: 'hub.mode',
        in: 'query',
        required: true,
        description: 'Always "subscribe"',
        schema: { const: 'subscribe' },
      },
      {
        name: 'hub.verify_token',
        in: 'query',
        required: true,
        description: 'The verify token configured in the Meta app (WHATSAPP_VERIFY_TOKEN)',
        schema: { type: 'string' },
      },
      {
        name: 'hub.challenge',
        in: 'query',
        required: true,
        description: 'Echoed back as the body',
        schema: { type: 'string' },
      },
    ],
    responses: {
      200: { description: 'The challenge, echoed', content: { 'text/plain': 'text' } },
      403: { description: 'hub.mode or hub.verify_token does not match', codes: ['verification_failed'] },
    },
  },
  'POST /v1/webhooks/whatsapp': {
    parameters: [
      {
        name: 'X-Hub-Signature-256',
        in: 'header',
        required: true,
        description: '"sha256=" + hex HMAC-SHA-256 of the raw body with the app secret',
        schema: { type: 'string' },
      },
    ],
    requestBody: {
      required: true,
      description: 'A WhatsApp Cloud API notification, verified over its raw bytes',
      content: { 'application/json': { schema: { type: 'object' } } },
    },
    responses: {
      200: { description: 'Processed (unknown parts are skipped)', content: json(WebhookReportResponseSchema) },
      400: { description: 'The body is not JSON', codes: ['malformed_json'] },
      401: {
        description: 'The signature is missing or wrong',
        codes: ['unauthorized'],
        headers: { 'WWW-Authenticate': { description: 'Bearer', required: true } },
      },
      413: { description: 'The body is larger than 1 MiB', codes: ['payload_too_large'] },
      503: {
        description: 'The app secret is not configured, or the store is unavailable (Meta retries)',
        codes: ['webhook_not_configured', 'store_unavailable', 'write_contention'],
        headers: { 'Retry-After': RETRY_AFTER },
      },
    },
  },
  'GET /v1/policy': {
    responses: { 200: { description: 'The policy (defaults until one is set)', content: json(PolicyResponseSchema) } },
  },
  'PUT /v1/policy': {
    responses: {
      200: { description: 'The policy as stored', content: json(PolicyResponseSchema) },
      422: { description: "The policy's notice version is not registered", codes: ['unknown_notice'] },
    },
  },
  'POST /v1/notices': {
    responses: {
      200: { description: 'The same content again: the notice as first registered', content: json(NoticeSchema) },
      201: { description: 'Registered', content: json(NoticeSchema) },
      409: { description: 'This version is registered with other content', codes: ['notice_immutable'] },
    },
  },
  'GET /v1/notices': {
    responses: { 200: { description: 'Every notice without its texts', content: json(NoticeListResponseSchema) } },
  },
  'GET /v1/notices/{version}': {
    responses: {
      200: { description: 'The notice with its texts', content: json(NoticeSchema) },
      400: { description: 'Not a notice version', codes: ['validation_failed'] },
      404: { description: 'No such notice', codes: ['notice_not_found'] },
    },
  },
  'GET /openapi.json': {
    responses: { 200: { description: 'This document (OpenAPI 3.1)', content: json(OpenApiDocumentSchema) } },
  },
  'POST /v1/event-endpoints': {
    responses: {
      201: {
        description: 'Registered; the signing secret is shown this once',
        content: json(EventEndpointWithSecretSchema),
      },
      400: { description: 'Invalid body, or a URL that is not https to a public address', codes: ['unsafe_url'] },
    },
  },
  'GET /v1/event-endpoints': {
    responses: { 200: { description: 'The endpoints (no secrets)', content: json(EventEndpointListSchema) } },
  },
  'GET /v1/event-endpoints/{id}': {
    responses: {
      200: { description: 'The endpoint (no secret)', content: json(EventEndpointSchema) },
      400: { description: 'Not an endpoint id', codes: ['validation_failed'] },
      404: ENDPOINT_NOT_FOUND,
    },
  },
  'DELETE /v1/event-endpoints/{id}': {
    responses: {
      204: { description: 'Deleted: nothing more is sent to it' },
      400: { description: 'Not an endpoint id', codes: ['validation_failed'] },
      404: ENDPOINT_NOT_FOUND,
    },
  },
  'POST /v1/event-endpoints/{id}/rotate-secret': {
    responses: {
      200: {
        description: 'The new secret, shown once; the previous one signs too until previousSecretRetiresAt',
        content: json(EventEndpointWithSecretSchema),
      },
      400: { description: 'Not an endpoint id, or an overlap out of range', codes: ['validation_failed'] },
      404: ENDPOINT_NOT_FOUND,
    },
  },
  'GET /v1/event-endpoints/{id}/deliveries': {
    responses: {
      200: {
        description: 'The delivery log, newest first',
        content: json(DeliveriesResponseSchema),
        headers: { 'X-Next-Cursor': { description: "The next page's cursor; absent on the last page" } },
      },
      400: { description: 'Invalid query or cursor', codes: ['validation_failed', 'invalid_cursor'] },
      404: ENDPOINT_NOT_FOUND,
    },
  },
  'POST /v1/event-endpoints/{id}/replay': {
    responses: {
      202: { description: 'The changes since that time are queued again', content: json(ReplayResponseSchema) },
      400: { description: 'Invalid body, or since in the future', codes: ['time_in_future'] },
      404: ENDPOINT_NOT_FOUND,
    },
  },
  'POST /v1/event-endpoints/{id}/test': {
    responses: {
      200: {
        description: 'One signed endpoint.test sent now, and how it went',
        content: json(EndpointTestResponseSchema),
      },
      400: { description: 'Not an endpoint id', codes: ['validation_failed'] },
      404: ENDPOINT_NOT_FOUND,
    },
  },
  'GET /v1/changes': {
    responses: {
      200: { description: 'A page of changes in recording order', content: json(ChangesResponseSchema) },
      400: { description: 'Invalid query or cursor', codes: ['invalid_cursor'] },
    },
  },
  'POST /v1/connectors': {
    responses: {
      201: { description: 'Created: give the provider its webhookUrl', content: json(ConnectorSchema) },
    },
  },
  'GET /v1/connectors': {
    responses: { 200: { description: 'The connectors (no secrets)', content: json(ConnectorListSchema) } },
  },
  'GET /v1/connectors/{id}': {
    responses: {
      200: { description: 'The connector (no secrets)', content: json(ConnectorSchema) },
      400: { description: 'Not a connector id', codes: ['validation_failed'] },
      404: CONNECTOR_NOT_FOUND,
    },
  },
  'DELETE /v1/connectors/{id}': {
    responses: {
      204: { description: "Deleted: the provider's calls are refused from then on" },
      400: { description: 'Not a connector id', codes: ['validation_failed'] },
      404: CONNECTOR_NOT_FOUND,
    },
  },
  'POST /v1/connectors/{id}/events': {
    parameters: [
      {
        name: 'X-Twilio-Signature',
        in: 'header',
        description: 'Twilio: HMAC-SHA1 of the URL and form parameters',
        schema: { type: 'string' },
      },
      {
        name: 'X-Twilio-Email-Event-Webhook-Signature',
        in: 'header',
        description: 'SendGrid: ECDSA signature of the timestamp and raw body',
        schema: { type: 'string' },
      },
      {
        name: 'X-Twilio-Email-Event-Webhook-Timestamp',
        in: 'header',
        description: 'SendGrid: the signed timestamp (at most 5 minutes off)',
        schema: { type: 'string' },
      },
    ],
    requestBody: {
      required: true,
      description:
        "The provider's own call, verified with its library: Twilio's form, SendGrid's event array, an Amazon SNS message (SES notifications)",
      content: {
        'application/x-www-form-urlencoded': { schema: { type: 'object', additionalProperties: { type: 'string' } } },
        'application/json': { schema: {} },
        'text/plain': { schema: { type: 'string' } },
      },
    },
    responses: {
      200: {
        description:
          'Processed: Twilio gets empty TwiML; SendGrid and SES what was recorded; SNS handshakes whether confirmed',
        content: {
          'text/xml': 'text',
          'application/json': z.union([ConnectorReportSchema, SnsConfirmationResponseSchema]),
        },
      },
      400: {
        description: 'A verified call whose body is not what the provider sends (nothing recorded)',
        codes: ['malformed_json', 'malformed_payload'],
      },
      401: {
        description: 'Unknown connector, or a missing, wrong or stale signature (nothing recorded)',
        codes: ['invalid_signature'],
      },
      413: { description: 'The body is larger than the limit', codes: ['payload_too_large'] },
      502: { description: 'Amazon SNS refused the subscription confirmation', codes: ['subscription_not_confirmed'] },
      503: {
        description: 'Not configured (certificate host pattern), or the store is unavailable: the provider retries',
        codes: ['connector_not_configured', 'store_unavailable', 'write_contention'],
        headers: { 'Retry-After': RETRY_AFTER },
      },
    },
  },
} satisfies Record<RouteKey, RouteResponses>;

/** The responses of a route key (undefined for a key the table does not have). */
export const routeResponses = (key: string): RouteResponses | undefined =>
  (ROUTE_RESPONSES as Record<string, RouteResponses>)[key];
