import { describe, expect, it } from 'vitest';
import { accessProvided, accessReport } from '#domain/access.ts';
import { tombstone } from '#domain/erasure.ts';
import type { Actor, LedgerEvent } from '#domain/ledger.ts';
import { defaultPolicy } from '#domain/policy.ts';
import { grantConsent, type SubjectState, withdrawConsent } from '#domain/subject-state.ts';
import { chainEvent } from '#store/subjects.ts';

describe('Art. 15 access report', () => {
  const policy = {
    ...defaultPolicy(),
    controller: { name: 'ACME SAS', privacyContact: 'dpo@acme.example' },
    purposes: { marketing: { kind: 'marketing' as const, labels: { fr: 'Offres', en: 'Offers' } } },
  };
  const apiKey: Actor = { type: 'api_key', keyId: 'key_1' };
  let state: SubjectState = { subjectKey: 'KEY', version: 0, seq: 0, head: '', scopes: {} };
  const events: LedgerEvent[] = [];
  const apply = (
    fn: (s: SubjectState, next: { seq: number; eventId: string }) => { state: SubjectState; event: never },
    actor: Actor = apiKey,
  ) => {
    const next = { seq: state.seq + 1, eventId: `EV${state.seq + 1}` };
    const change = fn(state, next);
    const event = chainEvent(state, next, change.event, actor, '2026-11-03T10:00:00.000Z');
    events.push(event);
    state = { ...change.state, version: state.version + 1, seq: next.seq, head: event.hash };
  };
  apply(
    (s, n) =>
      grantConsent(
        s,
        {
          channel: 'whatsapp',
          purpose: 'marketing',
          source: 'double_opt_in',
          noticeVersion: 'n-3',
          grantedAt: '2026-11-01T09:00:00.000Z',
          data: {},
        },
        n,
        '2026-11-01T09:00:01.000Z',
      ) as never,
  );
  apply(
    (s, n) =>
      grantConsent(
        s,
        {
          channel: 'email',
          purpose: 'news',
          source: 'web_form',
          noticeVersion: 'n-3',
          grantedAt: '2026-11-02T09:00:00.000Z',
          data: {},
        },
        n,
        '2026-11-02T09:00:00.000Z',
      ) as never,
  );
  apply(
    (s, n) =>
      withdrawConsent(
        s,
        { channel: 'email', purpose: 'news', source: 'one_click', data: {} },
        n,
        '2026-11-03T09:00:00.000Z',
      ) as never,
  );
  apply(
    (s) =>
      ({
        state: s,
        event: { type: 'signal.recorded', at: '2026-11-03T09:30:00.000Z', channel: 'whatsapp', data: {} },
      }) as never,
    { type: 'webhook', provider: 'whatsapp' },
  );

  const copy = (overrides: Partial<Parameters<typeof accessReport>[0]> = {}) =>
    accessReport({
      subjectKey: 'KEY',
      identifier: { kind: 'phone', value: '+33612345678' },
      state,
      events,
      policy,
      now: '2026-11-04T00:00:00.000Z',
      ...overrides,
    });
  const report = copy();

  it('names the controller and the subject, and carries the full verified history', () => {
    expect(report.controller).toEqual({ name: 'ACME SAS', privacyContact: 'dpo@acme.example' });
    expect(report.subject).toEqual({ subjectKey: 'KEY', identifierKind: 'phone', identifier: '+33612345678' });
    expect(report.events).toEqual(events);
    expect(report.chain).toMatchObject({ valid: true, length: 4 });
  });

  it('adds what Art. 15 asks beyond the data: purposes, retention, sources, rights, the block inference', () => {
    expect(report.purposes).toEqual([
      { slug: 'marketing', kind: 'marketing', labels: { fr: 'Offres', en: 'Offers' }, label: 'Offers' },
      // Not in the registry: counted as marketing.
      { slug: 'news', kind: 'marketing', labels: {}, label: 'news' },
    ]);
    expect(report.retention).toMatchObject({ inactiveSubjectDays: 1095, signalDays: 180, proofDays: 1825 });
    expect(report.retention.explanation).toContain('1095 days');
    expect(report.sources).toEqual({
      consents: ['double_opt_in', 'web_form'],
      withdrawals: ['one_click'],
      providers: ['whatsapp'],
    });
    expect(report.rights.lang).toBe('en');
    expect(report.rights.rights.map((r) => r.right)).toEqual([
      'access',
      'rectification',
      'erasure',
      'restriction',
      'objection',
      'withdrawal',
      'portability',
      'complaint',
    ]);
    expect(report.rights.rights.find((r) => r.right === 'complaint')?.text).toContain('https://www.cnil.fr/');
    expect(report.rights.supervisoryAuthority).toMatchObject({ country: 'FR', url: 'https://www.cnil.fr/fr/plaintes' });
    expect(report.automatedInference.clues.map((c) => c.type)).toContain('message_undelivered');
    expect(report.automatedInference.effect).toMatch(/Art\. 22/);
    expect(report.automatedInference.contest).toMatch(/resets/);
    expect(report.kept).toBeNull();
  });

  it("speaks the person's language when the request names it", () => {
    const fr = copy({ lang: 'fr' });
    expect(fr.rights.lang).toBe('fr');
    expect(fr.rights.rights[0].text).toMatch(/Vous pouvez/);
    expect(fr.automatedInference.contest).toMatch(/remet aussitôt l’estimation au plus bas/);
    expect(fr.purposes[0].label).toBe('Offres');
  });

  it('says, for an erased subject, what is kept, why and until when', () => {
    const erased = tombstone(state, 'er_1', '2026-11-05T00:00:00.000Z').state;
    const kept = copy({
      state: erased,
      events: [],
      policy: { ...policy, retention: { ...policy.retention, proofDays: 10 } },
    }).kept;
    expect(kept).toMatchObject({ proofUntil: '2026-11-15T00:00:00.000Z' });
    expect(kept?.why.map((w) => w.basis)).toEqual(['GDPR Art. 17(3)(e)', 'GDPR Art. 17(3)(b), Art. 21(3)']);
  });

  it('records a given copy as access.provided with nothing personal and the state unchanged', () => {
    const change = accessProvided(state, '2026-11-04T00:00:00.000Z');
    expect(change.state).toBe(state);
    expect(change.event).toEqual({ type: 'access.provided', at: '2026-11-04T00:00:00.000Z', data: {} });
  });

  it('maps each consent onto consent-receipt terms', () => {
    const [email, whatsapp] = report.receipts;
    expect(whatsapp).toMatchObject({
      consentReceiptID: 'EV1',
      consentTimestamp: '2026-11-01T09:00:00.000Z',
      collectionMethod: 'double_opt_in',
      piiPrincipalId: 'KEY',
      piiControllers: [{ piiController: 'ACME SAS', contact: 'dpo@acme.example' }],
      notice: { noticeVersion: 'n-3' },
      state: 'active',
      services: [{ service: 'whatsapp', purposes: [{ purpose: 'marketing', consentType: 'EXPLICIT' }] }],
      withdrawal: { withdrawnAt: null },
    });
    expect(email).toMatchObject({
      consentReceiptID: 'EV2',
      collectionMethod: 'web_form',
      state: 'withdrawn',
      withdrawal: { withdrawnAt: '2026-11-03T09:00:00.000Z', withdrawnVia: 'one_click' },
    });
    expect(email.withdrawal.method).toContain('dpo@acme.example');
  });
});
