import { afterAll, beforeAll, expect, it } from 'vitest';
import { email, grantBody, phone, tenantWithKey } from '../helpers/factories.ts';
import { client, describeLocal, startServer } from '../helpers/http.ts';

let server: Awaited<ReturnType<typeof startServer>>;
let admin: ReturnType<typeof client>;
let reader: ReturnType<typeof client>;

beforeAll(async () => {
  server = await startServer();
  const owner = await tenantWithKey(['admin']);
  admin = client(server.url, owner.key);
  reader = client(server.url, (await tenantWithKey(['consents:read'], owner.tenant)).key);
  const policy = (await admin.get('/v1/policy')).body;
  const put = await admin.put('/v1/policy', {
    ...policy,
    controller: { name: 'Boulangerie Martin SAS', privacyContact: 'dpo@boulangerie-martin.fr' },
  });
  expect(put.status).toBe(200);
});
afterAll(() => server.close());

describeLocal('POST /v1/subjects/access (Art. 15)', () => {
  it("answers with the controller, current consents, receipts and the subject's full history", async () => {
    const subject = { phone: phone() };
    await admin.post(
      '/v1/consents',
      grantBody({
        subject,
        source: 'double_opt_in',
        noticeVersion: 'notice-2026-10',
        evidence: { formId: 'footer', ipAddress: '203.0.113.7' },
      }),
    );
    await admin.post('/v1/consents', grantBody({ subject, channel: 'sms', noticeVersion: 'notice-2026-10' }));
    await admin.post('/v1/consents/withdraw', { subject, channel: 'sms', source: 'keyword' });
    await admin.post('/v1/signals', { subject, channel: 'whatsapp', type: 'profile_photo_hidden' });

    const res = await reader.post('/v1/subjects/access', { subject });
    expect(res.status).toBe(200);
    const body = res.body;
    const lookup = await reader.post('/v1/subjects/lookup', { subject });
    expect(body.subject).toEqual({
      subjectKey: lookup.body.subjectKey,
      identifierKind: 'phone',
      identifier: subject.phone,
    });
    expect(body.consents).toEqual(lookup.body.consents);
    expect(body.events.map((e: { type: string }) => e.type)).toEqual([
      'consent.granted',
      'consent.granted',
      'consent.withdrawn',
      'signal.recorded',
    ]);
    expect(body.events.map((e: { seq: number }) => e.seq)).toEqual([1, 2, 3, 4]);
    expect(body.chain).toMatchObject({ valid: true, length: 4 });
    expect(body.signals).toEqual(lookup.body.signals);
    expect(body.signals.whatsapp.signals[0].type).toBe('profile_photo_hidden');
    // The IP address is in the copy only as a keyed hash: it is not stored raw.
    expect(JSON.stringify(body)).not.toContain('203.0.113.7');

    const whatsapp = body.receipts.find(
      (r: { services: { service: string }[] }) => r.services[0].service === 'whatsapp',
    );
    expect(whatsapp).toMatchObject({
      version: 'KI-CR-v1.1.0',
      piiPrincipalId: lookup.body.subjectKey,
      collectionMethod: 'double_opt_in',
      notice: { noticeVersion: 'notice-2026-10' },
      state: 'active',
      consentReceiptID: body.events[0].eventId,
      consentTimestamp: body.events[0].data.grantedAt,
    });
    expect(whatsapp.jurisdiction).toMatch(/GDPR/);
    expect(whatsapp.services[0].purposes[0].purpose).toBe('marketing');
    expect(whatsapp.withdrawal.method).toMatch(/STOP/);
    const sms = body.receipts.find((r: { services: { service: string }[] }) => r.services[0].service === 'sms');
    expect(sms).toMatchObject({
      state: 'withdrawn',
      withdrawal: { withdrawnAt: body.events[2].at, withdrawnVia: 'keyword' },
    });
    expect(body.controller).toEqual({ name: 'Boulangerie Martin SAS', privacyContact: 'dpo@boulangerie-martin.fr' });
    expect(whatsapp.piiControllers[0]).toEqual({
      piiController: body.controller.name,
      contact: body.controller.privacyContact,
    });
  });

  it('keeps the identifier out of the store: only the reply echoes it', async () => {
    const subject = { email: `  ${email().toUpperCase()} ` };
    await admin.post('/v1/consents', grantBody({ subject, channel: 'email' }));
    const res = await reader.post('/v1/subjects/access', { subject });
    expect(res.body.subject.identifier).toBe(subject.email.trim().toLowerCase());
    expect(JSON.stringify(res.body.events)).not.toContain(subject.email.trim().toLowerCase());
  });

  it('answers 404 subject_not_found for a subject never seen', async () => {
    const res = await reader.post('/v1/subjects/access', { subject: { phone: phone() } });
    expect(res.status).toBe(404);
    expect(res.body.code).toBe('subject_not_found');
  });

  it('rejects a bad identifier or an unknown field with 400', async () => {
    expect((await reader.post('/v1/subjects/access', { subject: { phone: '12' } })).body.code).toBe(
      'invalid_identifier',
    );
    expect((await reader.post('/v1/subjects/access', { subject: { phone: phone() }, extra: 1 })).status).toBe(400);
  });

  it('needs consents:read', async () => {
    const auditOnly = client(server.url, (await tenantWithKey(['audit:read'])).key);
    expect((await auditOnly.post('/v1/subjects/access', { subject: { phone: phone() } })).status).toBe(403);
  });
});
