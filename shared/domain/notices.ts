import { createHash } from 'node:crypto';
import canonicalize from 'canonicalize';

/**
 * Privacy notices: the exact words a person saw when consenting, registered once per version and never
 * changed. A notice is identified by its `version` and proven by its `hash` (SHA-256 over the RFC 8785
 * canonical JSON of its content); a consent given under a registered version records that hash.
 */

/** What a notice says, as registered; `purposes` sorted and without duplicates. */
export interface NoticeContent {
  version: string;
  /** The text per language tag. */
  texts: Record<string, string>;
  url: string | null;
  purposes: string[];
  effectiveAt: string;
  reconsentRequired: boolean;
}

export interface Notice extends NoticeContent {
  hash: string;
  registeredAt: string;
}

/** A notice without its texts: what the gate and the grants need (the texts are read only for exports). */
export type NoticeSummary = Omit<Notice, 'texts'>;

/** The canonical content of a notice (the hashed form): every field present, purposes sorted and unique. */
export function canonicalNotice(content: NoticeContent): NoticeContent {
  const { version, texts, url, purposes, effectiveAt, reconsentRequired } = content;
  return { version, texts, url: url ?? null, purposes: [...new Set(purposes)].sort(), effectiveAt, reconsentRequired };
}

/** SHA-256 (hex) of the RFC 8785 canonical JSON of the notice's canonical content. */
export const noticeHash = (content: NoticeContent): string =>
  createHash('sha256')
    .update(canonicalize(canonicalNotice(content)) as string)
    .digest('hex');

/** What a granted consent says about the notice it was given under. */
export interface NoticeOfConsent {
  noticeVersion?: string;
  grantedAt?: string;
}

/**
 * The notice that outdates a consent for `purpose` at `at`, if any: a notice with `reconsentRequired`
 * that covers the purpose, is in force (`effectiveAt` ≤ `at`), is not the consent's own notice, and is
 * later than it. The consent's notice is "earlier" when its registered `effectiveAt` precedes the reconsent
 * notice's; for a version that was never registered, when the consent was granted before that
 * `effectiveAt`. Of several such notices, the latest in force is returned.
 */
export function outdatingNotice(
  consent: NoticeOfConsent,
  purpose: string,
  at: string,
  notices: readonly NoticeSummary[],
): NoticeSummary | undefined {
  const atMs = Date.parse(at);
  const own = notices.find((n) => n.version === consent.noticeVersion);
  const givenAt = Date.parse(own?.effectiveAt ?? consent.grantedAt ?? '');
  let found: NoticeSummary | undefined;
  for (const notice of notices) {
    if (!notice.reconsentRequired || notice.version === consent.noticeVersion) continue;
    if (!notice.purposes.includes(purpose)) continue;
    const from = Date.parse(notice.effectiveAt);
    if (from > atMs || !(givenAt < from)) continue;
    if (!found || from > Date.parse(found.effectiveAt)) found = notice;
  }
  return found;
}
