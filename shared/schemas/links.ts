import * as z from 'zod';
import { SubjectSchema } from '#shared/identity/subject.ts';
import { EvidenceSchema } from './consents.ts';

/** How identifiers were found to be one person's. */
export const LINK_SOURCES = ['api', 'crm', 'whatsapp', 'self_service'] as const;

/** `POST /v1/subjects/link`: 2–10 identifiers of one person. */
export const LinkSchema = z.strictObject({
  subjects: z.array(SubjectSchema).min(2).max(10),
  source: z.enum(LINK_SOURCES).default('api'),
  evidence: EvidenceSchema.optional(),
  /** Subjects already linked to different persons: make those persons one. */
  merge: z.boolean().default(false),
});

/** `POST /v1/subjects/unlink`: identifiers to take out of their persons. */
export const UnlinkSchema = z.strictObject({
  subjects: z.array(SubjectSchema).min(1).max(10),
  reason: z.string().min(1).max(500).optional(),
});
