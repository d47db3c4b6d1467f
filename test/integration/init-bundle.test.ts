/**
 * `rick-bundle init`: a first bundle of one's own, written outside any
 * checkout (its shared templates come from the installed package), built by
 * the real builder (quadlet checks its unit), signed, and installed on a
 * host tree that has no grant file at all.
 */
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExitCode } from '../../src/errors.js';
import { makeTestKey, type TestKey } from '../helpers/bundle-factory.js';
import { FakeHost } from '../helpers/fake-host.js';
import {
  liveGeneration,
  makeHostTree,
  quadletPath,
  readLive,
  runInstaller,
} from '../helpers/host-tree.js';
import { makeTempDir, runBundleCli } from '../helpers/rick-bundle.js';
import { diffTrees, snapshotTree } from '../helpers/tree-snapshot.js';

let work: string;
let key: TestKey;
const env = { PATH: process.env.PATH, SOURCE_DATE_EPOCH: '1700000000' };

beforeAll(async () => {
  work = await makeTempDir('rick-init-');
  key = await makeTestKey('rick init');
  await writeFile(join(work, 'signing-key.asc'), key.privateKeyArmored, { mode: 0o600 });
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('rick-bundle init', () => {
  it('writes a bundle that builds, signs and installs on a host with no grant file', async () => {
    expect(quadletPath, 'podman quadlet in .cache (scripts/fetch-quadlet.sh)').toBeDefined();
    const made = await runBundleCli(['init', 'hello'], { env, cwd: work });
    expect(made.stderr).toBe('');
    expect(made.code).toBe(ExitCode.ok);
    const dir = join(work, 'bundles/hello');
    expect(made.stdout).toContain(`wrote ${dir}\n`);
    expect((await readdir(dir)).sort()).toEqual(['bundle.yaml', 'quadlet', 'sysusers.d']);
    // No templates/ beside the bundles here: quadlet.j2 comes from the package.
    expect(await readFile(join(dir, 'quadlet/hello.container.j2'), 'utf8')).toContain(
      '{% import "quadlet.j2" as quadlet %}',
    );

    const built = await runBundleCli(
      ['build', dir, '--version', '0.1.0', '--out', join(work, 'dist')],
      { env, cwd: work },
    );
    expect(built.stderr).toBe('');
    expect(built.code).toBe(ExitCode.ok);
    const tgz = join(work, 'dist/hello-0.1.0.tgz');
    const signed = await runBundleCli(['sign', tgz, '--key', join(work, 'signing-key.asc')], {
      env,
      cwd: work,
    });
    expect(signed.code).toBe(ExitCode.ok);

    const tree = await makeHostTree(key, { grants: {} });
    try {
      expect(await readdir(join(tree.root, 'etc/rick/policy.d'))).toEqual([]);
      const host = new FakeHost({ root: tree.root });
      const r = await runInstaller(host, [tgz, '--root', tree.root]);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(ExitCode.ok);
      expect(await liveGeneration(tree.root)).toBe('generations/1');
      const unit = await readLive(tree.root, 'quadlet/hello/hello.container');
      expect(unit).toMatch(/^User=\d+:\d+$/m);
      expect(unit).toContain('PublishPort=127.0.0.1:8080:8080');
    } finally {
      await tree.cleanup();
    }
  }, 60_000);

  it('refuses a directory that holds files, and a name that is not one, writing nothing', async () => {
    const out = join(work, 'taken');
    await runBundleCli(['init', 'taken', '--out', out], { env, cwd: work });
    await writeFile(join(out, 'bundle.yaml'), 'name: mine\n');
    const before = await snapshotTree(work);
    const again = await runBundleCli(['init', 'other', '--out', out], { env, cwd: work });
    expect(again.stderr).toContain(
      `error USAGE: ${out} already holds files; refusing to write a bundle into it`,
    );
    expect(again.code).toBe(ExitCode.usage);
    const bad = await runBundleCli(['init', 'Hello_World'], { env, cwd: work });
    expect(bad.stderr).toContain('error USAGE: "Hello_World" is not a bundle name');
    expect(bad.code).toBe(ExitCode.usage);
    expect(diffTrees(before, await snapshotTree(work))).toEqual([]);
  });

  it('"template not found" says where it looked and names --templates', async () => {
    const dir = join(work, 'lost');
    await runBundleCli(['init', 'lost', '--out', dir], { env, cwd: work });
    const nowhere = join(work, 'no-templates');
    const before = await snapshotTree(work);
    const r = await runBundleCli(
      ['build', dir, '--version', '0.1.0', '--out', join(work, 'never'), '--templates', nowhere],
      { env, cwd: work },
    );
    expect(r.stderr).toContain('template not found: quadlet.j2');
    expect(r.stderr).toContain(`looked in ${dir} and ${nowhere} (does not exist)`);
    expect(r.stderr).toContain('hint: pass --templates DIR');
    expect(r.code).toBe(ExitCode.invalidBundle);
    expect(diffTrees(before, await snapshotTree(work))).toEqual([]);
  });

  it('NEEDS_UNDECLARED shows the YAML to add', async () => {
    const dir = join(work, 'wide');
    await runBundleCli(['init', 'wide', '--out', dir], { env, cwd: work });
    const unitPath = join(dir, 'quadlet/wide.container.j2');
    const unit = await readFile(unitPath, 'utf8');
    await writeFile(unitPath, unit.replace('PublishPort=127.0.0.1:', 'PublishPort=0.0.0.0:'));
    const before = await snapshotTree(work);
    const r = await runBundleCli(
      ['build', dir, '--version', '0.1.0', '--out', join(work, 'never')],
      { env, cwd: work },
    );
    expect(r.stderr).toContain('error NEEDS_UNDECLARED: the rendered units use what bundle.yaml');
    expect(r.stderr).toContain(
      'hint: if the units truly need it, add to bundle.yaml (into its needs: if it has one):\n    needs:\n      ports:\n        - "0.0.0.0:8080/tcp"\nor fix the template',
    );
    expect(r.code).toBe(ExitCode.invalidBundle);
    expect(diffTrees(before, await snapshotTree(work))).toEqual([]);
  });
});
