// Writes schema/manifest.schema.json from the zod manifest schema.
// Run through `npm run schema`, which builds dist/ first.
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  MANIFEST_SCHEMA_FILE,
  manifestJsonSchema,
  serializeJsonSchema,
} from '../dist/bundle/manifest-json-schema.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
writeFileSync(join(root, MANIFEST_SCHEMA_FILE), serializeJsonSchema(manifestJsonSchema()));
console.log(`wrote ${MANIFEST_SCHEMA_FILE}`);
