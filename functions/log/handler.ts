import { api, publicRoute } from '#http/api.ts';
import { dispatch } from '#http/dispatch.ts';
import { NotFoundError, NotSealedError, ValidationError } from '#http/errors.ts';
import { API_HEADERS, jsonResponse } from '#http/problem.ts';
import { parseOrThrow } from '#http/validation.ts';
import { anchorFromEnv } from '#shared/log/anchor.ts';
import { consistencyNodes, consistencyProof, nodeKey } from '#shared/log/merkle.ts';
import { LogConsistencyQuerySchema, LogLeavesQuerySchema, LogPublicKeyQuerySchema } from '#shared/schemas/log.ts';
import { logVerifierKeys, publicKeyView } from '#shared/services/log-keys.ts';
import { checkpointView, receiptOf } from '#shared/services/log-receipts.ts';
import { getDb } from '#store/db.ts';
import { getCheckpoint, getHead, getNodes, listLeaves } from '#store/log.ts';

const wantsJson = (accept: string | undefined) => /\bapplication\/json\b/i.test(accept ?? '');

/**
 * GET /v1/log/checkpoint — the latest signed checkpoint: the C2SP signed note as `text/plain`, or with
 * `Accept: application/json` the note and its fields.
 */
export const checkpoint = api('GET /v1/log/checkpoint', {}, async ({ tenant, event }) => {
  const cp = await getCheckpoint(getDb(), tenant);
  if (!cp) throw new NotFoundError('nothing has been sealed into this log yet', 'no_checkpoint');
  const accept = Object.entries(event.headers ?? {}).find(([k]) => k.toLowerCase() === 'accept')?.[1];
  if (wantsJson(accept)) return { status: 200, body: checkpointView(cp), headers: { vary: 'accept' } };
  return {
    statusCode: 200,
    headers: { ...API_HEADERS, 'content-type': 'text/plain; charset=utf-8', vary: 'accept' },
    body: cp.note,
  };
});

/** GET /v1/log/public-key — the key that signs checkpoints; `?all=true` every key (rotation keeps the old). */
export const publicKey = publicRoute('GET /v1/log/public-key', async (event) => {
  const query = parseOrThrow(LogPublicKeyQuerySchema, event.queryStringParameters ?? {}, 'query');
  const keys = (await logVerifierKeys(anchorFromEnv())).map(publicKeyView);
  if (query.all === 'true') return jsonResponse(200, { keys });
  return jsonResponse(200, keys[0]);
});

/** GET /v1/log/consistency — the proof that the tree of size `to` extends the tree of size `from`. */
export const consistency = api(
  'GET /v1/log/consistency',
  { query: LogConsistencyQuerySchema },
  async ({ query: q, tenant }) => {
    const db = getDb();
    const size = (await getHead(db, tenant))?.size ?? 0;
    if (q.to > size) {
      const message = `must be at most the tree size, ${size}`;
      throw new ValidationError(`query is invalid — to: ${message}`, [{ path: 'query.to', message }]);
    }
    if (q.from === q.to) return { status: 200, body: { from: q.from, to: q.to, proof: [] } };
    const nodes = await getNodes(db, tenant, consistencyNodes(q.from, q.to));
    const proof = consistencyProof(q.from, q.to, (id) => {
      const hash = nodes.get(nodeKey(id));
      if (!hash) throw new Error(`log node ${nodeKey(id)} is missing`);
      return hash;
    });
    return { status: 200, body: { from: q.from, to: q.to, proof: proof.map((h) => h.toString('base64')) } };
  },
);

/** GET /v1/log/leaves — leaves `[start, end)` (at most 1000): what each commits to. Past the tree: none. */
export const leaves = api('GET /v1/log/leaves', { query: LogLeavesQuerySchema }, async ({ query: q, tenant }) => {
  const db = getDb();
  const size = (await getHead(db, tenant))?.size ?? 0;
  const end = Math.min(q.end, size);
  const found = q.start < end ? await listLeaves(db, tenant, q.start, end) : [];
  return {
    status: 200,
    body: {
      treeSize: size,
      leaves: found.map((l) => ({
        index: l.index,
        eventId: l.eventId,
        subjectKey: l.subjectKey,
        eventHash: l.eventHash,
      })),
    },
  };
});

/** GET /v1/receipts/{eventId} — the event, its leaf index, inclusion proof and the signed checkpoint. */
export const receipt = api('GET /v1/receipts/{eventId}', {}, async ({ tenant, event }) => {
  const eventId = event.pathParameters?.eventId ?? '';
  const result = await receiptOf(getDb(), tenant, eventId);
  if (result.kind === 'not_found') throw new NotFoundError(result.detail, 'event_not_found');
  if (result.kind === 'not_sealed') throw new NotSealedError(result.detail);
  return { status: 200, body: result.receipt };
});

export const handler = dispatch('log', [checkpoint, publicKey, consistency, leaves, receipt]);
