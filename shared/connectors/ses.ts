import https from 'node:https';
import MessageValidator from 'sns-validator';
import * as z from 'zod';
import { type ParsedDelivery, type ProviderEvent, skip } from './actions.ts';

/**
 * Amazon SES feedback through Amazon SNS (docs/connectors.md, "Amazon SES"): SNS posts a JSON envelope
 * (`SubscriptionConfirmation`, `Notification`, `UnsubscribeConfirmation`) signed with the topic's RSA key,
 * whose certificate is fetched from `SigningCertURL`; `sns-validator` checks it, with the certificate host
 * pinned by `SNS_CERT_HOST_PATTERN`. A notification's `Message` is the SES notification (`Bounce`,
 * `Complaint`, `Delivery`).
 */

/** The SES secrets a connector keeps: the SNS topic it listens to (not secret, but only this topic is heard). */
export interface SesSecrets {
  topicArn: string;
}

/** An SNS topic ARN, as the connector is created with. */
export const TopicArnSchema = z
  .string()
  .regex(/^arn:aws(-[a-z]+)*:sns:[a-z]{2}(-[a-z]+)+-\d:\d{12}:[A-Za-z0-9_-]{1,256}$/, 'must be an SNS topic ARN');

/** The default: SNS's own certificate hosts, one per region (`sns.eu-west-1.amazonaws.com`). */
export const DEFAULT_SNS_CERT_HOST_PATTERN = '^sns\\.[a-z0-9-]+\\.amazonaws\\.com$';

/** A `SNS_CERT_HOST_PATTERN` that is no regular expression: a configuration error, not the caller's. */
export class InvalidHostPatternError extends Error {}

const patterns = new Map<string, RegExp>();

/**
 * The pinned host pattern, read from `SNS_CERT_HOST_PATTERN` (tests point it at a local certificate host),
 * compiled once per value. Throws {@link InvalidHostPatternError} when it does not compile.
 */
export function snsHostPattern(env: NodeJS.ProcessEnv = process.env): RegExp {
  const source = env.SNS_CERT_HOST_PATTERN || DEFAULT_SNS_CERT_HOST_PATTERN;
  let pattern = patterns.get(source);
  if (!pattern) {
    try {
      pattern = new RegExp(source);
    } catch {
      throw new InvalidHostPatternError('SNS_CERT_HOST_PATTERN is not a regular expression');
    }
    patterns.set(source, pattern);
  }
  return pattern;
}

/** True when `url` is https on a host (with its port, if any) that the pattern allows. */
export function isPinnedUrl(url: string, pattern: RegExp): boolean {
  try {
    const u = new URL(url);
    return u.protocol === 'https:' && !u.username && !u.password && pattern.test(u.host);
  } catch {
    return false;
  }
}

/** The SNS envelope fields this connector reads (the signature check reads its own). */
export const SnsEnvelopeSchema = z.looseObject({
  Type: z.enum(['SubscriptionConfirmation', 'Notification', 'UnsubscribeConfirmation']),
  MessageId: z.string().min(1).max(200),
  TopicArn: z.string().min(1).max(512),
  Message: z.string(),
  Timestamp: z.string(),
  SignatureVersion: z.string(),
  Signature: z.string(),
  SigningCertURL: z.string(),
  SubscribeURL: z.string().optional(),
  Token: z.string().optional(),
});
export type SnsEnvelope = z.infer<typeof SnsEnvelopeSchema>;

/** Whether an envelope is signed by SNS with a certificate from a pinned host (sns-validator, which fetches it over https). */
export function verifySns(envelope: SnsEnvelope, pattern: RegExp): Promise<boolean> {
  return new Promise((resolve) => {
    try {
      new MessageValidator(pattern).validate({ ...envelope }, (error: Error | null) => resolve(!error));
    } catch {
      resolve(false);
    }
  });
}

const iso = z.string().refine((s) => !Number.isNaN(Date.parse(s)), 'not a time');
const recipients = (field: string) => z.array(z.looseObject({ [field]: z.string().min(3).max(254) })).catch([]);

const SesNotificationSchema = z.looseObject({
  notificationType: z.string().optional(),
  eventType: z.string().optional(),
  bounce: z
    .looseObject({
      bounceType: z.string(),
      bouncedRecipients: recipients('emailAddress'),
      timestamp: iso.optional(),
    })
    .optional(),
  complaint: z
    .looseObject({
      complainedRecipients: recipients('emailAddress'),
      timestamp: iso.optional(),
      complaintSubType: z.string().nullable().optional(),
    })
    .optional(),
});

/**
 * The events of one verified SNS notification: a complaint → objection to e-mail marketing, a permanent
 * bounce → `recipient_unreachable`, per recipient; undefined when `Message` is no SES notification. Pure.
 */
export function sesEvents(envelope: SnsEnvelope): ParsedDelivery | undefined {
  let message: unknown;
  try {
    message = JSON.parse(envelope.Message);
  } catch {
    return undefined;
  }
  const parsed = SesNotificationSchema.safeParse(message);
  if (!parsed.success) return undefined;
  const n = parsed.data;
  const type = n.notificationType ?? n.eventType;
  if (!type) return undefined;
  const events: ProviderEvent[] = [];
  const skipped: Record<string, number> = {};
  const add = (email: string, observedAt: string | undefined, action: ProviderEvent['action'], what: string) =>
    events.push({
      subject: { email },
      observedAt: observedAt ?? envelope.Timestamp,
      action,
      // One SNS message may name several recipients: the replay id is per recipient.
      replayId: ['ses', envelope.MessageId, email.trim().toLowerCase()].join('\n'),
      name: `ses.${what}`,
      data: { provider: 'ses', notificationType: type },
    });
  if (type === 'Complaint' && n.complaint) {
    // A complaint SES made up itself (the address is on the account's suppression list) is not the person's act.
    if (n.complaint.complaintSubType === 'OnAccountSuppressionList') skip(skipped, 'suppression_list');
    else {
      for (const r of n.complaint.complainedRecipients) {
        add(
          r.emailAddress as string,
          n.complaint.timestamp,
          { kind: 'withdraw', channel: 'email', source: 'spam_complaint' },
          'complaint',
        );
      }
    }
  } else if (type === 'Bounce' && n.bounce) {
    if (n.bounce.bounceType !== 'Permanent') skip(skipped, 'transient_bounce');
    else {
      for (const r of n.bounce.bouncedRecipients) {
        add(
          r.emailAddress as string,
          n.bounce.timestamp,
          { kind: 'signal', channel: 'email', type: 'recipient_unreachable' },
          'bounce',
        );
      }
    }
  } else skip(skipped, 'ignored_type');
  return { events, skipped };
}

/** How long the confirmation GET may take (SNS waits for our answer meanwhile). */
const CONFIRM_TIMEOUT_MS = 5000;

/**
 * Confirms an SNS subscription: one GET of its `SubscribeURL` (already checked against the pinned hosts),
 * no redirect followed, the answer read only for its status. True on a 2xx.
 */
export function confirmSubscription(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    const request = https.get(url, { timeout: CONFIRM_TIMEOUT_MS }, (res) => {
      res.resume();
      resolve((res.statusCode ?? 0) >= 200 && (res.statusCode ?? 0) < 300);
    });
    request.on('timeout', () => request.destroy(new Error('timeout')));
    request.on('error', () => resolve(false));
  });
}
