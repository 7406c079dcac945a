import { describe, expect, it } from 'vitest';
import { accessReport } from '#domain/access.ts';
import type { LedgerEvent } from '#domain/ledger.ts';
import { defaultPolicy } from '#domain/policy.ts';
import { grantConsent, type SubjectState, withdrawConsent } from '#domain/subject-state.ts';
import { chainEvent } from '#store/subjects.ts';

describe('Art. 15 access report', () => {
  const policy = { ...defaultPolicy(), controller: { name: 'ACME SAS', privacyContact: 'dpo@acme.example' } };
  let state: SubjectState = { subjectKey: 'KEY', version: 0, seq: 0, head: '', scopes: {} };
  const events: LedgerEvent[] = [];
  const apply = (
    fn: (s: SubjectState, next: { seq: number; eventId: string }) => { state: SubjectState; event: never },
  ) => {
    const next = { seq: state.seq + 1, eventId: `EV${state.seq + 1}` };
    const change = fn(state, next);
    const event = chainEvent(state, next, change.event);
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

  const report = accessReport({
    subjectKey: 'KEY',
    identifier: { kind: 'phone', value: '+33612345678' },
    state,
    events,
    policy,
    now: '2026-11-04T00:00:00.000Z',
  });

  it('names the controller and the subject, and carries the full verified history', () => {
    expect(report.controller).toEqual({ name: 'ACME SAS', privacyContact: 'dpo@acme.example' });
    expect(report.subject).toEqual({ subjectKey: 'KEY', identifierKind: 'phone', identifier: '+33612345678' });
    expect(report.events).toEqual(events);
    expect(report.chain).toMatchObject({ valid: true, length: 3 });
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
