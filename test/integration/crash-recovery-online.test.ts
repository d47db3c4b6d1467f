/**
 * Recovery on a host with a service manager (the SIGKILL test runs with
 * --root, where nothing is restarted): a run that flipped `current` and died
 * before recording its outcome is undone with the same restore as a failed
 * health gate, services included, before the next install proceeds.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
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

let key: TestKey;
let tree: HostTree;
beforeAll(async () => {
  key = await makeTestKey();
});
afterEach(async () => {
  await tree?.cleanup();
});

describe('recovery after a run died between the flip and its record', () => {
  it('restores the confirmed generation and its services, then installs again', async () => {
    tree = await makeHostTree(key);
    const host = new FakeHost({ root: tree.root });
    const v1 = await writeSignedBundle(tree.work, key, {
      version: '1.0.0',
      files: sampleFiles('demo', 'v1'),
    });
    expect((await runInstaller(host, [v1.bundlePath, '--root', tree.root])).code).toBe(0);
    const stateFile = join(tree.root, 'var/lib/rick/state.json');
    const confirmed = await readFile(stateFile, 'utf8');
    const v2 = await writeSignedBundle(tree.work, key, {
      version: '2.0.0',
      files: sampleFiles('demo', 'v2'),
    });
    expect((await runInstaller(host, [v2.bundlePath, '--root', tree.root])).code).toBe(0);
    // What a SIGKILL after the restart but before the state write leaves: generation 2
    // live and restarted, the state still saying generation 1.
    await writeFile(stateFile, confirmed);
    expect(await liveGeneration(tree.root)).toBe('generations/2');

    const status = await runInstaller(host, ['status', '--root', tree.root]);
    expect(status.stdout).toContain('generation 2 is live but unconfirmed');

    host.reset();
    const r = await runInstaller(host, [v2.bundlePath, '--root', tree.root]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('generation 2 went live in a run that did not finish: restoring 1');
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

  it('a state.json removed by hand is rebuilt from the live generation, nothing undone', async () => {
    tree = await makeHostTree(key);
    const host = new FakeHost({ root: tree.root });
    const v1 = await writeSignedBundle(tree.work, key, {
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
