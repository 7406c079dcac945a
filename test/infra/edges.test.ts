import { afterAll, describe, expect, it } from 'vitest';
import { type Resources, synthStack } from './stack-fixture.ts';

const cleanups: (() => void)[] = [];
const synth = (...args: Parameters<typeof synthStack>) => {
  const result = synthStack(...args);
  cleanups.push(result.cleanup);
  return result;
};
afterAll(() => {
  for (const cleanup of cleanups) cleanup();
});

const functions = (resources: Resources) =>
  Object.values(resources).filter((r) => r.Type === 'AWS::Lambda::Function' && r.Properties.Environment);

// Settings only: CDK skips bundling here (`aws:cdk:bundling-stacks`).
describe('the edges the stack configures', () => {
  it('tells every function its own timeout (the idempotency lease is counted from it)', () => {
    const { resources } = synth({}, { bundle: false });
    const ours = functions(resources).filter((fn) => fn.Properties.Environment.Variables.POWERTOOLS_SERVICE_NAME);
    expect(ours.length).toBeGreaterThan(10);
    for (const fn of ours) {
      expect(fn.Properties.Environment.Variables.FUNCTION_TIMEOUT_SECONDS).toBe(String(fn.Properties.Timeout));
    }
  });

  it('routes HEAD of the public pages to their function, and of nothing that needs a key', () => {
    const { resources } = synth({}, { bundle: false });
    const keys = Object.values(resources)
      .filter((r) => r.Type === 'AWS::ApiGatewayV2::Route')
      .map((r) => r.Properties.RouteKey as string);
    expect(keys).toEqual(
      expect.arrayContaining(['HEAD /optout/{token}', 'HEAD /preferences/{token}', 'HEAD /v1/health']),
    );
    expect(keys).not.toContain('HEAD /v1/policy');
  });

  it('configures CORS on the HTTP API from the same origins as the local server, never with credentials', () => {
    const api = (resources: Resources) => Object.values(resources).find((r) => r.Type === 'AWS::ApiGatewayV2::Api');
    const withCors = synth({ corsOrigins: ['https://app.example.org'] }, { bundle: false });
    expect(api(withCors.resources)?.Properties.CorsConfiguration).toEqual({
      AllowOrigins: ['https://app.example.org'],
      AllowHeaders: ['authorization', 'content-type', 'idempotency-key'],
      AllowMethods: expect.arrayContaining(['GET', 'POST', 'PUT', 'DELETE', 'OPTIONS']),
      ExposeHeaders: ['x-next-cursor', 'retry-after'],
      AllowCredentials: false,
      MaxAge: 600,
    });
    expect(api(synth({}, { bundle: false }).resources)?.Properties.CorsConfiguration).toBeUndefined();
  });
});
