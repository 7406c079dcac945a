import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CLIENT_SCHEMA_FILE, clientSchemaSource } from './client-schema.ts';

// `npm run gen:client`: regenerates clients/typescript/src/schema.d.ts from the document the API serves.
writeFileSync(CLIENT_SCHEMA_FILE, await clientSchemaSource());
console.log(`wrote ${fileURLToPath(CLIENT_SCHEMA_FILE)}`);
