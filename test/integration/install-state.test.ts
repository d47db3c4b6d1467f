import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ExitCode } from '../../src/errors.js';
import { emptyState, readState, writeState } from '../../src/host/state.js';
import { makeTestKey, type TestKey, writeSignedBundle } from '../helpers/bundle-factory.js';
import { FakeHost } from '../helpers/fake-host.js';
import { type HostTree, makeHostTree, runInstaller } from '../helpers/host-tree.js';
import { diffTrees, snapshotTree } from '../helpers/tree-snapshot.js';

let key: TestKey;
let tree: HostTree;
beforeAll(async () => {
  key = await makeTestKey();
});
afterEach(async () => {
  await tree?.cleanup();
});

describe('state.json', () => {
  it('is written atomically and read back; no temporary file is left', async () => {
    tree = await makeHostTree(key);
    const file = join(tree.work, 'state.json');
    const state = emptyState();
    state.bundles.demo = { installed: '1.0.0', highest: '1.2.0', quarantined: ['1.1.0'] };
    state.history.push({
      generation: 3,
      bundle: 'demo',
      version: '1.0.0',
      time: 't',
      outcome: 'rollback',
    });
    await writeState(file, state);
    expect(await readState(file)).toEqual(state);
    expect(await readdir(tree.work)).toEqual(['state.json']);
    expect(await readState(join(tree.work, 'missing.json'))).toEqual(emptyState());
  });

  it('a corrupt state.json refuses the install with a clear message and changes nothing', async () => {
    tree = await makeHostTree(key);
    await mkdir(join(tree.root, 'var/lib/rick'), { recursive: true });
    await writeFile(join(tree.root, 'var/lib/rick/state.json'), '{"schemaVersion":1,"live":"x"}\n');
    const v1 = await writeSignedBundle(tree.work, key, { version: '1.0.0' });
    const host = new FakeHost({ root: tree.root });
    const before = await snapshotTree(tree.root);
    const r = await runInstaller(host, [v1.bundlePath, '--root', tree.root]);
    expect(r.code).toBe(ExitCode.rollbackFailed);
    expect(r.stderr).toContain('error STATE_INCONSISTENT:');
    expect(r.stderr).toContain('is not a rick state file: live:');
    expect(r.stderr).toContain('rick checks either against the live generation before trusting it');
    expect(diffTrees(before, await snapshotTree(tree.root))).toEqual([]);
    expect(host.calls).toEqual([]);
    expect(await readFile(join(tree.root, 'var/lib/rick/state.json'), 'utf8')).toContain('"x"');
  });
});
