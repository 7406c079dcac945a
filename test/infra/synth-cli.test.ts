import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '#infra/constructs/consent-function.ts';

mkdirSync(join(PROJECT_ROOT, 'cdk.out'), { recursive: true });
const outdir = mkdtempSync(join(PROJECT_ROOT, 'cdk.out', 'test-cli-'));
afterAll(() => rmSync(outdir, { recursive: true, force: true }));

/** `npx cdk synth` as a user runs it, with no AWS credentials, profile or region in the environment. */
function synth(...context: string[]) {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^(AWS_|CDK_DEFAULT_)/.test(name)));
  return spawnSync('npx', ['cdk', 'synth', '--quiet', '-o', outdir, ...context.flatMap((c) => ['-c', c])], {
    cwd: PROJECT_ROOT,
    env: { ...env, CI: 'true' },
    encoding: 'utf8',
    timeout: 240_000,
  });
}

describe('npm run synth (the cdk.json app)', () => {
  it('synthesizes offline without credentials, the cdk-nag packs passing', () => {
    const run = synth('stage=ci', 'alarmEmail=dpo@example.org');
    expect(run.status, run.stderr.slice(-2000)).toBe(0);
    const template = JSON.parse(readFileSync(join(outdir, 'consent-gate-ci.template.json'), 'utf8'));
    const resources = Object.values(template.Resources) as { Type: string; Properties: any }[];
    expect(resources.find((r) => r.Type === 'AWS::ApiGatewayV2::Api')?.Properties.Name).toBe('consent-gate-ci');
    expect(
      resources.some((r) => r.Type === 'AWS::SNS::Subscription' && r.Properties.Endpoint === 'dpo@example.org'),
    ).toBe(true);
    // Environment-agnostic: no account or region baked in.
    expect(JSON.stringify(template)).not.toMatch(/\b\d{12}\b/);
    for (const pack of ['AwsSolutions', 'HIPAA.Security', 'NIST.800.53.R5']) {
      const csv = readFileSync(join(outdir, `${pack}--consent-gate-ci-NagReport.csv`), 'utf8');
      expect(csv, pack).toMatch(/"Compliant"/);
      expect(csv, pack).not.toMatch(/"Non-Compliant"/);
    }
  }, 240_000);

  it('refuses bad context before building anything', () => {
    const run = synth('stage=Not_A_Stage', 'domainName=consent.example.org');
    expect(run.status).not.toBe(0);
    expect(run.stderr + run.stdout).toMatch(/stage: lowercase letters/);
    expect(run.stderr + run.stdout).toMatch(/domainName and certificateArn go together/);
  }, 120_000);
});
