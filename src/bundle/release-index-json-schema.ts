/**
 * The release index's JSON Schema, derived from the zod schema so the two
 * cannot drift. Published as schema/index.schema.json (`npm run schema`).
 */

import * as z from 'zod';
import { INDEX_SCHEMA_VERSION, indexSchema } from './release-index.js';
import './zod.js';

export { INDEX_SCHEMA_FILE } from './release-index.js';

export function indexJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(indexSchema(), { io: 'input', unrepresentable: 'any' });
  return {
    ...schema,
    title: `rick release index, schemaVersion ${INDEX_SCHEMA_VERSION}`,
    description:
      'index.json, written and signed (index.json.sig, a binary detached OpenPGP signature over its exact bytes) by `rick-bundle index` and followed by `rick-install update`. Refinements JSON Schema cannot express (versions are semantic versions, expires is after issued, a bundle version is listed and yanked at most once, waves start one after the other and each covers more hosts) are checked by rick itself.',
  };
}
