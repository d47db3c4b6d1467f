/**
 * `--json` of plan, install, update and verify: stdout is one JSON document
 * of the shape docs/json.md gives, parsed here; progress goes to stderr.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ExitCode } from '../../src/errors.js';
import {
  makeTestKey,
  sampleFiles,
  type TestKey,
  writeSignedBundle,
} from '../helpers/bundle-factory.js';
import { FakeHost } from '../helpers/fake-host.js';
import { FeedServer } from '../helpers/feed-server.js';
import { type HostTree, makeHostTree, runInstaller } from '../helpers/host-tree.js';
import { diffTrees, snapshotTree } from '../helpers/tree-snapshot.js';

let key: TestKey;
let tree: HostTree | undefined;
let feed: FeedServer | undefined;
beforeAll(async () => {
  key = await makeTestKey();
  for (const name of ['HTTPS_PROXY', 'HTTP_PROXY', 'https_proxy', 'http_proxy', 'GITHUB_TOKEN']) {
    delete process.env[name];
  }
});
afterEach(async () => {
  await feed?.stop();
  await tree?.cleanup();
  feed = undefined;
  tree = undefined;
});

describe('--json', () => {
  it('plan --json: the changes, notes and policy, nothing else on stdout', async () => {
    tree = await makeHostTree(key);
    const host = new FakeHost({ root: tree.root });
    const b = await writeSignedBundle(tree.work, key);
    const before = await snapshotTree(tree.root);
    const r = await runInstaller(host, ['plan', b.bundlePath, '--json', '--root', tree.root]);
    expect(r.code).toBe(0);
    const json = JSON.parse(r.stdout);
    expect(Object.keys(json)).toEqual([
      'outcome',
      'bundle',
      'version',
      'liveGeneration',
      'changes',
      'notes',
      'policy',
    ]);
    expect(json).toMatchObject({
      outcome: 'install',
      bundle: 'demo',
      version: '1.0.0',
      liveGeneration: null,
      policy: {
        grantFile: join(tree.root, 'etc/rick/policy.d/demo.conf'),
        missing: [],
        grantLines: [],
      },
    });
    expect(json.changes.added).toContain('demo-pod.service');
    expect(json.changes.files).toContain('demo/env/demo.env');
    expect(json.changes.images).toEqual(['registry.example.org/demo:1']);
    expect(r.stderr).toContain('verified demo-1.0.0.tgz');
    expect(diffTrees(before, await snapshotTree(tree.root))).toEqual([]);
  });

  it('plan --json of an ungranted bundle prints the plan with its grant lines, then refuses', async () => {
    tree = await makeHostTree(key, { grants: {} });
    const host = new FakeHost({ root: tree.root });
    const b = await writeSignedBundle(tree.work, key);
    const r = await runInstaller(host, ['plan', b.bundlePath, '--json', '--root', tree.root]);
    expect(r.code).toBe(ExitCode.policy);
    expect(JSON.parse(r.stdout).policy).toMatchObject({
      missing: ['group postgres-clients'],
      grantLines: ['GROUPS=postgres-clients'],
    });
    expect(r.stderr).toContain('error POLICY_REFUSED: demo 1.0.0 needs what');
  });

  it('install --json: the outcome and the new generation; a second run is a noop', async () => {
    tree = await makeHostTree(key);
    const host = new FakeHost({ root: tree.root });
    const b = await writeSignedBundle(tree.work, key);
    const r = await runInstaller(host, [b.bundlePath, '--json', '--root', tree.root]);
    expect(r.code).toBe(0);
    const json = JSON.parse(r.stdout);
    expect(json).toMatchObject({
      outcome: 'installed',
      bundle: 'demo',
      version: '1.0.0',
      generation: 1,
      previousGeneration: null,
    });
    expect(json.changes.added).toContain('demo-pod.service');
    expect(r.stderr).toContain('installed demo 1.0.0 as generation 1');
    const again = JSON.parse(
      (await runInstaller(host, [b.bundlePath, '--json', '--root', tree.root])).stdout,
    );
    expect(again).toEqual({
      outcome: 'noop',
      bundle: 'demo',
      version: '1.0.0',
      generation: 1,
      previousGeneration: null,
      changes: null,
      notes: [],
    });
  });

  it('install --json of a refused bundle prints no JSON', async () => {
    tree = await makeHostTree(key, { secrets: '' });
    const host = new FakeHost({ root: tree.root });
    const b = await writeSignedBundle(tree.work, key);
    const before = await snapshotTree(tree.root);
    const r = await runInstaller(host, [b.bundlePath, '--json', '--root', tree.root]);
    expect(r.code).toBe(ExitCode.missingPrerequisite);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('error FACT_MISSING: missing host facts: secret db_password');
    expect(diffTrees(before, await snapshotTree(tree.root))).toEqual([]);
  });

  it('verify --json: the generation, the files checked and the drift, also when it drifted', async () => {
    tree = await makeHostTree(key);
    const host = new FakeHost({ root: tree.root });
    const none = await runInstaller(host, ['verify', '--json', '--root', tree.root]);
    expect(JSON.parse(none.stdout)).toEqual({ generation: null, checked: 0, drift: [] });
    const b = await writeSignedBundle(tree.work, key);
    expect((await runInstaller(host, [b.bundlePath, '--root', tree.root])).code).toBe(0);
    const clean = JSON.parse(
      (await runInstaller(host, ['verify', '--json', '--root', tree.root])).stdout,
    );
    expect(clean.generation).toBe(1);
    expect(clean.checked).toBeGreaterThan(0);
    expect(clean.drift).toEqual([]);
    await writeFile(
      join(tree.root, 'var/lib/rick/current/bundles/demo/env/demo.env'),
      'MARKER=hand\n',
    );
    const drifted = await runInstaller(host, ['verify', '--json', '--root', tree.root]);
    expect(drifted.code).toBe(ExitCode.drift);
    const json = JSON.parse(drifted.stdout);
    expect(json.drift).toHaveLength(1);
    expect(json.drift[0]).toMatch(
      /\/var\/lib\/rick\/generations\/1\/bundles\/demo\/env\/demo\.env: /,
    );
    expect(drifted.stderr).toContain('error DRIFT: 1 file(s) of generation 1 drifted');
  });

  it('update --json: the bundles this run installed', async () => {
    tree = await makeHostTree(key);
    feed = await FeedServer.start();
    const host = new FakeHost({ root: tree.root });
    await writeFile(join(tree.root, 'etc/rick/rick.conf'), `FEED=${feed.listUrl}\nBUNDLES=demo\n`);
    const b = await writeSignedBundle(join(tree.work, 'feed'), key, {
      version: '1.1.0',
      files: sampleFiles('demo', '1.1.0'),
    });
    await feed.addBundle(b.bundlePath, {});
    const r = await runInstaller(host, ['update', '--json', '--root', tree.root]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({
      installed: [{ bundle: 'demo', version: '1.1.0' }],
      liveGeneration: 1,
    });
    expect(r.stderr).toContain('demo: installed 1.1.0');
    // Nothing new: nothing installed.
    const again = await runInstaller(host, ['update', '--json', '--root', tree.root]);
    expect(JSON.parse(again.stdout)).toEqual({ installed: [], liveGeneration: 1 });
  });
});
