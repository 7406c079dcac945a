import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { handler as consents } from '#functions/consents/handler.ts';
import { handler as gate } from '#functions/gate/handler.ts';
import { lambdaContext } from '#infra/local/server.ts';
import { createDocumentClient } from '#store/client.ts';
import { setDb } from '#store/db.ts';
import { grantBody, phone, tenantId } from '../helpers/factories.ts';
import { apiEvent } from '../helpers/lambda.ts';

/*
 * The real client configuration (shared/store/client.ts: maxAttempts, timeouts) against an endpoint that
 * misbehaves at the HTTP level: a DynamoDB that throttles, answers 5xx or never answers. Counts the
 * attempts the SDK really makes, so "bounded retries" is measured on the wire, not assumed.
 */

type Behaviour = (req: IncomingMessage, res: ServerResponse) => void;
let behaviour: Behaviour = () => {};
const attempts: string[] = [];
let fake: Server;
let endpoint: string;

beforeAll(async () => {
  fake = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', () => {
      const isPolicy = body.includes('"POLICY"');
      attempts.push(`${req.headers['x-amz-target']} ${isPolicy ? 'policy' : 'subject'}`);
      // The policy read finds no policy (defaults): the fault hits the subject's state read alone.
      if (isPolicy) {
        res.writeHead(200, { 'content-type': 'application/x-amz-json-1.0' });
        res.end('{}');
        return;
      }
      behaviour(req, res);
    });
  });
  await new Promise<void>((resolve) => fake.listen(0, '127.0.0.1', () => resolve()));
  endpoint = `http://127.0.0.1:${(fake.address() as AddressInfo).port}`;
});
afterAll(async () => {
  setDb(undefined);
  fake.closeAllConnections();
  await new Promise<void>((resolve) => fake.close(() => resolve()));
});
afterEach(() => {
  attempts.length = 0;
  delete process.env.DYNAMODB_TIMEOUT_MS;
});

const awsError = (status: number, type: string): Behaviour => {
  return (_req, res) => {
    res.writeHead(status, { 'content-type': 'application/x-amz-json-1.0', 'x-amzn-requestid': 'fake' });
    res.end(JSON.stringify({ __type: `com.amazonaws.dynamodb.v20120810#${type}`, message: type }));
  };
};

/** A fresh client on the fake endpoint (each case starts with a full retry quota). */
function useFakeStore() {
  setDb({ client: createDocumentClient({ tableName: 'consent-gate-fake', endpoint }), table: 'consent-gate-fake' });
}

const auth = () => ({ tenant: tenantId('sdk'), scopes: 'admin', keyId: 'key_sdk' });

const gateCheck = () =>
  gate(
    apiEvent('POST /v1/gate/check', { subject: { phone: phone() }, channel: 'whatsapp' }, auth()),
    lambdaContext('gate'),
  );

describe('SDK retries against a misbehaving DynamoDB endpoint', () => {
  it.each([
    ['HTTP 500 InternalServerError', awsError(500, 'InternalServerError')],
    ['HTTP 400 ProvisionedThroughputExceededException', awsError(400, 'ProvisionedThroughputExceededException')],
    ['HTTP 400 ThrottlingException', awsError(400, 'ThrottlingException')],
    ['HTTP 503 ServiceUnavailable', awsError(503, 'ServiceUnavailable')],
  ])('%s: the gate tries the read 3 times at most, then answers 503', async (_name, fault) => {
    behaviour = fault;
    useFakeStore();
    const res = await gateCheck();
    expect(res.statusCode).toBe(503);
    expect(res.headers?.['content-type']).toBe('application/problem+json');
    const stateReads = attempts.filter((a) => a === 'DynamoDB_20120810.GetItem subject');
    expect(stateReads.length).toBeGreaterThan(1);
    expect(stateReads.length).toBeLessThanOrEqual(3);
  });

  it('a store that never answers: the gate gives up after its timeouts with 503, not a hang', async () => {
    process.env.DYNAMODB_TIMEOUT_MS = '200';
    behaviour = () => {}; // accept the request, never answer
    useFakeStore();
    const res = await gateCheck();
    expect(res.statusCode).toBe(503);
    const stateReads = attempts.filter((a) => a === 'DynamoDB_20120810.GetItem subject');
    expect(stateReads.length).toBeGreaterThanOrEqual(1);
    expect(stateReads.length).toBeLessThanOrEqual(3);
  });

  it('a write that keeps failing is tried a bounded number of times and answers 503', async () => {
    let call = 0;
    // The state read finds nothing; every transaction attempt gets a 500.
    behaviour = (req, res) => {
      call++;
      if (req.headers['x-amz-target'] === 'DynamoDB_20120810.GetItem') {
        res.writeHead(200, { 'content-type': 'application/x-amz-json-1.0' });
        res.end('{}');
        return;
      }
      awsError(500, 'InternalServerError')(req, res);
    };
    useFakeStore();
    const event = apiEvent('POST /v1/consents', grantBody(), auth());
    const res = await consents(event, lambdaContext('consents'));
    expect(res.statusCode).toBe(503);
    const writes = attempts.filter((a) => a.startsWith('DynamoDB_20120810.TransactWriteItems'));
    expect(writes.length).toBeGreaterThan(1);
    expect(writes.length).toBeLessThanOrEqual(3);
    // Every attempt but the policy read (answered above) reached the failing store.
    expect(call).toBe(attempts.filter((a) => !a.endsWith(' policy')).length);
  });
});
