/**
 * `rick-install update` against a loopback GitHub-shaped feed, installing
 * through the real pipeline (real tar, real openpgp, real files) into a
 * --root tree; only the service manager is fake.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
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
import { FeedServer } from '../helpers/feed-server.js';
import { type HostTree, makeHostTree, runInstaller } from '../helpers/host-tree.js';
import { diffTrees, snapshotTree } from '../helpers/tree-snapshot.js';

let key: TestKey;
let otherKey: TestKey;
let tree: HostTree | undefined;
let feed: FeedServer | undefined;

beforeAll(async () => {
  key = await makeTestKey('rick release');
  otherKey = await makeTestKey('someone else');
  // The feed is on loopback: no proxy may stand in between.
  for (const name of ['HTTPS_PROXY', 'HTTP_PROXY', 'https_proxy', 'http_proxy', 'GITHUB_TOKEN']) {
    delete process.env[name];
  }
});

afterEach(async () => {
  await feed?.stop();
  await tree?.cleanup();
  feed = undefined;
  tree = undefined;
  delete process.env.GITHUB_TOKEN;
});

/** The files update itself writes when a tick carried out its decision. */
const CACHE = ['var/lib/rick/feed-cache.json', 'var/lib/rick/feed-releases.json'];

interface Setup {
  tree: HostTree;
  feed: FeedServer;
  host: FakeHost;
  update: () => ReturnType<typeof runInstaller>;
  writeConf: (extra?: string) => Promise<void>;
}

/** A host tree following the feed, with demo 1.0.0 installed from a file as an operator would. */
async function setup(options: { installed?: string; conf?: string } = {}): Promise<Setup> {
  tree = await makeHostTree(key);
  feed = await FeedServer.start();
  const host = new FakeHost({ root: tree.root });
  const t = tree;
  const f = feed;
  const writeConf = async (extra = '') => {
    await writeFile(
      join(t.root, 'etc/rick/rick.conf'),
      `# test host\nFEED=${f.listUrl}\nBUNDLES=demo\n${options.conf ?? ''}${extra}`,
    );
  };
  await writeConf();
  if (options.installed !== undefined) {
    const b = await writeSignedBundle(join(t.work, 'local'), key, { version: options.installed });
    const r = await runInstaller(host, [b.bundlePath, '--root', t.root]);
    expect(r.code).toBe(ExitCode.ok);
    host.reset();
  }
  return {
    tree: t,
    feed: f,
    host,
    writeConf,
    update: () => runInstaller(host, ['update', '--root', t.root]),
  };
}

/** Publishes demo <version> signed by `by` (default: the trusted key). */
async function publish(
  s: Setup,
  version: string,
  options: { by?: TestKey; prerelease?: boolean; draft?: boolean; signature?: boolean } = {},
) {
  const b = await writeSignedBundle(join(s.tree.work, 'feed'), options.by ?? key, {
    version,
    files: sampleFiles('demo', version),
  });
  await s.feed.addBundle(b.bundlePath, options);
  return b;
}

async function installedVersion(root: string): Promise<string | undefined> {
  return (await readState(join(root, 'var/lib/rick/state.json'))).bundles.demo?.installed;
}

describe('rick-install update', () => {
  it('installs a newer release through the install pipeline', async () => {
    const s = await setup({ installed: '1.0.0' });
    await publish(s, '1.0.0');
    await publish(s, '1.1.0');
    const r = await s.update();
    expect(r.stderr).toBe('');
    expect(r.code).toBe(ExitCode.ok);
    expect(r.stdout).toContain(`checked ${s.feed.listUrl}: 2 releases\n`);
    expect(r.stdout).toContain('demo: installing 1.1.0 from release v1.1.0 (installed: 1.0.0)\n');
    expect(r.stdout).toContain('demo: installed 1.1.0\n');
    expect(await installedVersion(s.tree.root)).toBe('1.1.0');
    const env = await readFile(
      join(s.tree.root, 'var/lib/rick/current/bundles/demo/env/demo.env'),
      'utf8',
    );
    expect(env).toContain('MARKER=1.1.0');
    expect(s.host.serviceCalls()).toContainEqual({
      op: 'restart',
      units: ['demo-pod.service'],
    });
    // Each asset's API URL, redirected to storage on another origin, as GitHub does.
    expect(s.feed.assetRequests().map((q) => [q.origin, q.status])).toEqual([
      ['api', 302],
      ['objects', 200],
      ['api', 302],
      ['objects', 200],
    ]);
    // Nothing of the download is left behind in the host tree.
    const files = (await snapshotTree(s.tree.root)).map((e) => e.path);
    expect(files.filter((p) => p.endsWith('.tgz') || p.endsWith('.sig'))).toEqual([]);
  });

  it('writes nothing at all when the feed answers 304', async () => {
    const s = await setup({ installed: '1.0.0' });
    await publish(s, '1.1.0');
    expect((await s.update()).code).toBe(ExitCode.ok);
    const before = await snapshotTree(s.tree.root, { mtime: true });
    s.host.reset();
    const r = await s.update();
    expect(r.stderr).toBe('');
    expect(r.code).toBe(ExitCode.ok);
    expect(r.stdout).toBe(
      `checked ${s.feed.listUrl}: unchanged since the last check, nothing new\n`,
    );
    const last = s.feed.seen.at(-1);
    expect(last?.status).toBe(304);
    expect(last?.headers['if-none-match']).toBe(s.feed.etag());
    expect(s.feed.assetRequests()).toHaveLength(4);
    expect(s.host.calls).toEqual([]);
    expect(diffTrees(before, await snapshotTree(s.tree.root, { mtime: true }))).toEqual([]);
  });

  it('ignores older releases and the installed one', async () => {
    const s = await setup({ installed: '1.1.0' });
    await publish(s, '1.0.0');
    await publish(s, '1.1.0');
    const before = await snapshotTree(s.tree.root);
    const r = await s.update();
    expect(r.code).toBe(ExitCode.ok);
    expect(r.stdout).toContain('demo: nothing new (nothing newer than 1.1.0 in range *)\n');
    expect(s.feed.assetRequests()).toEqual([]);
    expect(s.host.calls).toEqual([]);
    // Only the feed cache was recorded.
    expect(diffTrees(before, await snapshotTree(s.tree.root, { ignore: CACHE }))).toEqual([]);
  });

  it('honours the semver range of rick.conf', async () => {
    const s = await setup({ installed: '1.0.0', conf: 'RANGE=~1.0\n' });
    await publish(s, '1.0.5');
    await publish(s, '1.1.0');
    const r = await s.update();
    expect(r.code).toBe(ExitCode.ok);
    expect(r.stdout).toContain('demo: installed 1.0.5\n');
    expect(await installedVersion(s.tree.root)).toBe('1.0.5');
  });

  describe('refuses, changing nothing', () => {
    async function expectRefused(
      s: Setup,
      code: number,
      message: string | RegExp,
      // Refusals inside the install pipeline take (and rewrite) its lock file;
      // those before it touch nothing at all, not even a timestamp.
      { insidePipeline = false } = {},
    ): Promise<void> {
      const options = insidePipeline ? { ignore: ['var/lib/rick/lock'] } : { mtime: true };
      const before = await snapshotTree(s.tree.root, options);
      const r = await s.update();
      expect(r.code).toBe(code);
      if (typeof message === 'string') expect(r.stderr).toContain(message);
      else expect(r.stderr).toMatch(message);
      expect(diffTrees(before, await snapshotTree(s.tree.root, options))).toEqual([]);
      expect(s.host.calls).toEqual([]);
      expect(await installedVersion(s.tree.root)).toBe('1.0.0');
    }

    it('a tampered asset', async () => {
      const s = await setup({ installed: '1.0.0' });
      await publish(s, '1.1.0');
      const asset = s.feed.asset('demo-1.1.0.tgz');
      asset.data = Buffer.from(asset.data);
      asset.data.writeUInt8(
        asset.data.readUInt8(asset.data.length - 20) ^ 0x01,
        asset.data.length - 20,
      );
      await expectRefused(s, ExitCode.untrustedSignature, 'error SIGNATURE_INVALID:', {
        insidePipeline: true,
      });
    });

    it('a release without signature', async () => {
      const s = await setup({ installed: '1.0.0' });
      await publish(s, '1.1.0', { signature: false });
      await expectRefused(
        s,
        ExitCode.untrustedSignature,
        'error SIGNATURE_MISSING: release v1.1.0 has demo-1.1.0.tgz but no demo-1.1.0.tgz.sig; refusing to install it\n',
      );
      expect(s.feed.assetRequests()).toEqual([]);
    });

    it('a signature by another key', async () => {
      const s = await setup({ installed: '1.0.0' });
      await publish(s, '1.1.0', { by: otherKey });
      await expectRefused(s, ExitCode.untrustedSignature, /error SIGNATURE_INVALID: .*trusted/i, {
        insidePipeline: true,
      });
    });

    it('an asset the API announces above MAX_BUNDLE_BYTES, without downloading it', async () => {
      const s = await setup({ installed: '1.0.0', conf: 'MAX_BUNDLE_BYTES=100\n' });
      await publish(s, '1.1.0');
      const size = s.feed.asset('demo-1.1.0.tgz').data.length;
      await expectRefused(
        s,
        ExitCode.feed,
        `error FEED_ERROR: demo-1.1.0.tgz is ${size} bytes, more than MAX_BUNDLE_BYTES=100\n`,
      );
      expect(s.feed.assetRequests()).toEqual([]);
    });

    it('an asset larger than the API said, refused at the announced size', async () => {
      const s = await setup({ installed: '1.0.0' });
      await publish(s, '1.1.0');
      const asset = s.feed.asset('demo-1.1.0.tgz');
      asset.announcedSize = 100;
      await expectRefused(
        s,
        ExitCode.feed,
        `error FEED_ERROR: demo-1.1.0.tgz: server announces ${asset.data.length} bytes, more than the cap of 100\n`,
      );
    });

    it('a server that trickles the asset, cut off at the download deadline', async () => {
      const s = await setup({ installed: '1.0.0', conf: 'DOWNLOAD_TIMEOUT_SEC=1\n' });
      await publish(s, '1.1.0');
      s.feed.asset('demo-1.1.0.tgz').trickleMs = 20;
      await expectRefused(
        s,
        ExitCode.feed,
        'error FEED_ERROR: demo-1.1.0.tgz: no complete answer within 1 s; download cut off\n',
      );
    });

    it('a feed that answers HTML', async () => {
      const s = await setup({ installed: '1.0.0' });
      s.feed.rawList = '<!DOCTYPE html>\n<html><body><h1>Sign in</h1></body></html>\n';
      await expectRefused(
        s,
        ExitCode.feed,
        `error FEED_ERROR: release feed ${s.feed.listUrl} answered HTML, not a JSON releases list\n`,
      );
    });

    it('a feed that answers truncated JSON', async () => {
      const s = await setup({ installed: '1.0.0' });
      await publish(s, '1.1.0');
      s.feed.rawList = s.feed.listPage(new URLSearchParams()).body.slice(0, 150);
      await expectRefused(
        s,
        ExitCode.feed,
        `error FEED_ERROR: release feed ${s.feed.listUrl} answered malformed JSON (`,
      );
    });

    it('a feed whose JSON is not a releases list', async () => {
      const s = await setup({ installed: '1.0.0' });
      s.feed.rawList = JSON.stringify({ message: 'API rate limit exceeded' });
      await expectRefused(
        s,
        ExitCode.feed,
        `error FEED_ERROR: release feed ${s.feed.listUrl} is not a GitHub releases list: (root):`,
      );
    });

    it('an unreachable feed', async () => {
      const s = await setup({ installed: '1.0.0' });
      await s.feed.stop();
      await expectRefused(s, ExitCode.feed, /error FEED_ERROR: release feed .*: request failed: /);
    });

    it('a missing rick.conf', async () => {
      const s = await setup({ installed: '1.0.0' });
      const { rm } = await import('node:fs/promises');
      await rm(join(s.tree.root, 'etc/rick/rick.conf'));
      await expectRefused(
        s,
        ExitCode.usage,
        `error CONFIG_INVALID: ${join(s.tree.root, 'etc/rick/rick.conf')} does not exist\n`,
      );
    });

    it('a rick.conf with mistakes, naming each', async () => {
      const s = await setup({ installed: '1.0.0', conf: 'CHANNEL=nightly\nRANGE=>>1\n' });
      await expectRefused(
        s,
        ExitCode.usage,
        /error CONFIG_INVALID: .*line 4: CHANNEL: must be stable or prerelease; line 5: RANGE: must be a semver range/,
      );
    });
  });

  it('retries a failed download at the next tick although the feed did not change', async () => {
    const s = await setup({ installed: '1.0.0' });
    await publish(s, '1.1.0');
    const asset = s.feed.asset('demo-1.1.0.tgz');
    const good = asset.data;
    asset.announcedSize = 10;
    expect((await s.update()).code).toBe(ExitCode.feed);
    asset.announcedSize = undefined;
    asset.data = good;
    const r = await s.update();
    expect(r.code).toBe(ExitCode.ok);
    expect(r.stdout).toContain('demo: installed 1.1.0\n');
  });

  it('an image that cannot be pulled is not quarantined: the next tick tries the same release again', async () => {
    const s = await setup({ installed: '1.0.0' });
    await publish(s, '1.1.0');
    // The image was pruned from the store and the registry is out of reach.
    s.host.images.clear();
    s.host.failingImages.set(
      'registry.example.org/demo:1',
      'initializing source docker://registry.example.org/demo:1: pinging container registry registry.example.org: Get "https://registry.example.org/v2/": dial tcp [::1]:443: connect: connection refused',
    );
    const before = await snapshotTree(s.tree.root);
    const failed = await s.update();
    expect(failed.code).toBe(ExitCode.imagePull);
    expect(failed.stdout).toContain(
      'demo: not installed 1.1.0 because IMAGE_PULL_FAILED: cannot pull image registry.example.org/demo:1: initializing source',
    );
    expect(s.host.serviceCalls()).toEqual([]);
    // Nothing recorded: no quarantine, no feed cache, so the next tick decides again.
    expect(diffTrees(before, await snapshotTree(s.tree.root))).toEqual([]);

    s.host.failingImages.clear();
    const r = await s.update();
    expect(r.stderr).toBe('');
    expect(r.code).toBe(ExitCode.ok);
    expect(r.stdout).toContain('demo: installed 1.1.0\n');
    expect(s.host.pulls()).toEqual(['registry.example.org/demo:1', 'registry.example.org/demo:1']);
  });

  it('falls back to a full fetch when the feed cache is damaged or its list is gone', async () => {
    const s = await setup({ installed: '1.1.0' });
    await publish(s, '1.1.0');
    expect((await s.update()).code).toBe(ExitCode.ok);
    const cacheFile = join(s.tree.root, 'var/lib/rick/feed-cache.json');
    await writeFile(cacheFile, '{"version": 1, "etag": ');
    const damaged = await s.update();
    expect(damaged.code).toBe(ExitCode.ok);
    expect(s.feed.seen.at(-1)).toMatchObject({ status: 200 });
    expect(s.feed.seen.at(-1)?.headers['if-none-match']).toBeUndefined();
    expect(JSON.parse(await readFile(cacheFile, 'utf8')).etag).toBe(s.feed.etag());

    // New inputs with the cached list gone: nothing to decide on after a 304, so ask for the list.
    const { rm } = await import('node:fs/promises');
    await rm(join(s.tree.root, 'var/lib/rick/feed-releases.json'));
    await s.writeConf('RANGE=^1\n');
    const gone = await s.update();
    expect(gone.stderr).toBe('');
    expect(gone.code).toBe(ExitCode.ok);
    expect(s.feed.seen.at(-1)?.headers['if-none-match']).toBeUndefined();
    expect(gone.stdout).toContain('demo: nothing new (nothing newer than 1.1.0 in range ^1)');
  });

  it('skips a version quarantined by a rollback and takes the next newer one', async () => {
    const s = await setup({ installed: '1.0.0' });
    await publish(s, '1.2.0');
    s.host.failUnit('demo-app.service', 2);
    const failed = await s.update();
    expect(failed.code).toBe(ExitCode.rolledBack);
    expect(failed.stdout).toContain('demo: installing 1.2.0');
    expect(failed.stdout).toMatch(/demo: rolled back 1\.2\.0 because .*failed its health gate/);
    expect(failed.stderr).toContain('error ROLLED_BACK:');
    const state = await readState(join(s.tree.root, 'var/lib/rick/state.json'));
    expect(state.bundles.demo).toMatchObject({ installed: '1.0.0', quarantined: ['1.2.0'] });

    // The rollback was a decision carried out: the same feed is not tried again.
    const again = await s.update();
    expect(again.code).toBe(ExitCode.ok);
    expect(again.stdout).toContain('unchanged since the last check, nothing new');

    await publish(s, '1.1.0');
    s.feed.releases.sort((a, b) => (a.tag < b.tag ? 1 : -1));
    const r = await s.update();
    expect(r.code).toBe(ExitCode.ok);
    expect(r.stdout).toContain('demo: skipping 1.2.0, quarantined after a failed install\n');
    expect(r.stdout).toContain('demo: installed 1.1.0\n');
    expect(await installedVersion(s.tree.root)).toBe('1.1.0');
  });

  it('says why each skipped version is quarantined: a failed install, or the operator', async () => {
    const s = await setup({ installed: '1.0.0' });
    await publish(s, '1.1.0');
    expect((await s.update()).code).toBe(ExitCode.ok);
    expect(await installedVersion(s.tree.root)).toBe('1.1.0');
    // The operator takes 1.1.0 back and keeps it out.
    const back = await runInstaller(s.host, ['rollback', '--quarantine', '--root', s.tree.root]);
    expect(back.code).toBe(ExitCode.ok);
    expect(back.stdout).toContain('quarantined demo 1.1.0\n');
    // 1.2.0 fails its health gate: the installer rolls it back and quarantines it.
    await publish(s, '1.2.0');
    // (generations: 1.0.0 is 1, 1.1.0 is 2, 1.2.0 becomes 3)
    s.host.failUnit('demo-app.service', 3);
    expect((await s.update()).code).toBe(ExitCode.rolledBack);
    const state = await readState(join(s.tree.root, 'var/lib/rick/state.json'));
    expect(state.bundles.demo?.quarantined).toEqual(['1.1.0', '1.2.0']);

    // A new rick.conf makes the tick decide again on the same list.
    await s.writeConf('RANGE=^1\n');
    const r = await s.update();
    expect(r.stderr).toBe('');
    expect(r.code).toBe(ExitCode.ok);
    expect(r.stdout).toContain('demo: skipping 1.2.0, quarantined after a failed install\n');
    expect(r.stdout).toContain(
      'demo: skipping 1.1.0, quarantined by the operator (rollback --quarantine from generation 2 to 1)\n',
    );
    expect(r.stdout).not.toContain('skipping 1.1.0, quarantined after a failed install');
    expect(r.stdout).toContain('demo: nothing new (nothing newer than 1.0.0 in range ^1)\n');
  });

  it('after unquarantine the next tick takes the version again', async () => {
    const s = await setup({ installed: '1.0.0' });
    await publish(s, '1.2.0');
    s.host.failUnit('demo-app.service', 2);
    expect((await s.update()).code).toBe(ExitCode.rolledBack);
    expect((await s.update()).stdout).toContain('unchanged since the last check, nothing new');
    // The cause (a database down) is gone; the operator lifts the quarantine.
    const lifted = await runInstaller(s.host, [
      'unquarantine',
      'demo@1.2.0',
      '--root',
      s.tree.root,
    ]);
    expect(lifted.code).toBe(ExitCode.ok);
    const r = await s.update();
    expect(r.stderr).toBe('');
    expect(r.code).toBe(ExitCode.ok);
    expect(r.stdout).toContain('demo: installed 1.2.0\n');
    expect(await installedVersion(s.tree.root)).toBe('1.2.0');
  });

  it('takes a prerelease only on the prerelease channel, deciding again on a 304 when rick.conf changed', async () => {
    const s = await setup({ installed: '1.0.0' });
    await publish(s, '1.1.0-rc.1', { prerelease: true });
    await publish(s, '2.0.0', { draft: true });
    const stable = await s.update();
    expect(stable.code).toBe(ExitCode.ok);
    expect(stable.stdout).toContain('demo: nothing new (nothing newer than 1.0.0 in range *)\n');
    expect(s.feed.assetRequests()).toEqual([]);

    await s.writeConf('CHANNEL=prerelease\n');
    const pre = await s.update();
    expect(pre.code).toBe(ExitCode.ok);
    expect(s.feed.listRequests().at(-1)?.status).toBe(304);
    expect(pre.stdout).toContain(
      'unchanged, deciding again because rick.conf or the state changed',
    );
    expect(pre.stdout).toContain('demo: installed 1.1.0-rc.1\n');
    expect(await installedVersion(s.tree.root)).toBe('1.1.0-rc.1');
  });

  it("sends GITHUB_TOKEN to the feed's origin only, not where its downloads redirect", async () => {
    const s = await setup({ installed: '1.0.0' });
    await publish(s, '1.1.0');
    process.env.GITHUB_TOKEN = 'ghs_test';
    expect((await s.update()).code).toBe(ExitCode.ok);
    expect(s.feed.seen.map((q) => [q.origin, q.headers.authorization])).toEqual([
      ['api', 'Bearer ghs_test'],
      ['api', 'Bearer ghs_test'],
      ['objects', undefined],
      ['api', 'Bearer ghs_test'],
      ['objects', undefined],
    ]);
    expect(s.feed.assetRequests().map((q) => q.headers.accept)).toEqual(
      Array(4).fill('application/octet-stream'),
    );
  });

  it('keeps a node-exporter textfile with version, check times and counters', async () => {
    const s = await setup({ installed: '1.0.0' });
    const dir = join(s.tree.root, 'var/lib/prometheus/node-exporter');
    await mkdir(dir, { recursive: true });
    await publish(s, '1.1.0');
    // The tick's time, when it checks the feed (the fake clock moved during
    // the first install's health gate).
    const now = Math.floor(s.host.clock.now().getTime() / 1000);
    expect((await s.update()).code).toBe(ExitCode.ok);
    let text = await readFile(join(dir, 'rick.prom'), 'utf8');
    expect(text).toContain('rick_bundle_info{bundle="demo",version="1.1.0"} 1\n');
    expect(text).toContain(`rick_update_last_check_timestamp_seconds ${now}\n`);
    expect(text).toContain(`rick_update_last_success_timestamp_seconds ${now}\n`);
    expect(text).toContain('rick_update_success_total 1\n');
    expect(text).toContain('rick_update_failure_total 0\n');

    expect((await s.update()).code).toBe(ExitCode.ok);
    s.feed.rawList = '<html></html>';
    expect((await s.update()).code).toBe(ExitCode.feed);
    text = await readFile(join(dir, 'rick.prom'), 'utf8');
    expect(text).toContain('rick_bundle_info{bundle="demo",version="1.1.0"} 1\n');
    expect(text).toContain('rick_update_success_total 2\n');
    expect(text).toContain('rick_update_failure_total 1\n');
    // Written by rename: no temporary file is left for the collector to read.
    const { readdir } = await import('node:fs/promises');
    expect(await readdir(dir)).toEqual(['rick.prom']);
  });
});
