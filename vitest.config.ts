import { configDefaults, defineConfig } from 'vitest/config';

/** What a project that talks to the store needs: the run's DynamoDB Local, and its address in every test process. */
const withStore = { globalSetup: ['test/helpers/global-setup.ts'], setupFiles: ['test/helpers/env.ts'] };

export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Two cores here: a few workers keep DynamoDB Local busy without starving it.
    maxWorkers: 3,
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', POWERTOOLS_LOG_LEVEL: 'WARN' },
    // `npm test` runs them all; `npm run test:<name>` one (`unit` starts no DynamoDB Local, so no Java).
    projects: [
      {
        extends: true,
        // No store: secrets generated in memory, and no table or endpoint to reach.
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          env: { DATA_DIR: 'memory', AWS_REGION: 'eu-west-3' },
        },
      },
      // Synthesizing the stack and bundling every function takes tens of seconds on 2 cores.
      {
        extends: true,
        test: { name: 'infra', include: ['test/infra/**/*.test.ts'], testTimeout: 120_000, ...withStore },
      },
      {
        extends: true,
        test: { name: 'browser', include: ['test/browser/**/*.test.ts'], testTimeout: 60_000, ...withStore },
      },
      {
        extends: true,
        // Every other test file: integration, e2e, faults, fuzz, soak.
        test: {
          name: 'store',
          include: ['test/**/*.test.ts'],
          // Child processes (the CLI, `npm start`) and DynamoDB Local restarts take seconds each on 2 cores.
          testTimeout: 60_000,
          exclude: [...configDefaults.exclude, 'test/{unit,infra,browser}/**'],
          ...withStore,
        },
      },
    ],
  },
});
