// The operator CLI: `npm run cli -- <command>` or `consent-gate <command>`.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
process.env.POWERTOOLS_LOG_LEVEL ??= 'WARN';

const { keysCommand } = await import('./commands/keys.ts');
const { exportCommand } = await import('./commands/export.ts');
const { verifyCommand } = await import('./commands/verify.ts');
const { erasuresCommand } = await import('./commands/erasures.ts');
const { retentionCommand } = await import('./commands/retention.ts');
const { openStore } = await import('./store.ts');
const { processIo, UsageError } = await import('./io.ts');

type Command = (db: import('#store/db.ts').Db, args: string[], io: import('./io.ts').CliIo) => Promise<number>;

/** Commands by name. Each gets the store and its own arguments, and returns the exit code. */
const COMMANDS: Record<string, Command> = {
  keys: keysCommand,
  export: exportCommand,
  verify: verifyCommand,
  erasures: erasuresCommand,
  retention: retentionCommand,
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

store: DYNAMODB_ENDPOINT + TABLE_NAME when set, else the local store in DATA_DIR (default .data)`;

async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  const command = name ? COMMANDS[name] : undefined;
  if (!command) {
    processIo.err(USAGE);
    return name && name !== 'help' && name !== '--help' ? 2 : 0;
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
