import {
  InternalServerError,
  ProvisionedThroughputExceededException,
  ThrottlingException,
  TransactionCanceledException,
} from '@aws-sdk/client-dynamodb';
import * as lib from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { verifyChain } from '#domain/ledger.ts';
import { handler as authorize } from '#functions/authorizer/handler.ts';
import { handler as consents } from '#functions/consents/handler.ts';
import { handler as erasure } from '#functions/erasure/handler.ts';
import { handler as gate } from '#functions/gate/handler.ts';
import { handler as subjects } from '#functions/subjects/handler.ts';
import { lambdaContext } from '#infra/local/server.ts';
import { resolveSubject } from '#shared/identity/resolve.ts';
import { createDocumentClient, storeConfigFromEnv } from '#store/client.ts';
import { type Db, getDb, setDb } from '#store/db.ts';
import { listErasureRequests } from '#store/erasure.ts';
import { getState, listEvents } from '#store/subjects.ts';
import { grantBody, phone, tenantWithKey } from '../helpers/factories.ts';
import { apiEvent } from '../helpers/lambda.ts';

/*
 * Faults the real store cannot produce on demand, injected with aws-sdk-client-mock into the client the
 * handlers use. Every command not told to fail goes through to DynamoDB Local, so a fault hits one
 * operation in the middle of a real request, and what was (not) written is read back from the real table.
 */

const real: Db = getDb();
const faulty = createDocumentClient(storeConfigFromEnv());
const mock = mockClient(faulty);
const { BatchGetCommand, GetCommand, TransactWriteCommand } = lib;
const COMMANDS = [
  GetCommand,
  lib.PutCommand,
  lib.UpdateCommand,
  lib.DeleteCommand,
  lib.QueryCommand,
  BatchGetCommand,
  TransactWriteCommand,
];

/** Every command reaches the real table unless a test says otherwise. */
function passThrough() {
  mock.reset();
  for (const Command of COMMANDS) {
    // biome-ignore lint/suspicious/noExplicitAny: one pass-through for every command type
    mock.on(Command as any).callsFake((input) => real.client.send(new (Command as any)(input)));
  }
}

const meta = { $metadata: { httpStatusCode: 500 } };
/** The store failures the service must turn into a fail-closed 503. */
const FAULTS: [string, () => Error][] = [
  [
    'ProvisionedThroughputExceededException',
    () => new ProvisionedThroughputExceededException({ message: 'throttled', ...meta }),
  ],
  ['ThrottlingException', () => new ThrottlingException({ message: 'throttled', ...meta })],
  ['InternalServerError (5xx)', () => new InternalServerError({ message: 'internal error', ...meta })],
  ['TimeoutError', () => Object.assign(new Error('socket timed out'), { name: 'TimeoutError' })],
  ['AbortError', () => Object.assign(new Error('request aborted'), { name: 'AbortError' })],
];

const cancelled = (...codes: string[]) =>
  new TransactionCanceledException({
    message: 'Transaction cancelled',
    CancellationReasons: codes.map((Code) => ({ Code })),
    ...meta,
  });

let tenant: string;
let auth: { tenant: string; scopes: string; keyId: string };

beforeAll(async () => {
  ({ tenant } = await tenantWithKey(['admin']));
  auth = { tenant, scopes: 'admin', keyId: 'key_faults' };
  setDb({ client: faulty, table: real.table });
});
afterAll(() => {
  mock.restore();
  setDb(undefined);
});
beforeEach(passThrough);

const call = async (
  fn: typeof gate,
  routeKey: string,
  body?: unknown,
  headers?: Record<string, string>,
  params?: Record<string, string>,
) => {
  const event = apiEvent(routeKey, body, auth, headers);
  if (params) {
    event.pathParameters = params;
    event.rawPath = event.rawPath.replace(/\{(\w+)\}/g, (_, name) => params[name]);
  }
  const res = await fn(event, lambdaContext('faults'));
  return { status: res.statusCode, headers: res.headers ?? {}, body: JSON.parse(String(res.body || 'null')) };
};

function expectStoreUnavailable(res: Awaited<ReturnType<typeof call>>) {
  expect(res.status).toBe(503);
  expect(res.headers['content-type']).toBe('application/problem+json');
  expect(res.headers['retry-after']).toBeDefined();
  expect(res.body.code).toMatch(/^(store_unavailable|write_contention)$/);
}

/** What the real table holds for a subject: its state and its ledger. */
async function stored(subject: Record<string, string>) {
  const { subjectKey } = await resolveSubject(tenant, subject);
  return { state: await getState(real, tenant, subjectKey), events: await listEvents(real, tenant, subjectKey) };
}

describe.each(FAULTS)('when the store fails with %s', (_name, fault) => {
  it('the gate fails closed with 503 after a bounded number of reads', async () => {
    const body = grantBody();
    expect((await call(consents, 'POST /v1/consents', body)).status).toBe(201);
    mock.on(GetCommand).rejects(fault());
    mock.resetHistory();
    const res = await call(gate, 'POST /v1/gate/check', { subject: body.subject, channel: 'whatsapp' });
    expectStoreUnavailable(res);
    expect(res.body.decision).toBeUndefined();
    // The state read, and the policy read when the policy is not cached: no retry loop above the SDK's.
    expect(mock.commandCalls(GetCommand).length).toBeLessThanOrEqual(2);
  });

  it('check-batch fails closed with 503, one BatchGetItem per 100 keys', async () => {
    mock.on(BatchGetCommand).rejects(fault());
    const items = Array.from({ length: 250 }, () => ({ subject: { phone: phone() } }));
    const res = await call(gate, 'POST /v1/gate/check-batch', { channel: 'whatsapp', items });
    expectStoreUnavailable(res);
    expect(mock.commandCalls(BatchGetCommand).length).toBeLessThanOrEqual(3);
  });

  it('lookup answers 503, not 404', async () => {
    const body = grantBody();
    expect((await call(consents, 'POST /v1/consents', body)).status).toBe(201);
    mock.on(GetCommand).rejects(fault());
    expectStoreUnavailable(await call(subjects, 'POST /v1/subjects/lookup', { subject: body.subject }));
  });

  it('a grant answers 503 and stores nothing, and its Idempotency-Key can be retried', async () => {
    const body = grantBody();
    mock.on(TransactWriteCommand).rejects(fault());
    const headers = { 'idempotency-key': `faults-${Math.random()}` };
    expectStoreUnavailable(await call(consents, 'POST /v1/consents', body, headers));
    expect(mock.commandCalls(TransactWriteCommand)).toHaveLength(1);
    expect(await stored(body.subject)).toEqual({ state: undefined, events: [] });

    passThrough();
    const retried = await call(consents, 'POST /v1/consents', body, headers);
    expect(retried.status).toBe(201);
    expect(retried.headers['idempotent-replayed']).toBeUndefined();
    const after = await stored(body.subject);
    expect(after.events).toHaveLength(1);
    expect(verifyChain(after.events).valid).toBe(true);
  });

  it('a withdrawal answers 503 and leaves the consent as it was', async () => {
    const body = grantBody();
    expect((await call(consents, 'POST /v1/consents', body)).status).toBe(201);
    const before = await stored(body.subject);
    mock.on(TransactWriteCommand).rejects(fault());
    expectStoreUnavailable(
      await call(consents, 'POST /v1/consents/withdraw', { subject: body.subject, channel: 'whatsapp' }),
    );
    expect(await stored(body.subject)).toEqual(before);
  });

  it('an erasure request answers 503 and leaves no half-received request behind', async () => {
    const subject = { phone: phone() };
    expect((await call(consents, 'POST /v1/consents', grantBody({ subject }))).status).toBe(201);
    const before = await stored(subject);
    mock.on(TransactWriteCommand).rejects(fault());
    const res = await call(erasure, 'POST /v1/erasure-requests', {
      subjects: [subject],
      requestedVia: 'email',
      reference: `faults-${_name}`,
    });
    expectStoreUnavailable(res);
    expect(await stored(subject)).toEqual(before);
    const received = await listErasureRequests(real, tenant, 'received', { limit: 100 });
    expect(received.filter((r) => r.reference === `faults-${_name}`)).toEqual([]);
  });

  it('the authorizer cannot read the key: 503, not 401 and not an allow', async () => {
    const { key } = await tenantWithKey(['gate:check']);
    mock.on(GetCommand).rejects(fault());
    const { context } = await authorize({ headers: { authorization: `Bearer ${key}` } });
    const event = apiEvent(
      'POST /v1/gate/check',
      { subject: { phone: phone() }, channel: 'whatsapp' },
      context as never,
    );
    const res = await gate(event, lambdaContext('faults'));
    expect(res.statusCode).toBe(503);
  });
});

describe('cancelled transactions', () => {
  it('retries a conflict (ConditionalCheckFailed) and then succeeds with an intact chain', async () => {
    const body = grantBody();
    expect((await call(consents, 'POST /v1/consents', body)).status).toBe(201);
    // Two conflicts, then the real table.
    mock
      .on(TransactWriteCommand)
      .rejectsOnce(cancelled('None', 'ConditionalCheckFailed'))
      .rejectsOnce(cancelled('TransactionConflict', 'None'))
      .callsFake((input) => real.client.send(new TransactWriteCommand(input)));
    const res = await call(consents, 'POST /v1/consents/withdraw', { subject: body.subject, channel: 'whatsapp' });
    expect(res.status).toBe(200);
    expect(mock.commandCalls(TransactWriteCommand)).toHaveLength(3);
    const { events } = await stored(body.subject);
    expect(events.map((e) => e.type)).toEqual(['consent.granted', 'consent.withdrawn']);
    expect(verifyChain(events).valid).toBe(true);
  });

  it('gives up on endless contention with 503 write_contention after a bounded number of attempts', async () => {
    const body = grantBody();
    mock.on(TransactWriteCommand).rejects(cancelled('None', 'ConditionalCheckFailed'));
    const res = await call(consents, 'POST /v1/consents', body);
    expect(res.status).toBe(503);
    expect(res.body.code).toBe('write_contention');
    const attempts = mock.commandCalls(TransactWriteCommand).length;
    expect(attempts).toBeGreaterThan(1);
    expect(attempts).toBeLessThanOrEqual(40);
    expect(await stored(body.subject)).toEqual({ state: undefined, events: [] });
  });

  it('does not retry a transaction cancelled by throttling: 503 at once, nothing stored', async () => {
    const body = grantBody();
    mock.on(TransactWriteCommand).rejects(cancelled('ThrottlingError', 'None'));
    expectStoreUnavailable(await call(consents, 'POST /v1/consents', body));
    expect(mock.commandCalls(TransactWriteCommand)).toHaveLength(1);
    expect(await stored(body.subject)).toEqual({ state: undefined, events: [] });
  });
});

describe('unprocessed keys', () => {
  it('check-batch retries unprocessed keys a bounded number of times, then 503', async () => {
    mock.on(BatchGetCommand).callsFake(async (input) => ({
      Responses: { [real.table]: [] },
      UnprocessedKeys: input.RequestItems,
    }));
    const items = Array.from({ length: 20 }, () => ({ subject: { phone: phone() } }));
    expectStoreUnavailable(await call(gate, 'POST /v1/gate/check-batch', { channel: 'whatsapp', items }));
    const rounds = mock.commandCalls(BatchGetCommand).length;
    expect(rounds).toBeGreaterThan(1);
    expect(rounds).toBeLessThanOrEqual(8);
  });

  it('check-batch completes when the store works off the unprocessed keys', async () => {
    const body = grantBody();
    expect((await call(consents, 'POST /v1/consents', body)).status).toBe(201);
    mock
      .on(BatchGetCommand)
      .callsFakeOnce(async (input) => ({ Responses: { [real.table]: [] }, UnprocessedKeys: input.RequestItems }))
      .callsFake((input) => real.client.send(new BatchGetCommand(input)));
    const res = await call(gate, 'POST /v1/gate/check-batch', {
      channel: 'whatsapp',
      items: [{ subject: body.subject }, { subject: { phone: phone() } }],
    });
    expect(res.status).toBe(200);
    expect(res.body.results.map((r: { decision: string }) => r.decision)).toEqual(['allow', 'block']);
    expect(mock.commandCalls(BatchGetCommand)).toHaveLength(2);
  });
});
