/**
 * The escalation path: 1.0 granted and installed; 1.1 adds a mount; the
 * update timer holds 1.1 (one warning line per tick, in the metrics file and
 * in `status`), the host tree as it was; the operator grants the mount; the
 * next tick installs 1.1. Real pipeline, real files, a loopback feed: the
 * GitHub releases feed, and a signed release index.
 */
import { appendFile, mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeAll, expect, it } from 'vitest';
import { ExitCode } from '../../src/errors.js';
import { readState } from '../../src/host/state.js';
import {
  makeTestKey,
  sampleFiles,
  type TestKey,
  writeSignedBundle,
} from '../helpers/bundle-factory.js';
import { FakeHost } from '../helpers/fake-host.js';
import { FeedServer } from '../helpers/feed-server.js';
import { type HostTree, makeHostTree, runInstaller } from '../helpers/host-tree.js';
import { Publisher } from '../helpers/index-publisher.js';
import { ReleaseServer } from '../helpers/release-server.js';
import { diffTrees, snapshotTree } from '../helpers/tree-snapshot.js';

let key: TestKey;
let tree: HostTree | undefined;
let feed: FeedServer | undefined;
let server: ReleaseServer | undefined;
beforeAll(async () => {
  key = await makeTestKey('rick release');
  for (const name of ['HTTPS_PROXY', 'HTTP_PROXY', 'https_proxy', 'http_proxy', 'GITHUB_TOKEN']) {
    delete process.env[name];
  }
});
afterEach(async () => {
  await feed?.stop();
  await server?.stop();
  await tree?.cleanup();
  feed = undefined;
  server = undefined;
  tree = undefined;
});

/** What a tick writes for itself, besides what it installs. */
const TICK_FILES = [
  'var/lib/rick/feed-cache.json',
  'var/lib/rick/feed-releases.json',
  'var/lib/rick/held.json',
  'var/lib/prometheus/node-exporter/rick.prom',
];

/** demo 1.1.0 mounts /srv/demo, which demo 1.0.0 did not. */
function release(version: string) {
  return sampleFiles('demo', version).map((f) =>
    version !== '1.0.0' && f.path.endsWith('.container')
      ? { ...f, content: `${f.content}\n[Container]\nVolume=/srv/demo:/data\n` }
      : f,
  );
}

it('holds a release that needs more than its grant, and installs it on the tick after the grant', async () => {
  tree = await makeHostTree(key);
  feed = await FeedServer.start();
  const t = tree;
  const host = new FakeHost({ root: t.root });
  await mkdir(join(t.root, 'var/lib/prometheus/node-exporter'), { recursive: true });
  const { writeFile } = await import('node:fs/promises');
  await writeFile(join(t.root, 'etc/rick/rick.conf'), `FEED=${feed.listUrl}\nBUNDLES=demo\n`);
  const v1 = await writeSignedBundle(join(t.work, 'local'), key, {
    version: '1.0.0',
    files: release('1.0.0'),
  });
  expect((await runInstaller(host, [v1.bundlePath, '--root', t.root])).code).toBe(ExitCode.ok);
  for (const version of ['1.0.0', '1.1.0']) {
    const b = await writeSignedBundle(join(t.work, 'feed'), key, {
      version,
      files: release(version),
    });
    await feed.addBundle(b.bundlePath);
  }
  host.reset();
  const update = () => runInstaller(host, ['update', '--root', t.root]);
  const installed = async () =>
    (await readState(join(t.root, 'var/lib/rick/state.json'))).bundles.demo?.installed;
  const grantFile = join(t.root, 'etc/rick/policy.d/demo.conf');
  const warning = `warning: demo: holding 1.1.0 until ${grantFile} grants what it needs: path /srv/demo:rw (demo-app.container:`;

  // Tick 1: the feed has 1.1.0; it needs a mount the grant lacks: held, not installed, not quarantined.
  const before = await snapshotTree(t.root, { ignore: TICK_FILES });
  // The first install's health gate took its settle period on the fake clock.
  const since = host.clock.now().toISOString().replace(/[.]/g, '\\.');
  const first = await update();
  expect(first.stderr).toBe('');
  expect(first.code).toBe(ExitCode.ok);
  expect(first.stdout).toContain(warning);
  expect(first.stdout.split('\n').filter((l) => l.startsWith('warning:'))).toHaveLength(1);
  expect(diffTrees(before, await snapshotTree(t.root, { ignore: TICK_FILES }))).toEqual([]);
  expect(host.serviceCalls()).toEqual([]);
  expect(await installed()).toBe('1.0.0');
  const state = await readState(join(t.root, 'var/lib/rick/state.json'));
  expect(state.bundles.demo?.quarantined).toEqual([]);
  const metrics = await readFile(
    join(t.root, 'var/lib/prometheus/node-exporter/rick.prom'),
    'utf8',
  );
  expect(metrics).toContain('rick_update_held{bundle="demo",version="1.1.0"} 1\n');
  expect(metrics).toContain('rick_bundle_info{bundle="demo",version="1.0.0"} 1\n');
  const status = await runInstaller(host, ['status', '--root', t.root]);
  expect(status.stdout).toMatch(
    new RegExp(
      `held: demo 1\\.1\\.0 since ${since}: needs what ${grantFile.replace(/[.]/g, '\\.')} does not grant: path /srv/demo:rw`,
    ),
  );

  // Tick 2: nothing changed; the feed answers 304; one warning line again, nothing downloaded or written.
  const downloads = feed.assetRequests().length;
  const quiet = await snapshotTree(t.root, {
    ignore: ['var/lib/prometheus/'],
    mtime: true,
  });
  const second = await update();
  expect(second.code).toBe(ExitCode.ok);
  expect(second.stdout.split('\n').filter((l) => l.startsWith('warning:'))).toEqual([
    expect.stringContaining(warning),
  ]);
  expect(feed.assetRequests()).toHaveLength(downloads);
  expect(feed.seen.at(-1)?.status).toBe(304);
  expect(
    diffTrees(
      quiet,
      await snapshotTree(t.root, {
        ignore: ['var/lib/prometheus/'],
        mtime: true,
      }),
    ),
  ).toEqual([]);
  expect(await installed()).toBe('1.0.0');

  // The operator grants the mount.
  await appendFile(grantFile, 'PATHS=/srv/demo:rw\n');

  // Tick 3: the grant changed, so the tick decides again and installs 1.1.0.
  const third = await update();
  expect(third.stderr).toBe('');
  expect(third.code).toBe(ExitCode.ok);
  expect(third.stdout).toContain('demo: installed 1.1.0\n');
  expect(third.stdout).not.toContain('warning:');
  expect(await installed()).toBe('1.1.0');
  const after = await readFile(join(t.root, 'var/lib/prometheus/node-exporter/rick.prom'), 'utf8');
  expect(after).not.toContain('rick_update_held{');
  expect(after).toContain('rick_bundle_info{bundle="demo",version="1.1.0"} 1\n');
  await expect(readFile(join(t.root, 'var/lib/rick/held.json'))).rejects.toMatchObject({
    code: 'ENOENT',
  });
  expect((await runInstaller(host, ['status', '--root', t.root])).stdout).not.toContain('held:');
});

/** What an index tick writes for itself, besides what it installs. */
const INDEX_TICK_FILES = [
  'var/lib/rick/index-cache.json',
  'var/lib/rick/release-index.json',
  'var/lib/rick/release-index.json.sig',
  'var/lib/rick/held.json',
  'var/lib/prometheus/node-exporter/rick.prom',
];

it('holds such a release the same way when FEED is a signed release index', async () => {
  tree = await makeHostTree(key);
  server = await ReleaseServer.start();
  const t = tree;
  const host = new FakeHost({ root: t.root });
  await mkdir(join(t.root, 'var/lib/prometheus/node-exporter'), { recursive: true });
  const { writeFile } = await import('node:fs/promises');
  await writeFile(
    join(t.root, 'etc/rick/rick.conf'),
    `FEED=${server.latestUrl('index.json')}\nBUNDLES=demo\n`,
  );
  const v1 = await writeSignedBundle(join(t.work, 'local'), key, {
    version: '1.0.0',
    files: release('1.0.0'),
  });
  expect((await runInstaller(host, [v1.bundlePath, '--root', t.root])).code).toBe(ExitCode.ok);
  const publisher = new Publisher(server, join(t.work, 'publish'), key);
  await publisher.bundle('1.1.0', release('1.1.0'));
  await publisher.publish(['1.0.0', '1.1.0']);
  host.reset();
  const update = () => runInstaller(host, ['update', '--root', t.root]);
  const installed = async () =>
    (await readState(join(t.root, 'var/lib/rick/state.json'))).bundles.demo?.installed;
  const grantFile = join(t.root, 'etc/rick/policy.d/demo.conf');
  const warning = `warning: demo: holding 1.1.0 until ${grantFile} grants what it needs: path /srv/demo:rw (demo-app.container:`;
  const warnings = (out: string) => out.split('\n').filter((l) => l.startsWith('warning:'));

  // Tick 1: held, not installed, not quarantined, not an error; the tree as it was.
  const before = await snapshotTree(t.root, { ignore: INDEX_TICK_FILES });
  // The first install's health gate took its settle period on the fake clock.
  const since = host.clock.now().toISOString().replace(/[.]/g, '\\.');
  const first = await update();
  expect(first.stderr).toBe('');
  expect(first.code).toBe(ExitCode.ok);
  expect(first.stdout).toContain(warning);
  expect(warnings(first.stdout)).toHaveLength(1);
  expect(first.stdout).not.toContain('not installed');
  expect(diffTrees(before, await snapshotTree(t.root, { ignore: INDEX_TICK_FILES }))).toEqual([]);
  expect(host.serviceCalls()).toEqual([]);
  expect(await installed()).toBe('1.0.0');
  const state = await readState(join(t.root, 'var/lib/rick/state.json'));
  expect(state.bundles.demo?.quarantined).toEqual([]);
  const metrics = await readFile(
    join(t.root, 'var/lib/prometheus/node-exporter/rick.prom'),
    'utf8',
  );
  expect(metrics).toContain('rick_update_held{bundle="demo",version="1.1.0"} 1\n');
  expect(metrics).toContain('rick_update_failure_total 0\n');
  const status = await runInstaller(host, ['status', '--root', t.root]);
  expect(status.stdout).toMatch(
    new RegExp(
      `held: demo 1\\.1\\.0 since ${since}: needs what ${grantFile.replace(/[.]/g, '\\.')} does not grant: path /srv/demo:rw`,
    ),
  );

  // Tick 2: nothing changed: the index is not decided on again, nothing is
  // downloaded or written, and the one warning line is logged again.
  const downloads = server.requests(undefined, 'demo-1.1.0.tgz').length;
  const quiet = await snapshotTree(t.root, { ignore: ['var/lib/prometheus/'], mtime: true });
  const second = await update();
  expect(second.stderr).toBe('');
  expect(second.code).toBe(ExitCode.ok);
  expect(second.stdout).toContain('unchanged since the last check, nothing new');
  expect(warnings(second.stdout)).toEqual([expect.stringContaining(warning)]);
  expect(server.requests(undefined, 'demo-1.1.0.tgz')).toHaveLength(downloads);
  expect(
    diffTrees(quiet, await snapshotTree(t.root, { ignore: ['var/lib/prometheus/'], mtime: true })),
  ).toEqual([]);
  const still = await readFile(join(t.root, 'var/lib/prometheus/node-exporter/rick.prom'), 'utf8');
  expect(still).toContain('rick_update_held{bundle="demo",version="1.1.0"} 1\n');

  // The operator grants the mount; the next tick decides again and installs 1.1.0.
  await appendFile(grantFile, 'PATHS=/srv/demo:rw\n');
  const third = await update();
  expect(third.stderr).toBe('');
  expect(third.code).toBe(ExitCode.ok);
  expect(third.stdout).toContain('demo: installed 1.1.0\n');
  expect(third.stdout).not.toContain('warning:');
  expect(await installed()).toBe('1.1.0');
  const after = await readFile(join(t.root, 'var/lib/prometheus/node-exporter/rick.prom'), 'utf8');
  expect(after).not.toContain('rick_update_held{');
  await expect(readFile(join(t.root, 'var/lib/rick/held.json'))).rejects.toMatchObject({
    code: 'ENOENT',
  });
  expect((await runInstaller(host, ['status', '--root', t.root])).stdout).not.toContain('held:');
});
