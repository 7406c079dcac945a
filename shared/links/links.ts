import * as z from 'zod';
import { type Channel, ChannelSchema, PurposeSchema } from '#domain/vocabulary.ts';
import { SubjectSchema } from '#shared/identity/subject.ts';
import { expiryAfterDays, type LinkKey, signLink } from './token.ts';

/** Body of `POST /v1/optout-links`. */
export const OptoutLinkRequestSchema = z.strictObject({
  subject: SubjectSchema,
  channel: ChannelSchema,
  purpose: PurposeSchema.default('marketing'),
  expiresInDays: z.number().int().min(1).max(3650).default(365),
});

/** The answer of `POST /v1/optout-links`: both links, and the e-mail headers ready to paste (RFC 2369, RFC 8058). */
export interface OptoutLinks {
  subjectKey: string;
  url: string;
  preferencesUrl: string;
  token: string;
  preferencesToken: string;
  expiresAt: string;
  listUnsubscribe: string;
  listUnsubscribePost: string;
}

/**
 * Mints the opt-out link of one scope and the preference-centre link of the whole subject, with the same
 * expiry, signed with the newest link key.
 */
export function mintLinks(input: {
  tenant: string;
  subjectKey: string;
  channel: Channel;
  purpose: string;
  expiresInDays: number;
  baseUrl: string;
  keys: readonly LinkKey[];
  now: number;
}): OptoutLinks {
  const exp = expiryAfterDays(input.now, input.expiresInDays);
  const common = { tenant: input.tenant, subjectKey: input.subjectKey, exp };
  const token = signLink({ ...common, kind: 'optout', channel: input.channel, purpose: input.purpose }, input.keys);
  const preferencesToken = signLink({ ...common, kind: 'preferences' }, input.keys);
  const base = input.baseUrl.replace(/\/+$/, '');
  const url = `${base}/optout/${token}`;
  return {
    subjectKey: input.subjectKey,
    url,
    preferencesUrl: `${base}/preferences/${preferencesToken}`,
    token,
    preferencesToken,
    expiresAt: new Date(exp * 1000).toISOString(),
    listUnsubscribe: `<${url}>`,
    listUnsubscribePost: 'List-Unsubscribe=One-Click',
  };
}
