import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ExitCode } from '../../src/errors.js';
import { readState } from '../../src/host/state.js';
import {
  makeTestKey,
  sampleFiles,
  type TestKey,
  writeSignedBundle,
} from '../helpers/bundle-factory.js';
import { FakeHost } from '../helpers/fake-host.js';
import {
  type HostTree,
  liveGeneration,
  makeHostTree,
  readLive,
  runInstaller,
} from '../helpers/host-tree.js';
import { diffTrees, snapshotTree } from '../helpers/tree-snapshot.js';

let key: TestKey;
let tree: HostTree;
beforeAll(async () => {
  key = await makeTestKey();
});
afterEach(async () => {
  await tree?.cleanup();
});

const stateOf = (root: string) => readState(join(root, 'var/lib/rick/state.json'));

async function installed(versions: Array<[string, string]>) {
  tree = await makeHostTree(key);
  const host = new FakeHost({ root: tree.root });
  for (const [version, marker] of versions) {
    const b = await writeSignedBundle(tree.work, key, {
      version,
      files: sampleFiles('demo', marker),
    });
    const r = await runInstaller(host, [b.bundlePath, '--root', tree.root]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  }
  host.reset();
  return host;
}

describe('health gate and automatic rollback', () => {
  it('fails the gate at once when a unit is left inactive after its restart (a dependency failed), without waiting out its timeout', async () => {
    const host = await installed([['1.0.0', 'v1']]);
    host.failUnit('demo-app.service', 2, 'inactive');
    const v2 = await writeSignedBundle(tree.work, key, {
      version: '2.0.0',
      files: sampleFiles('demo', 'v2'),
    });
    const r = await runInstaller(host, [v2.bundlePath, '--root', tree.root]);
    expect(r.code).toBe(ExitCode.rolledBack);
    expect(r.stderr).toContain(
      'demo-app.service is inactive after its restart (ActiveState=inactive)',
    );
    expect(await liveGeneration(tree.root)).toBe('generations/1');
    // The sample service has activeTimeoutSec 30; the fake clock shows the gate did not wait for it.
    expect(host.elapsedMs).toBeLessThan(30_000);
  });

  it('rolls back when a restarted unit never becomes active, names it with its journal, quarantines the version', async () => {
    const host = await installed([['1.0.0', 'v1']]);
    const before = await snapshotTree(join(tree.root, 'var/lib/rick/generations/1'));
    host.failUnit('demo-app.service', 2);
    host.journalLines = ['demo-app[42]: cannot connect to /var/run/postgresql/.s.PGSQL.5432'];
    const v2 = await writeSignedBundle(tree.work, key, {
      version: '2.0.0',
      files: sampleFiles('demo', 'v2'),
    });
    const r = await runInstaller(host, [v2.bundlePath, '--root', tree.root]);
    expect(r.code).toBe(ExitCode.rolledBack);
    expect(r.stderr).toContain(
      'error ROLLED_BACK: demo 2.0.0 failed its health gate: demo-app.service failed',
    );
    expect(r.stderr).toContain('cannot connect to /var/run/postgresql/.s.PGSQL.5432');
    expect(r.stderr).toContain('rolled back to generation 1 and quarantined 2.0.0');
    expect(r.stdout).toContain('demo-app[42]: cannot connect');
    expect(await liveGeneration(tree.root)).toBe('generations/1');
    expect(
      diffTrees(before, await snapshotTree(join(tree.root, 'var/lib/rick/generations/1'))),
    ).toEqual([]);
    expect(host.serviceCalls()).toEqual([
      { op: 'daemon-reload' },
      { op: 'restart', units: ['demo-pod.service'] },
      { op: 'daemon-reload' },
      { op: 'restart', units: ['demo-pod.service'] },
    ]);
    const state = await stateOf(tree.root);
    expect(state.live).toBe(1);
    expect(state.bundles.demo).toMatchObject({ installed: '1.0.0', quarantined: ['2.0.0'] });
    expect(state.history.at(-1)).toMatchObject({
      generation: 2,
      version: '2.0.0',
      outcome: 'rolled-back',
    });

    // The quarantined version is refused from now on, with nothing changed.
    host.failingUnits.clear();
    host.reset();
    const snap = await snapshotTree(tree.root);
    const again = await runInstaller(host, [v2.bundlePath, '--root', tree.root]);
    expect(again.code).toBe(ExitCode.versionPolicy);
    expect(again.stderr).toContain('error VERSION_QUARANTINED');
    expect(host.serviceCalls()).toEqual([]);
    expect(diffTrees(snap, await snapshotTree(tree.root))).toEqual([]);
  });

  it('rolls back when an HTTP check never answers 2xx', async () => {
    const host = await installed([['1.0.0', 'v1']]);
    const url = 'http://127.0.0.1:9000/-/health/live/';
    host.failingUrls.add(url);
    const v2 = await writeSignedBundle(tree.work, key, {
      version: '2.0.0',
      files: sampleFiles('demo', 'v2'),
      services: [
        { unit: 'demo.pod', service: 'demo-pod.service', activeTimeoutSec: 30, checks: [] },
        {
          unit: 'demo-app.container',
          service: 'demo-app.service',
          activeTimeoutSec: 30,
          checks: [{ type: 'http', url, timeoutSec: 60, intervalSec: 5 }],
        },
      ],
    });
    const r = await runInstaller(host, [v2.bundlePath, '--root', tree.root]);
    expect(r.code).toBe(ExitCode.rolledBack);
    expect(r.stderr).toContain(
      `demo-app.service: ${url} did not answer 2xx within 60s (last: 503)`,
    );
    expect(host.calls.filter((c) => c.op === 'http').length).toBeGreaterThan(5);
    expect(await readLive(tree.root, 'bundles/demo/env/demo.env')).toContain('MARKER=v1');
  });

  it('a failed first install leaves nothing live and stops what it started', async () => {
    tree = await makeHostTree(key);
    const host = new FakeHost({ root: tree.root });
    host.failUnit('demo-pod.service');
    const v1 = await writeSignedBundle(tree.work, key, { version: '1.0.0' });
    const r = await runInstaller(host, [v1.bundlePath, '--root', tree.root]);
    expect(r.code).toBe(ExitCode.rolledBack);
    expect(r.stderr).toContain('rolled back to no generation');
    expect(await liveGeneration(tree.root)).toBeUndefined();
    expect(host.serviceCalls().at(-1)).toEqual({
      op: 'stop',
      units: ['demo-app.service', 'demo-pod.service'],
    });
    expect(host.active.size).toBe(0);
    expect((await stateOf(tree.root)).bundles.demo?.quarantined).toEqual(['1.0.0']);
  });

  it('exits ROLLBACK_FAILED when the previous generation cannot be restored either', async () => {
    const host = await installed([['1.0.0', 'v1']]);
    host.failUnit('demo-app.service', 2);
    host.failDaemonReloadFrom = 2;
    const v2 = await writeSignedBundle(tree.work, key, {
      version: '2.0.0',
      files: sampleFiles('demo', 'v2'),
    });
    const r = await runInstaller(host, [v2.bundlePath, '--root', tree.root]);
    expect(r.code).toBe(ExitCode.rollbackFailed);
    expect(r.stderr).toContain(
      'error ROLLBACK_FAILED: demo 2.0.0 failed its health gate (demo-app.service failed',
    );
    expect(r.stderr).toContain('fake: daemon-reload failed');
    const state = await stateOf(tree.root);
    expect(state.history.at(-1)?.outcome).toBe('rollback-failed');
    expect(state.bundles.demo?.quarantined).toEqual(['2.0.0']);
  });
});

describe('rick-install rollback', () => {
  it('returns to the previous generation with the same activation, then forward with --to', async () => {
    const host = await installed([
      ['1.0.0', 'v1'],
      ['1.1.0', 'v2'],
    ]);
    const r = await runInstaller(host, ['rollback', '--root', tree.root]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('rolled back from generation 2 to 1');
    expect(await liveGeneration(tree.root)).toBe('generations/1');
    expect(await readLive(tree.root, 'bundles/demo/env/demo.env')).toContain('MARKER=v1');
    expect(host.serviceCalls()).toEqual([
      { op: 'daemon-reload' },
      { op: 'restart', units: ['demo-pod.service'] },
    ]);
    const state = await stateOf(tree.root);
    expect(state.live).toBe(1);
    expect(state.bundles.demo).toMatchObject({ installed: '1.0.0', highest: '1.1.0' });

    const forward = await runInstaller(host, ['rollback', '--to', '2', '--root', tree.root]);
    expect(forward.code).toBe(0);
    expect(await liveGeneration(tree.root)).toBe('generations/2');
    expect((await stateOf(tree.root)).bundles.demo?.quarantined).toEqual([]);

    const pinned = await runInstaller(host, ['rollback', '--quarantine', '--root', tree.root]);
    expect(pinned.code).toBe(0);
    expect(pinned.stdout).toContain('quarantined demo 1.1.0');
    expect((await stateOf(tree.root)).bundles.demo).toMatchObject({
      installed: '1.0.0',
      quarantined: ['1.1.0'],
    });
  });

  it('refuses a generation that is not kept, changing nothing', async () => {
    const host = await installed([['1.0.0', 'v1']]);
    const snap = await snapshotTree(tree.root);
    const r = await runInstaller(host, ['rollback', '--to', '7', '--root', tree.root]);
    expect(r.code).toBe(ExitCode.usage);
    expect(r.stderr).toContain('error USAGE: generation 7 is not on this host');
    expect(diffTrees(snap, await snapshotTree(tree.root))).toEqual([]);
    const none = await runInstaller(host, ['rollback', '--root', tree.root]);
    expect(none.code).toBe(ExitCode.usage);
    expect(none.stderr).toContain(
      'error USAGE: no generation that was live before generation 1 can be returned to',
    );
  });

  it('puts the live generation back when the rollback target fails its gate', async () => {
    const host = await installed([
      ['1.0.0', 'v1'],
      ['1.1.0', 'v2'],
    ]);
    host.failUnit('demo-app.service', 1);
    const r = await runInstaller(host, ['rollback', '--root', tree.root]);
    expect(r.code).toBe(ExitCode.rolledBack);
    expect(r.stderr).toContain('generation 1 failed its health gate');
    expect(await liveGeneration(tree.root)).toBe('generations/2');
    expect(
      JSON.parse(await readFile(join(tree.root, 'var/lib/rick/state.json'), 'utf8')).live,
    ).toBe(2);
  });
});
