import { publicRoute } from '#http/api.ts';
import { dispatch } from '#http/dispatch.ts';
import { ProblemError, ServiceUnavailableError, UnauthorizedError, ValidationError } from '#http/errors.ts';
import { rawBody } from '#http/middlewares.ts';
import { jsonResponse } from '#http/problem.ts';
import { withWellFormedStrings } from '#http/validation.ts';
import { processWebhook } from '#shared/services/whatsapp-webhook.ts';
import { whatsappConfig } from '#shared/whatsapp/config.ts';
import { verifySignature } from '#shared/whatsapp/signature.ts';
import { getDb } from '#store/db.ts';

/** GET /v1/webhooks/whatsapp — Meta's verification handshake: echo the challenge when the token matches. */
export const verify = publicRoute('GET /v1/webhooks/whatsapp', async (event) => {
  const q = event.queryStringParameters ?? {};
  const { verifyToken } = await whatsappConfig();
  if (!verifyToken || q['hub.mode'] !== 'subscribe' || q['hub.verify_token'] !== verifyToken) {
    throw new ProblemError(403, 'verification_failed', 'Forbidden', 'hub.mode or hub.verify_token does not match');
  }
  return {
    statusCode: 200,
    headers: { 'content-type': 'text/plain; charset=utf-8' },
    body: q['hub.challenge'] ?? '',
  };
});

/**
 * POST /v1/webhooks/whatsapp — signed notifications: 401 unless X-Hub-Signature-256 is the HMAC of the
 * raw body; then 200 whatever parts are unknown (Meta retries anything else).
 */
export const receive = publicRoute('POST /v1/webhooks/whatsapp', async (event) => {
  const { appSecret, tenantFor } = await whatsappConfig();
  if (!appSecret) {
    throw new ServiceUnavailableError('WHATSAPP_APP_SECRET is not configured', 'webhook_not_configured');
  }
  const body = rawBody(event);
  const signature = event.headers?.['x-hub-signature-256'] ?? event.headers?.['X-Hub-Signature-256'];
  if (!verifySignature(body, signature, appSecret)) {
    throw new UnauthorizedError('X-Hub-Signature-256 is missing or is not the HMAC-SHA-256 of the body');
  }
  let payload: unknown;
  try {
    // A lone surrogate (`"\\ud800"`) in a profile name or text cannot be hashed nor stored: replaced, not refused.
    payload = withWellFormedStrings(JSON.parse(body.toString('utf8')));
  } catch {
    throw new ValidationError('the body is not valid JSON', undefined, 'malformed_json');
  }
  return jsonResponse(200, await processWebhook(getDb(), payload, tenantFor));
});

export const handler = dispatch('webhooks', [verify, receive]);
