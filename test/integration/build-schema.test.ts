import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  BUILD_RECORD_SCHEMA_FILE,
  buildRecordJsonSchema,
  MANIFEST_SCHEMA_FILE,
  manifestJsonSchema,
  serializeJsonSchema,
} from '../../src/bundle/manifest-json-schema.js';
import { INDEX_SCHEMA_FILE, indexJsonSchema } from '../../src/bundle/release-index-json-schema.js';
import { repoRoot } from '../helpers/quadlet.js';

describe('the published manifest JSON Schema', () => {
  it('is exactly what the zod schema generates (run `npm run schema` after changing it)', async () => {
    const committed = await readFile(join(repoRoot, MANIFEST_SCHEMA_FILE), 'utf8');
    expect(committed).toBe(serializeJsonSchema(manifestJsonSchema()));
  });

  it('describes the manifest fields and forbids unknown ones', () => {
    const schema = manifestJsonSchema() as {
      properties: Record<string, unknown>;
      additionalProperties: boolean;
      required: string[];
    };
    expect(Object.keys(schema.properties)).toEqual([
      'schemaVersion',
      'name',
      'version',
      'createdAt',
      'source',
      'requires',
      'files',
      'facts',
      'services',
      'needs',
      'databases',
    ]);
    expect(schema.additionalProperties).toBe(false);
    expect(schema.required).toContain('files');
  });
});

describe('the published build record JSON Schema', () => {
  it('is exactly what the zod schema generates (run `npm run schema` after changing it)', async () => {
    const committed = await readFile(join(repoRoot, BUILD_RECORD_SCHEMA_FILE), 'utf8');
    expect(committed).toBe(serializeJsonSchema(buildRecordJsonSchema()));
  });

  it('describes the record fields and forbids unknown ones', () => {
    const schema = buildRecordJsonSchema() as {
      properties: Record<string, unknown>;
      additionalProperties: boolean;
      required: string[];
    };
    expect(Object.keys(schema.properties)).toEqual(['schemaVersion', 'toolchain', 'images']);
    expect(schema.additionalProperties).toBe(false);
    expect(schema.required).toEqual(['schemaVersion', 'toolchain']);
  });
});

describe('the published release index JSON Schema', () => {
  it('is exactly what the zod schema generates (run `npm run schema` after changing it)', async () => {
    const committed = await readFile(join(repoRoot, INDEX_SCHEMA_FILE), 'utf8');
    expect(committed).toBe(serializeJsonSchema(indexJsonSchema()));
  });

  it('describes the index fields and forbids unknown ones', () => {
    const schema = indexJsonSchema() as {
      properties: Record<string, unknown>;
      additionalProperties: boolean;
      required: string[];
    };
    expect(Object.keys(schema.properties)).toEqual([
      'schemaVersion',
      'serial',
      'issued',
      'expires',
      'releases',
      'yanked',
    ]);
    expect(schema.additionalProperties).toBe(false);
    expect(schema.required).toEqual(Object.keys(schema.properties));
  });
});
