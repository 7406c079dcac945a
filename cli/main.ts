// The operator CLI: `npm run cli -- <command>` or `consent-gate <command>`.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
process.env.POWERTOOLS_LOG_LEVEL ??= 'WARN';

const { keysCommand } = await import('./commands/keys.ts');
const { exportCommand } = await import('./commands/export.ts');
const { verifyCommand } = await import('./commands/verify.ts');
const { erasuresCommand } = await import('./commands/erasures.ts');
const { retentionCommand } = await import('./commands/retention.ts');
const { logCommand, logNeedsStore } = await import('./commands/log.ts');
const { receiptCommand } = await import('./commands/receipt.ts');
const { openStore } = await import('./store.ts');
const { processIo, UsageError } = await import('./io.ts');

type Command = (db: import('#store/db.ts').Db, args: string[], io: import('./io.ts').CliIo) => Promise<number>;

/**
 * Commands by name. Each gets the store and its own arguments, and returns the exit code. A command that
 * needs no store (`receipt verify` is offline, `log witness` talks HTTP) says so: no store is opened for it.
 */
const COMMANDS: Record<string, Command> = {
  keys: keysCommand,
  export: exportCommand,
  verify: verifyCommand,
  erasures: erasuresCommand,
  retention: retentionCommand,
  log: logCommand,
  receipt: (_db, args, io) => receiptCommand(args, io),
};

const NEEDS_STORE: Record<string, (args: string[]) => boolean> = {
  log: logNeedsStore,
  receipt: () => false,
};

const USAGE = `usage: consent-gate <command> [options]

commands:
  keys create --tenant T --scopes s1,s2 [--name N] [--json]   create an API key (printed once)
  keys list --tenant T [--json]                                list a tenant's keys
  keys revoke <keyId>                                          revoke a key at once
  export --tenant T --from D --to D [--format ndjson|csv] [--out FILE] [--cursor C | --resume]
                                                               audit export, progress on stderr
  verify --tenant T [--from D --to D] [--json]                 ledger verification (exit 1 when broken)
  erasures due --tenant T [--within N] [--json]                erasure requests due within N days (exit 3 if overdue)
  erasures list --tenant T [--status S] [--json]               erasure requests with their deadlines
  retention run [--tenant T] [--dry-run] [--json]              purge inactive subjects, expired proof, old signal details
  log verify --tenant T [--key KEYFILE] [--json]               the verifiable log against the events and every checkpoint (exit 1 when altered)
  log witness --url URL --key KEYFILE --state DIR [--json]     keep the service's checkpoints; exit 1 on a fork or a rollback
                                                               (API key from CONSENT_GATE_API_KEY)
  receipt verify FILE --key KEYFILE [--json]                   check a receipt offline (exit 1 when invalid)

store: DYNAMODB_ENDPOINT + TABLE_NAME when set, else the local store in DATA_DIR (default .data);
  receipt verify and log witness use no store`;

async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  const command = name ? COMMANDS[name] : undefined;
  if (!command) {
    processIo.err(USAGE);
    return name && name !== 'help' && name !== '--help' ? 2 : 0;
  }
  if (!(NEEDS_STORE[name as string]?.(args) ?? true)) {
    return await command(undefined as unknown as import('#store/db.ts').Db, args, processIo);
  }
  const store = await openStore();
  try {
    return await command(store.db, args, processIo);
  } finally {
    await store.close();
  }
}

let code: number;
try {
  code = await main(process.argv.slice(2));
} catch (error) {
  if (error instanceof UsageError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
    processIo.err((error as Error).message);
    code = 2;
  } else {
    processIo.err(`error: ${(error as Error).message}`);
    code = 1;
  }
}
process.exitCode = code;
