import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { App, Aspects } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { PROJECT_ROOT } from '#infra/constructs/consent-function.ts';
import { nagPacks } from '#infra/nag.ts';
import { ConsentGateStack, type ConsentGateStackProps } from '#infra/stack.ts';

/** CloudFormation resources as the template has them. */
export type Resources = Record<
  string,
  { Type: string; Properties?: any; DeletionPolicy?: string; UpdateReplacePolicy?: string; Metadata?: any }
>;

/**
 * Synthesizes the stack once, as `cdk synth` would: real esbuild bundling (unless `bundle: false`, which
 * CDK's `aws:cdk:bundling-stacks` context turns into placeholder assets) and the cdk-nag packs of `infra/nag.ts`.
 */
export function synthStack(props: Partial<ConsentGateStackProps> = {}, options: { bundle?: boolean } = {}) {
  // Inside the repository (cdk.out/ is ignored) so a bundle can be imported: it finds the AWS SDK, which
  // Lambda's runtime provides, in node_modules.
  mkdirSync(join(PROJECT_ROOT, 'cdk.out'), { recursive: true });
  const outdir = mkdtempSync(join(PROJECT_ROOT, 'cdk.out', 'test-'));
  const app = new App({
    outdir,
    context: {
      // As the CLI does: each function's Metadata names its asset folder in the cloud assembly.
      'aws:cdk:enable-asset-metadata': true,
      ...(options.bundle === false ? { 'aws:cdk:bundling-stacks': [] } : {}),
    },
  });
  const cleanup = () => rmSync(outdir, { recursive: true, force: true });
  try {
    const stack = new ConsentGateStack(app, 'consent-gate-test', { stage: 'test', ...props });
    for (const pack of nagPacks()) Aspects.of(app).add(pack);
    const template = Template.fromStack(stack);
    const resources = template.toJSON().Resources as Resources;
    return { app, stack, template, resources, outdir, cleanup };
  } catch (error) {
    cleanup();
    throw error;
  }
}

/** The logical id of the resource whose id starts with `prefix` (CDK appends a hash). */
export function logicalId(resources: Resources, type: string, prefix: string): string {
  const ids = Object.keys(resources).filter((id) => resources[id].Type === type && id.startsWith(prefix));
  if (ids.length !== 1)
    throw new Error(`expected one ${type} starting with ${prefix}, found ${ids.join(', ') || 'none'}`);
  return ids[0];
}

/** Every action a role is allowed, by resource (JSON of the resource), across its policies. */
export function roleGrants(resources: Resources, roleId: string): { action: string; resource: string }[] {
  const grants: { action: string; resource: string }[] = [];
  for (const r of Object.values(resources)) {
    if (r.Type !== 'AWS::IAM::Policy') continue;
    if (!r.Properties.Roles.some((role: any) => role.Ref === roleId)) continue;
    for (const statement of r.Properties.PolicyDocument.Statement) {
      expectAllow(statement);
      const actions = [statement.Action].flat();
      const targets = [statement.Resource].flat();
      for (const action of actions)
        for (const target of targets) grants.push({ action, resource: JSON.stringify(target) });
    }
  }
  return grants;
}

function expectAllow(statement: { Effect: string }) {
  if (statement.Effect !== 'Allow') throw new Error('unexpected Deny statement in a function policy');
}
