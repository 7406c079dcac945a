import type { IAspect } from 'aws-cdk-lib';
import { AwsSolutionsChecks, HIPAASecurityChecks, NagSuppressions, NIST80053R5Checks } from 'cdk-nag';
import type { IConstruct } from 'constructs';

/**
 * The cdk-nag packs every synthesis runs (`infra/app.ts`, so `cdk synth` fails on an unsuppressed finding, and
 * the infra tests): AWS Solutions, HIPAA Security and NIST 800-53 rev. 5 — the last two are the rules AWS
 * Config and Control Tower use for these controls (encrypted log groups, tables in a backup plan, …).
 */
export const nagPacks = (): IAspect[] => [
  new AwsSolutionsChecks({ verbose: true }),
  new HIPAASecurityChecks({ verbose: true }),
  new NIST80053R5Checks({ verbose: true }),
];

/** The compliance packs name a rule alike: `HIPAA.Security-<rule>` and `NIST.800.53.R5-<rule>`. */
export const compliance = (rule: string): string[] => [`HIPAA.Security-${rule}`, `NIST.800.53.R5-${rule}`];

/**
 * Suppresses findings on one construct (and its children), all with the same reason: the ids are the same
 * finding as each pack names it (e.g. `AwsSolutions-SMG4` and `compliance('SecretsManagerRotationEnabled')`).
 */
export function suppress(
  construct: IConstruct | IConstruct[],
  ids: readonly string[],
  reason: string,
  options: { appliesTo?: (string | { regex: string })[]; children?: boolean } = {},
): void {
  NagSuppressions.addResourceSuppressions(
    construct,
    ids.map((id) => ({ id, reason, ...(options.appliesTo ? { appliesTo: options.appliesTo } : {}) })),
    options.children ?? false,
  );
}
