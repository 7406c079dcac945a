import { generateKeyPairSync, randomUUID, sign } from 'node:crypto';
import { mapLimit } from '../shared/concurrency.ts';
import { withdrawConsent } from '../shared/domain/subject-state.ts';
import { getDb } from '../shared/store/db.ts';
import { appendChange } from '../shared/store/subjects.ts';
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
    // Run 0 warms up (JIT, connections) on a tenth of the size.
    const { raw, timestamp, signature } = batch(run === 0 ? Math.ceil(size / 10) : size, run, privateKey);
    const event = {
      ...apiEvent('POST /v1/connectors/{id}/events', undefined, auth, {
        'x-twilio-email-event-webhook-signature': signature,
        'x-twilio-email-event-webhook-timestamp': timestamp,
      }),
      body: raw,
      pathParameters: { id },
    };
    // A loaded machine must not turn a slow run into middy's timeout answer: the figure is the point here.
    const context = { ...lambdaContext('connectors'), getRemainingTimeInMillis: () => 900_000 };
    const { ms, value } = await timed(() => receive(event, context));
    if (value.statusCode !== 200) throw new Error(`ingest answered ${value.statusCode}: ${value.body}`);
    const report = JSON.parse(value.body as string);
    if (report.recorded + report.unchanged !== report.received) throw new Error(`ingest: ${value.body}`);
    if (run > 0) {
      runs.push(ms);
      recorded += report.recorded;
    }
  }
  // The floor, in the same run: as many bare ledger appends (a withdrawal each, no replay marker, no
  // signature, no parsing) by 16 writers, so the figure can be read whatever the machine's load.
  const floor: number[] = [];
  for (let run = 0; run < reps; run++) {
    const { ms } = await timed(() =>
      mapLimit(
        Array.from({ length: size }, (_, i) => i),
        16,
        (i) =>
          appendChange(
            getDb(),
            tenant,
            `floor-${run}-${i}`,
            (current, next) =>
              withdrawConsent(current, { channel: 'email', source: 'api' }, next, new Date().toISOString()),
            { actor: { type: 'system', job: 'bench' } },
          ),
      ),
    );
    floor.push(ms);
  }
  return {
    sendgrid_batch_1000_ms: round(median(runs), 0),
    sendgrid_batch_floor_appends_1000_ms: round(median(floor), 0),
    sendgrid_batch_vs_appends: round(median(runs) / median(floor), 2),
    sendgrid_batch_1000_max_ms: round(Math.max(...runs), 0),
    sendgrid_batch_events_per_s: round((size * runs.length) / (runs.reduce((a, b) => a + b, 0) / 1000), 0),
    sendgrid_batch_recorded: recorded,
  };
}
