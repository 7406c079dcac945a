import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROUTES } from '#http/routes.ts';
import { client, startServer } from '../helpers/http.ts';

let server: Awaited<ReturnType<typeof startServer>>;
beforeAll(async () => {
  server = await startServer();
});
afterAll(() => server.close());

describe('GET /openapi.json', () => {
  it('documents every route of the route table, with the validating schemas', async () => {
    const res = await client(server.url).get('/openapi.json');
    expect(res.status).toBe(200);
    expect(res.body.openapi).toBe('3.1.0');
    for (const route of ROUTES) {
      expect(res.body.paths[route.path]?.[route.method.toLowerCase()], `${route.method} ${route.path}`).toBeDefined();
    }
    const grant = res.body.paths['/v1/consents'].post;
    expect(grant['x-scope']).toBe('consents:write');
    const schema = grant.requestBody.content['application/json'].schema;
    expect(schema.required).toEqual(expect.arrayContaining(['subject', 'channel', 'source', 'noticeVersion']));
    expect(schema.additionalProperties).toBe(false);
    expect(schema.properties.source.enum).toContain('double_opt_in');
    // Query strings come from the schemas that validate them.
    const exportParams = res.body.paths['/v1/audit/events'].get.parameters.map((p: { name: string }) => p.name);
    expect(exportParams).toEqual(expect.arrayContaining(['from', 'to', 'format', 'limit', 'cursor']));
    const status = res.body.paths['/v1/erasure-requests'].get.parameters.find(
      (p: { name: string }) => p.name === 'status',
    );
    expect(status.schema.enum).toEqual(['received', 'completed', 'overdue', 'cancelled']);
    // Pages say they answer HTML.
    expect(res.body.paths['/optout/{token}'].get.responses['200'].content).toHaveProperty(['text/html']);
  });
});
