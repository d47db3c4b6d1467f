import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import {
  type ArchiveLimits,
  defaultArchiveLimits,
  parseBundleArchive,
} from '../../src/bundle/archive.js';
import { MANIFEST_PATH } from '../../src/bundle/manifest.js';
import { isRickError } from '../../src/errors.js';
import { buildTestBundle, sampleFiles } from '../helpers/bundle-factory.js';
import { type ForgedEntry, forgeTar, manifestFor, refusal } from '../helpers/hostile-tar.js';

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

const unit = Buffer.from('[Container]\nImage=x\n');
const unitFile = { path: 'quadlet/a.container', data: unit };
const good = (extra: ForgedEntry[] = [], listed = [unitFile]) =>
  forgeTar([
    { path: MANIFEST_PATH, data: manifestFor(listed) },
    { path: unitFile.path, data: unit },
    ...extra,
  ]);

function refuse(tgz: Buffer, limits?: ArchiveLimits) {
  return refusal(() => parseBundleArchive(tgz, limits));
}

describe('parseBundleArchive refuses malformed and tricky archives', () => {
  it('refuses what is not gzip, and gzip that is not a tarball', () => {
    expect(refuse(Buffer.from('plain text')).message).toBe(
      'bundle is not a gzip-compressed tarball',
    );
    const truncatedGzip = gzipSync(good()).subarray(0, 40);
    expect(refuse(truncatedGzip).message).toMatch(/^bundle is not valid gzip/);
    expect(refuse(gzipSync(Buffer.alloc(0))).message).toMatch(/no end-of-archive marker/);
  });

  it('refuses a header whose numeric fields no reader can hold (base-256 beyond 2^53)', () => {
    const tar = Buffer.from(good());
    // uid field of the first header: base-256 marker and 56 bits of ones.
    tar[108] = 0x80;
    tar.fill(0xff, 109, 116);
    tar.fill(0x20, 148, 156);
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += tar[i] ?? 0;
    tar.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'latin1');
    const error = refuse(gzipSync(tar));
    expect(error.code).toBe('BUNDLE_INVALID');
    expect(error.message).toMatch(/^entry at offset 0: unreadable tar header/);
  });

  it('refuses a truncated tarball and a broken header checksum', () => {
    const tar = good();
    expect(refuse(gzipSync(tar.subarray(0, 1024 + 100))).message).toMatch(/archive is truncated/);
    const bad = forgeTar([{ path: MANIFEST_PATH, data: manifestFor([]), badChecksum: true }]);
    expect(refuse(gzipSync(bad)).message).toBe('entry at offset 0: tar header checksum mismatch');
  });

  it('refuses data smuggled after the end-of-archive marker', () => {
    const hidden = forgeTar([{ path: 'quadlet/hidden.container', data: unit }]);
    const tgz = gzipSync(
      forgeTar(
        [
          { path: MANIFEST_PATH, data: manifestFor([unitFile]) },
          { path: unitFile.path, data: unit },
        ],
        hidden,
      ),
    );
    expect(refuse(tgz).message).toBe('archive has data after its end-of-archive marker');
  });

  it('refuses a directory entry that carries data, and a directory outside the manifest', () => {
    const carrying = refuse(
      gzipSync(
        good([{ path: 'quadlet/', type: '5', headerSize: 512, data: Buffer.alloc(512, 0x41) }]),
      ),
    );
    expect(carrying.message).toContain('"quadlet/": directory entry carries 512 bytes of data');
    const stray = refuse(gzipSync(good([{ path: 'env/', type: '5' }])));
    expect(stray.message).toContain('"env": directory not part of the manifest');
  });

  it('refuses a file that is also a directory of another entry', () => {
    const error = refuse(gzipSync(good([{ path: 'quadlet/a.container/x', data: unit }])));
    expect(error.message).toContain(
      '"quadlet/a.container": is both a file and a directory of "quadlet/a.container/x"',
    );
  });

  it('refuses PAX attributes that could desynchronise readers, and global headers', () => {
    const size = refuse(
      gzipSync(good([{ path: 'quadlet/b.container', data: unit, pax: { size: '0' } }])),
    );
    expect(size.message).toMatch(/PAX attribute "size" is not allowed in a bundle/);
    const xattr = refuse(
      gzipSync(
        good([
          {
            path: 'quadlet/b.container',
            data: unit,
            pax: { 'SCHILY.xattr.security.capability': 'x' },
          },
        ]),
      ),
    );
    expect(xattr.message).toMatch(
      /PAX attribute "SCHILY\.xattr\.security\.capability" is not allowed/,
    );
    const global = refuse(
      gzipSync(good([{ path: 'pax_global_header', type: 'g', data: Buffer.from('9 a=bcd\n') }])),
    );
    expect(global.message).toContain('PAX global header entries are not allowed');
  });

  it('refuses two long-name headers for one entry', () => {
    const tar = forgeTar([
      { path: MANIFEST_PATH, data: manifestFor([unitFile]) },
      {
        path: `quadlet/${'c'.repeat(120)}`,
        data: unit,
        longName: 'gnu',
        pax: { path: 'quadlet/a.container' },
      },
    ]);
    expect(refuse(gzipSync(tar)).message).toMatch(/more than one long-name header for one entry/);
  });

  it('refuses non-canonical names: ./, //, backslashes', () => {
    const error = refuse(
      gzipSync(
        good([
          { path: './quadlet/b.container', data: unit },
          { path: 'quadlet//c.container', data: unit },
          { path: 'quadlet\\..\\d', data: unit },
        ]),
      ),
    );
    expect(error.message).toContain('"./quadlet/b.container": non-canonical path (. or //)');
    expect(error.message).toContain('"quadlet//c.container": non-canonical path (. or //)');
    expect(error.message).toContain('"quadlet\\\\..\\\\d": backslash in name');
  });

  it('refuses a size or mode that differs from the manifest, and manifest files missing from the tarball', () => {
    const listed = [
      { path: 'quadlet/a.container', data: unit, mode: 0o600 },
      { path: 'env/a.env', data: Buffer.from('A=1\n'), mode: 0o600 },
    ];
    const tar = forgeTar([
      { path: MANIFEST_PATH, data: manifestFor(listed) },
      { path: 'quadlet/a.container', data: unit, mode: 0o644 },
    ]);
    const error = refuse(gzipSync(tar));
    expect(error.message).toMatch(/^bundle does not match its manifest: /);
    expect(error.message).toContain(
      `"quadlet/a.container": mode 644 differs from the manifest's 600`,
    );
    expect(error.message).toContain(
      '"env/a.env": listed in the manifest but missing from the archive',
    );
    const longer = forgeTar([
      { path: MANIFEST_PATH, data: manifestFor([unitFile]) },
      { path: unitFile.path, data: Buffer.concat([unit, Buffer.from('X')]) },
    ]);
    expect(refuse(gzipSync(longer)).message).toContain(
      `"quadlet/a.container": size ${unit.length + 1} differs from the manifest's ${unit.length}`,
    );
  });

  it('refuses a bundle without manifest.json', () => {
    const tar = forgeTar([{ path: unitFile.path, data: unit }]);
    expect(refuse(gzipSync(tar)).message).toBe('bundle has no manifest.json at its root');
  });

  it('enforces every limit', () => {
    const tgz = gzipSync(good([{ path: 'quadlet/b.container', data: Buffer.alloc(3000, 0x61) }]));
    const base = { ...defaultArchiveLimits };
    expect(refuse(tgz, { ...base, maxCompressedBytes: 10 }).message).toMatch(
      /more than the limit of 10$/,
    );
    expect(refuse(tgz, { ...base, maxEntries: 2 }).message).toBe('bundle has more than 2 entries');
    expect(refuse(tgz, { ...base, maxEntryBytes: 2000 }).message).toContain(
      '"quadlet/b.container": 3000 bytes, more than the limit of 2000',
    );
    expect(refuse(tgz, { ...base, maxTotalBytes: 2500 }).message).toMatch(
      /more than|exceeds the limit of 2500 bytes/,
    );
    const links = gzipSync(
      good(
        Array.from({ length: 10 }, (_, i) => ({ path: `quadlet/l${i}`, type: '2', linkpath: 'x' })),
      ),
    );
    expect(refuse(links, { ...base, maxEntries: 5 }).message).toBe(
      'bundle has more than 5 entries',
    );
    // Above the ratio floor: 2 MiB of zeros.
    const zeros = gzipSync(
      good([{ path: 'quadlet/z.container', data: Buffer.alloc(2 * 1024 * 1024) }]),
    );
    expect(refuse(zeros, { ...base, maxRatio: 10 }).message).toMatch(
      /more than 10 times its compressed size/,
    );
  });
});

describe('parseBundleArchive under random corruption', () => {
  it('answers every corrupted tarball with a bundle or manifest refusal, never a crash', () => {
    const tar = gunzipSync(buildTestBundle().tgz);
    // A fixed-seed generator, so that a failure reproduces.
    let seed = 0x5eed;
    const next = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed;
    };
    const seen = new Set<string>();
    let accepted = 0;
    for (let i = 0; i < 400; i++) {
      const copy = Buffer.from(tar);
      const flips = 1 + (next() % 4);
      for (let f = 0; f < flips; f++) {
        const at = next() % copy.length;
        copy[at] = next() % 256;
      }
      try {
        parseBundleArchive(gzipSync(copy));
        accepted++;
      } catch (error) {
        if (!isRickError(error)) throw error;
        expect(['BUNDLE_INVALID', 'MANIFEST_INVALID']).toContain(error.code);
        seen.add(error.code);
      }
    }
    // Most flips land in headers, data or the manifest; some land in padding and change nothing.
    expect(seen).toContain('BUNDLE_INVALID');
    expect(accepted).toBeLessThan(400);
  });

  it('answers every corrupted gzip stream with a bundle refusal', () => {
    const tgz = buildTestBundle().tgz;
    let seed = 0xbad;
    const next = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed;
    };
    for (let i = 0; i < 200; i++) {
      const copy = Buffer.from(tgz);
      const at = 10 + (next() % (copy.length - 10));
      copy[at] = (copy[at] ?? 0) ^ (1 + (next() % 255));
      try {
        parseBundleArchive(copy);
      } catch (error) {
        if (!isRickError(error)) throw error;
        expect(['BUNDLE_INVALID', 'MANIFEST_INVALID']).toContain(error.code);
      }
    }
  });
});

describe('parseBundleArchive agrees with GNU tar', () => {
  it('reads the same names and contents as tar, long names included', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'rick-gnutar-'));
    try {
      const paxName = `quadlet/${'p'.repeat(130)}.container`;
      const gnuName = `quadlet/${'g'.repeat(130)}.container`;
      const files = [
        { path: paxName, data: Buffer.from('[Container]\n# pax\n'), mode: 0o644 },
        { path: gnuName, data: Buffer.from('[Container]\n# gnu\n'), mode: 0o644 },
        { path: 'env/a.env', data: Buffer.from('A=1\n'), mode: 0o600 },
      ];
      const tgz = gzipSync(
        forgeTar([
          { path: MANIFEST_PATH, data: manifestFor(files) },
          { ...files[0]!, longName: 'pax' },
          { ...files[1]!, longName: 'gnu' },
          files[2]!,
        ]),
      );
      const file = join(dir, 'b.tgz');
      await writeFile(file, tgz);
      const listed = execFileSync('tar', ['-tzf', file], { encoding: 'utf8' }).trim().split('\n');
      const contents = parseBundleArchive(tgz);
      expect(listed.sort()).toEqual([MANIFEST_PATH, ...contents.files.keys()].sort());
      execFileSync('tar', ['-xzf', file, '-C', dir]);
      for (const [path, data] of contents.files) {
        expect((await readFile(join(dir, path))).equals(data)).toBe(true);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
