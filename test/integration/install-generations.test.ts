import { readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ExitCode, formatExitCodes } from '../../src/errors.js';
import { readState } from '../../src/host/state.js';
import { type FactoryFile, sampleFiles, writeSignedBundle } from '../helpers/bundle-factory.js';
import { FakeHost } from '../helpers/fake-host.js';
import { type HostTree, liveGeneration, readLive, runInstaller } from '../helpers/host-tree.js';
import { useHostTrees } from '../helpers/host-trees.js';
import { diffTrees, snapshotTree } from '../helpers/tree-snapshot.js';

const hosts = useHostTrees();
let tree: HostTree;

const withInstaller = (marker: string): FactoryFile[] => [
  ...sampleFiles('demo', marker).filter((f) => !f.path.startsWith('sysusers.d/')),
  { path: 'installer/rick-install.cjs', content: `// installer ${marker}\n`, mode: 0o755 },
  {
    path: 'sysusers.d/demo.conf',
    content: 'u demo - "Demo" /var/lib/demo\nm demo postgres-clients\n',
  },
  { path: 'tmpfiles.d/demo.conf', content: 'd /var/lib/demo 0750 demo demo -\n' },
];

describe('generations', () => {
  it('keeps the last N generations (remembered), never the live one', async () => {
    tree = await hosts.make();
    const host = new FakeHost({ root: tree.root });
    for (const [i, v] of ['1.0.0', '1.1.0', '1.2.0', '1.3.0', '1.4.0'].entries()) {
      const b = await writeSignedBundle(tree.work, hosts.key, {
        version: v,
        files: sampleFiles('demo', `m${i}`),
      });
      const args = [b.bundlePath, '--root', tree.root, ...(i === 0 ? ['--keep', '2'] : [])];
      expect((await runInstaller(host, args)).code).toBe(0);
    }
    expect((await readdir(join(tree.root, 'var/lib/rick/generations'))).sort()).toEqual(['4', '5']);
    expect((await readState(join(tree.root, 'var/lib/rick/state.json'))).keepGenerations).toBe(2);
    const bad = await runInstaller(host, ['x.tgz', '--keep', '0', '--root', tree.root]);
    expect(bad.code).toBe(ExitCode.usage);
  });

  it('applies sysusers before resolving the user, tmpfiles after, and points the host links through current', async () => {
    tree = await hosts.make({
      users: ['root:x:0:0:root:/root:/bin/sh'],
      groups: ['root:x:0:', 'postgres-clients:x:4001:'],
    });
    const host = new FakeHost({ root: tree.root });
    // The fake sysusers "creates" the user the way systemd-sysusers would.
    const apply = host.applySysusers.bind(host);
    host.applySysusers = async (fragments) => {
      const { appendFile } = await import('node:fs/promises');
      await appendFile(join(tree.root, 'etc/passwd'), 'demo:x:777:777::/var/lib/demo:/bin/false\n');
      await appendFile(join(tree.root, 'etc/group'), 'demo:x:777:\n');
      return apply(fragments);
    };
    const b = await writeSignedBundle(tree.work, hosts.key, {
      version: '1.0.0',
      files: withInstaller('a'),
    });
    const r = await runInstaller(host, [b.bundlePath, '--root', tree.root]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const ops = host.calls.map((c) => c.op);
    expect(ops.indexOf('sysusers')).toBeLessThan(ops.indexOf('tmpfiles'));
    expect(ops.indexOf('tmpfiles')).toBeLessThan(ops.indexOf('daemon-reload'));
    expect(host.calls.find((c) => c.op === 'sysusers')).toMatchObject({
      contents: ['u demo - "Demo" /var/lib/demo\nm demo postgres-clients\n'],
    });
    expect(await readLive(tree.root, 'quadlet/demo/demo-app.container')).toContain('User=777:777');
    expect(await readlink(join(tree.root, 'etc/containers/systemd/rick'))).toBe(
      '/var/lib/rick/current/quadlet',
    );
    expect(await readlink(join(tree.root, 'usr/local/bin/rick-install'))).toBe(
      '/var/lib/rick/current/installer/rick-install.cjs',
    );
    expect(await readLive(tree.root, 'installer/rick-install.cjs')).toBe('// installer a\n');
    // Nothing but the generation keeps the fragments around.
    expect(
      (await readdir(join(tree.root, 'var/lib/rick'))).filter((n) => n.startsWith('.apply')),
    ).toEqual([]);
  });

  it('carries the installer over when a bundle ships none, and rolls it back with the services', async () => {
    tree = await hosts.make();
    const host = new FakeHost({ root: tree.root });
    const a = await writeSignedBundle(tree.work, hosts.key, {
      version: '1.0.0',
      files: [
        ...sampleFiles('demo', 'a'),
        { path: 'installer/rick-install.cjs', content: '// v1\n', mode: 0o755 },
      ],
    });
    expect((await runInstaller(host, [a.bundlePath, '--root', tree.root])).code).toBe(0);
    const b = await writeSignedBundle(tree.work, hosts.key, {
      version: '1.1.0',
      files: sampleFiles('demo', 'b'),
    });
    expect((await runInstaller(host, [b.bundlePath, '--root', tree.root])).code).toBe(0);
    expect(await readLive(tree.root, 'installer/rick-install.cjs')).toBe('// v1\n');
    const c = await writeSignedBundle(tree.work, hosts.key, {
      version: '1.2.0',
      files: [
        ...sampleFiles('demo', 'c'),
        { path: 'installer/rick-install.cjs', content: '// v3\n', mode: 0o755 },
      ],
    });
    expect((await runInstaller(host, [c.bundlePath, '--root', tree.root])).code).toBe(0);
    expect(await readLive(tree.root, 'installer/rick-install.cjs')).toBe('// v3\n');
    expect((await runInstaller(host, ['rollback', '--root', tree.root])).code).toBe(0);
    expect(await liveGeneration(tree.root)).toBe('generations/2');
    expect(await readLive(tree.root, 'installer/rick-install.cjs')).toBe('// v1\n');
    expect((await runInstaller(host, ['verify', '--root', tree.root])).code).toBe(0);
  });

  it('cleans up what an interrupted run left: half-written generations and temporary links', async () => {
    tree = await hosts.make();
    const host = new FakeHost({ root: tree.root });
    const v1 = await writeSignedBundle(tree.work, hosts.key, { version: '1.0.0' });
    expect((await runInstaller(host, [v1.bundlePath, '--root', tree.root])).code).toBe(0);
    const { mkdir, symlink, writeFile } = await import('node:fs/promises');
    const state = join(tree.root, 'var/lib/rick');
    await mkdir(join(state, 'generations/2.tmp-4242/quadlet'), { recursive: true });
    await mkdir(join(state, '.apply-4242'));
    await writeFile(join(state, '.state.json.tmp-4242'), '{');
    await symlink('generations/2', join(state, 'current.tmp-4242'));
    await symlink(
      '/var/lib/rick/current/quadlet',
      join(tree.root, 'etc/containers/systemd/rick.tmp-4242'),
    );
    const v2 = await writeSignedBundle(tree.work, hosts.key, {
      version: '1.1.0',
      files: sampleFiles('demo', 'v2'),
    });
    const r = await runInstaller(host, [v2.bundlePath, '--root', tree.root]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('left by an interrupted run');
    expect((await readdir(join(state, 'generations'))).sort()).toEqual(['1', '2']);
    expect((await readdir(state)).sort()).toEqual([
      'created.json',
      'current',
      'generations',
      'state.json',
    ]);
    expect(await readdir(join(tree.root, 'etc/containers/systemd'))).toEqual(['rick']);
  });

  it('never removes a complete generation that no run recorded: refuses, naming it', async () => {
    tree = await hosts.make();
    const host = new FakeHost({ root: tree.root });
    const v1 = await writeSignedBundle(tree.work, hosts.key, { version: '1.0.0' });
    expect((await runInstaller(host, [v1.bundlePath, '--root', tree.root])).code).toBe(0);
    const { mkdir } = await import('node:fs/promises');
    await mkdir(join(tree.root, 'var/lib/rick/generations/7/quadlet'), { recursive: true });
    const v2 = await writeSignedBundle(tree.work, hosts.key, {
      version: '1.1.0',
      files: sampleFiles('demo', 'v2'),
    });
    const before = await snapshotTree(tree.root);
    host.reset();
    const r = await runInstaller(host, [v2.bundlePath, '--root', tree.root]);
    expect(r.code).toBe(ExitCode.rollbackFailed);
    expect(r.stderr).toContain(
      "error STATE_INCONSISTENT: rick's state contradicts the host, so nothing was changed: generation 7 is newer than any state.json records (it knows generations up to 1)",
    );
    expect(r.stderr).toContain('rick-install rollback --to 1');
    expect(host.calls).toEqual([]);
    expect(diffTrees(before, await snapshotTree(tree.root))).toEqual([]);
  });

  it('refuses a --root that is not a directory, creating nothing', async () => {
    tree = await hosts.make();
    const missing = join(tree.work, 'no-such-root');
    const host = new FakeHost({ root: missing });
    for (const argv of [['x.tgz'], ['rollback']]) {
      const r = await runInstaller(host, [...argv, '--root', missing]);
      expect(r.code).toBe(ExitCode.usage);
      expect(r.stderr).toContain(`error USAGE: --root ${missing} is not a directory`);
    }
    expect(await readdir(tree.work)).toEqual([]);
  });

  it('--help lists the exit codes', async () => {
    tree = await hosts.make();
    const r = await runInstaller(new FakeHost({ root: tree.root }), ['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(formatExitCodes());
    expect(r.stdout).toContain(' 9  another rick-install holds the lock');
    for (const command of ['plan', 'status', 'rollback', 'verify'])
      expect(r.stdout).toContain(command);
  });
});
