import { execFile, spawn } from 'node:child_process';

/** The operator CLI as a child process, against the run's DynamoDB Local (the test process's environment). */
const ARGS = ['--import', 'tsx', 'cli/main.ts'];
const env = () => ({ ...process.env, POWERTOOLS_LOG_LEVEL: 'ERROR' });

/** Runs the CLI to its end; resolves with its exit code and output. */
export function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [...ARGS, ...args],
      { env: env(), maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/** Starts the CLI with its output piped, for a test that reads or interrupts it as it runs. */
export const spawnCli = (...args: string[]) =>
  spawn(process.execPath, [...ARGS, ...args], { env: env(), stdio: ['ignore', 'pipe', 'pipe'] });
