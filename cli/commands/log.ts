import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { TenantSchema } from '#shared/auth/api-keys.ts';
import { anchorFromEnv } from '#shared/log/anchor.ts';
import { verifyConsistency } from '#shared/log/merkle.ts';
import { type Checkpoint, type LogVerifierKey, openCheckpoint } from '#shared/log/note.ts';
import { logVerifierKeys } from '#shared/services/log-keys.ts';
import { type LogReport, verifyLog } from '#shared/services/log-verify.ts';
import type { Db } from '#store/db.ts';
import { type CliIo, UsageError } from '../io.ts';
import { readLogKey } from './receipt.ts';

const USAGE = `consent-gate log verify --tenant T [--key KEYFILE] [--json]
  recomputes every leaf of the tenant's log from its event, looks every sealed event up among the leaves,
  and checks the tree against the latest checkpoint and every checkpoint kept in the table and outside it
  (DATA_DIR/checkpoints, or the CHECKPOINT_BUCKET S3 bucket). --key: check signatures with this public key
  (PEM or vkey) rather than the service's own keys. exit code 1 when anything is wrong.
consent-gate log witness --url URL --key KEYFILE --state DIR [--json]
  an outside witness: fetches the latest checkpoint (API key from CONSENT_GATE_API_KEY, audit:read), checks its
  signature and that it extends the checkpoint kept in DIR (consistency proof), then keeps it.
  exit code 1 on a bad signature, a fork or a rollback (the kept checkpoint is left as it was).`;

/** `log verify` and `log witness`. Only `verify` uses the store (see {@link logNeedsStore}). */
export async function logCommand(db: Db | undefined, args: string[], io: CliIo): Promise<number> {
  const [action, ...rest] = args;
  if (action === 'verify') return verify(db as Db, rest, io);
  if (action === 'witness') return witness(rest, io);
  throw new UsageError(USAGE);
}

/** `log witness` talks to the service over HTTP only: no store. */
export const logNeedsStore = (args: string[]) => args[0] !== 'witness';

async function verify(db: Db, args: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      tenant: { type: 'string' },
      key: { type: 'string', multiple: true },
      json: { type: 'boolean', default: false },
    },
  });
  const tenant = TenantSchema.safeParse(values.tenant);
  if (!tenant.success) throw new UsageError(`--tenant is required: ${tenant.error.issues[0].message}\n${USAGE}`);
  // With --key the service's secrets are not read at all (a verifier outside need not have them).
  const keys = values.key?.length ? values.key.map(readLogKey) : await logVerifierKeys(anchorFromEnv());
  const options = { keys, anchor: anchorFromEnv() };
  const report = await verifyLog(db, tenant.data, options);
  if (values.json) io.out(JSON.stringify(report));
  else printReport(report, io);
  return report.valid ? 0 : 1;
}

function printReport(report: LogReport, io: CliIo) {
  for (const b of report.broken) {
    const where = [b.leafIndex === null ? 'leaf -' : `leaf ${b.leafIndex}`, b.subjectKey ?? '-', b.eventId ?? '-'].join(
      '  ',
    );
    io.out(`BROKEN  ${where}  ${b.reason}  ${b.detail}`);
  }
  const cp = report.checkpoint;
  const latest = cp
    ? `latest checkpoint: size ${cp.treeSize}${cp.timestamp ? `, signed ${cp.timestamp}` : ''}${cp.anchored ? ', anchored' : ''}`
    : 'no checkpoint yet';
  io.out(
    `${report.valid ? 'log intact' : `log ALTERED: ${report.broken.length} break(s)`} — tree of ${report.treeSize} leaves; ${report.leaves} leaves and ${report.events} events checked against ${report.checkpoints} checkpoint(s), ${report.anchored} anchored; ${latest}`,
  );
}

/** What a witness keeps of a checkpoint: the signed note (re-verified when read back). */
const stateFile = (dir: string, origin: string) => join(dir, `${encodeURIComponent(origin)}.note`);

function open(note: string, key: LogVerifierKey, what: string): Checkpoint {
  const opened = openCheckpoint(note, [key]);
  if ('error' in opened) throw new WitnessAlarm(`${what} does not verify with the key: ${opened.error}`);
  return opened.checkpoint;
}

/** A finding that makes the witness exit 1. */
class WitnessAlarm extends Error {}

async function getJson(url: string, apiKey: string): Promise<Record<string, unknown>> {
  let res: Response;
  try {
    res = await fetch(url, { headers: { authorization: `Bearer ${apiKey}`, accept: 'application/json' } });
  } catch (error) {
    throw new Error(`cannot reach ${url}: ${(error as Error).message}`);
  }
  const text = await res.text();
  if (!res.ok) throw new Error(`${url} answered ${res.status}: ${text.slice(0, 300)}`);
  try {
    return JSON.parse(text);
  } catch {
    throw new Error(`${url} did not answer JSON`);
  }
}

async function witness(args: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      url: { type: 'string' },
      key: { type: 'string' },
      state: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  if (!values.url || !values.key || !values.state) throw new UsageError(USAGE);
  const apiKey = process.env.CONSENT_GATE_API_KEY;
  if (!apiKey) throw new UsageError(`set CONSENT_GATE_API_KEY to an API key with the audit:read scope\n${USAGE}`);
  const key = readLogKey(values.key);
  const base = values.url.replace(/\/+$/, '');
  const say = (verdict: string, detail: string, extra: Record<string, unknown> = {}) =>
    io.out(values.json ? JSON.stringify({ verdict, detail, ...extra }) : `${verdict.toUpperCase()}: ${detail}`);

  const fetched = await getJson(`${base}/v1/log/checkpoint`, apiKey);
  try {
    if (typeof fetched.note !== 'string') throw new WitnessAlarm('the service answered no signed note');
    const latest = open(fetched.note, key, 'the served checkpoint');
    const path = stateFile(values.state, latest.origin);
    let keptNote: string | undefined;
    try {
      keptNote = readFileSync(path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    const keep = () => {
      mkdirSync(values.state as string, { recursive: true });
      writeFileSync(`${path}.tmp`, fetched.note as string);
      renameSync(`${path}.tmp`, path);
    };
    const sizes = { treeSize: latest.treeSize, origin: latest.origin };
    if (keptNote === undefined) {
      keep();
      say('ok', `first checkpoint of ${latest.origin} kept: size ${latest.treeSize}`, sizes);
      return 0;
    }
    const kept = open(keptNote, key, `the checkpoint kept in ${path}`);
    if (latest.treeSize < kept.treeSize) {
      throw new WitnessAlarm(
        `rollback: the service serves a tree of ${latest.treeSize} leaves, smaller than the ${kept.treeSize} it signed before`,
      );
    }
    if (latest.treeSize === kept.treeSize) {
      if (!latest.rootHash.equals(kept.rootHash)) {
        throw new WitnessAlarm(`fork: two different trees of size ${latest.treeSize} were signed`);
      }
      say('ok', `${latest.origin} unchanged at size ${latest.treeSize}`, sizes);
      return 0;
    }
    if (kept.treeSize > 0) {
      const proof = await getJson(`${base}/v1/log/consistency?from=${kept.treeSize}&to=${latest.treeSize}`, apiKey);
      const hashes = Array.isArray(proof.proof) ? proof.proof.map((h) => Buffer.from(String(h), 'base64')) : [];
      if (!verifyConsistency(kept.treeSize, latest.treeSize, hashes, kept.rootHash, latest.rootHash)) {
        throw new WitnessAlarm(
          `fork: the tree of size ${latest.treeSize} does not extend the tree of size ${kept.treeSize} kept before (consistency proof fails)`,
        );
      }
    }
    keep();
    say('ok', `${latest.origin} grew from ${kept.treeSize} to ${latest.treeSize} leaves, consistently; kept`, {
      ...sizes,
      from: kept.treeSize,
    });
    return 0;
  } catch (error) {
    if (!(error instanceof WitnessAlarm)) throw error;
    say('alarm', error.message);
    return 1;
  }
}
