/**
 * The single-file installer, built by installer/build.mjs and run the way a
 * host runs it: one file in a directory with no node_modules anywhere above,
 * `node rick-install.cjs …`.
 */
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, fstatSync, openSync } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { brotliDecompressSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExitCode } from '../../src/errors.js';
import { readState } from '../../src/host/state.js';
import {
  makeTestKey,
  sampleFiles,
  type TestKey,
  writeSignedBundle,
} from '../helpers/bundle-factory.js';
import { startConnectProxy } from '../helpers/connect-proxy.js';
import { FeedServer } from '../helpers/feed-server.js';
import { makeHostTree, repoRoot } from '../helpers/host-tree.js';
import { Publisher } from '../helpers/index-publisher.js';
import { ReleaseServer } from '../helpers/release-server.js';
import { diffTrees, snapshotTree } from '../helpers/tree-snapshot.js';

const run = promisify(execFile);

let dir: string;
let installer: string;
let key: TestKey;

beforeAll(async () => {
  key = await makeTestKey('rick release');
  dir = await mkdtemp(join(tmpdir(), 'rick-installer-'));
  // Two builds of the same sources, side by side.
  await Promise.all(
    ['a', 'b'].map((name) =>
      run(process.execPath, [
        join(repoRoot, 'installer/build.mjs'),
        '--outfile',
        join(dir, `build/${name}.cjs`),
      ]),
    ),
  );
  // The host has the one file and nothing else.
  await mkdir(join(dir, 'host'));
  installer = join(dir, 'host/rick-install.cjs');
  await copyFile(join(dir, 'build/a.cjs'), installer);
}, 120_000);

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runInstaller(
  args: string[],
  extraEnv: NodeJS.ProcessEnv = {},
  options: { closeStdout?: boolean } = {},
): Promise<Result> {
  return new Promise((resolve) => {
    const env: NodeJS.ProcessEnv = { ...process.env, NODE_PATH: '' };
    for (const name of ['HTTPS_PROXY', 'HTTP_PROXY', 'https_proxy', 'http_proxy', 'GITHUB_TOKEN']) {
      delete env[name];
    }
    Object.assign(env, extraEnv);
    const child = spawn(process.execPath, [installer, ...args], {
      cwd: join(dir, 'host'),
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    // A reader gone before the program writes (`rick-install … | head -1`).
    if (options.closeStdout) child.stdout.destroy();
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

describe('the single-file installer', () => {
  it('builds deterministically into one executable CommonJS file that loads only Node built-ins', async () => {
    const a = await readFile(join(dir, 'build/a.cjs'));
    const b = await readFile(join(dir, 'build/b.cjs'));
    expect(a.equals(b)).toBe(true);
    const text = a.toString('latin1');
    expect(text.startsWith('#!/usr/bin/env node\n')).toBe(true);
    // ASCII only: Node reads an ASCII source much faster at every start.
    expect(a.every((byte) => byte < 0x80)).toBe(true);
    // undici and the rest of the program travel in the closing comments
    // (see installer/build.mjs), each brotli and base64.
    const part = (marker: string) => {
      const at = text.lastIndexOf(marker);
      expect(at).toBeGreaterThan(0);
      const body = text.indexOf('\n', at + 1) + 1;
      return {
        at,
        code: brotliDecompressSync(
          Buffer.from(text.slice(body, text.indexOf('\n*/', body)), 'base64'),
        ).toString('utf8'),
      };
    };
    const undici = part('\n/* rick-install: undici');
    const rest = part('\n/* rick-install: the rest of the program');
    expect(rest.code).toContain('installBundle');
    expect(rest.code).not.toContain('node_modules/undici/');
    expect(undici.code).toContain('node_modules/undici/');
    const start = Math.min(undici.at, rest.at);
    for (const code of [text.slice(0, start), rest.code, undici.code]) {
      const specifiers = [
        // Not the word inside a string ("import" as a Caddy directive's name).
        ...code.matchAll(/(?<!["'])\bimport\s*(?:[\w*{][^;'"]*?from\s*)?["']([^"']+)["']/g),
        ...code.matchAll(/\bimport\(\s*["']([^"']+)["']\s*\)/g),
        // The parts are scripts run by vm.Script: they load modules with require().
        ...code.matchAll(/\brequire\(\s*["']([^"']+)["']\s*\)/g),
      ].map((m) => m[1] ?? '');
      expect(specifiers.length).toBeGreaterThan(0);
      // Node's own modules only: every package is inside the file. (undici's
      // optional SQLite cache store, which rick never uses, names Node 22's node:sqlite.)
      for (const specifier of specifiers) {
        expect([...builtinModules, 'sqlite']).toContain(specifier.replace(/^node:/, ''));
      }
    }
    expect(text).not.toContain(repoRoot);
  });

  it('prints its help, with the update command and the exit codes', async () => {
    const r = await runInstaller(['--help']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Usage: rick-install');
    expect(r.stdout).toMatch(/\n\s+update \[options\]/);
    expect(r.stdout).toContain(
      '11  release feed unreachable or malformed, or an index older than the last accepted',
    );
    const u = await runInstaller(['update', '--help']);
    expect(u.code).toBe(0);
    expect(u.stdout).toContain('--root <dir>');
  });

  it('refuses to run on Node.js older than 20, naming the version, the host tree unchanged', async () => {
    const tree = await makeHostTree(key);
    try {
      const bundle = await writeSignedBundle(tree.work, key, { name: 'demo', version: '1.0.0' });
      // Node 18 (Debian 12's apt) as the program sees it: the version it reports.
      const preload = join(tree.work, 'node18.cjs');
      await writeFile(
        preload,
        "Object.defineProperty(process.versions, 'node', { value: '18.19.0' });\n" +
          "Object.defineProperty(process, 'version', { value: 'v18.19.0' });\n",
      );
      const before = await snapshotTree(tree.root, { mtime: true });
      const r = await runInstaller([bundle.bundlePath, '--root', tree.root], {
        NODE_OPTIONS: `--require ${preload}`,
      });
      expect(r.stderr).toContain(
        'error PREREQUISITE_MISSING: rick-install needs Node.js 20 or newer; this is v18.19.0',
      );
      expect(r.code).toBe(ExitCode.missingPrerequisite);
      expect(diffTrees(before, await snapshotTree(tree.root, { mtime: true }))).toEqual([]);
    } finally {
      await tree.cleanup();
    }
  });

  it('installs a bundle into a --root tree, and follows a feed from there', async () => {
    const tree = await makeHostTree(key);
    const feed = await FeedServer.start();
    try {
      const v1 = await writeSignedBundle(join(tree.work, 'local'), key, { version: '1.0.0' });
      const install = await runInstaller([v1.bundlePath, '--root', tree.root]);
      expect(install.stderr).toBe('');
      expect(install.code).toBe(ExitCode.ok);
      expect(install.stdout).toContain('installed demo 1.0.0 as generation 1');

      await writeFile(
        join(tree.root, 'etc/rick/rick.conf'),
        `FEED=${feed.listUrl}\nBUNDLES=demo\n`,
      );
      const v2 = await writeSignedBundle(join(tree.work, 'feed'), key, {
        version: '1.1.0',
        files: sampleFiles('demo', 'v2'),
      });
      await feed.addBundle(v2.bundlePath);
      const update = await runInstaller(['update', '--root', tree.root]);
      expect(update.stderr).toBe('');
      expect(update.code).toBe(ExitCode.ok);
      expect(update.stdout).toContain('demo: installed 1.1.0');
      const state = await readState(join(tree.root, 'var/lib/rick/state.json'));
      expect(state.bundles.demo?.installed).toBe('1.1.0');

      const before = await snapshotTree(tree.root, { mtime: true });
      const noop = await runInstaller(['update', '--root', tree.root]);
      expect(noop.code).toBe(ExitCode.ok);
      expect(noop.stdout).toContain('unchanged since the last check, nothing new');
      expect(diffTrees(before, await snapshotTree(tree.root, { mtime: true }))).toEqual([]);

      // With nobody reading its output, the tick still ends quietly and as
      // usual, and an install it starts goes through to the end.
      const unread = await runInstaller(['update', '--root', tree.root], {}, { closeStdout: true });
      expect(unread).toEqual({ code: ExitCode.ok, stdout: '', stderr: '' });
      const v15 = await writeSignedBundle(join(tree.work, 'feed'), key, {
        version: '1.1.5',
        files: sampleFiles('demo', 'v15'),
      });
      await feed.addBundle(v15.bundlePath);
      const unreadInstall = await runInstaller(
        ['update', '--root', tree.root],
        {},
        { closeStdout: true },
      );
      expect(unreadInstall).toEqual({ code: ExitCode.ok, stdout: '', stderr: '' });
      expect(
        (await readState(join(tree.root, 'var/lib/rick/state.json'))).bundles.demo?.installed,
      ).toBe('1.1.5');
      const help = await runInstaller(['--help'], {}, { closeStdout: true });
      expect(help).toEqual({ code: ExitCode.ok, stdout: '', stderr: '' });

      // A refusal inside the deferred install pipeline keeps its own exit code.
      const v3 = await writeSignedBundle(join(tree.work, 'feed'), key, {
        version: '1.2.0',
        files: sampleFiles('demo', 'v3'),
      });
      await feed.addBundle(v3.bundlePath);
      const asset = feed.asset('demo-1.2.0.tgz');
      asset.data = Buffer.from(asset.data);
      asset.data.writeUInt8(
        asset.data.readUInt8(asset.data.length - 20) ^ 0x01,
        asset.data.length - 20,
      );
      const refused = await runInstaller(['update', '--root', tree.root]);
      expect(refused.code).toBe(ExitCode.untrustedSignature);
      expect(refused.stderr).toMatch(/^error SIGNATURE_INVALID: /);
    } finally {
      await feed.stop();
      await tree.cleanup();
    }
  });

  it('follows a signed release index, and files a frozen one at warning priority in the journal', async () => {
    const tree = await makeHostTree(key);
    const server = await ReleaseServer.start();
    try {
      const v1 = await writeSignedBundle(join(tree.work, 'local'), key, {
        version: '1.0.0',
        files: sampleFiles('demo', '1.0.0'),
      });
      expect((await runInstaller([v1.bundlePath, '--root', tree.root])).code).toBe(ExitCode.ok);
      const indexUrl = server.latestUrl('index.json');
      await writeFile(join(tree.root, 'etc/rick/rick.conf'), `FEED=${indexUrl}\nBUNDLES=demo\n`);
      const publisher = new Publisher(server, join(tree.work, 'publish'), key);
      // This process runs on the real clock.
      await publisher.publish(['1.1.0'], { issued: Date.now() - 3_600_000 });
      const update = await runInstaller(['update', '--root', tree.root]);
      expect(update.stderr).toBe('');
      expect(update.code).toBe(ExitCode.ok);
      expect(update.stdout).toContain('demo: installed 1.1.0\n');

      const before = await snapshotTree(tree.root, { mtime: true });
      const noop = await runInstaller(['update', '--root', tree.root]);
      expect(noop).toEqual({
        code: ExitCode.ok,
        stdout: `checked ${indexUrl}: unchanged since the last check, nothing new\n`,
        stderr: '',
      });
      expect(diffTrees(before, await snapshotTree(tree.root, { mtime: true }))).toEqual([]);

      // The publisher stopped re-signing: what is served has expired. Under
      // systemd, stdout is the journal stream that $JOURNAL_STREAM names.
      const expired = await publisher.publish([], {
        issued: Date.now() - 10 * 86_400_000,
        validForMs: 86_400_000,
      });
      const journal = join(tree.work, 'journal');
      const fd = openSync(journal, 'w');
      const st = fstatSync(fd, { bigint: true });
      const child = spawn(process.execPath, [installer, 'update', '--root', tree.root], {
        cwd: join(dir, 'host'),
        env: { ...process.env, NODE_PATH: '', JOURNAL_STREAM: `${st.dev}:${st.ino}` },
        stdio: ['ignore', fd, 'pipe'],
      });
      let stderr = '';
      child.stderr?.on('data', (d: Buffer) => {
        stderr += d.toString();
      });
      const [code] = (await once(child, 'close')) as [number];
      closeSync(fd);
      expect(code).toBe(ExitCode.indexExpired);
      expect(stderr).toContain(
        `error INDEX_EXPIRED: release index ${indexUrl} (serial ${expired.serial}) expired at ${expired.expires}`,
      );
      expect(await readFile(journal, 'utf8')).toBe(
        `<4>release index ${indexUrl} (serial ${expired.serial}) expired at ${expired.expires}: installing nothing until a fresh index is served; the feed may be frozen\n`,
      );
    } finally {
      await server.stop();
      await tree.cleanup();
    }
  });

  it('follows a feed through the proxy named by HTTP_PROXY (undici, run from its own part)', async () => {
    const tree = await makeHostTree(key);
    const feed = await FeedServer.start();
    const proxy = await startConnectProxy();
    const { tunnels } = proxy;
    const proxyEnv = { HTTP_PROXY: proxy.url };
    try {
      await writeFile(
        join(tree.root, 'etc/rick/rick.conf'),
        `FEED=${feed.listUrl}\nBUNDLES=demo\n`,
      );
      const v1 = await writeSignedBundle(join(tree.work, 'feed'), key, { version: '1.0.0' });
      await feed.addBundle(v1.bundlePath);
      const update = await runInstaller(['update', '--root', tree.root], proxyEnv);
      expect(update.stderr).toBe('');
      expect(update.code).toBe(ExitCode.ok);
      expect(update.stdout).toContain('demo: installed 1.0.0');
      // The API and the storage its downloads redirect to, both through the proxy.
      const hosts = [feed.apiOrigin, feed.objectsOrigin].map((o) => new URL(o).host);
      expect(tunnels.length).toBeGreaterThan(0);
      expect(new Set(tunnels)).toEqual(new Set(hosts));

      // The no-op tick through the proxy loads undici without the rest.
      const seen = tunnels.length;
      const noop = await runInstaller(['update', '--root', tree.root], proxyEnv);
      expect(noop.stderr).toBe('');
      expect(noop.code).toBe(ExitCode.ok);
      expect(noop.stdout).toContain('unchanged since the last check, nothing new');
      expect(tunnels.length).toBeGreaterThan(seen);
    } finally {
      proxy.server.close();
      await feed.stop();
      await tree.cleanup();
    }
  });

  it('refuses untrusted bundles and keyrings with the right code, the host tree unchanged', async () => {
    // The signature check starts before the rest of the program loads
    // (src/host/intake/signature.ts); its refusals must read exactly as they do
    // in the program.
    const tree = await makeHostTree(key);
    try {
      const v1 = await writeSignedBundle(join(tree.work, 'v1'), key, { version: '1.0.0' });
      expect((await runInstaller([v1.bundlePath, '--root', tree.root])).code).toBe(ExitCode.ok);
      const changed = await writeSignedBundle(join(tree.work, 'v2'), key, { version: '1.1.0' });
      const tgz = await readFile(changed.bundlePath);
      tgz.writeUInt8(tgz.readUInt8(100) ^ 0x01, 100);
      await writeFile(changed.bundlePath, tgz);
      let before = await snapshotTree(tree.root, { mtime: true });
      const bad = await runInstaller([changed.bundlePath, '--root', tree.root]);
      expect(bad.stderr).toMatch(/^error SIGNATURE_INVALID: no valid signature by a trusted key/);
      expect(bad.code).toBe(ExitCode.untrustedSignature);
      expect(diffTrees(before, await snapshotTree(tree.root, { mtime: true }))).toEqual([]);

      const keyFile = join(tree.root, 'etc/rick/keys/release.asc');
      await chmod(keyFile, 0o666);
      const good = await writeSignedBundle(join(tree.work, 'v3'), key, { version: '1.2.0' });
      before = await snapshotTree(tree.root, { mtime: true });
      const insecure = await runInstaller(['install', good.bundlePath, '--root', tree.root]);
      expect(insecure.stderr).toMatch(
        /^error KEYRING_INSECURE: .*release\.asc is group- or world-writable/,
      );
      expect(insecure.code).toBe(ExitCode.untrustedSignature);
      expect(diffTrees(before, await snapshotTree(tree.root, { mtime: true }))).toEqual([]);
    } finally {
      await tree.cleanup();
    }
  });
});
