/**
 * The manifest's JSON Schema, derived from the zod schema so the two cannot
 * drift. Published as schema/manifest.schema.json (`npm run schema`).
 */

import * as z from 'zod';
import { BUILD_RECORD_PATH, buildRecordSchema } from './build-record.js';
import { MANIFEST_SCHEMA_VERSION, manifestSchema, manifestSchemaVersions } from './manifest.js';
import './zod.js';

export const MANIFEST_SCHEMA_FILE = 'schema/manifest.schema.json';

export function manifestJsonSchema(): Record<string, unknown> {
  // "input": what a manifest.json may contain (defaulted fields optional).
  const schema = z.toJSONSchema(manifestSchema, { io: 'input', unrepresentable: 'any' });
  return {
    ...schema,
    title: `rick bundle manifest, schemaVersion ${manifestSchemaVersions.join(' or ')} (rick-bundle writes ${MANIFEST_SCHEMA_VERSION})`,
    description:
      'manifest.json at the root of every rick bundle. Refinements JSON Schema cannot express (versions are semantic versions, paths lie in the directory of their kind, no duplicate paths, units and sites named as their kind requires, services name unit files of the bundle, no two files become one systemd unit, needs present from schemaVersion 2 on, each need in its canonical form) are checked by rick itself.',
  };
}

export const BUILD_RECORD_SCHEMA_FILE = 'schema/build-record.schema.json';

export function buildRecordJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(buildRecordSchema, { io: 'input', unrepresentable: 'any' });
  return {
    ...schema,
    title: 'rick bundle build record, schemaVersion 1',
    description: `${BUILD_RECORD_PATH} in every rick bundle, listed (kind installer) and so signed through the manifest: the toolchain that built the bundle and the images it pinned. Hosts ignore it. Images are sorted by reference, each once (checked by rick itself).`,
  };
}

export function serializeJsonSchema(schema: Record<string, unknown>): string {
  return `${JSON.stringify(schema, null, 2)}\n`;
}
