import { createHmac, randomBytes } from 'node:crypto';
import type { ApiEvent } from '../shared/http/middlewares.ts';
import { lambdaContext, median, round, timed } from './lib.ts';

/** Meta's maximum number of statuses in one webhook delivery. */
export const DELIVERY_STATUSES = 1000;
const PHONE_NUMBER_ID = '106540352240999';
/** The app secret the bench's deliveries are signed with. */
export const WHATSAPP_BENCH_SECRET = 'bench-whatsapp-app-secret';

/** A signed webhook delivery as API Gateway hands it to the function (payload 2.0, raw body). */
export function deliveryEvent(phones: readonly string[], at: number): ApiEvent {
  const statuses = phones.map((phone) => ({
    id: `wamid.HBgL${randomBytes(18).toString('base64url')}`,
    status: 'delivered',
    timestamp: String(Math.floor(at / 1000)),
    recipient_id: phone.replace(/^\+/, ''),
  }));
  const body = JSON.stringify({
    object: 'whatsapp_business_account',
    entry: [
      {
        id: '102938475660',
        changes: [
          {
            field: 'messages',
            value: {
              messaging_product: 'whatsapp',
              metadata: { display_phone_number: '15550001111', phone_number_id: PHONE_NUMBER_ID },
              statuses,
            },
          },
        ],
      },
    ],
  });
  const signature = `sha256=${createHmac('sha256', WHATSAPP_BENCH_SECRET).update(body).digest('hex')}`;
  return {
    version: '2.0',
    routeKey: 'POST /v1/webhooks/whatsapp',
    rawPath: '/v1/webhooks/whatsapp',
    rawQueryString: '',
    headers: { 'content-type': 'application/json', 'x-hub-signature-256': signature },
    body,
    isBase64Encoded: false,
    requestContext: {
      accountId: 'local',
      apiId: 'local',
      domainName: 'localhost',
      domainPrefix: 'local',
      http: {
        method: 'POST',
        path: '/v1/webhooks/whatsapp',
        protocol: 'HTTP/1.1',
        sourceIp: '0.0.0.0',
        userAgent: 'bench',
      },
      requestId: randomBytes(8).toString('hex'),
      routeKey: 'POST /v1/webhooks/whatsapp',
      stage: '$default',
      time: new Date().toUTCString(),
      timeEpoch: Date.now(),
    },
  } as ApiEvent;
}

/**
 * Wall time of the webhook function on deliveries of 1,000 `delivered` statuses for 1,000 consented
 * subjects (each a ledger append with its replay marker), in process against the bench's DynamoDB Local:
 * the median of `reps` deliveries after one warm-up. The handler's path as it is wired today
 * (`whatsapp_1000_statuses_handler_ms`); `whatsapp_1000_statuses_ms` is the group commit
 * (bench/webhook-batches.ts).
 */
export async function measureWhatsAppDelivery(tenant: string, phones: readonly string[], reps = 3) {
  process.env.WHATSAPP_APP_SECRET = WHATSAPP_BENCH_SECRET;
  process.env.WHATSAPP_PHONE_NUMBER_TENANTS = `${PHONE_NUMBER_ID}:${tenant}`;
  const webhooks = (await import('../functions/webhooks/handler.ts')).handler;
  const runs: number[] = [];
  const base = Date.now() - 3_600_000;
  for (let rep = 0; rep <= reps; rep++) {
    const event = deliveryEvent(phones.slice(0, DELIVERY_STATUSES), base + rep * 60_000);
    const { ms, value } = await timed(() => webhooks(event, lambdaContext('webhooks')));
    const report = JSON.parse(String(value.body)) as { recorded: number };
    if (value.statusCode !== 200 || report.recorded !== DELIVERY_STATUSES) {
      throw new Error(`the delivery answered ${value.statusCode}: ${value.body}`);
    }
    if (rep > 0) runs.push(ms);
  }
  return { whatsapp_1000_statuses_handler_ms: round(median(runs), 0), whatsapp_handler_runs: runs.length };
}
