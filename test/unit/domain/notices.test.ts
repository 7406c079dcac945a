import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { consentReceipt } from '#domain/access.ts';
import { decide } from '#domain/gate.ts';
import type { GatePolicy } from '#domain/gate-rule.ts';
import { canonicalNotice, type NoticeSummary, noticeHash, outdatingNotice } from '#domain/notices.ts';
import { defaultPolicy } from '#domain/policy.ts';
import { emptyState, grantConsent, type SubjectState } from '#domain/subject-state.ts';
import { consentViews } from '#domain/views.ts';
import { NoticeRegisterSchema } from '#shared/schemas/notices.ts';

const content = {
  version: '2026-09-privacy-v3',
  texts: { fr: 'Nous vous écrivons…', en: 'We write to you…' },
  url: 'https://acme.example/privacy',
  purposes: ['marketing', 'newsletter'],
  effectiveAt: '2026-09-01T00:00:00.000Z',
  reconsentRequired: false,
};

describe('notice hash: SHA-256 of the RFC 8785 canonical notice', () => {
  it('is the SHA-256 of the canonical JSON, keys sorted, purposes sorted and unique', () => {
    const canonical =
      '{"effectiveAt":"2026-09-01T00:00:00.000Z","purposes":["marketing","newsletter"],"reconsentRequired":false,' +
      '"texts":{"en":"We write to you…","fr":"Nous vous écrivons…"},"url":"https://acme.example/privacy","version":"2026-09-privacy-v3"}';
    expect(noticeHash(content)).toBe(createHash('sha256').update(canonical).digest('hex'));
  });

  it('does not depend on key order or the order of purposes, and changes with any word', () => {
    const reordered = {
      reconsentRequired: false,
      effectiveAt: content.effectiveAt,
      purposes: ['newsletter', 'marketing', 'marketing'],
      url: content.url,
      texts: { en: content.texts.en, fr: content.texts.fr },
      version: content.version,
    };
    expect(noticeHash(reordered)).toBe(noticeHash(content));
    expect(canonicalNotice(reordered).purposes).toEqual(['marketing', 'newsletter']);
    expect(noticeHash({ ...content, texts: { ...content.texts, en: 'We write to you.' } })).not.toBe(
      noticeHash(content),
    );
    expect(noticeHash({ ...content, reconsentRequired: true })).not.toBe(noticeHash(content));
  });

  it('the request schema normalises effectiveAt to UTC and refuses bad fields with their path', () => {
    const parsed = NoticeRegisterSchema.parse({ ...content, url: undefined, effectiveAt: '2026-09-01T02:00:00+02:00' });
    expect(parsed.effectiveAt).toBe('2026-09-01T00:00:00.000Z');
    expect(parsed.reconsentRequired).toBe(false);
    const bad = NoticeRegisterSchema.safeParse({
      version: 'has space',
      texts: {},
      purposes: ['Not A Slug'],
      effectiveAt: 'yesterday',
    });
    const paths = bad.error?.issues.map((i) => i.path.join('.'));
    expect(paths).toEqual(expect.arrayContaining(['version', 'texts', 'purposes.0', 'effectiveAt']));
    const lang = NoticeRegisterSchema.safeParse({ ...content, texts: { French: 'x' } });
    expect(lang.error?.issues[0].path).toEqual(['texts', 'French']);
  });
});

const summary = (over: Partial<NoticeSummary>): NoticeSummary => ({
  version: 'v',
  hash: 'h',
  url: null,
  purposes: ['marketing'],
  effectiveAt: '2026-10-01T00:00:00.000Z',
  reconsentRequired: false,
  registeredAt: '2026-09-01T00:00:00.000Z',
  ...over,
});
const v2 = summary({ version: 'v2', effectiveAt: '2026-06-01T00:00:00.000Z' });
const v3 = summary({ version: 'v3', effectiveAt: '2026-10-01T00:00:00.000Z', reconsentRequired: true });
const v4 = summary({ version: 'v4', effectiveAt: '2026-12-01T00:00:00.000Z' });

describe('outdatingNotice: consents given under an earlier notice', () => {
  const AFTER = '2026-10-15T00:00:00.000Z';

  it('outdates a consent under an earlier registered notice, for the notice purposes, from its effectiveAt', () => {
    const consent = { noticeVersion: 'v2', grantedAt: '2026-07-01T00:00:00.000Z' };
    expect(outdatingNotice(consent, 'marketing', AFTER, [v2, v3])?.version).toBe('v3');
    expect(outdatingNotice(consent, 'marketing', '2026-09-30T23:59:59.000Z', [v2, v3])).toBeUndefined();
    expect(outdatingNotice(consent, 'marketing', v3.effectiveAt, [v2, v3])?.version).toBe('v3');
    expect(outdatingNotice(consent, 'newsletter', AFTER, [v2, v3])).toBeUndefined();
  });

  it('an earlier registered notice stays earlier even when the consent was given after the reconsent notice', () => {
    const late = { noticeVersion: 'v2', grantedAt: '2026-10-10T00:00:00.000Z' };
    expect(outdatingNotice(late, 'marketing', AFTER, [v2, v3])?.version).toBe('v3');
  });

  it('never outdates a consent under the reconsent notice itself or a later one', () => {
    expect(outdatingNotice({ noticeVersion: 'v3', grantedAt: AFTER }, 'marketing', AFTER, [v2, v3])).toBeUndefined();
    const later = { noticeVersion: 'v4', grantedAt: '2026-12-02T00:00:00.000Z' };
    expect(outdatingNotice(later, 'marketing', '2026-12-03T00:00:00.000Z', [v2, v3, v4])).toBeUndefined();
  });

  it('an unregistered version counts as earlier when the consent was granted before the effectiveAt', () => {
    expect(
      outdatingNotice({ noticeVersion: 'paper', grantedAt: '2026-09-01T00:00:00.000Z' }, 'marketing', AFTER, [v3])
        ?.version,
    ).toBe('v3');
    expect(outdatingNotice({ noticeVersion: 'paper', grantedAt: AFTER }, 'marketing', AFTER, [v3])).toBeUndefined();
  });

  it('without reconsentRequired nothing is outdated', () => {
    const plain = { ...v3, reconsentRequired: false };
    const consent = { noticeVersion: 'v2', grantedAt: '2026-07-01T00:00:00Z' };
    expect(outdatingNotice(consent, 'marketing', AFTER, [v2, plain])).toBeUndefined();
  });
});

describe('the gate: consent_outdated', () => {
  const grant = (noticeVersion: string, grantedAt: string, purpose = 'marketing'): SubjectState => ({
    ...grantConsent(
      emptyState('sk', 'phone'),
      { channel: 'whatsapp', purpose, source: 'web_form', noticeVersion, grantedAt },
      { seq: 1, eventId: 'ev1' },
      grantedAt,
    ).state,
    seq: 1,
  });
  const policy: GatePolicy = { ...defaultPolicy(), frequencyCaps: [], notices: [v2, v3] };
  const check = (state: SubjectState, at: string, purpose = 'marketing') =>
    decide(state, { channel: 'whatsapp', purpose, at }, policy);

  it('blocks a consent given under an earlier notice from the reconsent notice effectiveAt, with its version', () => {
    const state = grant('v2', '2026-07-01T00:00:00.000Z');
    expect(check(state, '2026-09-30T00:00:00.000Z').decision).toBe('allow');
    const after = check(state, '2026-10-02T00:00:00.000Z');
    expect(after.decision).toBe('block');
    expect(after.reasons).toEqual([
      expect.objectContaining({ code: 'consent_outdated', noticeVersion: 'v3', effectiveAt: v3.effectiveAt }),
    ]);
  });

  it('allows a consent under the new notice and purposes the notice does not cover', () => {
    expect(check(grant('v3', '2026-10-02T00:00:00.000Z'), '2026-10-03T00:00:00.000Z').decision).toBe('allow');
    const other = grant('v2', '2026-07-01T00:00:00.000Z', 'order-updates');
    expect(check(other, '2026-10-03T00:00:00.000Z', 'order-updates').decision).toBe('allow');
  });

  it('a policy without notices decides as before', () => {
    const state = grant('v2', '2026-07-01T00:00:00.000Z');
    expect(
      decide(state, { channel: 'whatsapp', purpose: 'marketing', at: '2026-10-03T00:00:00.000Z' }, defaultPolicy()),
    ).toMatchObject({ decision: 'allow' });
  });
});

describe('consent receipts carry the registered notice', () => {
  it('shows the hash recorded with the consent and the notice texts', () => {
    const hash = noticeHash(content);
    const state = grantConsent(
      emptyState('sk', 'phone'),
      {
        channel: 'whatsapp',
        purpose: 'marketing',
        source: 'web_form',
        noticeVersion: content.version,
        noticeHash: hash,
        grantedAt: '2026-10-01T00:00:00.000Z',
      },
      { seq: 1, eventId: 'ev1' },
      '2026-10-01T00:00:00.000Z',
    ).state;
    const [view] = consentViews(state, defaultPolicy(), '2026-10-02T00:00:00.000Z');
    expect(view.noticeHash).toBe(hash);
    const notice = { ...canonicalNotice(content), hash, registeredAt: '2026-09-01T00:00:00.000Z' };
    const receipt = consentReceipt(view, 'sk', defaultPolicy(), [], notice);
    expect(receipt.notice).toEqual({
      noticeVersion: content.version,
      noticeHash: hash,
      hashRecorded: true,
      effectiveAt: content.effectiveAt,
      url: content.url,
      texts: content.texts,
    });
    expect(receipt.policyUrl).toBe(content.url);
    expect(consentReceipt(view, 'sk', defaultPolicy(), []).notice).toEqual({
      noticeVersion: content.version,
      noticeHash: hash,
      hashRecorded: true,
    });
  });
});
