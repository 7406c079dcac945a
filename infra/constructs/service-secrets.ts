import { RemovalPolicy } from 'aws-cdk-lib';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import { Secret, type SecretStringGenerator } from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { compliance, suppress } from '../nag.ts';
import type { ConsentFunction } from './consent-function.ts';

/** The secrets a function may read (each its own Secrets Manager secret, so each is granted on its own). */
export type SecretName = 'identifier' | 'linkKeys' | 'whatsapp' | 'logKeys';

/** 64 letters and digits: valid base64, read as 48 bytes (384 bits) by `shared/secrets.ts`. */
const generatedKey = (template: object, key: string, length = 64): SecretStringGenerator => ({
  secretStringTemplate: JSON.stringify(template),
  generateStringKey: key,
  passwordLength: length,
  excludePunctuation: true,
  includeSpace: false,
});

/**
 * The service's secrets in Secrets Manager, encrypted with the stack key. A function finds one through an
 * env var holding its ARN (never its value) and reads it once per container (`shared/secrets.ts`).
 */
export class ServiceSecrets extends Construct {
  /** Each secret and the env var that carries its ARN. */
  readonly secrets: Record<SecretName, { secret: Secret; env: string }>;

  constructor(scope: Construct, id: string, key: IKey) {
    super(scope, id);
    const secret = (name: string, description: string, generate: SecretStringGenerator, retain: boolean) =>
      new Secret(this, name, {
        description,
        encryptionKey: key,
        generateSecretString: generate,
        removalPolicy: retain ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
      });
    this.secrets = {
      identifier: {
        env: 'SECRETS_ID',
        // The subjectKey HMAC key. Retained and never rotated: a new key would orphan every subject and
        // every erasure tombstone (they could no longer be matched).
        secret: secret(
          'Identifier',
          'consent-gate identifier HMAC key (never rotate: subjectKeys depend on it)',
          generatedKey({}, 'identifierKey'),
          true,
        ),
      },
      linkKeys: {
        env: 'LINK_KEYS_SECRET_ID',
        // Signs opt-out and preference links. Retained: links already sent must keep working. Rotated by hand
        // with an overlap (`previousKeys`, docs/deploy.md).
        secret: secret(
          'LinkKeys',
          'consent-gate link-signing keys: {"key": newest, "previousKeys": [...]}',
          generatedKey({}, 'key'),
          true,
        ),
      },
      logKeys: {
        env: 'LOG_KEYS_SECRET_ID',
        // Signs the verifiable log's checkpoints: the generated string is the seed material of an Ed25519 key
        // (`logKeyPem` in shared/secrets.ts). Retained: rotation prepends a key and keeps the old ones listed
        // (`previousKeys`), so every checkpoint ever signed keeps verifying.
        secret: secret(
          'LogKeys',
          'consent-gate checkpoint-signing keys: {"key": newest, "previousKeys": [...]} (Ed25519 seeds or PEMs)',
          generatedKey({}, 'key'),
          true,
        ),
      },
      whatsapp: {
        env: 'WHATSAPP_SECRET_ID',
        // Meta's app secret is pasted in after deploy; the verify token is ours to generate.
        secret: secret(
          'WhatsApp',
          'consent-gate WhatsApp webhook: {"appSecret": from Meta, "verifyToken": generated}',
          generatedKey({ appSecret: '' }, 'verifyToken', 40),
          false,
        ),
      },
    };
    // The same finding in each pack: AwsSolutions-SMG4, HIPAA/NIST SecretsManagerRotationEnabled.
    const noRotation = (name: SecretName, reason: string) =>
      suppress(
        this.secrets[name].secret,
        ['AwsSolutions-SMG4', ...compliance('SecretsManagerRotationEnabled')],
        reason,
      );
    noRotation('identifier', 'Rotating the subjectKey HMAC key would orphan every subject and erasure tombstone.');
    noRotation('linkKeys', 'Rotated by hand with an overlap (previousKeys) so links already sent keep working.');
    noRotation('logKeys', 'Rotated by hand with an overlap (previousKeys) so old checkpoints keep verifying.');
    noRotation('whatsapp', "Meta issues the app secret; it is rotated in Meta's console, then pasted here.");
  }

  /** Lets a function read the named secrets, each through its env var. */
  grant(fn: ConsentFunction, names: readonly SecretName[]): void {
    for (const name of names) fn.useSecret(this.secrets[name].secret, this.secrets[name].env);
  }
}
