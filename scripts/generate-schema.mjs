// Writes the published JSON Schemas from their zod schemas:
// schema/manifest.schema.json, schema/build-record.schema.json and
// schema/index.schema.json.
// Run through `npm run schema`, which builds dist/ first.
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  BUILD_RECORD_SCHEMA_FILE,
  buildRecordJsonSchema,
  MANIFEST_SCHEMA_FILE,
  manifestJsonSchema,
  serializeJsonSchema,
} from '../dist/bundle/manifest-json-schema.js';
import { INDEX_SCHEMA_FILE, indexJsonSchema } from '../dist/bundle/release-index-json-schema.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
for (const [file, schema] of [
  [MANIFEST_SCHEMA_FILE, manifestJsonSchema()],
  [BUILD_RECORD_SCHEMA_FILE, buildRecordJsonSchema()],
  [INDEX_SCHEMA_FILE, indexJsonSchema()],
]) {
  writeFileSync(join(root, file), serializeJsonSchema(schema));
  console.log(`wrote ${file}`);
}
