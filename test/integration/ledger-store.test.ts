import { GetCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import { requestErasure } from '#domain/erasure.ts';
import { verifyChain } from '#domain/ledger.ts';
import { grantConsent, MAX_GRANTED_SCOPES, withdrawConsent } from '#domain/subject-state.ts';
import { getDb } from '#store/db.ts';
import { eraseSubject, purgeProof } from '#store/erasure.ts';
import { appendChange, getState, getStates, listEvents, toState } from '#store/subjects.ts';
import { keys } from '#store/table.ts';
import { tenantId, testActor } from '../helpers/factories.ts';

const grantInput = (i: number) => ({
  channel: 'whatsapp' as const,
  purpose: `p${i}`,
  source: 'web_form',
  noticeVersion: `v${i}`,
  grantedAt: new Date().toISOString(),
  data: { writer: i },
});

describe('the ledger store against DynamoDB Local', () => {
  it('lets 40 concurrent writers on one subject all succeed with one event each and a valid chain', async () => {
    const db = getDb();
    const tenant = tenantId();
    const subjectKey = 'concurrent-subject-000000000000000000000000';
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        appendChange(
          db,
          tenant,
          subjectKey,
          // Ten grants (a subject's most scopes) and thirty objections, all racing.
          (current, next) =>
            i < MAX_GRANTED_SCOPES
              ? grantConsent(current, grantInput(i), next, new Date().toISOString())
              : withdrawConsent(
                  current,
                  { channel: 'whatsapp', purpose: `q${i}`, source: 'api', data: { writer: i } },
                  next,
                  new Date().toISOString(),
                ),
          { actor: testActor },
        ),
      ),
    );
    const events = await listEvents(db, tenant, subjectKey);
    expect(events).toHaveLength(40);
    expect(events.map((e) => e.seq)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    // One event per writer: every writer's id appears exactly once.
    expect(new Set(events.map((e) => e.data.writer)).size).toBe(40);
    expect(new Set(results.map((r) => r.event.eventId)).size).toBe(40);
    const chain = verifyChain(events);
    expect(chain.valid).toBe(true);
    const state = await getState(db, tenant, subjectKey);
    expect(state?.version).toBe(40);
    expect(state?.seq).toBe(40);
    expect(state?.head).toBe(chain.head);
    // The state equals the last event applied: every granting writer's scope is there, each from its own event.
    for (let i = 0; i < MAX_GRANTED_SCOPES; i++) {
      const entry = state?.scopes[`whatsapp|p${i}`];
      expect(entry?.grantEventId).toBe(events.find((e) => e.data.writer === i)?.eventId);
    }
  });

  it('writes nothing when the change is refused', async () => {
    const db = getDb();
    const tenant = tenantId();
    const subjectKey = 'refused-subject-0000000000000000000000000000';
    await appendChange(
      db,
      tenant,
      subjectKey,
      (c, n) => withdrawConsent(c, { source: 'api', data: {} }, n, new Date().toISOString()),
      { actor: testActor },
    );
    await expect(
      appendChange(
        db,
        tenant,
        subjectKey,
        (c, n) => grantConsent(c, { ...grantInput(1), source: 'import' }, n, new Date().toISOString()),
        { actor: testActor },
      ),
    ).rejects.toMatchObject({ code: 'fresh_consent_required' });
    expect(await listEvents(db, tenant, subjectKey)).toHaveLength(1);
    expect((await getState(db, tenant, subjectKey))?.version).toBe(1);
  });

  it('reads many states in chunks of 100 (BatchGetItem), missing ones absent', async () => {
    const db = getDb();
    const tenant = tenantId();
    const subjectKeys = Array.from({ length: 230 }, (_, i) => `batch-${String(i).padStart(39, '0')}`);
    await Promise.all(
      subjectKeys
        .filter((_, i) => i % 2 === 0)
        .map((sk) =>
          appendChange(db, tenant, sk, (c, n) => grantConsent(c, grantInput(0), n, new Date().toISOString()), {
            actor: testActor,
          }),
        ),
    );
    const states = await getStates(db, tenant, [...subjectKeys, subjectKeys[0]]);
    expect(states.size).toBe(115);
    expect(states.get(subjectKeys[2])?.scopes['whatsapp|p0']?.grantSource).toBe('web_form');
    expect(states.has(subjectKeys[1])).toBe(false);
  });

  it('keeps tenants apart: same subjectKey, different tenant, different data', async () => {
    const db = getDb();
    const [a, b] = [tenantId(), tenantId()];
    const sk = 'shared-subject-key-00000000000000000000000000';
    await appendChange(db, a, sk, (c, n) => grantConsent(c, grantInput(0), n, new Date().toISOString()), {
      actor: testActor,
    });
    expect(await getState(db, b, sk)).toBeUndefined();
    expect(await listEvents(db, b, sk)).toEqual([]);
  });

  it('erases a subject to a tombstone and keeps the public part of its events as proof, chain intact', async () => {
    const db = getDb();
    const tenant = tenantId();
    const sk = 'erased-subject-00000000000000000000000000000';
    for (let i = 0; i < 5; i++) {
      const input = { ...grantInput(i), details: { evidence: { text: `writer ${i} agreed` } } };
      await appendChange(db, tenant, sk, (c, n) => grantConsent(c, input, n, new Date().toISOString()), {
        actor: testActor,
      });
    }
    await appendChange(db, tenant, sk, (c) => requestErasure(c, 'er_test', new Date().toISOString()), {
      actor: testActor,
    });
    const now = new Date().toISOString();
    await eraseSubject(db, tenant, sk, { requestId: 'er_test', reason: 'request', now, actor: testActor });
    const events = await listEvents(db, tenant, sk);
    expect(events.map((e) => e.type)).toEqual([
      ...Array(5).fill('consent.granted'),
      'erasure.requested',
      'erasure.completed',
    ]);
    expect(events.every((e) => e.details === undefined && e.detailsSalt === undefined)).toBe(true);
    expect(events[0].detailsDigest).toMatch(/^[0-9a-f]{64}$/);
    expect(verifyChain(events).valid).toBe(true);
    const state = await getState(db, tenant, sk);
    expect(state?.scopes).toEqual({});
    expect(state?.head).toBe(events.at(-1)?.hash);
    expect(state?.erasure).toMatchObject({ requestId: 'er_test', status: 'completed', reason: 'request' });
    expect(Date.parse(state?.erasure?.proofUntil ?? '') - Date.parse(now)).toBe(1825 * 86_400_000);
    const raw = await db.client.send(
      new QueryCommand({
        TableName: db.table,
        KeyConditionExpression: 'PK = :pk',
        ExpressionAttributeValues: { ':pk': keys.subject(tenant, sk) },
      }),
    );
    expect(JSON.stringify(raw.Items)).not.toContain('agreed');
    // After the proof period only the tombstone stays.
    expect(await purgeProof(db, tenant, sk, new Date().toISOString())).toBe(true);
    expect(await listEvents(db, tenant, sk)).toEqual([]);
    const tomb = await db.client.send(
      new GetCommand({ TableName: db.table, Key: { PK: keys.subject(tenant, sk), SK: 'STATE' } }),
    );
    const tombstone = toState(tenant, tomb.Item);
    expect(tombstone?.erasure).toMatchObject({ status: 'completed', proofPurgedAt: expect.any(String) });
    expect(JSON.stringify(tombstone)).not.toContain('writer');
  });
});
