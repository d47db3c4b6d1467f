/**
 * Bundles carry the installer's manual page and bash completion beside it
 * (installer/rick-install.1, installer/rick-install.bash), listed in the
 * signed manifest: built from the checkout's dist/installer/, or taken from
 * beside an installer given with --installer.
 */
import { execFile } from 'node:child_process';
import { copyFile, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { makeTestKey } from '../helpers/bundle-factory.js';
import { repoRoot } from '../helpers/host-tree.js';
import {
  makeTempDir,
  runBundleCli,
  writeBundleDir,
  writeTestInstaller,
} from '../helpers/rick-bundle.js';
import { expectTreeUnchanged, snapshotTree } from '../helpers/tree-snapshot.js';

const run = promisify(execFile);

let work: string;
let out: string;
let bundleDir: string;
beforeEach(async () => {
  work = await makeTempDir('rick-installer-docs-');
  out = join(work, 'out');
  bundleDir = await writeBundleDir(join(work, 'demo'), {
    'bundle.yaml':
      'name: demo\nneeds: { users: [root] }\nfiles:\n  quadlet: [quadlet/demo.container.j2]\n',
    'quadlet/demo.container.j2': '[Container]\nImage=docker.io/library/demo:1\n',
  });
});
afterEach(async () => {
  await rm(work, { recursive: true, force: true });
});

interface Entry {
  path: string;
  kind: string;
  sha256: string;
  mode: number;
}

async function installerFiles(tgz: string): Promise<Entry[]> {
  const { stdout } = await run('tar', ['-xzOf', tgz, 'manifest.json']);
  const manifest = JSON.parse(stdout) as { files: Entry[] };
  return manifest.files.filter((f) => f.kind === 'installer');
}

describe('rick-bundle build: the installer manual page and completion', () => {
  it('ships those of dist/installer/ with the default installer, in the signed manifest, and verify accepts the bundle', async () => {
    const build = await runBundleCli(['build', bundleDir, '--version', '1.0.0', '--out', out]);
    expect(build.stderr).toBe('');
    expect(build.code).toBe(0);
    const tgz = join(out, 'demo-1.0.0.tgz');
    const files = await installerFiles(tgz);
    expect(files.map((f) => [f.path, f.mode])).toEqual([
      ['installer/build-record.json', 0o644],
      ['installer/rick-install.1', 0o644],
      ['installer/rick-install.bash', 0o644],
      ['installer/rick-install.cjs', 0o755],
    ]);
    // The bytes in the tarball are those npm run build wrote beside the installer.
    for (const name of ['rick-install.1', 'rick-install.bash']) {
      const { stdout } = await run('tar', ['-xzOf', tgz, `installer/${name}`], {
        encoding: 'buffer',
        maxBuffer: 1 << 24,
      });
      expect(stdout.equals(await readFile(join(repoRoot, 'dist/installer', name)))).toBe(true);
    }
    const page = (await readFile(join(repoRoot, 'dist/installer/rick-install.1'), 'utf8')).slice(
      0,
      200,
    );
    expect(page).toContain('.TH RICK\\-INSTALL 1');

    // Signed and read back as hosts read it: every listed file's hash checked.
    const key = await makeTestKey('rick release');
    await writeFile(join(work, 'key.asc'), key.privateKeyArmored);
    await writeFile(join(work, 'pub.asc'), key.publicKeyArmored);
    const sign = await runBundleCli(['sign', tgz, '--key', join(work, 'key.asc')]);
    expect(sign.code).toBe(0);
    const verify = await runBundleCli(['verify', tgz, '--keyring', join(work, 'pub.asc')]);
    expect(verify.stderr).toBe('');
    expect(verify.code).toBe(0);
  });

  it('ships the two files found beside an installer given with --installer, and none when neither is there', async () => {
    const installer = await writeTestInstaller(work);
    const plain = await runBundleCli([
      'build',
      bundleDir,
      '--version',
      '1.0.0',
      '--out',
      join(out, 'plain'),
      '--installer',
      installer,
    ]);
    expect(plain.code).toBe(0);
    expect((await installerFiles(join(out, 'plain/demo-1.0.0.tgz'))).map((f) => f.path)).toEqual([
      'installer/build-record.json',
      'installer/rick-install.cjs',
    ]);

    await writeFile(join(work, 'rick-install.1'), '.TH RICK\\-INSTALL 1\n');
    await writeFile(join(work, 'rick-install.bash'), 'complete -F _rick_install rick-install\n');
    const beside = await runBundleCli([
      'build',
      bundleDir,
      '--version',
      '1.0.0',
      '--out',
      join(out, 'beside'),
      '--installer',
      installer,
    ]);
    expect(beside.code).toBe(0);
    expect((await installerFiles(join(out, 'beside/demo-1.0.0.tgz'))).map((f) => f.path)).toEqual([
      'installer/build-record.json',
      'installer/rick-install.1',
      'installer/rick-install.bash',
      'installer/rick-install.cjs',
    ]);
  });

  it('refuses an installer with only one of the two beside it, naming the missing one, and writes nothing', async () => {
    const installer = await writeTestInstaller(work);
    await copyFile(join(repoRoot, 'dist/installer/rick-install.1'), join(work, 'rick-install.1'));
    const before = await snapshotTree(work);
    const result = await runBundleCli([
      'build',
      bundleDir,
      '--version',
      '1.0.0',
      '--out',
      out,
      '--installer',
      installer,
    ]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(
      `error INPUT_NOT_FOUND: the installer's manual page and completion must lie beside it: ${join(work, 'rick-install.bash')} missing`,
    );
    expect(result.stderr).toContain('or neither');
    await expectTreeUnchanged(work, before);
  });
});
