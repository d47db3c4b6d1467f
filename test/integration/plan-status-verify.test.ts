import { appendFile, chmod, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BUILD_RECORD_PATH } from '../../src/bundle/build-record.js';
import { ExitCode } from '../../src/errors.js';
import { sampleFiles, writeSignedBundle } from '../helpers/bundle-factory.js';
import { FakeHost } from '../helpers/fake-host.js';
import {
  type HostTree,
  liveGeneration,
  readLive,
  runInstaller,
  SECRET,
} from '../helpers/host-tree.js';
import { useHostTrees } from '../helpers/host-trees.js';
import { diffTrees, snapshotTree } from '../helpers/tree-snapshot.js';

const hosts = useHostTrees();
let tree: HostTree;

async function hostWith(version = '1.0.0', marker = 'v1') {
  tree = await hosts.make();
  const host = new FakeHost({ root: tree.root });
  const b = await writeSignedBundle(tree.work, hosts.key, {
    version,
    files: sampleFiles('demo', marker),
  });
  const r = await runInstaller(host, [b.bundlePath, '--root', tree.root]);
  expect(r.code).toBe(0);
  host.reset();
  return host;
}

describe('rick-install plan', () => {
  it('shows the masked diff and the services that would restart, and changes nothing', async () => {
    const host = await hostWith();
    const v2 = await writeSignedBundle(tree.work, hosts.key, {
      version: '1.1.0',
      files: sampleFiles('demo', 'v2'),
    });
    const before = await snapshotTree(tree.root);
    const r = await runInstaller(host, ['plan', v2.bundlePath, '--root', tree.root]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('plan: demo 1.1.0 over generation 1');
    expect(r.stdout).toContain(
      'restart demo-pod.service (restarts demo-app.service: env/demo.env changed; every running container of the pod restarts or stops',
    );
    expect(r.stdout).not.toContain('keep    demo-pod.service');
    expect(r.stdout).toContain('--- a/demo/env/demo.env');
    expect(r.stdout).toContain('-MARKER=v1');
    expect(r.stdout).toContain('+MARKER=v2');
    expect(r.stdout).toContain('DB_PASSWORD=***secret:db_password***');
    expect(r.stdout).not.toContain(SECRET);
    expect(r.stdout).not.toContain('p%40ss');
    expect(host.serviceCalls()).toEqual([]);
    expect(host.calls.filter((c) => c.op === 'sysusers' || c.op === 'tmpfiles')).toEqual([]);
    expect(diffTrees(before, await snapshotTree(tree.root))).toEqual([]);
  });

  it('on an empty host shows every file as new and writes nothing at all', async () => {
    tree = await hosts.make();
    const host = new FakeHost({ root: tree.root });
    const v1 = await writeSignedBundle(tree.work, hosts.key, { version: '1.0.0' });
    const before = await snapshotTree(tree.root);
    const r = await runInstaller(host, ['plan', v1.bundlePath, '--root', tree.root]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('start   demo-pod.service (starts demo-app.service: new)');
    expect(r.stdout).toContain('+++ b/demo/quadlet/demo-app.container');
    expect(diffTrees(before, await snapshotTree(tree.root))).toEqual([]);
  });

  it('reports a rotated secret as a restart without showing it', async () => {
    const host = await hostWith();
    await writeFile(join(tree.root, 'etc/rick/secrets/demo.env'), 'db_password=rotated-value\n', {
      mode: 0o600,
    });
    const v2 = await writeSignedBundle(tree.work, hosts.key, {
      version: '1.0.1',
      files: sampleFiles('demo', 'v1'),
    });
    const r = await runInstaller(host, ['plan', v2.bundlePath, '--root', tree.root]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('secret  demo/env/demo.env (a secret value changed)');
    expect(r.stdout).toContain('restart demo-pod.service (restarts demo-app.service');
    expect(r.stdout).not.toMatch(/rotated-value|p@ss/);
  });
});

describe('a second bundle', () => {
  it('carries the first bundle into the new generation with its own paths, without restarting it', async () => {
    const host = await hostWith();
    const secrets = join(tree.root, 'etc/rick/secrets/other.env');
    await writeFile(secrets, 'db_password=other-secret\n', { mode: 0o600 });
    await writeFile(
      join(tree.root, 'etc/rick/policy.d/other.conf'),
      'GROUPS=other postgres-clients\nUSERS=other\n',
    );
    await chmod(secrets, 0o600);
    const o = await writeSignedBundle(tree.work, hosts.key, {
      name: 'other',
      version: '3.0.0',
      files: sampleFiles('other'),
    });
    const r = await runInstaller(host, [o.bundlePath, '--root', tree.root]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(await liveGeneration(tree.root)).toBe('generations/2');
    expect(host.serviceCalls()).toEqual([
      { op: 'daemon-reload' },
      { op: 'restart', units: ['other-pod.service'] },
    ]);
    const demoUnit = await readLive(tree.root, 'quadlet/demo/demo-app.container');
    expect(demoUnit).toContain(
      'EnvironmentFile=/var/lib/rick/generations/2/bundles/demo/env/demo.env',
    );
    expect(demoUnit).not.toContain('generations/1');
    // The carried env file keeps its secret without the secrets file being read again.
    expect(await readLive(tree.root, 'bundles/demo/env/demo.env')).toContain(
      `DB_PASSWORD=${SECRET}`,
    );
    expect(await readLive(tree.root, 'bundles/other/env/other.env')).toContain(
      'DB_PASSWORD=other-secret',
    );

    const status = await runInstaller(host, ['status', '--json', '--root', tree.root]);
    expect(status.code).toBe(0);
    const s = JSON.parse(status.stdout);
    expect(s.live).toBe(2);
    expect(
      s.bundles.map((b: { name: string; version: string }) => `${b.name} ${b.version}`),
    ).toEqual(['demo 1.0.0', 'other 3.0.0']);
    expect(s.services).toContainEqual({
      service: 'other-app.service',
      bundle: 'other',
      state: 'active',
      mainPid: expect.any(Number),
    });
    expect(s.history.map((h: { outcome: string }) => h.outcome)).toEqual([
      'installed',
      'installed',
    ]);
    expect((await runInstaller(host, ['verify', '--root', tree.root])).code).toBe(0);
  });

  it('refuses a bundle whose units another bundle owns, changing nothing', async () => {
    const host = await hostWith();
    const clash = await writeSignedBundle(tree.work, hosts.key, {
      name: 'thief',
      version: '1.0.0',
      files: [{ path: 'quadlet/demo.pod', content: '[Pod]\nPodName=x\n' }],
    });
    const before = await snapshotTree(tree.root);
    const r = await runInstaller(host, [clash.bundlePath, '--root', tree.root]);
    expect(r.code).toBe(ExitCode.invalidBundle);
    expect(r.stderr).toContain(
      "error BUNDLE_INVALID: bundle thief's units collide with units this host already has: quadlet/demo.pod has the name of a unit of bundle demo (quadlet reads only one of them)",
    );
    expect(diffTrees(before, await snapshotTree(tree.root))).toEqual([]);
  });
});

describe('rick-install status', () => {
  it('prints the live generation, services, quarantined versions and history', async () => {
    const host = await hostWith();
    host.failUnit('demo-app.service', 2);
    const bad = await writeSignedBundle(tree.work, hosts.key, {
      version: '2.0.0',
      files: sampleFiles('demo', 'bad'),
    });
    expect((await runInstaller(host, [bad.bundlePath, '--root', tree.root])).code).toBe(
      ExitCode.rolledBack,
    );
    const r = await runInstaller(host, ['status', '--root', tree.root]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('live generation: 1 (installed 2026-01-01T00:00:00.000Z)');
    expect(r.stdout).toContain('bundle demo 1.0.0');
    // The fake clock moves with each gate's settle period: the time is the quarantine's own.
    expect(r.stdout).toMatch(
      /\n {2}quarantined 2\.0\.0 since 2026-01-01T\d\d:\d\d:\d\d\.\d{3}Z: it failed its health gate on this host \(demo-app\.service failed/,
    );
    expect(r.stdout).toMatch(/demo-pod\.service: active \(pid \d+\)/);
    expect(r.stdout).toMatch(
      /generation 2 {2}demo 2\.0\.0 {2}rolled-back: demo-app\.service failed/,
    );
  });

  it('in an offline tree (--root, no systemctl) says what would start, and that nothing runs', async () => {
    tree = await hosts.make();
    const host = new FakeHost({ root: tree.root, offline: true });
    const b = await writeSignedBundle(tree.work, hosts.key, { version: '1.0.0' });
    const install = await runInstaller(host, [b.bundlePath, '--root', tree.root]);
    expect(install.code).toBe(0);
    expect(install.stdout).toContain('would start demo-pod.service (starts demo-app.service: new)');
    expect(install.stdout).not.toMatch(/^start /m);
    expect(install.stdout).toContain('offline tree (--root): no services started or stopped');
    const r = await runInstaller(host, ['status', '--root', tree.root]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('  demo-pod.service: not running (offline tree)');
    expect(r.stdout).not.toContain('unknown');
    const json = await runInstaller(host, ['status', '--json', '--root', tree.root]);
    expect(JSON.parse(json.stdout).services).toContainEqual({
      service: 'demo-pod.service',
      bundle: 'demo',
      state: 'offline',
    });
  });

  it('on an empty host says nothing is installed', async () => {
    tree = await hosts.make();
    const r = await runInstaller(new FakeHost({ root: tree.root }), [
      'status',
      '--json',
      '--root',
      tree.root,
    ]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ generations: [], bundles: [], services: [] });
  });
});

describe('rick-install verify', () => {
  it('passes on a fresh install and names every drifted file', async () => {
    const host = await hostWith();
    const ok = await runInstaller(host, ['verify', '--root', tree.root]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain('no drift');
    const gen = join(tree.root, 'var/lib/rick/generations/1');
    await appendFile(join(gen, 'bundles/demo/env/demo.env'), 'EXTRA=1\n');
    await writeFile(
      join(gen, 'quadlet/demo/demo.pod'),
      await readFile(join(gen, 'quadlet/demo/demo.pod'), 'utf8').then((t) =>
        t.replace('PodName', 'PodName=evil\n#'),
      ),
    );
    await writeFile(join(gen, 'quadlet/demo/sneaky.container'), '[Container]\nImage=evil\n');
    await chmod(join(gen, 'quadlet/demo/demo-app.container'), 0o666);
    const r = await runInstaller(host, ['verify', '--root', tree.root]);
    expect(r.code).toBe(ExitCode.drift);
    expect(r.stderr).toContain(
      `drift: ${gen}/bundles/demo/env/demo.env: content changed since generation 1 was written`,
    );
    expect(r.stderr).toContain(`drift: ${gen}/quadlet/demo/demo.pod: content changed`);
    expect(r.stderr).toContain(`drift: ${gen}/quadlet/demo/sneaky.container: not written by rick`);
    expect(r.stderr).toContain(
      `drift: ${gen}/quadlet/demo/demo-app.container: mode 0666, expected 0644`,
    );
    expect(r.stderr).toContain('error DRIFT: 4 file(s) of generation 1 drifted');
  });
  it('ignores the build record a bundle carries: not written into the generation, not counted in drift', async () => {
    const plain = await hostWith();
    const without = await runInstaller(plain, ['verify', '--root', tree.root]);
    expect(without.code).toBe(0);

    tree = await hosts.make();
    const host = new FakeHost({ root: tree.root });
    const record = `${JSON.stringify({ schemaVersion: 1, toolchain: { node: '24.21.0', rick: '1.0.0', esbuild: null } }, null, 2)}\n`;
    const b = await writeSignedBundle(tree.work, hosts.key, {
      version: '1.0.0',
      files: [
        ...sampleFiles('demo', 'v1'),
        { path: BUILD_RECORD_PATH, content: record, kind: 'installer', mode: 0o644 },
      ],
    });
    expect(b.manifest.files.map((f) => f.path)).toContain(BUILD_RECORD_PATH);
    const installed = await runInstaller(host, [b.bundlePath, '--root', tree.root]);
    expect(installed.stderr).not.toContain('build-record');
    expect(installed.code).toBe(0);
    const state = await snapshotTree(join(tree.root, 'var/lib/rick'));
    expect(state.filter((e) => e.path.includes('build-record'))).toEqual([]);
    expect(state.some((e) => e.path === 'generations/1/bundles/demo/env/demo.env')).toBe(true);
    const r = await runInstaller(host, ['verify', '--root', tree.root]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('no drift');
    // The same report, word for word, as for the bundle without the record.
    expect(r.stdout).toBe(without.stdout);
  });
});
