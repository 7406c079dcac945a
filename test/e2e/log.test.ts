import { afterAll, beforeAll, expect, it } from 'vitest';
import { anchorFromEnv } from '#shared/log/anchor.ts';
import { verifyConsistency } from '#shared/log/merkle.ts';
import {
  LOG_KEY_NAME,
  logSignerFromPem,
  openCheckpoint,
  publicKeyFromPem,
  verifierKey,
  verifierKeyFromVkey,
} from '#shared/log/note.ts';
import { type Receipt, verifyReceipt } from '#shared/log/receipt.ts';
import { getSecrets } from '#shared/secrets.ts';
import { sealTenant } from '#shared/services/sealer.ts';
import { getDb } from '#store/db.ts';
import { grantBody, phone, tenantWithKey } from '../helpers/factories.ts';
import { client, describeLocal, startServer } from '../helpers/http.ts';

let server: Awaited<ReturnType<typeof startServer>>;
let tenant: string;
let admin: ReturnType<typeof client>;
let reader: ReturnType<typeof client>;
let auditor: ReturnType<typeof client>;
let anonymous: ReturnType<typeof client>;

/** Seals the tenant's events now (the local runtime's loop does it every 500 ms; tests do it by hand). */
async function seal(t = tenant) {
  // A moment first: an event recorded in the very millisecond of the seal's cutoff waits for the next one.
  await new Promise((resolve) => setTimeout(resolve, 5));
  const signer = logSignerFromPem((await getSecrets()).logKeys[0]);
  return sealTenant(getDb(), t, { signer, anchor: anchorFromEnv(), lagMs: 0 });
}

const ULID_UNKNOWN = '01JZZZZZZZZZZZZZZZZZZZZZZZ';

beforeAll(async () => {
  server = await startServer();
  const owner = await tenantWithKey(['admin']);
  tenant = owner.tenant;
  admin = client(server.url, owner.key);
  reader = client(server.url, (await tenantWithKey(['consents:read'], tenant)).key);
  auditor = client(server.url, (await tenantWithKey(['audit:read'], tenant)).key);
  anonymous = client(server.url);
});
afterAll(() => server.close());

const publicKey = async () => {
  const res = await anonymous.get('/v1/log/public-key');
  return verifierKey(LOG_KEY_NAME, publicKeyFromPem(res.body.publicKeyPem));
};

describeLocal('the verifiable log over HTTP', () => {
  it('publishes its public key without authentication, as a PEM and a C2SP verifier key', async () => {
    const res = await anonymous.get('/v1/log/public-key');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ algorithm: 'Ed25519', keyId: expect.stringMatching(/^[0-9a-f]{8}$/) });
    expect(res.body.publicKeyPem).toMatch(/^-----BEGIN PUBLIC KEY-----/);
    expect(res.body.vkey).toMatch(new RegExp(`^consent-gate\\+${res.body.keyId}\\+`));
    expect(verifierKeyFromVkey(res.body.vkey).keyId).toBe(res.body.keyId);
    const all = await anonymous.get('/v1/log/public-key?all=true');
    expect(all.body.keys[0]).toEqual(res.body);
    expect((await anonymous.get('/v1/log/public-key?all=maybe')).status).toBe(400);
  });

  it('answers 409 not_sealed with Retry-After for a recorded event until it is sealed, then its receipt', async () => {
    const grant = await admin.post('/v1/consents', grantBody());
    expect(grant.status).toBe(201);
    const early = await reader.get(`/v1/receipts/${grant.body.eventId}`);
    expect(early.status).toBe(409);
    expect(early.body.code).toBe('not_sealed');
    expect(early.headers.get('retry-after')).toBe('1');

    await seal();
    const res = await reader.get<Receipt>(`/v1/receipts/${grant.body.eventId}`);
    expect(res.status).toBe(200);
    expect(res.body.event).toMatchObject({ eventId: grant.body.eventId, subjectKey: grant.body.subjectKey });
    expect(res.body.checkpoint.origin).toBe(`consent-gate/${tenant}`);
    expect(res.body.leafIndex).toBeLessThan(res.body.checkpoint.treeSize);
    expect(verifyReceipt(res.body, await publicKey())).toEqual({ valid: true });
    // One byte of the event changed: the receipt no longer verifies.
    const forged = structuredClone(res.body);
    forged.event.channel = 'sms';
    expect(verifyReceipt(forged, await publicKey())).toMatchObject({ valid: false });
  });

  it('answers 404 event_not_found for an unknown event id, whatever its form', async () => {
    for (const id of [ULID_UNKNOWN, 'nope', '01ARZ3NDEKTSV4RRFFQ69G5FAV']) {
      const res = await reader.get(`/v1/receipts/${id}`);
      expect(res.status, id).toBe(404);
      expect(res.body.code).toBe('event_not_found');
    }
    // Another tenant's event is unknown here.
    const other = await tenantWithKey(['admin']);
    const api = client(server.url, other.key);
    const theirs = await api.post('/v1/consents', grantBody());
    await seal(other.tenant);
    expect((await api.get(`/v1/receipts/${theirs.body.eventId}`)).status).toBe(200);
    expect((await reader.get(`/v1/receipts/${theirs.body.eventId}`)).status).toBe(404);
  });

  it('serves the latest checkpoint as a signed note (text/plain) or JSON, signed by the published key', async () => {
    await admin.post('/v1/consents', grantBody());
    await seal();
    const text = await auditor.get('/v1/log/checkpoint');
    expect(text.status).toBe(200);
    expect(text.headers.get('content-type')).toMatch(/^text\/plain/);
    const [origin, size, root, blank, signature] = text.text.split('\n');
    expect(origin).toBe(`consent-gate/${tenant}`);
    expect(Number(size)).toBeGreaterThanOrEqual(2);
    expect(Buffer.from(root, 'base64')).toHaveLength(32);
    expect(blank).toBe('');
    expect(signature).toMatch(/^— consent-gate /);
    const opened = openCheckpoint(text.text, [await publicKey()]);
    expect('checkpoint' in opened && opened.checkpoint.treeSize).toBe(Number(size));

    const json = await auditor.get('/v1/log/checkpoint', { headers: { accept: 'application/json' } });
    expect(json.body).toEqual({
      origin: `consent-gate/${tenant}`,
      treeSize: Number(size),
      rootHash: root,
      timestamp: expect.any(String),
      keyId: (await anonymous.get('/v1/log/public-key')).body.keyId,
      note: text.text,
    });
    // The scopes: a consents:read key does not read the log's checkpoints, no key at all is 401.
    expect((await reader.get('/v1/log/checkpoint')).status).toBe(403);
    expect((await anonymous.get('/v1/log/checkpoint')).status).toBe(401);
    const fresh = await tenantWithKey(['audit:read']);
    const none = await client(server.url, fresh.key).get('/v1/log/checkpoint');
    expect(none.status).toBe(404);
    expect(none.body.code).toBe('no_checkpoint');
  });

  it('proves consistency between two checkpoints, and refuses malformed or out-of-tree sizes', async () => {
    const before = (await auditor.get('/v1/log/checkpoint', { headers: { accept: 'application/json' } })).body;
    await admin.post('/v1/consents', grantBody());
    await admin.post('/v1/consents', grantBody());
    await seal();
    const after = (await auditor.get('/v1/log/checkpoint', { headers: { accept: 'application/json' } })).body;
    expect(after.treeSize).toBe(before.treeSize + 2);
    const res = await auditor.get(`/v1/log/consistency?from=${before.treeSize}&to=${after.treeSize}`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ from: before.treeSize, to: after.treeSize });
    const proof = res.body.proof.map((h: string) => Buffer.from(h, 'base64'));
    const roots = [before, after].map((cp) => Buffer.from(cp.rootHash, 'base64'));
    expect(verifyConsistency(before.treeSize, after.treeSize, proof, roots[0], roots[1])).toBe(true);
    expect(verifyConsistency(before.treeSize, after.treeSize, proof, roots[1], roots[0])).toBe(false);

    const same = await auditor.get(`/v1/log/consistency?from=${after.treeSize}&to=${after.treeSize}`);
    expect(same.body).toEqual({ from: after.treeSize, to: after.treeSize, proof: [] });
    for (const query of [
      'from=0&to=1',
      `from=2&to=1`,
      `from=1&to=${after.treeSize + 1}`,
      'from=abc&to=2',
      'from=1.5&to=2',
      'from=-1&to=2',
      'from=1',
      'to=2',
      'from=1&to=2&extra=1',
    ]) {
      const bad = await auditor.get(`/v1/log/consistency?${query}`);
      expect(bad.status, query).toBe(400);
      expect(bad.headers.get('content-type')).toMatch(/problem\+json/);
    }
  });

  it('lists leaves [start, end), at most 1000, and refuses malformed bounds', async () => {
    const cp = (await auditor.get('/v1/log/checkpoint', { headers: { accept: 'application/json' } })).body;
    const res = await auditor.get('/v1/log/leaves?start=0&end=2');
    expect(res.status).toBe(200);
    expect(res.body.leaves).toHaveLength(2);
    expect(res.body.leaves[0]).toEqual({
      index: 0,
      eventId: expect.any(String),
      subjectKey: expect.any(String),
      eventHash: expect.stringMatching(/^[0-9a-f]{64}$/),
    });
    const tail = await auditor.get(`/v1/log/leaves?start=${cp.treeSize - 1}&end=${cp.treeSize + 10}`);
    expect(tail.body.leaves.map((l: { index: number }) => l.index)).toEqual([cp.treeSize - 1]);
    expect((await auditor.get('/v1/log/leaves?start=0&end=0')).body.leaves).toEqual([]);
    for (const query of [
      'start=0&end=1001',
      'start=5&end=2',
      'start=x&end=2',
      'start=0',
      'end=1',
      'start=1e2&end=200',
    ]) {
      expect((await auditor.get(`/v1/log/leaves?${query}`)).status, query).toBe(400);
    }
  });

  it('offers the person their receipts: in the access copy and on the preference centre (their own events only)', async () => {
    const subject = { phone: phone() };
    const grant = await admin.post('/v1/consents', grantBody({ subject }));
    const other = await admin.post('/v1/consents', grantBody());
    await seal();

    const access = await reader.post('/v1/subjects/access', { subject });
    expect(access.status).toBe(200);
    expect(access.body.receipts[0].receiptUrl).toBe(`/v1/receipts/${grant.body.eventId}`);
    expect(access.body.logReceipts).toEqual([
      {
        eventId: grant.body.eventId,
        type: 'consent.granted',
        at: expect.any(String),
        receiptUrl: `/v1/receipts/${grant.body.eventId}`,
      },
    ]);
    const viaAccess = await reader.get(access.body.logReceipts[0].receiptUrl);
    expect(viaAccess.status).toBe(200);

    const links = await admin.post('/v1/optout-links', { subject, channel: 'whatsapp', purpose: 'marketing' });
    const page = await anonymous.get(new URL(links.body.preferencesUrl).pathname);
    expect(page.status).toBe(200);
    const path = `${new URL(links.body.preferencesUrl).pathname}/receipts/${grant.body.eventId}`;
    expect(page.text).toContain(`href="${path}"`);
    const mine = await anonymous.get<Receipt>(path);
    expect(mine.status).toBe(200);
    expect(mine.headers.get('content-disposition')).toContain(`receipt-${grant.body.eventId}.json`);
    expect(verifyReceipt(mine.body, await publicKey())).toEqual({ valid: true });
    expect(mine.body).toEqual(viaAccess.body);
    // Someone else's event through this person's link: not found. A forged link: 400.
    const theirs = await anonymous.get(`${new URL(links.body.preferencesUrl).pathname}/receipts/${other.body.eventId}`);
    expect(theirs.status).toBe(404);
    expect(theirs.body.code).toBe('event_not_found');
    expect((await anonymous.get(`/preferences/v1.x.y.z/receipts/${grant.body.eventId}`)).status).toBe(400);
  });

  it('verifies the log in /v1/audit/verify beside the chains', async () => {
    await seal();
    const day = new Date().toISOString().slice(0, 10);
    const next = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
    const res = await auditor.get(`/v1/audit/verify?from=${day}&to=${next}`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ valid: true, broken: [] });
    expect(res.body.log).toMatchObject({
      treeSize: expect.any(Number),
      leaves: expect.any(Number),
      checkpoint: { anchored: true },
    });
    expect(res.body.log.leaves).toBe(res.body.log.treeSize);
  });
});
