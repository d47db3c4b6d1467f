import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { MANIFEST_PATH } from '../../src/core/manifest.js';
import { defaultArchiveLimits, parseBundleArchive } from '../../src/io/bundle-archive.js';
import { buildTestBundle, sampleFiles } from '../helpers/bundle-factory.js';
import { forgeTar, manifestFor, refusal } from '../helpers/hostile-tar.js';

describe('parseBundleArchive on good bundles', () => {
  it('returns the manifest, its exact bytes and every listed file', () => {
    const { tgz, manifest } = buildTestBundle();
    const contents = parseBundleArchive(tgz);
    expect(contents.manifest).toEqual(manifest);
    expect(JSON.parse(contents.manifestBytes.toString('utf8')).name).toBe('demo');
    expect([...contents.files.keys()].sort()).toEqual(manifest.files.map((f) => f.path).sort());
    const env = sampleFiles().find((f) => f.path === 'env/demo.env');
    expect(contents.files.get('env/demo.env')?.toString('utf8')).toBe(env?.content);
    expect(contents.files.has(MANIFEST_PATH)).toBe(false);
  });

  it('accepts PAX and GNU long names and plain directory entries on the way to listed files', () => {
    const long = `quadlet/${'a'.repeat(120)}.container`;
    const body = Buffer.from('[Container]\nImage=x\n');
    const files = [{ path: long, data: body, mode: 0o644 }];
    const manifest = manifestFor(files);
    for (const longName of ['pax', 'gnu'] as const) {
      const tar = forgeTar([
        { path: 'quadlet/', type: '5', mode: 0o755 },
        { path: long, data: body, mode: 0o644, longName },
        { path: MANIFEST_PATH, data: manifest, mode: 0o644 },
      ]);
      const contents = parseBundleArchive(gzipSync(tar));
      expect(contents.files.get(long)?.equals(body)).toBe(true);
    }
  });

  it('keeps sane default limits', () => {
    expect(defaultArchiveLimits).toEqual({
      maxCompressedBytes: 64 * 1024 * 1024,
      maxEntries: 4096,
      maxEntryBytes: 32 * 1024 * 1024,
      maxTotalBytes: 256 * 1024 * 1024,
      maxRatio: 200,
    });
  });

  it('reports every problem of one kind in one message', () => {
    const files = [
      { path: 'quadlet/a.container', data: Buffer.from('a'), mode: 0o644 },
      { path: 'quadlet/b.container', data: Buffer.from('b'), mode: 0o644 },
    ];
    const manifest = manifestFor(files);
    const tar = forgeTar([
      { path: '../a', data: Buffer.from('x') },
      { path: '/etc/b', data: Buffer.from('x') },
      { path: 'quadlet/l', type: '2', linkpath: 'a.container' },
      { path: MANIFEST_PATH, data: manifest },
    ]);
    const error = refusal(() => parseBundleArchive(gzipSync(tar)));
    expect(error.code).toBe('BUNDLE_INVALID');
    expect(error.message).toContain('"../a": path traversal (..)');
    expect(error.message).toContain('"/etc/b": absolute path');
    expect(error.message).toContain('"quadlet/l": symbolic link entries are not allowed');
  });
});
