// `npx tsx bench/profile.ts`: where the gate's own CPU time goes, with the store stubbed out (no I/O), so
// the overhead above the DynamoDB read can be taken apart. Used to find the causes in docs/performance.md.
process.env.DATA_DIR = 'memory';
process.env.POWERTOOLS_LOG_LEVEL ??= 'ERROR';

import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { ulid } from 'ulid';
import { apiEvent, lambdaContext, phoneOf } from './lib.ts';

const { decide } = await import('../shared/domain/gate.ts');
const { defaultPolicy } = await import('../shared/domain/policy.ts');
const { normaliseSubject } = await import('../shared/identity/subject.ts');
const { resolveSubject } = await import('../shared/identity/resolve.ts');
const { newUlid } = await import('../shared/ids.ts');
const { GateCheckSchema } = await import('../shared/schemas/gate.ts');
const { setDb } = await import('../shared/store/db.ts');

const grantedAt = new Date().toISOString();
const stateOf = (subjectKey: string) => ({
  subjectKey,
  version: 1,
  seq: 1,
  head: 'h'.repeat(64),
  scopes: {
    'whatsapp/marketing': {
      status: 'granted',
      seq: 1,
      eventId: newUlid(),
      source: 'web_form',
      noticeVersion: 'v3',
      grantedAt,
    },
  },
});

/** A client that answers every read at once: the state for state keys, nothing for the policy. */
const stub = {
  send: async (command: {
    input: { Key?: { PK: string; SK: string }; RequestItems?: Record<string, { Keys: { PK: string }[] }> };
  }) => {
    const { Key, RequestItems } = command.input;
    if (Key) return Key.SK === 'STATE' ? { Item: { ...Key, tenant: 't', ...stateOf(Key.PK.split('#S#')[1]) } } : {};
    const [table, { Keys }] = Object.entries(RequestItems ?? {})[0];
    return { Responses: { [table]: Keys.map((k) => ({ ...k, tenant: 't', ...stateOf(k.PK.split('#S#')[1]) })) } };
  },
} as unknown as DynamoDBDocumentClient;
setDb({ client: stub, table: 'profile' });
const { handler: gate } = await import('../functions/gate/handler.ts');

const auth = { tenant: 't', scopes: 'gate:check', keyId: 'key_profile' };
const body = { subject: { phone: '+33612345678' }, channel: 'whatsapp' };
const batch = {
  channel: 'whatsapp',
  items: Array.from({ length: 1000 }, (_, i) => ({ subject: { phone: phoneOf(i) } })),
};
const policy = defaultPolicy();
const state = stateOf('k');

async function measure(name: string, fn: () => unknown, runs = 20_000) {
  for (let i = 0; i < runs / 10; i++) await fn();
  const started = performance.now();
  for (let i = 0; i < runs; i++) await fn();
  const us = ((performance.now() - started) / runs) * 1000;
  process.stdout.write(`${name.padEnd(40)} ${us >= 1000 ? `${(us / 1000).toFixed(1)} ms` : `${us.toFixed(1)} µs`}\n`);
}

await measure('gate handler, whole (store stubbed)', () =>
  gate(apiEvent('POST /v1/gate/check', body, auth), lambdaContext('gate')),
);
await measure('  GateCheckSchema.parse', () => GateCheckSchema.parse(body));
await measure('  normaliseSubject (libphonenumber max)', () => normaliseSubject(body.subject));
await measure('  resolveSubject (+ HMAC)', () => resolveSubject('t', body.subject, 'whatsapp'));
await measure('  decide', () =>
  decide(state as never, { channel: 'whatsapp', purpose: 'marketing', at: grantedAt }, policy),
);
await measure('  ulid() (default PRNG)', () => ulid());
await measure('  newUlid() (pooled PRNG)', () => newUlid());
await measure(
  'check-batch of 1000, whole (store stubbed)',
  () => gate(apiEvent('POST /v1/gate/check-batch', batch, auth), lambdaContext('gate')),
  50,
);
await measure(
  '  resolveSubject x 1000',
  () => Promise.all(batch.items.map((item) => resolveSubject('t', item.subject, 'whatsapp'))),
  50,
);
