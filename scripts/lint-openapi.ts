import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { servedDocument } from './openapi-document.ts';

// `npm run lint:openapi`: the document the API serves, written to a temporary file and linted by Redocly
// with its recommended rules (redocly.yaml). Exits with Redocly's status: any error fails CI.
const dir = mkdtempSync(join(tmpdir(), 'consent-gate-openapi-'));
try {
  const file = join(dir, 'openapi.json');
  writeFileSync(file, JSON.stringify(await servedDocument(), null, 2));
  const lint = spawnSync('npx', ['--no-install', 'redocly', 'lint', file, '--config', 'redocly.yaml'], {
    stdio: 'inherit',
    env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' },
  });
  process.exitCode = lint.status ?? 1;
} finally {
  rmSync(dir, { recursive: true, force: true });
}
