import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { grantBody, tenantWithKey } from '../helpers/factories.ts';
import { client, describeLocal, startServer, validatedFetch } from '../helpers/http.ts';
import { change, envelope, sign, status } from '../helpers/whatsapp.ts';

const previous = process.env.POWERTOOLS_METRICS_DISABLED;
let server: Awaited<ReturnType<typeof startServer>>;
let api: ReturnType<typeof client>;
let tenant: string;
const SECRET = 'metrics-test-app-secret';
const PHONE_NUMBER_ID = '106540352249999';

beforeAll(async () => {
  // As in Lambda: metrics on (shared/metrics.ts turns them off outside Lambda unless told otherwise).
  process.env.POWERTOOLS_METRICS_DISABLED = 'false';
  server = await startServer();
  const t = await tenantWithKey();
  tenant = t.tenant;
  api = client(server.url, t.key);
  process.env.WHATSAPP_APP_SECRET = SECRET;
  process.env.WHATSAPP_PHONE_NUMBER_TENANTS = `${PHONE_NUMBER_ID}:${tenant}`;
});
afterAll(async () => {
  await server.close();
  delete process.env.WHATSAPP_APP_SECRET;
  delete process.env.WHATSAPP_PHONE_NUMBER_TENANTS;
  if (previous === undefined) delete process.env.POWERTOOLS_METRICS_DISABLED;
  else process.env.POWERTOOLS_METRICS_DISABLED = previous;
});

/** The EMF metric documents printed while `action` runs. */
async function emitted(
  action: () => Promise<unknown>,
): Promise<{ name: string; dims: Record<string, string>; value: number }[]> {
  const lines: string[] = [];
  const write = process.stdout.write.bind(process.stdout);
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array, ...rest: unknown[]) => {
    if (String(chunk).includes('"_aws"')) lines.push(String(chunk));
    else return write(chunk, ...(rest as []));
    return true;
  });
  try {
    await action();
  } finally {
    spy.mockRestore();
  }
  return lines
    .flatMap((l) => l.split('\n'))
    .filter((l) => l.includes('_aws'))
    .map((l) => JSON.parse(l))
    .map((doc) => {
      const name = doc._aws.CloudWatchMetrics[0].Metrics[0].Name as string;
      const dims = Object.fromEntries(doc._aws.CloudWatchMetrics[0].Dimensions[0].map((d: string) => [d, doc[d]]));
      return { name, dims, value: doc[name] as number };
    });
}

describeLocal('operational metrics (Powertools EMF)', () => {
  it('counts each gate decision by decision and reason, one check or a whole batch', async () => {
    const body = grantBody();
    await api.post('/v1/consents', body);
    const single = await emitted(() => api.post('/v1/gate/check', { subject: body.subject, channel: 'whatsapp' }));
    expect(single).toEqual([
      { name: 'GateDecision', dims: expect.objectContaining({ decision: 'allow', reason: 'none' }), value: 1 },
    ]);
    const batch = await emitted(() =>
      api.post('/v1/gate/check-batch', {
        channel: 'whatsapp',
        items: [
          { subject: body.subject },
          { subject: { phone: '+33612345671' } },
          { subject: { phone: '+33612345672' } },
        ],
      }),
    );
    expect(batch).toEqual(
      expect.arrayContaining([
        { name: 'GateDecision', dims: expect.objectContaining({ decision: 'allow', reason: 'none' }), value: 1 },
        { name: 'GateDecision', dims: expect.objectContaining({ decision: 'block', reason: 'no_consent' }), value: 2 },
      ]),
    );
  });

  it('counts WhatsApp webhook events by kind and outcome', async () => {
    const raw = JSON.stringify(
      envelope([
        change(PHONE_NUMBER_ID, {
          statuses: [status({ phone: '+33612345673' }, 'failed', new Date().toISOString(), { errorCode: 131026 })],
        }),
        { field: 'message_template_status_update', value: { event: 'APPROVED' } } as never,
      ]),
    );
    const deliver = () =>
      validatedFetch(`${server.url}/v1/webhooks/whatsapp`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-hub-signature-256': sign(raw, SECRET) },
        body: raw,
      });
    const first = await emitted(deliver);
    expect(first).toContainEqual({
      name: 'WebhookEvent',
      dims: expect.objectContaining({ event: 'signal.recipient_unreachable.131026', outcome: 'recorded' }),
      value: 1,
    });
    // What a delivery leaves out is counted by kind too.
    expect(first).toContainEqual({
      name: 'WebhookEvent',
      dims: expect.objectContaining({ event: 'skipped.unknown_field', outcome: 'skipped' }),
      value: 1,
    });
    const replay = await emitted(deliver);
    expect(replay).toContainEqual(expect.objectContaining({ dims: expect.objectContaining({ outcome: 'replayed' }) }));
  });
});
