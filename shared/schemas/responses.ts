import * as z from 'zod';
import { CHANGE_TYPES, TEST_TYPE } from '#domain/changes.ts';
import type { ReasonCode, WarningCode } from '#domain/gate-rule.ts';
import { PolicySchema } from '#domain/policy.ts';
import { CHANNELS } from '#domain/vocabulary.ts';
import { ERASURE_STATUSES } from './erasure.ts';

// The shapes of the JSON bodies the API answers. They document responses (OpenAPI, the e2e validator):
// handlers build these objects from domain views, these schemas say what comes out. Open objects
// (`looseObject`) where a body carries a free-form part (an event's `data`, a policy's nested texts).

/** Every reason the gate gives for a block or a deferral. */
export const REASON_CODES = [
  'no_consent',
  'consent_withdrawn',
  'consent_expired',
  'consent_outdated',
  'subject_erased',
  'erasure_pending',
  'likely_blocked',
  'cross_channel_cooldown',
  'frequency_cap',
  'quiet_hours',
] as const satisfies readonly ReasonCode[];
/** Every warning the gate may add to a decision. */
export const WARNING_CODES = ['block_suspected', 'recipient_unreachable'] as const satisfies readonly WarningCode[];
// Compile-time check: a reason added to the domain and not listed here fails the typecheck.
type Missing<T, L extends readonly unknown[]> = Exclude<T, L[number]>;
const _allReasons: [Missing<ReasonCode, typeof REASON_CODES>] extends [never] ? true : never = true;
const _allWarnings: [Missing<WarningCode, typeof WARNING_CODES>] extends [never] ? true : never = true;
void _allReasons;
void _allWarnings;

const Time = z.iso.datetime({ offset: true }).describe('ISO 8601 time');
const Channel = z.enum(CHANNELS);
const SubjectKey = z.string().describe('Pseudonymous subject key (keyed hash of the normalised identifier)');
const Level = z.enum(['none', 'suspected', 'likely']);

export const LinksResponseSchema = z.object({
  personKey: z.string().nullable().describe('The person the identifiers belong to (null: linked to nobody)'),
  subjectKeys: z.array(SubjectKey).describe("The person's identifiers, as subject keys"),
});
export const UnlinkResponseSchema = z.object({
  results: z.array(LinksResponseSchema).describe('Each unlinked subject alone, and what is left of its person'),
});

export const HealthResponseSchema = z.object({ status: z.literal('ok') });

export const ConsentGrantedResponseSchema = z.object({
  eventId: z.string(),
  subjectKey: SubjectKey,
  channel: Channel,
  purpose: z.string(),
  status: z.literal('granted'),
  grantedAt: Time,
  expiresAt: Time.nullable(),
  hash: z.string().describe('Hash of the ledger event (chain head)'),
});

export const ConsentWithdrawnResponseSchema = z.object({
  eventId: z.string(),
  subjectKey: SubjectKey,
  withdrawn: z
    .array(z.object({ channel: z.string(), purpose: z.string() }))
    .describe('Scopes closed (`*` = every channel or purpose: an objection)'),
  withdrawnAt: Time,
});

const ContributionSchema = z.object({
  type: z.string(),
  observedAt: Time,
  weight: z.number(),
  likelihoodRatio: z.number().describe("The clue's likelihood ratio now: P(clue | blocked) / P(clue | not blocked)"),
  contribution: z.number().describe('The log-ratio it adds (0 when a stronger clue of its group counts instead)'),
  inferred: z.boolean().optional(),
});

export const ReasonSchema = z.looseObject({ code: z.enum(REASON_CODES), message: z.string() });
export const WarningSchema = z.looseObject({ code: z.enum(WARNING_CODES), message: z.string() });

const decisionFields = {
  decision: z.enum(['allow', 'block', 'defer']),
  reasons: z.array(ReasonSchema).describe('Why the send is blocked or deferred (empty when allowed)'),
  warnings: z.array(WarningSchema),
  consent: z.object({ eventId: z.string(), grantedAt: Time, noticeVersion: z.string() }).nullable(),
  blockLikelihood: z.number().min(0).max(1),
  retryAfter: Time.nullable().describe('When a deferred send may be tried again'),
  subjectKey: SubjectKey,
};

export const GateDecisionResponseSchema = z.object({
  ...decisionFields,
  decisionId: z.string(),
  recorded: z.boolean().optional().describe('With `record: true`: whether the send was counted'),
});

const FieldErrorSchema = z.object({ path: z.string(), message: z.string() });

export const GateBatchResponseSchema = z.object({
  results: z.array(
    z.union([
      z.object({ index: z.number().int(), ...decisionFields }),
      z.object({
        index: z.number().int(),
        error: z.object({ code: z.string(), detail: z.string(), errors: z.array(FieldErrorSchema).optional() }),
      }),
    ]),
  ),
  summary: z.object({ allow: z.number(), block: z.number(), defer: z.number(), error: z.number() }),
});

export const SignalResponseSchema = z.object({
  subjectKey: SubjectKey,
  channel: Channel,
  blockLikelihood: z.number().min(0).max(1),
  level: Level,
  signals: z.array(ContributionSchema),
});

export const ConsentViewSchema = z.object({
  channel: z.string(),
  purpose: z.string(),
  status: z.enum(['granted', 'withdrawn', 'expired']),
  source: z.string(),
  noticeVersion: z.string().nullable(),
  noticeHash: z.string().nullable(),
  grantedAt: Time.nullable(),
  withdrawnAt: Time.nullable(),
  expiresAt: Time.nullable(),
  eventId: z.string(),
  objection: z.boolean().optional(),
});

const ChannelSignalsSchema = z.object({
  blockLikelihood: z.number(),
  level: Level,
  signals: z.array(ContributionSchema),
  lastEvidenceAgainstBlockAt: Time.nullable(),
  unreachableSince: Time.nullable().describe(
    'Set while the latest word on reach is that the contact could not be reached (Meta 131026, a hard bounce): the gate then warns recipient_unreachable',
  ),
});

export const LookupResponseSchema = z.object({
  subjectKey: SubjectKey,
  consents: z.array(ConsentViewSchema),
  signals: z.record(z.string(), ChannelSignalsSchema),
  erasure: z
    .object({ requestId: z.string(), status: z.enum(['received', 'completed']), erasedAt: Time.nullable() })
    .nullable(),
});

export const LedgerEventSchema = z.looseObject({
  v: z.literal(2).optional(),
  eventId: z.string(),
  seq: z.number().int(),
  type: z.string(),
  at: Time,
  recordedAt: Time.optional(),
  actor: z.looseObject({ type: z.string() }).optional(),
  channel: z.string().nullable(),
  purpose: z.string().nullable(),
  source: z.string().nullable(),
  data: z.record(z.string(), z.unknown()),
  detailsDigest: z.string().nullable().optional(),
  details: z.record(z.string(), z.unknown()).optional(),
  detailsSalt: z.string().optional(),
  prevHash: z.string(),
  hash: z.string(),
});

const ChainBreakSchema = z.looseObject({ seq: z.number().int(), reason: z.string() });

export const SubjectEventsResponseSchema = z.object({
  subjectKey: SubjectKey,
  events: z.array(LedgerEventSchema),
  chain: z.object({
    valid: z.boolean(),
    length: z.number().int(),
    head: z.string().nullable(),
    broken: z.array(ChainBreakSchema).optional(),
  }),
});

const KeptSchema = z.looseObject({
  proof: z.string(),
  proofUntil: Time,
  tombstone: z.string(),
  why: z.array(z.unknown()),
});

export const ErasureRequestViewSchema = z.object({
  requestId: z.string(),
  status: z.enum(ERASURE_STATUSES),
  receivedAt: Time,
  dueBy: Time,
  completedAt: Time.nullable(),
  cancelledAt: Time.optional(),
  extendedAt: Time.optional(),
  extensionMonths: z.union([z.literal(1), z.literal(2)]).optional(),
  extensionReason: z.string().optional(),
  requestedVia: z.string(),
  reference: z.string().optional(),
  subjectKeys: z.array(SubjectKey),
  kept: KeptSchema.nullable().describe('Once completed: what is kept, why and until when'),
});

export const ErasureListResponseSchema = z.object({ requests: z.array(ErasureRequestViewSchema) });

export const AuditErasuresResponseSchema = z.object({
  now: Time,
  requests: z.array(
    z.object({
      ...ErasureRequestViewSchema.shape,
      completedAt: Time.optional(),
      daysLeft: z
        .number()
        .int()
        .nullable()
        .describe('Whole days to the deadline (negative: late); null unless received'),
    }),
  ),
});

export const OptoutLinksResponseSchema = z.object({
  subjectKey: SubjectKey,
  url: z.url().describe('The one-scope opt-out page'),
  preferencesUrl: z.url(),
  token: z.string(),
  preferencesToken: z.string(),
  expiresAt: Time,
  listUnsubscribe: z.string().describe('Value of the e-mail `List-Unsubscribe` header (RFC 2369)'),
  listUnsubscribePost: z.literal('List-Unsubscribe=One-Click').describe('Value of `List-Unsubscribe-Post` (RFC 8058)'),
});

export const CheckpointViewSchema = z.object({
  origin: z.string(),
  treeSize: z.number().int(),
  rootHash: z.string(),
  timestamp: z.string(),
  keyId: z.string(),
  note: z.string().describe('The C2SP signed note'),
});

export const ReceiptResponseSchema = z.object({
  event: LedgerEventSchema.extend({ subjectKey: SubjectKey }),
  leafIndex: z.number().int(),
  inclusionProof: z.array(z.string()),
  checkpoint: CheckpointViewSchema,
});

const PublicKeyViewSchema = z.object({
  keyId: z.string(),
  algorithm: z.literal('Ed25519'),
  publicKeyPem: z.string(),
  vkey: z.string().describe('C2SP verifier key'),
});

export const PublicKeyResponseSchema = z.union([
  PublicKeyViewSchema.describe('The current key'),
  z.object({ keys: z.array(PublicKeyViewSchema) }).describe('With ?all=true: every key, newest first'),
]);

export const ConsistencyResponseSchema = z.object({
  from: z.number().int(),
  to: z.number().int(),
  proof: z.array(z.string()).describe('base64 hashes (RFC 9162)'),
});

export const LeavesResponseSchema = z.object({
  treeSize: z.number().int(),
  leaves: z.array(
    z.object({ index: z.number().int(), eventId: z.string(), subjectKey: SubjectKey, eventHash: z.string() }),
  ),
});

export const AuditVerifyResponseSchema = z.object({
  from: Time,
  to: Time,
  subjects: z.number().int(),
  events: z.number().int(),
  valid: z.boolean(),
  broken: z.array(z.looseObject({ subjectKey: z.string().nullable(), reason: z.string() })),
  log: z
    .object({
      treeSize: z.number().int(),
      checkpoint: z
        .object({
          treeSize: z.number().int(),
          rootHash: z.string(),
          timestamp: z.string().nullable(),
          anchored: z.boolean(),
        })
        .nullable(),
      checkpoints: z.number().int(),
      anchored: z.number().int(),
      leaves: z.number().int(),
    })
    .optional(),
});

const Counts = z.record(z.string(), z.number());

export const AuditSummaryResponseSchema = z.object({
  from: Time,
  to: Time,
  total: z.number().int(),
  days: z.array(z.object({ day: z.string(), total: z.number().int(), types: Counts, channels: Counts })),
  counts: z.array(z.object({ day: z.string(), type: z.string(), channel: z.string(), count: z.number().int() })),
  types: Counts,
  channels: Counts,
  contacts: z.object({
    total: z.number().int(),
    blockLevels: z.looseObject({ total: z.number().int(), counts: Counts, share: Counts }).optional(),
  }),
});

export const NoticeSchema = z.object({
  version: z.string(),
  texts: z.record(z.string(), z.string()),
  url: z.string().nullable(),
  purposes: z.array(z.string()),
  effectiveAt: Time,
  reconsentRequired: z.boolean(),
  hash: z.string().describe('SHA-256 of the RFC 8785 canonical JSON of the content'),
  registeredAt: Time,
});

export const NoticeListResponseSchema = z.object({ notices: z.array(NoticeSchema.omit({ texts: true })) });

export const AccessResponseSchema = z.object({
  generatedAt: Time,
  legalBasis: z.string(),
  controller: z.looseObject({ name: z.string() }),
  subject: z.object({
    subjectKey: SubjectKey,
    identifierKind: z.enum(['phone', 'email', 'externalId', 'waUserId']),
    identifier: z.string().describe('The normalised identifier the caller sent (echoed, never stored)'),
  }),
  links: z
    .object({ personKey: z.string().nullable(), subjectKeys: z.array(SubjectKey) })
    .describe("The identifiers linked to this one as the same person's (POST /v1/subjects/link)"),
  dataHeld: z.object({ stored: z.string(), notStored: z.string(), retention: z.string(), recipients: z.string() }),
  purposes: z.array(
    z.object({ slug: z.string(), kind: z.string(), labels: z.record(z.string(), z.string()), label: z.string() }),
  ),
  retention: z.looseObject({
    inactiveSubjectDays: z.number().int(),
    signalDays: z.number().int(),
    proofDays: z.number().int(),
  }),
  sources: z.object({
    consents: z.array(z.string()),
    withdrawals: z.array(z.string()),
    providers: z.array(z.string()),
  }),
  rights: z.looseObject({
    lang: z.string(),
    rights: z.array(z.object({ right: z.string(), article: z.string(), text: z.string() })),
  }),
  automatedInference: z.looseObject({ lang: z.string(), what: z.string(), clues: z.array(z.looseObject({})) }),
  consents: z.array(ConsentViewSchema),
  signals: z.record(z.string(), ChannelSignalsSchema),
  receipts: z.array(z.looseObject({ consentReceiptID: z.string(), receiptUrl: z.string().nullable() })),
  logReceipts: z.array(z.object({ eventId: z.string(), type: z.string(), at: Time, receiptUrl: z.string() })),
  notices: z.array(NoticeSchema),
  erasure: z
    .object({
      requestId: z.string(),
      status: z.enum(['received', 'completed']),
      receivedAt: Time,
      erasedAt: Time.nullable(),
    })
    .nullable(),
  kept: KeptSchema.nullable(),
  events: z.array(LedgerEventSchema),
  chain: z.object({ valid: z.boolean(), length: z.number().int(), head: z.string().nullable() }),
});

/** A later page of the access copy (`?cursor=`): the next events only, verified from the page before. */
export const AccessContinuationSchema = AccessResponseSchema.pick({ events: true, logReceipts: true, chain: true })
  .extend({ subject: z.object({ subjectKey: SubjectKey }) })
  .strict();

export const WebhookReportResponseSchema = z.object({
  received: z.number().int(),
  recorded: z.number().int(),
  replayed: z.number().int(),
  unchanged: z.number().int(),
  invalid: z.number().int(),
  skipped: z.number().int().describe('Items not applied (the sum of skippedByKind)'),
  skippedByKind: z
    .record(z.string(), z.number().int())
    .describe('Items not applied, by why (e.g. unknown_field, group_status, unrouted_phone_number)'),
});

/** The policy as answered (every field, defaults filled in). */
export const PolicyResponseSchema = PolicySchema;

// --- Change events out (docs/events.md) ---

const ChangeTypeSchema = z.enum([...CHANGE_TYPES, TEST_TYPE]);

/** A change as sent to endpoints and listed by `GET /v1/changes` (Standard Webhooks body). */
export const ChangeBodySchema = z.object({
  type: ChangeTypeSchema,
  timestamp: Time,
  data: z.looseObject({
    eventId: z.string(),
    subjectKey: SubjectKey,
    channel: z.string().nullable(),
    purpose: z.string().nullable(),
    source: z.string().nullable(),
    at: Time,
    recordedAt: Time,
    actor: z.looseObject({ type: z.string() }).nullable(),
    scopes: z.array(z.object({ channel: z.string(), purpose: z.string() })),
  }),
});

export const ChangesResponseSchema = z.object({
  changes: z.array(ChangeBodySchema),
  next: z.string().describe('Poll again with ?after=<next>; always present'),
});

export const EventEndpointSchema = z.object({
  id: z.string(),
  url: z.url(),
  types: z.array(z.enum(CHANGE_TYPES)),
  description: z.string().optional(),
  createdAt: Time,
  secretCreatedAt: Time.optional(),
  previousSecretRetiresAt: Time.optional().describe('Until then the previous secret signs too (rotation overlap)'),
});

export const EventEndpointWithSecretSchema = EventEndpointSchema.extend({
  secret: z.string().startsWith('whsec_').describe('The signing secret: shown this once'),
});

export const EventEndpointListSchema = z.object({ endpoints: z.array(EventEndpointSchema) });

const DeliveryAttemptSchema = z.object({
  at: Time,
  httpStatus: z.number().int().nullable(),
  error: z.string().nullable(),
});

export const DeliveriesResponseSchema = z.object({
  deliveries: z.array(
    z.object({
      webhookId: z.string(),
      type: ChangeTypeSchema,
      eventId: z.string(),
      status: z.enum(['pending', 'delivered', 'failed']),
      attempts: z.array(DeliveryAttemptSchema),
    }),
  ),
});

export const ReplayResponseSchema = z.object({
  replayed: z.number().int(),
  continueSince: Time.optional().describe('Present when the replay stopped at its limit: replay again from here'),
});

export const EndpointTestResponseSchema = z.object({
  webhookId: z.string(),
  status: z.enum(['delivered', 'failed']),
  attempt: DeliveryAttemptSchema,
});

// --- Provider connectors (docs/connectors.md) ---

export const ConnectorSchema = z.object({
  id: z.string(),
  provider: z.enum(['twilio', 'sendgrid', 'ses']),
  webhookUrl: z.url().describe("The URL to give the provider (no API key: the provider's signature decides)"),
  purposeMap: z.record(z.string(), z.string()),
  createdAt: Time,
});

export const ConnectorListSchema = z.object({ connectors: z.array(ConnectorSchema) });

export const ConnectorReportSchema = WebhookReportResponseSchema;

export const SnsConfirmationResponseSchema = z.object({
  confirmed: z.boolean().describe('true: the SNS subscription was confirmed; false: an unsubscribe confirmation'),
});
