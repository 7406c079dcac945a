import * as z from 'zod';
import { PurposeSchema } from '#domain/vocabulary.ts';
import { isP256PublicKey } from '#shared/connectors/sendgrid.ts';
import { TopicArnSchema } from '#shared/connectors/ses.ts';

/** At most this many entries in a connector's purpose map. */
export const PURPOSE_MAP_MAX = 100;

const purposeMap = (key: z.ZodString) =>
  z
    .record(key, PurposeSchema)
    .refine((m) => Object.keys(m).length <= PURPOSE_MAP_MAX, `at most ${PURPOSE_MAP_MAX} entries`)
    .default({});

/**
 * `POST /v1/connectors`: a provider, its secrets (checked here: a Twilio Auth Token, SendGrid's EC P-256
 * verification key as its console shows it, an SNS topic ARN) and the provider ids mapped to purposes
 * (SendGrid `asm_group_id`, Twilio messaging service SID; unmapped → the channel's marketing purposes).
 */
export const ConnectorCreateSchema = z.discriminatedUnion('provider', [
  z.strictObject({
    provider: z.literal('twilio'),
    secrets: z.strictObject({
      authToken: z.string().regex(/^[0-9a-fA-F]{32}$/, "must be the account's Auth Token (32 hexadecimal characters)"),
    }),
    purposeMap: purposeMap(z.string().regex(/^MG[0-9a-fA-F]{32}$/, 'must be a messaging service SID (MG…)')),
  }),
  z.strictObject({
    provider: z.literal('sendgrid'),
    secrets: z.strictObject({
      publicKey: z
        .string()
        .max(1024)
        .refine(isP256PublicKey, "must be SendGrid's verification key: an EC P-256 public key, base64 DER"),
    }),
    purposeMap: purposeMap(z.string().regex(/^[0-9]{1,12}$/, 'must be an unsubscribe group id (asm_group_id)')),
  }),
  z.strictObject({
    provider: z.literal('ses'),
    secrets: z.strictObject({ topicArn: TopicArnSchema }),
    purposeMap: z.strictObject({}, { error: 'SES notifications name no list or group: nothing to map' }).default({}),
  }),
]);
export type ConnectorCreate = z.infer<typeof ConnectorCreateSchema>;

/** A connector id: `con_` and 22 base64url characters (128 random bits). */
export const ConnectorIdSchema = z.string().regex(/^con_[A-Za-z0-9_-]{22}$/, 'not a connector id');
