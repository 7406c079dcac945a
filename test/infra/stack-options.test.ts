import { afterAll, describe, expect, it } from 'vitest';
import { logicalId, synthStack } from './stack-fixture.ts';

const cleanups: (() => void)[] = [];
const synth = (...args: Parameters<typeof synthStack>) => {
  const result = synthStack(...args);
  cleanups.push(result.cleanup);
  return result;
};
afterAll(() => {
  for (const cleanup of cleanups) cleanup();
});

// These look at the API's settings only, so CDK skips bundling here (`aws:cdk:bundling-stacks`): the
// bundles themselves are checked in stack.test.ts.
describe('custom domain and stage settings from context', () => {
  it('maps the custom domain, makes it the only way in and the pages’ base URL', () => {
    const { resources, template } = synth(
      {
        stage: 'prod',
        domainName: 'consent.example.org',
        certificateArn: 'arn:aws:acm:eu-west-3:123456789012:certificate/abc',
        throttle: { rateLimit: 50, burstLimit: 100 },
      },
      { bundle: false },
    );
    template.hasResourceProperties('AWS::ApiGatewayV2::DomainName', {
      DomainName: 'consent.example.org',
      DomainNameConfigurations: [
        { CertificateArn: 'arn:aws:acm:eu-west-3:123456789012:certificate/abc', EndpointType: 'REGIONAL' },
      ],
    });
    template.resourceCountIs('AWS::ApiGatewayV2::ApiMapping', 1);
    template.hasResourceProperties('AWS::ApiGatewayV2::Api', {
      Name: 'consent-gate-prod',
      DisableExecuteApiEndpoint: true,
    });
    template.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      DefaultRouteSettings: { ThrottlingRateLimit: 50, ThrottlingBurstLimit: 100 },
    });
    const gate = resources[logicalId(resources, 'AWS::Lambda::Function', 'FngateFunction')];
    expect(gate.Properties.Environment.Variables.PUBLIC_BASE_URL).toBe('https://consent.example.org');
  });

  it('has no e-mail subscription when no alarm e-mail is given', () => {
    const { template } = synth({}, { bundle: false });
    template.resourceCountIs('AWS::SNS::Subscription', 0);
    template.hasResourceProperties('AWS::ApiGatewayV2::Api', { Name: 'consent-gate-test' });
  });
});
