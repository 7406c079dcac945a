import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { build, type Plugin } from 'esbuild';
import { FUNCTIONS } from '../shared/http/routes.ts';
import { median } from './lib.ts';

const run = promisify(execFile);

/** SDK clients loaded lazily by dependencies (Powertools Parameters) that may not be installed. */
const RUNTIME_PROVIDED = ['@aws-sdk/client-secrets-manager', '@aws-sdk/client-ssm', '@aws-sdk/client-appconfigdata'];

/**
 * An SDK client that is not installed here but that the Lambda Node.js runtime provides: stubbed so the
 * bundle imports (its load time is then not counted; see docs/performance.md).
 */
function runtimeProvided(names: string[]): Plugin {
  const filter = new RegExp(`^(${names.map((n) => n.replace(/[/.-]/g, '\\$&')).join('|')})$`);
  return {
    name: 'runtime-provided',
    setup(b) {
      if (names.length === 0) return;
      b.onResolve({ filter }, (args) => ({ path: args.path, namespace: 'runtime-provided' }));
      b.onLoad({ filter: /.*/, namespace: 'runtime-provided' }, () => ({
        contents: 'module.exports = new Proxy({}, { get: () => class {} });',
        loader: 'js',
      }));
    },
  };
}

/** One function's bundle as Lambda would load it. */
export interface BundleFigure {
  fn: string;
  bundle_kb: number;
  init_ms: number;
}

/**
 * Bundles every `functions/<fn>/handler.ts` the way the CDK stack does (infra/constructs/consent-function.ts):
 * ESM for Node 24, minified, `@aws-sdk/*` left to the runtime (the Node.js 24 Lambda runtime ships SDK v3),
 * and a `require` shim for CommonJS dependencies. The bundles are written under node_modules/.cache so
 * that their cold import resolves the SDK from node_modules, as the runtime resolves its own copy.
 */
export async function measureBundles(
  root: string,
  options: { runs?: number; sdk?: 'external' | 'bundled'; only?: string[] } = {},
): Promise<BundleFigure[]> {
  const { runs = 5, sdk = 'external' } = options;
  const cache = join(root, 'node_modules', '.cache');
  mkdirSync(cache, { recursive: true });
  const out = mkdtempSync(join(cache, 'consent-gate-bundles-'));
  try {
    // The gate first: it is the function on every message's path.
    const fns = (options.only ?? ['gate', ...FUNCTIONS.filter((f) => f !== 'gate'), 'authorizer']).filter((fn) =>
      existsSync(join(root, 'functions', fn, 'handler.ts')),
    );
    const resolveFrom = createRequire(join(root, 'package.json'));
    const missing = RUNTIME_PROVIDED.filter((name) => {
      try {
        resolveFrom.resolve(name);
        return false;
      } catch {
        return true;
      }
    });
    const figures: BundleFigure[] = [];
    for (const fn of fns) {
      const outfile = join(out, `${fn}.mjs`);
      await build({
        entryPoints: [join(root, 'functions', fn, 'handler.ts')],
        outfile,
        bundle: true,
        platform: 'node',
        // ESBUILD_TARGET of infra/constructs/consent-function.ts, written out: the bench does not load the CDK.
        target: 'node24',
        format: 'esm',
        minify: true,
        mainFields: ['module', 'main'],
        banner: { js: "import{createRequire as __cr}from'node:module';const require=__cr(import.meta.url);" },
        external: sdk === 'external' ? ['@aws-sdk/*'] : [],
        plugins: [runtimeProvided(missing)],
        logLevel: 'silent',
      });
      figures.push({
        fn,
        bundle_kb: Math.round((statSync(outfile).size / 1024) * 10) / 10,
        init_ms: await coldImportMs(outfile, runs),
      });
    }
    return figures;
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

/** Median time to `import()` a bundle in a fresh Node process (Node's own start excluded). */
async function coldImportMs(file: string, runs: number): Promise<number> {
  const script = `const t=performance.now();await import(${JSON.stringify(file)});process.stdout.write(String(performance.now()-t));`;
  const sample: number[] = [];
  for (let i = 0; i < runs; i++) {
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], {
      env: { ...process.env, NODE_OPTIONS: '', AWS_REGION: 'eu-west-3', POWERTOOLS_LOG_LEVEL: 'WARN' },
    });
    sample.push(Number(stdout));
  }
  return Math.round(median(sample) * 10) / 10;
}
