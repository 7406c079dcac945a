import { parseArgs } from 'node:util';
import {
  createApiKey,
  listApiKeys,
  revokeApiKey,
  type Scope,
  ScopeSchema,
  TenantSchema,
} from '#shared/auth/api-keys.ts';
import type { Db } from '#store/db.ts';
import { type CliIo, UsageError } from '../io.ts';

const USAGE = `consent-gate keys create --tenant T --scopes s1,s2 [--name N] [--json]
consent-gate keys list --tenant T [--json]
consent-gate keys revoke <keyId> [--json]`;

/** `keys create|list|revoke`. */
export async function keysCommand(db: Db, args: string[], io: CliIo): Promise<number> {
  const [action, ...rest] = args;
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      tenant: { type: 'string' },
      scopes: { type: 'string' },
      name: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  const tenant = () => {
    const parsed = TenantSchema.safeParse(values.tenant);
    if (!parsed.success) throw new UsageError(`--tenant is required: ${parsed.error.issues[0].message}\n${USAGE}`);
    return parsed.data;
  };
  if (action === 'create') {
    const scopes = (values.scopes ?? '').split(',').filter(Boolean);
    const bad = scopes.filter((s) => !ScopeSchema.safeParse(s).success);
    if (scopes.length === 0 || bad.length) {
      throw new UsageError(
        `--scopes must list some of ${ScopeSchema.options.join(', ')}${bad.length ? ` (unknown: ${bad.join(', ')})` : ''}`,
      );
    }
    const key = await createApiKey(db, { tenant: tenant(), scopes: scopes as Scope[], name: values.name });
    if (values.json) io.out(JSON.stringify({ keyId: key.keyId, key: key.key, tenant: key.tenant, scopes: key.scopes }));
    else
      io.out(
        `created ${key.keyId} for tenant ${key.tenant} (${key.scopes.join(', ')})\n\n  ${key.key}\n\nKeep it now: only its hash is stored.`,
      );
    return 0;
  }
  if (action === 'list') {
    const keys = await listApiKeys(db, tenant());
    if (values.json) io.out(JSON.stringify(keys));
    else if (keys.length === 0) io.out(`no keys for tenant ${values.tenant}`);
    else {
      for (const k of keys) {
        io.out(
          `${k.keyId}  ${k.revokedAt ? `revoked ${k.revokedAt}` : 'active'}  ${k.scopes.join(',')}  ${k.name ?? ''}  created ${k.createdAt}`,
        );
      }
    }
    return 0;
  }
  if (action === 'revoke') {
    const keyId = positionals[0];
    if (!keyId) throw new UsageError(`keys revoke needs a keyId\n${USAGE}`);
    const revoked = await revokeApiKey(db, keyId);
    if (!revoked) {
      io.err(`no key ${keyId}`);
      return 1;
    }
    if (values.json) io.out(JSON.stringify(revoked));
    else io.out(`revoked ${revoked.keyId} (tenant ${revoked.tenant}) at ${revoked.revokedAt}`);
    return 0;
  }
  throw new UsageError(USAGE);
}
