/**
 * Recovery on a host with a service manager (the SIGKILL test runs with
 * --root, where nothing is restarted): a run that flipped `current` and died
 * before recording its outcome is undone, from its intent record, with the
 * same restore as a failed health gate, services included, before the next
 * install proceeds. Without an intent record the same disagreement is a
 * state.json restored from a backup: refused, nothing stopped or deleted.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ExitCode } from '../../src/errors.js';
import { hostPaths } from '../../src/host/paths.js';
import { writeIntent } from '../../src/host/recovery.js';
import { readState } from '../../src/host/state.js';
import { sampleFiles, writeSignedBundle } from '../helpers/bundle-factory.js';
import { FakeHost } from '../helpers/fake-host.js';
import { type HostTree, liveGeneration, readLive, runInstaller } from '../helpers/host-tree.js';
import { useHostTrees } from '../helpers/host-trees.js';
import { diffTrees, snapshotTree } from '../helpers/tree-snapshot.js';

const hosts = useHostTrees();
let tree: HostTree;

describe('recovery after a run died between the flip and its record', () => {
  it('restores the confirmed generation and its services, then installs again', async () => {
    tree = await hosts.make();
    const host = new FakeHost({ root: tree.root });
    const v1 = await writeSignedBundle(tree.work, hosts.key, {
      version: '1.0.0',
      files: sampleFiles('demo', 'v1'),
    });
    expect((await runInstaller(host, [v1.bundlePath, '--root', tree.root])).code).toBe(0);
    const stateFile = join(tree.root, 'var/lib/rick/state.json');
    const confirmed = await readFile(stateFile, 'utf8');
    const v2 = await writeSignedBundle(tree.work, hosts.key, {
      version: '2.0.0',
      files: sampleFiles('demo', 'v2'),
    });
    expect((await runInstaller(host, [v2.bundlePath, '--root', tree.root])).code).toBe(0);
    // What a SIGKILL after the restart but before the state write leaves: generation 2
    // live and restarted, the state still saying generation 1, and the run's intent record.
    await writeFile(stateFile, confirmed);
    await writeIntent(hostPaths(tree.root), {
      operation: 'install',
      reason: 'install demo 2.0.0',
      from: 1,
      to: 2,
      created: true,
      time: '2026-01-01T00:00:00.000Z',
    });
    expect(await liveGeneration(tree.root)).toBe('generations/2');

    const status = await runInstaller(host, ['status', '--root', tree.root]);
    expect(status.stdout).toContain(
      'generation 2 is live but unconfirmed (interrupted run: install demo 2.0.0); the next run restores 1',
    );

    host.reset();
    const r = await runInstaller(host, [v2.bundlePath, '--root', tree.root]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(
      'generation 2 went live in a run that did not finish (install demo 2.0.0): restoring 1',
    );
    expect(host.serviceCalls()).toEqual([
      { op: 'daemon-reload' },
      { op: 'restart', units: ['demo-pod.service'] },
      { op: 'daemon-reload' },
      { op: 'restart', units: ['demo-pod.service'] },
    ]);
    expect(await liveGeneration(tree.root)).toBe('generations/2');
    expect(await readLive(tree.root, 'bundles/demo/env/demo.env')).toContain('MARKER=v2');
    const state = await readState(stateFile);
    expect(state.live).toBe(2);
    expect(state.history.map((h) => `${h.generation} ${h.outcome}`)).toEqual([
      '1 installed',
      '2 recovered',
      '2 installed',
    ]);
  });

  it('without an intent record, the same disagreement is refused: no service stopped, no generation removed', async () => {
    tree = await hosts.make();
    const host = new FakeHost({ root: tree.root });
    const v1 = await writeSignedBundle(tree.work, hosts.key, {
      version: '1.0.0',
      files: sampleFiles('demo', 'v1'),
    });
    expect((await runInstaller(host, [v1.bundlePath, '--root', tree.root])).code).toBe(0);
    const stateFile = join(tree.root, 'var/lib/rick/state.json');
    const backup = await readFile(stateFile, 'utf8');
    const v2 = await writeSignedBundle(tree.work, hosts.key, {
      version: '2.0.0',
      files: sampleFiles('demo', 'v2'),
    });
    expect((await runInstaller(host, [v2.bundlePath, '--root', tree.root])).code).toBe(0);
    await writeFile(stateFile, backup);
    const before = await snapshotTree(tree.root);
    host.reset();
    const r = await runInstaller(host, [v2.bundlePath, '--root', tree.root]);
    expect(r.code).toBe(ExitCode.rollbackFailed);
    expect(r.stderr).toContain(
      'current points at generation 2, but state.json confirms generation 1 and no interrupted run is recorded',
    );
    expect(host.calls).toEqual([]);
    expect(diffTrees(before, await snapshotTree(tree.root))).toEqual([]);

    // Returning to what state.json confirms is the other repair, with its services.
    const back = await runInstaller(host, ['rollback', '--to', '1', '--root', tree.root]);
    expect(back.stderr).toBe('');
    expect(back.code).toBe(0);
    expect(host.serviceCalls()).toEqual([
      { op: 'daemon-reload' },
      { op: 'restart', units: ['demo-pod.service'] },
    ]);
    expect(await liveGeneration(tree.root)).toBe('generations/1');
    expect(await readState(stateFile)).toMatchObject({
      live: 1,
      lastGeneration: 2,
      bundles: { demo: { installed: '1.0.0', highest: '2.0.0' } },
    });
  });

  it('a state.json removed by hand is rebuilt from the live generation, nothing undone', async () => {
    tree = await hosts.make();
    const host = new FakeHost({ root: tree.root });
    const v1 = await writeSignedBundle(tree.work, hosts.key, {
      version: '1.0.0',
      files: sampleFiles('demo', 'v1'),
    });
    expect((await runInstaller(host, [v1.bundlePath, '--root', tree.root])).code).toBe(0);
    const { rm } = await import('node:fs/promises');
    await rm(join(tree.root, 'var/lib/rick/state.json'));
    host.reset();
    const again = await runInstaller(host, [v1.bundlePath, '--root', tree.root]);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('state.json is missing: adopted generation 1 as live');
    expect(again.stdout).toContain('nothing to do');
    expect(host.serviceCalls()).toEqual([]);
    expect(await liveGeneration(tree.root)).toBe('generations/1');
    const state = await readState(join(tree.root, 'var/lib/rick/state.json'));
    expect(state).toMatchObject({
      live: 1,
      lastGeneration: 1,
      bundles: { demo: { installed: '1.0.0' } },
    });
  });
});
