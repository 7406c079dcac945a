/** Where a command writes: stdout for results, stderr for progress and errors. */
export interface CliIo {
  out(line: string): void;
  err(line: string): void;
}

export const processIo: CliIo = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
};

/** A mistake in the command line: printed with usage, exit code 2. */
export class UsageError extends Error {}
