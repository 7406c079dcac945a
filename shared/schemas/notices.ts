import canonicalize from 'canonicalize';
import * as z from 'zod';
import { LanguageSchema } from '#domain/policy.ts';
import { PurposeSchema } from '#domain/vocabulary.ts';
import { TimestampSchema } from './common.ts';

/** A notice version: also a path segment of `GET /v1/notices/{version}` and part of a key. */
export const NoticeVersionSchema = z
  .string()
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9._:+-]{0,127}$/,
    'must be 1-128 letters, digits, ".", "_", ":", "+" or "-", starting with a letter or digit',
  );

/** A notice's JSON, canonical, stays well under DynamoDB's 400 KB item size. */
const MAX_NOTICE_BYTES = 300_000;

/** `POST /v1/notices`: one immutable version of the privacy notice. */
export const NoticeRegisterSchema = z
  .strictObject({
    version: NoticeVersionSchema,
    texts: z
      .record(LanguageSchema, z.string().min(1).max(100_000))
      .refine((texts) => Object.keys(texts).length > 0, 'give the text in at least one language')
      .refine((texts) => Object.keys(texts).length <= 20, 'at most 20 languages'),
    url: z
      .url({ protocol: /^https?$/ })
      .max(2048)
      .optional(),
    purposes: z.array(PurposeSchema).min(1).max(100),
    effectiveAt: TimestampSchema,
    reconsentRequired: z.boolean().default(false),
  })
  .refine((notice) => Buffer.byteLength(canonicalize(notice) as string) <= MAX_NOTICE_BYTES, {
    path: ['texts'],
    message: `the notice may hold at most ${MAX_NOTICE_BYTES} bytes of text in all`,
  });
export type NoticeRegister = z.infer<typeof NoticeRegisterSchema>;
