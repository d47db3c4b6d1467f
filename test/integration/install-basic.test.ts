import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ExitCode, RickError } from '../../src/errors.js';
import { readState } from '../../src/host/state.js';
import { sampleFiles, writeSignedBundle } from '../helpers/bundle-factory.js';
import { FakeHost } from '../helpers/fake-host.js';
import {
  type HostTree,
  liveGeneration,
  quadletPath,
  readLive,
  runInstaller,
  SECRET,
} from '../helpers/host-tree.js';
import { useHostTrees } from '../helpers/host-trees.js';
import { diffTrees, snapshotTree } from '../helpers/tree-snapshot.js';

const hosts = useHostTrees();
let tree: HostTree;

describe('rick-install <bundle>', () => {
  it('installs a bundle as generation 1, substituting facts and secrets', async () => {
    tree = await hosts.make();
    const host = new FakeHost({ root: tree.root });
    const b = await writeSignedBundle(tree.work, hosts.key, { version: '1.0.0' });
    const r = await runInstaller(host, [b.bundlePath, '--root', tree.root]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(ExitCode.ok);
    expect(await liveGeneration(tree.root)).toBe('generations/1');
    const unit = await readLive(tree.root, 'quadlet/demo/demo-app.container');
    expect(unit).toContain('EnvironmentFile=/var/lib/rick/generations/1/bundles/demo/env/demo.env');
    expect(unit).toContain('User=999:999');
    expect(unit).toContain('PodmanArgs=--group-add 4001');
    const env = await readLive(tree.root, 'bundles/demo/env/demo.env');
    expect(env).toContain(`DB_PASSWORD=${SECRET}`);
    expect(env).toContain('password=p%40ss%2Fword%26x%3D1');
    const envStat = await stat(
      join(tree.root, 'var/lib/rick/generations/1/bundles/demo/env/demo.env'),
    );
    expect(envStat.mode & 0o777).toBe(0o600);
    expect(host.serviceCalls()).toEqual([
      { op: 'daemon-reload' },
      { op: 'restart', units: ['demo-pod.service'] },
    ]);
    const state = await readState(join(tree.root, 'var/lib/rick/state.json'));
    expect(state.live).toBe(1);
    expect(state.bundles.demo).toMatchObject({ installed: '1.0.0', highest: '1.0.0' });
    // The secret value is written to the env file only.
    const facts = await readFile(
      join(tree.root, 'var/lib/rick/generations/1/bundles/demo/facts.json'),
      'utf8',
    );
    expect(facts).not.toContain(SECRET);
    expect(await readFile(join(tree.root, 'var/lib/rick/state.json'), 'utf8')).not.toContain(
      SECRET,
    );
  });

  it('restarts only the service whose env file changed, and a same-version install is a no-op', async () => {
    tree = await hosts.make();
    const host = new FakeHost({ root: tree.root });
    const v1 = await writeSignedBundle(tree.work, hosts.key, { version: '1.0.0' });
    expect((await runInstaller(host, [v1.bundlePath, '--root', tree.root])).code).toBe(0);
    host.reset();
    const v2 = await writeSignedBundle(tree.work, hosts.key, {
      version: '1.1.0',
      files: sampleFiles('demo', 'v2'),
    });
    const r = await runInstaller(host, [v2.bundlePath, '--root', tree.root]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(host.serviceCalls()).toEqual([
      { op: 'daemon-reload' },
      { op: 'restart', units: ['demo-pod.service'] },
    ]);
    expect(r.stdout).toContain(
      'restart demo-pod.service (restarts demo-app.service: env/demo.env changed; every running container of the pod restarts or stops',
    );
    expect(r.stdout).not.toContain('keep    demo-pod.service');
    host.reset();
    const again = await runInstaller(host, [v2.bundlePath, '--root', tree.root]);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('nothing to do');
    expect(host.serviceCalls()).toEqual([]);
    expect(await liveGeneration(tree.root)).toBe('generations/2');
  });
});

describe('quadlet dry-run before anything goes live', () => {
  it('refuses units podman quadlet rejects, removing the written generation and changing nothing', async () => {
    if (!quadletPath) {
      expect(process.env.CI, 'quadlet is required under CI (scripts/fetch-quadlet.sh)').not.toBe(
        'true',
      );
      return;
    }
    tree = await hosts.make();
    const host = new FakeHost({ root: tree.root });
    const v1 = await writeSignedBundle(tree.work, hosts.key, { version: '1.0.0' });
    expect((await runInstaller(host, [v1.bundlePath, '--root', tree.root])).code).toBe(0);
    host.reset();
    const files = sampleFiles('demo', 'v2').map((f) =>
      f.path.endsWith('.container')
        ? { ...f, content: `${f.content}\n[Container]\nExposeHostPort=not-a-port\n` }
        : f,
    );
    const bad = await writeSignedBundle(tree.work, hosts.key, { version: '1.1.0', files });
    const before = await snapshotTree(tree.root);
    const r = await runInstaller(host, [bad.bundlePath, '--root', tree.root]);
    expect(r.code).toBe(ExitCode.invalidBundle);
    expect(r.stderr).toContain('error QUADLET_REJECTED');
    expect(r.stderr).toContain("invalid port format 'not-a-port'");
    expect(host.serviceCalls()).toEqual([]);
    expect(diffTrees(before, await snapshotTree(tree.root))).toEqual([]);
  });

  it('a first install refused by quadlet leaves only the accounts its sysusers.d made, and their record, behind', async () => {
    if (!quadletPath) return;
    tree = await hosts.make();
    const host = new FakeHost({ root: tree.root });
    const files = sampleFiles('demo').map((f) =>
      f.path.endsWith('.pod')
        ? { ...f, content: `${f.content}\n[Pod]\nNetwork=missing.network\n` }
        : f,
    );
    const bad = await writeSignedBundle(tree.work, hosts.key, { version: '1.0.0', files });
    const before = await snapshotTree(tree.root);
    const r = await runInstaller(host, [bad.bundlePath, '--root', tree.root]);
    expect(r.code).toBe(ExitCode.invalidBundle);
    expect(r.stderr).toContain('error QUADLET_REJECTED');
    // systemd-sysusers ran before the units were written; what it made is recorded as the bundle's.
    // The lock leaves no trace.
    expect(diffTrees(before, await snapshotTree(tree.root))).toEqual([
      '+ var (dir)',
      '+ var/lib (dir)',
      '+ var/lib/rick (dir)',
      '+ var/lib/rick/created.json (file)',
      '~ etc/group: size, sha256',
      '~ etc/passwd: size, sha256',
    ]);
  });
});

describe('a failing systemd-tmpfiles', () => {
  const withTmpfiles = (marker: string) => [
    ...sampleFiles('demo', marker),
    { path: 'tmpfiles.d/demo.conf', content: 'd /var/lib/demo 0750 demo demo -\n' },
  ];

  it('refuses an upgrade with its error; the written generation is removed, the live one stays', async () => {
    tree = await hosts.make();
    const host = new FakeHost({ root: tree.root });
    const v1 = await writeSignedBundle(tree.work, hosts.key, {
      version: '1.0.0',
      files: withTmpfiles('v1'),
    });
    expect((await runInstaller(host, [v1.bundlePath, '--root', tree.root])).code).toBe(0);
    const v2 = await writeSignedBundle(tree.work, hosts.key, {
      version: '1.1.0',
      files: withTmpfiles('v2'),
    });
    const before = await snapshotTree(tree.root);
    host.reset();
    host.tmpfilesError = new RickError('IO_ERROR', 'systemd-tmpfiles failed (exit 1): no space');
    const r = await runInstaller(host, [v2.bundlePath, '--root', tree.root]);
    expect(r.stderr).toMatch(/^error IO_ERROR: systemd-tmpfiles failed \(exit 1\): no space/);
    expect(r.code).toBe(ExitCode.internal);
    expect(host.calls.map((c) => c.op)).toEqual(['sysusers', 'tmpfiles']);
    expect(diffTrees(before, await snapshotTree(tree.root))).toEqual([]);
  });

  it('refuses a first install, leaving only the accounts its sysusers.d made, and their record, behind', async () => {
    tree = await hosts.make();
    const host = new FakeHost({ root: tree.root });
    host.tmpfilesError = new RickError('IO_ERROR', 'systemd-tmpfiles failed (exit 1): no space');
    const v1 = await writeSignedBundle(tree.work, hosts.key, {
      version: '1.0.0',
      files: withTmpfiles('v1'),
    });
    const before = await snapshotTree(tree.root);
    const r = await runInstaller(host, [v1.bundlePath, '--root', tree.root]);
    expect(r.code).toBe(ExitCode.internal);
    expect(r.stderr).toMatch(/systemd-tmpfiles failed/);
    expect(diffTrees(before, await snapshotTree(tree.root))).toEqual([
      '+ var (dir)',
      '+ var/lib (dir)',
      '+ var/lib/rick (dir)',
      '+ var/lib/rick/created.json (file)',
      '~ etc/group: size, sha256',
      '~ etc/passwd: size, sha256',
    ]);
  });
});
