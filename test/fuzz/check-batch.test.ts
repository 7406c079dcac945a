import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { grantBody, phone, tenantWithKey } from '../helpers/factories.ts';
import { client, startServer } from '../helpers/http.ts';

/*
 * check-batch resolves and reads its items in slices of 100 (functions/gate/handler.ts). Whatever the
 * batch (granted, withdrawn and unknown subjects anywhere, repeats across slices, bad items), each slot
 * must say exactly what a single gate check of that item says, in request order.
 */

let server: Awaited<ReturnType<typeof startServer>>;
let api: ReturnType<typeof client>;
const granted = Array.from({ length: 6 }, () => ({ phone: phone() }));
const withdrawn = Array.from({ length: 3 }, () => ({ phone: phone() }));
const unknown = Array.from({ length: 4 }, () => ({ phone: phone() }));

beforeAll(async () => {
  server = await startServer();
  api = client(server.url, (await tenantWithKey(['admin'])).key);
  for (const subject of [...granted, ...withdrawn]) {
    expect((await api.post('/v1/consents', grantBody({ subject }))).status).toBe(201);
  }
  for (const subject of withdrawn) {
    expect((await api.post('/v1/consents/withdraw', { subject, channel: 'whatsapp' })).status).toBe(200);
  }
});
afterAll(() => server?.close());

const item = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...granted, ...withdrawn, ...unknown).map((subject) => ({ subject })) },
  { weight: 1, arbitrary: fc.constantFrom({ subject: { phone: 'nonsense' } }, { subject: { email: 'a@b.org' } }) },
  { weight: 1, arbitrary: fc.constantFrom({ subject: { phone: '+33612345678', x: 1 } }, { subject: null }) },
);

const single = async (subject: unknown) => {
  const res = await api.post('/v1/gate/check', { subject, channel: 'whatsapp' });
  return res.status === 200
    ? { decision: res.body.decision, subjectKey: res.body.subjectKey }
    : { error: res.body.code };
};

describe('check-batch across slices', () => {
  it('answers every slot as a single check would, in order', async () => {
    const expected = new Map<string, unknown>();
    for (const subject of [...granted, ...withdrawn, ...unknown])
      expected.set(JSON.stringify(subject), await single(subject));
    await fc.assert(
      fc.asyncProperty(fc.array(item, { minLength: 1, maxLength: 350 }), async (items) => {
        const res = await api.post('/v1/gate/check-batch', { channel: 'whatsapp', items });
        expect(res.status).toBe(200);
        expect(res.body.results.map((r: { index: number }) => r.index)).toEqual(items.map((_, i) => i));
        res.body.results.forEach(
          (r: { decision?: string; subjectKey?: string; error?: { code: string } }, i: number) => {
            const want = expected.get(JSON.stringify(items[i].subject));
            if (want) expect({ decision: r.decision, subjectKey: r.subjectKey }).toEqual(want);
            else expect(r.error?.code).toMatch(/^(invalid_identifier|identifier_channel_mismatch|validation_failed)$/);
          },
        );
        const summary = res.body.summary;
        expect(summary.allow + summary.block + summary.defer + summary.error).toBe(items.length);
      }),
      { seed: Number(process.env.FUZZ_SEED ?? 20261125), numRuns: 15 },
    );
  });
});
