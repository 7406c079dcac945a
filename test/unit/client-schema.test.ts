import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { CLIENT_SCHEMA_FILE, clientSchemaSource } from '../../scripts/client-schema.ts';

it('the typed client is generated from the current OpenAPI document (run npm run gen:client when this fails)', async () => {
  expect(readFileSync(CLIENT_SCHEMA_FILE, 'utf8')).toBe(await clientSchemaSource());
});
