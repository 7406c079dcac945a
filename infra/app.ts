import { App, Aspects, Duration } from 'aws-cdk-lib';
import * as z from 'zod';
import { parseCorsOrigins } from '#http/cors.ts';
import { nagPacks } from './nag.ts';
import { ConsentGateStack } from './stack.ts';

/** Deployment settings, from `cdk.json` or `-c name=value`. */
const ContextSchema = z
  .object({
    stage: z
      .string()
      .regex(/^[a-z][a-z0-9-]{0,19}$/, 'stage: lowercase letters, digits and "-"')
      .default('dev'),
    domainName: z.string().min(3).optional(),
    certificateArn: z.string().startsWith('arn:aws:acm:').optional(),
    alarmEmail: z.email().optional(),
    gateLatencyP99Ms: z.coerce.number().int().positive().optional(),
    throttleRate: z.coerce.number().int().positive().optional(),
    throttleBurst: z.coerce.number().int().positive().optional(),
    whatsappPhoneNumberTenants: z.string().optional(),
    /** Browser origins allowed by CORS, comma-separated (the local server's `CORS_ORIGINS`). */
    corsOrigins: z.string().optional(),
    /** Days proof outlives an erasure: the checkpoint lock and the table backups' retention. */
    proofRetentionDays: z.coerce.number().int().min(1).max(36_500).optional(),
  })
  .refine((c) => Boolean(c.domainName) === Boolean(c.certificateArn), {
    message: 'domainName and certificateArn go together',
  });

const app = new App();
const read = (name: string) => app.node.tryGetContext(name) || undefined;
const context = ContextSchema.parse(
  Object.fromEntries(Object.keys(ContextSchema.shape).map((name) => [name, read(name)])),
);
// One setting for both runtimes: `-c corsOrigins=…`, else `CORS_ORIGINS` as for `npm start`.
const corsOrigins = parseCorsOrigins(context.corsOrigins ?? process.env.CORS_ORIGINS);

new ConsentGateStack(app, `consent-gate-${context.stage}`, {
  // Environment-agnostic unless the CLI knows the account: `cdk synth` works offline, without credentials.
  env:
    process.env.CDK_DEFAULT_ACCOUNT && process.env.CDK_DEFAULT_REGION
      ? { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION }
      : undefined,
  stage: context.stage,
  domainName: context.domainName,
  certificateArn: context.certificateArn,
  alarmEmail: context.alarmEmail,
  gateLatencyP99: context.gateLatencyP99Ms ? Duration.millis(context.gateLatencyP99Ms) : undefined,
  throttle:
    context.throttleRate && context.throttleBurst
      ? { rateLimit: context.throttleRate, burstLimit: context.throttleBurst }
      : undefined,
  whatsappPhoneNumberTenants: context.whatsappPhoneNumberTenants,
  corsOrigins,
  proofRetentionDays: context.proofRetentionDays,
  description: `consent-gate (${context.stage}): GDPR consent ledger and pre-send gate`,
});

// The cdk-nag packs (AwsSolutions, HIPAA Security, NIST 800-53 rev. 5) run on every synth, not only in the
// tests: an unsuppressed finding fails `cdk synth`.
for (const pack of nagPacks()) Aspects.of(app).add(pack);
