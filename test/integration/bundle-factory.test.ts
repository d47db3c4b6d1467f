import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { manifestSchema } from '../../src/bundle/manifest.js';
import { buildTestBundle } from '../helpers/bundle-factory.js';

describe('test bundle factory', () => {
  it('produces a manifest that satisfies the schema and records every host fact', () => {
    const { manifest } = buildTestBundle();
    expect(manifestSchema.safeParse(manifest).success).toBe(true);
    expect(manifest.facts).toEqual([
      { kind: 'gid', name: 'demo' },
      { kind: 'gid', name: 'postgres-clients' },
      { kind: 'secret', name: 'db_password' },
      { kind: 'uid', name: 'demo' },
    ]);
  });

  it('packs the same inputs to the same bytes, entries sorted, owner 0:0', () => {
    const a = buildTestBundle().tgz;
    const b = buildTestBundle().tgz;
    expect(a.equals(b)).toBe(true);
    const tar = gunzipSync(a);
    const names: string[] = [];
    for (let off = 0; off + 512 <= tar.length; ) {
      const name = tar
        .subarray(off, off + 100)
        .toString('utf8')
        .replace(/\0.*$/s, '');
      if (!name) break;
      names.push(name);
      expect(tar.subarray(off + 108, off + 116).toString('utf8')).toMatch(/^0+\0?/);
      const size = Number.parseInt(tar.subarray(off + 124, off + 136).toString('utf8'), 8);
      off += 512 + Math.ceil(size / 512) * 512;
    }
    expect(names).toEqual([...names].sort());
    expect(names).toContain('manifest.json');
  });
});
