/**
 * What every CLI user expects of both programs: --version, commander's own
 * errors in rick's `error USAGE:` format, required options and defaults in
 * --help, each program's exit codes once in its top-level help, and a
 * --root that does not exist refused.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { bundleExitCodes } from '../../src/cli/rick-bundle.js';
import { ExitCode, exitCodeHelp } from '../../src/errors.js';
import { builtCli, builtInstaller, requireBuiltCli, runCli } from '../helpers/cli-process.js';
import { FakeHost } from '../helpers/fake-host.js';
import { repoRoot, runInstaller } from '../helpers/host-tree.js';
import { makeTempDir, runBundleCli } from '../helpers/rick-bundle.js';
import { diffTrees, snapshotTree } from '../helpers/tree-snapshot.js';

const packageVersion = async () =>
  (JSON.parse(await readFile(join(repoRoot, 'package.json'), 'utf8')) as { version: string })
    .version;

let cleanup: (() => Promise<void>) | undefined;
afterEach(async () => {
  await cleanup?.();
  cleanup = undefined;
});

describe('--version', () => {
  it('rick-install --version prints the package version and exits 0', async () => {
    const r = await runInstaller(new FakeHost({ root: '/nonexistent' }), ['--version']);
    expect(r).toEqual({ code: 0, stdout: `${await packageVersion()}\n`, stderr: '' });
  });

  it('rick-bundle --version prints the package version and exits 0', async () => {
    const r = await runBundleCli(['--version']);
    expect(r).toEqual({ code: 0, stdout: `${await packageVersion()}\n`, stderr: '' });
  });

  it('build --version X stays the bundle version under build', async () => {
    const r = await runBundleCli(['build', '--version', '1.2.3']);
    // Not the program's version: build goes on and asks for its bundle directory.
    expect(r.stdout).toBe('');
    expect(r.code).toBe(ExitCode.usage);
    expect(r.stderr).toMatch(/^error USAGE: missing required argument/);
  });

  it('the built programs and the single-file installer print it too', async () => {
    requireBuiltCli();
    const version = await packageVersion();
    for (const program of [builtCli, join(repoRoot, 'dist/cli/rick-bundle.js'), builtInstaller]) {
      const r = await runCli(['--version'], {}, program);
      expect({ program, code: r.code, stdout: r.stdout }).toEqual({
        program,
        code: 0,
        stdout: `${version}\n`,
      });
    }
  });
});

describe("commander's errors in rick's format", () => {
  it('an unknown option is `error USAGE:` with a hint, not the whole help', async () => {
    const r = await runInstaller(new FakeHost({ root: '/nonexistent' }), ['status', '--bogus']);
    expect(r.code).toBe(ExitCode.usage);
    expect(r.stderr).toBe(
      "error USAGE: unknown option '--bogus'\nhint: see `rick-install status --help`\n",
    );
    expect(r.stdout).toBe('');
  });

  it('a missing required option of rick-bundle too', async () => {
    const r = await runBundleCli(['sign', 'x.tgz']);
    expect(r.code).toBe(ExitCode.usage);
    expect(r.stderr).toBe(
      "error USAGE: required option '--key <file>' not specified\nhint: see `rick-bundle sign --help`\n",
    );
  });
});

describe('--help', () => {
  it('marks required options and shows defaults', async () => {
    const sign = await runBundleCli(['sign', '--help']);
    expect(sign.stdout).toMatch(/--key <file>\s+\(required\) the armored private key/);
    const install = await runInstaller(new FakeHost({ root: '/nonexistent' }), [
      'install',
      '--help',
    ]);
    expect(install.stdout.replace(/\s+/g, ' ')).toMatch(
      /--keep <n>\s+generations to keep, remembered in state\.json \(default: the number given last, else 3\)/,
    );
    const keygen = await runBundleCli(['keygen', '--help']);
    expect(keygen.stdout.replace(/\s+/g, ' ')).toMatch(
      /--out <dir>\s+where to write signing-key\.asc and signing-key\.pub\.asc\s+\(default: "\."\)/,
    );
    expect(keygen.stdout).toMatch(/--name <name>\s+\(required\)/);
  });

  it("each program's exit codes once, in its top-level help only", async () => {
    const ri = await runInstaller(new FakeHost({ root: '/nonexistent' }), ['--help']);
    const rb = await runBundleCli(['--help']);
    for (const [code, text] of exitCodeHelp) {
      const line = `  ${String(code).padStart(2)}  ${text.replaceAll('`', '')}`;
      expect(ri.stdout).toContain(line);
      if (bundleExitCodes.includes(code)) expect(rb.stdout).toContain(line);
      else expect(rb.stdout).not.toContain(line);
    }
    // rick-bundle never judges a host: no lock, rollback or drift codes.
    expect(rb.stdout).not.toContain('another rick-install holds the lock');
    for (const sub of ['install', 'plan', 'status']) {
      const r = await runInstaller(new FakeHost({ root: '/nonexistent' }), [sub, '--help']);
      expect(r.stdout).not.toContain('Exit codes:');
    }
    expect(ri.stdout.match(/Exit codes:/g)).toHaveLength(1);
  });
});

describe('keygen --out defaults to the current directory', () => {
  it('writes the keys where it runs', async () => {
    const dir = await makeTempDir();
    cleanup = () => import('node:fs/promises').then((fs) => fs.rm(dir, { recursive: true }));
    // --debug after the command name, as rick-bundle always took it.
    const r = await runBundleCli(['keygen', '--name', 'rick test', '--debug'], {
      cwd: dir,
      env: {},
    });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`private key ${join(dir, 'signing-key.asc')}`);
    await expect(readFile(join(dir, 'signing-key.pub.asc'), 'utf8')).resolves.toContain(
      'BEGIN PGP PUBLIC KEY BLOCK',
    );
  });
});

describe('status --root', () => {
  it('refuses a directory that does not exist instead of reporting nothing installed', async () => {
    const dir = await makeTempDir();
    cleanup = () => import('node:fs/promises').then((fs) => fs.rm(dir, { recursive: true }));
    const before = await snapshotTree(dir);
    const missing = join(dir, 'nonexistent');
    const r = await runInstaller(new FakeHost({ root: missing }), ['status', '--root', missing]);
    expect(r.code).toBe(ExitCode.usage);
    expect(r.stderr).toBe(
      `error USAGE: --root ${missing} is not a directory\nhint: create the image or test tree first\n`,
    );
    expect(r.stdout).toBe('');
    expect(diffTrees(before, await snapshotTree(dir))).toEqual([]);
  });
});
