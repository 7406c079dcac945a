import { generateKeyPairSync, randomUUID, sign } from 'node:crypto';
import { apiEvent, lambdaContext, median, round, timed } from './lib.ts';

/** The event kinds of a bench batch, in SendGrid's Event Webhook format, all of them consent-relevant. */
const KINDS = [
  { event: 'unsubscribe' },
  { event: 'bounce', type: 'bounce', reason: '550 5.1.1 unknown user', status: '5.1.1' },
  { event: 'group_unsubscribe', asm_group_id: 10 },
  { event: 'spamreport' },
  { event: 'unsubscribe' },
] as const;

/**
 * A SendGrid batch of `size` events over `size * 0.8` recipients (some have two events, applied in order),
 * signed like SendGrid: ECDSA P-256 over timestamp + body.
 */
function batch(size: number, run: number, privateKey: ReturnType<typeof generateKeyPairSync>['privateKey']) {
  const recipients = Math.ceil(size * 0.8);
  const start = Math.floor(Date.now() / 1000) - 600;
  const events = Array.from({ length: size }, (_, i) => ({
    email: `bench-${run}-${i % recipients}@example.org`,
    timestamp: start + i,
    'smtp-id': `<bench-${run}-${i}@ismtpd-555>`,
    sg_event_id: randomUUID(),
    sg_message_id: `bench-${run}-${i}.filterdrecv`,
    category: 'bench',
    ...KINDS[i % KINDS.length],
  }));
  const raw = JSON.stringify(events);
  const timestamp = String(Math.floor(Date.now() / 1000));
  const signature = sign('sha256', Buffer.from(timestamp + raw), privateKey).toString('base64');
  return { raw, timestamp, signature };
}

/**
 * The time to ingest a signed 1,000-event SendGrid delivery through the connector's handler, in process
 * (signature check, parsing, subjectKeys, one ledger append with its replay marker per event), as the
 * median of `reps` fresh batches after a warm-up. Goal: ≤ 2 s locally.
 */
export async function measureSendGridBatch(tenant: string, size = 1000, reps = 3) {
  const { create, receive } = await import('../functions/connectors/handler.ts');
  const auth = { tenant, scopes: 'admin', keyId: 'key_bench' };
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const created = await create(
    apiEvent(
      'POST /v1/connectors',
      {
        provider: 'sendgrid',
        secrets: { publicKey: (publicKey.export({ format: 'der', type: 'spki' }) as Buffer).toString('base64') },
        purposeMap: { 10: 'newsletter' },
      },
      auth,
    ),
    lambdaContext('connectors'),
  );
  if (created.statusCode !== 201) throw new Error(`connector: ${created.statusCode} ${created.body}`);
  const { id } = JSON.parse(created.body as string);
  const runs: number[] = [];
  let recorded = 0;
  for (let run = 0; run <= reps; run++) {
    const { raw, timestamp, signature } = batch(size, run, privateKey);
    const event = {
      ...apiEvent('POST /v1/connectors/{id}/events', undefined, auth, {
        'x-twilio-email-event-webhook-signature': signature,
        'x-twilio-email-event-webhook-timestamp': timestamp,
      }),
      body: raw,
      pathParameters: { id },
    };
    const { ms, value } = await timed(() => receive(event, lambdaContext('connectors')));
    if (value.statusCode !== 200) throw new Error(`ingest answered ${value.statusCode}: ${value.body}`);
    const report = JSON.parse(value.body as string);
    if (report.recorded + report.unchanged !== size) throw new Error(`ingest: ${value.body}`);
    if (run > 0) {
      runs.push(ms);
      recorded += report.recorded;
    }
  }
  return {
    sendgrid_batch_1000_ms: round(median(runs), 0),
    sendgrid_batch_1000_max_ms: round(Math.max(...runs), 0),
    sendgrid_batch_events_per_s: round((size * runs.length) / (runs.reduce((a, b) => a + b, 0) / 1000), 0),
    sendgrid_batch_recorded: recorded,
  };
}
