// `npm start`: the service on this machine, with the embedded DynamoDB Local.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const { settingsFromEnv, startLocal } = await import('./runtime.ts');

const settings = settingsFromEnv();
let runtime: Awaited<ReturnType<typeof startLocal>> | undefined;
let stopping = false;

async function shutdown(signal: string, code = 0) {
  if (stopping) return;
  stopping = true;
  process.stderr.write(`\n${signal}: stopping the server and DynamoDB Local…\n`);
  await runtime?.stop();
  process.exit(code);
}

process.on('SIGINT', () => void shutdown('SIGINT'));
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGHUP', () => void shutdown('SIGHUP'));
// If whoever started us dies without passing a signal on (npm killed on its own), stop rather than linger.
const parentPid = process.ppid;
setInterval(() => {
  if (process.ppid !== parentPid) void shutdown('parent process exited');
}, 1000).unref();

try {
  runtime = await startLocal(settings);
} catch (error) {
  process.stderr.write(`consent-gate could not start: ${(error as Error).message}\n`);
  process.exit(1);
}
if (stopping) await runtime.stop();

const store = runtime.dynamo
  ? `embedded DynamoDB Local (${settings.dataDir === 'memory' ? 'in memory' : `data in ${settings.dataDir}/`}, pid ${runtime.dynamo.pid})`
  : `DynamoDB at ${runtime.endpoint}`;
process.stdout.write(
  [
    '',
    `consent-gate is listening on ${runtime.url}`,
    `  store:   ${store}, table ${settings.tableName}`,
    `  tenant:  ${runtime.devKey.tenant}`,
    `  API key: ${runtime.devKey.key}${runtime.devKey.created ? '  (new: kept in DATA_DIR/dev-key.json)' : ''}`,
    '',
    `  try: curl -s ${runtime.url}/v1/health`,
    'Ctrl-C stops it.',
    '',
  ].join('\n'),
);
