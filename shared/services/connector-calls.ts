// Provider connectors, inbound: one provider call checked with the provider's own library, read, answered.
import { MalformedJsonError, ProblemError, ServiceUnavailableError, ValidationError } from '#http/errors.ts';
import { type HttpResult, jsonResponse } from '#http/problem.ts';
import type { ParsedDelivery } from '#shared/connectors/actions.ts';
import { type SendGridSecrets, sendGridEvents, verifySendGrid } from '#shared/connectors/sendgrid.ts';
import {
  confirmSubscription,
  InvalidHostPatternError,
  isPinnedUrl,
  type SesSecrets,
  SnsEnvelopeSchema,
  sesEvents,
  snsHostPattern,
  verifySns,
} from '#shared/connectors/ses.ts';
import {
  MalformedTwilioCall,
  parseForm,
  type TwilioSecrets,
  twilioEvents,
  verifyTwilio,
} from '#shared/connectors/twilio.ts';
import { logger } from '#shared/log.ts';
import type { ConnectorRecord } from '#store/connectors.ts';
import type { Db } from '#store/db.ts';
import { ingestDelivery } from './connector-events.ts';

/** 401 for an unknown connector and for a call its provider did not sign alike: the answer tells them apart for no one. */
export class InvalidSignatureError extends ProblemError {
  constructor() {
    super(
      401,
      'invalid_signature',
      'Unauthorized',
      "no connector with this id, or the request is not signed by the connector's provider",
    );
  }
}

/** One provider call as the connector route hands it over. */
export interface ProviderCall {
  body: Buffer;
  headers: Record<string, string | undefined>;
  /** The public URL the provider called, with its query string (what Twilio signs). */
  url: string;
}

const header = (headers: ProviderCall['headers'], name: string) => {
  const lower = name.toLowerCase();
  const key = Object.keys(headers).find((k) => k.toLowerCase() === lower);
  return key ? headers[key] : undefined;
};

/** Twilio answers: an empty TwiML document (no reply is sent to the person; Twilio's own STOP reply stands). */
const EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>';

function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    // Not the parser's message: it quotes the body, which can hold an e-mail address.
    throw new MalformedJsonError('the body is not valid JSON');
  }
}

async function twilioCall(db: Db, c: ConnectorRecord, secrets: TwilioSecrets, call: ProviderCall) {
  const params = parseForm(call.body.toString('utf8'));
  if (!verifyTwilio(secrets, header(call.headers, 'x-twilio-signature'), call.url, params)) {
    throw new InvalidSignatureError();
  }
  let delivery: ParsedDelivery;
  try {
    delivery = twilioEvents(params, c.purposeMap);
  } catch (error) {
    if (error instanceof MalformedTwilioCall) throw new ValidationError(error.message, undefined, 'malformed_payload');
    throw error;
  }
  await ingestDelivery(db, c.tenant, 'twilio', delivery);
  return { statusCode: 200, headers: { 'content-type': 'text/xml; charset=utf-8' }, body: EMPTY_TWIML };
}

async function sendGridCall(db: Db, c: ConnectorRecord, secrets: SendGridSecrets, call: ProviderCall) {
  const signature = header(call.headers, 'x-twilio-email-event-webhook-signature');
  const timestamp = header(call.headers, 'x-twilio-email-event-webhook-timestamp');
  if (!verifySendGrid(secrets, call.body, signature, timestamp, Math.floor(Date.now() / 1000))) {
    throw new InvalidSignatureError();
  }
  const delivery = sendGridEvents(parseJson(call.body), c.purposeMap);
  if (!delivery) throw new ValidationError('the body is not a JSON array of events', undefined, 'malformed_payload');
  return jsonResponse(200, await ingestDelivery(db, c.tenant, 'sendgrid', delivery));
}

async function sesCall(db: Db, c: ConnectorRecord, secrets: SesSecrets, call: ProviderCall) {
  const parsed = SnsEnvelopeSchema.safeParse(parseJson(call.body));
  if (!parsed.success) {
    throw new ValidationError('the body is not an Amazon SNS message', undefined, 'malformed_payload');
  }
  const envelope = parsed.data;
  // Anyone can subscribe this URL to a topic of theirs, and SNS signs that too: only the connector's topic counts.
  // Checked before any certificate is fetched.
  if (envelope.TopicArn !== secrets.topicArn) throw new InvalidSignatureError();
  let pattern: RegExp;
  try {
    pattern = snsHostPattern();
  } catch (error) {
    if (!(error instanceof InvalidHostPatternError)) throw error;
    throw new ServiceUnavailableError(error.message, 'connector_not_configured');
  }
  if (!(await verifySns(envelope, pattern))) throw new InvalidSignatureError();
  if (envelope.Type === 'SubscriptionConfirmation') {
    const url = envelope.SubscribeURL ?? '';
    if (!isPinnedUrl(url, pattern)) {
      throw new ValidationError('SubscribeURL is not an https URL on an SNS host', undefined, 'malformed_payload');
    }
    if (!(await confirmSubscription(url))) {
      throw new ProblemError(
        502,
        'subscription_not_confirmed',
        'Bad gateway',
        'Amazon SNS did not accept the subscription confirmation; SNS sends the confirmation again, or confirm it in the console',
      );
    }
    logger.info('sns subscription confirmed', { connectorId: c.id });
    return jsonResponse(200, { confirmed: true });
  }
  if (envelope.Type === 'UnsubscribeConfirmation') return jsonResponse(200, { confirmed: false });
  const delivery = sesEvents(envelope);
  if (!delivery) {
    throw new ValidationError(
      "the notification's Message is not an Amazon SES notification",
      undefined,
      'malformed_payload',
    );
  }
  return jsonResponse(200, await ingestDelivery(db, c.tenant, 'ses', delivery));
}

/**
 * A provider's call to its connector: 401 unless the provider's own library verifies it (nothing is read or
 * recorded before that, but for SNS, whose signature is inside the JSON body: a body that is not JSON is 400);
 * 400 for a verified call that is malformed (nothing recorded); otherwise the events are applied and the
 * provider gets the answer it expects (Twilio: empty TwiML; SendGrid, SNS: 200 with the counts).
 */
export async function receiveProviderCall(
  db: Db,
  connector: ConnectorRecord,
  secrets: unknown,
  call: ProviderCall,
): Promise<HttpResult> {
  switch (connector.provider) {
    case 'twilio':
      return twilioCall(db, connector, secrets as TwilioSecrets, call);
    case 'sendgrid':
      return sendGridCall(db, connector, secrets as SendGridSecrets, call);
    case 'ses':
      return sesCall(db, connector, secrets as SesSecrets, call);
  }
}
