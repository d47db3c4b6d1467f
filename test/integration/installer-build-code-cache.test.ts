/**
 * The single-file installer's V8 code cache of its deferred part
 * (installer/entry.ts): kept in <root>/var/lib/rick/cache after a successful
 * command, used by the next run of that command while it is sound, replaced
 * when damaged, never written by a refused command, and never the reason a
 * state directory exists. Run the way a host runs the file: alone in a
 * directory without node_modules.
 */
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExitCode } from '../../src/errors.js';
import {
  makeTestKey,
  sampleFiles,
  type TestKey,
  writeSignedBundle,
} from '../helpers/bundle-factory.js';
import { makeHostTree, repoRoot } from '../helpers/host-tree.js';
import { diffTrees, snapshotTree } from '../helpers/tree-snapshot.js';

const run = promisify(execFile);

let dir: string;
let installer: string;
let key: TestKey;

beforeAll(async () => {
  key = await makeTestKey('rick release');
  dir = await mkdtemp(join(tmpdir(), 'rick-installer-cache-'));
  await mkdir(join(dir, 'host'));
  installer = join(dir, 'host/rick-install.cjs');
  await run(process.execPath, [join(repoRoot, 'installer/build.mjs'), '--outfile', installer]);
}, 120_000);

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function runInstaller(
  args: string[],
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const env: NodeJS.ProcessEnv = { ...process.env, NODE_PATH: '' };
    const child = spawn(process.execPath, [installer, ...args], {
      cwd: join(dir, 'host'),
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest();

describe("the single-file installer's code cache", () => {
  it('is kept after an install, used while sound, and replaced when damaged', async () => {
    const tree = await makeHostTree(key);
    try {
      const cacheDir = join(tree.root, 'var/lib/rick/cache');
      const install = async (version: string) => {
        const bundle = await writeSignedBundle(join(tree.work, version), key, {
          version,
          files: sampleFiles('demo', version),
        });
        const r = await runInstaller([bundle.bundlePath, '--root', tree.root]);
        expect(r.stderr).toBe('');
        expect(r.code).toBe(ExitCode.ok);
        return r.stdout;
      };

      expect(await install('1.0.0')).toContain('installed demo 1.0.0 as generation 1');
      const names = await readdir(cacheDir);
      expect(names).toHaveLength(1);
      const name = names[0] ?? '';
      expect(name).toMatch(/^[0-9a-f]{64}\.install\.v8$/);
      const file = join(cacheDir, name);
      expect((await stat(cacheDir)).mode & 0o777).toBe(0o700);
      expect((await stat(file)).mode & 0o777).toBe(0o600);
      const written = await readFile(file);
      // A SHA-256 of V8's data, then the data.
      expect(written.length).toBeGreaterThan(32);
      expect(sha256(written.subarray(32)).equals(written.subarray(0, 32))).toBe(true);

      // Accepted by V8: the next install leaves the same file in place.
      const before = await stat(file);
      expect(await install('1.1.0')).toContain('installed demo 1.1.0 as generation 2');
      const after = await stat(file);
      expect([after.ino, after.mtimeMs]).toEqual([before.ino, before.mtimeMs]);

      // A cache left by an earlier installer (another deferred part) goes
      // when this one writes its own.
      const stale = join(cacheDir, `${'0'.repeat(64)}.install.v8`);
      await writeFile(stale, 'old');

      // Damaged data is never handed to V8: the install runs as usual and
      // leaves a sound cache behind.
      const damaged = Buffer.from(written);
      const at = 32 + Math.floor((damaged.length - 32) / 2);
      damaged.writeUInt8(damaged.readUInt8(at) ^ 0xff, at);
      await writeFile(file, damaged);
      expect(await install('1.2.0')).toContain('installed demo 1.2.0 as generation 3');
      let now = await readFile(file);
      expect(now.equals(damaged)).toBe(false);
      expect(sha256(now.subarray(32)).equals(now.subarray(0, 32))).toBe(true);

      // So is a cut-off file.
      await writeFile(file, written.subarray(0, 20));
      expect(await install('1.3.0')).toContain('installed demo 1.3.0 as generation 4');
      now = await readFile(file);
      expect(sha256(now.subarray(32)).equals(now.subarray(0, 32))).toBe(true);
      expect(await readdir(cacheDir)).toEqual([name]);
    } finally {
      await tree.cleanup();
    }
  });

  it('is not written by a refused install, nor into a tree without a state directory', async () => {
    const tree = await makeHostTree(key);
    try {
      const bundle = await writeSignedBundle(join(tree.work, 'local'), key, { version: '1.0.0' });
      const bytes = Buffer.from(bundle.tgz);
      bytes.writeUInt8(bytes.readUInt8(bytes.length - 20) ^ 0x01, bytes.length - 20);
      await writeFile(bundle.bundlePath, bytes);
      const fresh = await snapshotTree(tree.root, { mtime: true });
      const refused = await runInstaller([bundle.bundlePath, '--root', tree.root]);
      expect(refused.code).toBe(ExitCode.untrustedSignature);
      expect(refused.stderr).toMatch(/^error SIGNATURE_INVALID: /);
      // Refused before the lock: not even a lock file, let alone a cache.
      expect(diffTrees(fresh, await snapshotTree(tree.root, { mtime: true }))).toEqual([]);

      // Help loads the whole program and succeeds, but a tree without
      // /var/lib/rick gets none for the cache's sake.
      await rm(join(tree.root, 'var'), { recursive: true, force: true });
      const before = await snapshotTree(tree.root, { mtime: true });
      const help = await runInstaller(['status', '--help', '--root', tree.root]);
      expect(help.code).toBe(ExitCode.ok);
      expect(help.stdout).toContain('Usage: rick-install status');
      expect(diffTrees(before, await snapshotTree(tree.root, { mtime: true }))).toEqual([]);
    } finally {
      await tree.cleanup();
    }
  });
});
