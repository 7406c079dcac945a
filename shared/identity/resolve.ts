import type { Channel } from '#domain/vocabulary.ts';
import { getSecrets, tenantDigest, tenantKey } from '#shared/secrets.ts';
import { assertReachable, type Identifier, normaliseSubject, type SubjectInput, subjectKeyOf } from './subject.ts';

/** A subject as the service knows it: its key and identifier kind (the identifier itself stays in memory). */
export interface ResolvedSubject {
  subjectKey: string;
  identifier: Identifier;
}

/** Normalises, checks reachability on the channel (when given) and derives the subjectKey. */
export async function resolveSubject(
  tenant: string,
  input: SubjectInput,
  channel?: Channel,
  path = 'subject',
): Promise<ResolvedSubject> {
  const identifier = normaliseSubject(input, path);
  if (channel) assertReachable(identifier, channel, path);
  const secrets = await getSecrets();
  return { subjectKey: subjectKeyOf(tenantKey(secrets, tenant), tenant, identifier), identifier };
}

/**
 * A keyed hash of an evidence value that must stay provable but not readable (an IP address): given the
 * claimed value, the DPO can show it matches; the table alone reveals nothing.
 */
export async function evidenceHash(tenant: string, value: string): Promise<string> {
  return `hmac-sha256:${await tenantDigest(tenant, 'evidence', value)}`;
}
