/**
 * Every module that builds schemas brings src/bundle/zod.ts with it, so the
 * schemas are built with its configuration (zod reads it at construction).
 */
import { describe, expect, it } from 'vitest';
import { config } from 'zod';
import { parseManifest } from '../../src/bundle/manifest.js';

describe('zod configuration', () => {
  it('is in force once a schema module is loaded: jitless, English messages', () => {
    expect(config().jitless).toBe(true);
    const result = parseManifest({ schemaVersion: 3 });
    expect(result.ok ? [] : result.problems[0]).toEqual({
      path: 'schemaVersion',
      message: 'Invalid option: expected one of 1|2',
    });
  });
});
