/**
 * `rick-install update` following a signed release index served the way
 * GitHub serves `releases/latest/download/index.json`: a 302 to the release,
 * a 302 to another origin (the object store), the bytes there. Installs go
 * through the real pipeline (tar, gpgv, files) into a --root tree; only the
 * service manager and the clock are fake (FakeHost, 2026-01-01T00:00:00Z).
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { serializeIndex } from '../../src/bundle/release-index.js';
import { ExitCode } from '../../src/errors.js';
import { rolloutBucket } from '../../src/feed/index-select.js';
import { readState } from '../../src/host/state.js';
import {
  makeTestKey,
  sampleFiles,
  type TestKey,
  writeSignedBundle,
} from '../helpers/bundle-factory.js';
import { FakeHost } from '../helpers/fake-host.js';
import { type HostTree, makeHostTree, runInstaller } from '../helpers/host-tree.js';
import { Publisher } from '../helpers/index-publisher.js';
import { ReleaseServer } from '../helpers/release-server.js';
import { diffTrees, snapshotTree } from '../helpers/tree-snapshot.js';

let key: TestKey;
let otherKey: TestKey;
const cleanups: Array<() => Promise<void>> = [];

beforeAll(async () => {
  key = await makeTestKey('rick release');
  otherKey = await makeTestKey('someone else');
  for (const name of ['HTTPS_PROXY', 'HTTP_PROXY', 'https_proxy', 'http_proxy', 'GITHUB_TOKEN']) {
    delete process.env[name];
  }
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

/** FakeHost's clock starts here. */
const START = Date.parse('2026-01-01T00:00:00Z');
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const METRICS = 'var/lib/prometheus/node-exporter/rick.prom';
/** The textfile and its directory, which the metrics writer renames into. */
const METRICS_DIR = 'var/lib/prometheus/';

/** Machine-ids whose bucket for demo `version` satisfies `wanted`. */
function machineIdWhere(version: string, wanted: (bucket: number) => boolean): string {
  for (let i = 0; ; i++) {
    const id = createHash('md5').update(`test host ${i}`).digest('hex');
    if (wanted(rolloutBucket(id, 'demo', version))) return id;
  }
}

interface Setup {
  tree: HostTree;
  server: ReleaseServer;
  host: FakeHost;
  publisher: Publisher;
  indexUrl: string;
  update: (...extra: string[]) => ReturnType<typeof runInstaller>;
  status: () => ReturnType<typeof runInstaller>;
}

async function setup(
  options: {
    installed?: string;
    machineId?: string;
    metrics?: boolean;
    conf?: string;
    /** A query string for the FEED URL, without its `?`. */
    query?: string;
  } = {},
): Promise<Setup> {
  const tree = await makeHostTree(key);
  const server = await ReleaseServer.start();
  cleanups.push(
    () => server.stop(),
    () => tree.cleanup(),
  );
  const host = new FakeHost({ root: tree.root });
  const indexUrl =
    server.latestUrl('index.json') + (options.query === undefined ? '' : `?${options.query}`);
  await writeFile(
    join(tree.root, 'etc/rick/rick.conf'),
    `FEED=${indexUrl}\nBUNDLES=demo\n${options.conf ?? ''}`,
  );
  if (options.machineId !== undefined) {
    await writeFile(join(tree.root, 'etc/machine-id'), `${options.machineId}\n`);
  }
  if (options.metrics)
    await mkdir(join(tree.root, 'var/lib/prometheus/node-exporter'), { recursive: true });
  if (options.installed !== undefined) {
    const b = await writeSignedBundle(join(tree.work, 'local'), key, {
      version: options.installed,
      files: sampleFiles('demo', options.installed),
    });
    const r = await runInstaller(host, [b.bundlePath, '--root', tree.root]);
    expect(r.code).toBe(ExitCode.ok);
    host.reset();
  }
  return {
    tree,
    server,
    host,
    publisher: new Publisher(server, join(tree.work, 'publish'), key),
    indexUrl,
    update: (...extra) => runInstaller(host, ['update', '--root', tree.root, ...extra]),
    status: () => runInstaller(host, ['status', '--root', tree.root]),
  };
}

async function installedVersion(root: string): Promise<string | undefined> {
  return (await readState(join(root, 'var/lib/rick/state.json'))).bundles.demo?.installed;
}

describe('rick-install update from a signed release index', () => {
  it('installs the newest release through redirects to another origin, with no API call', async () => {
    const s = await setup({ installed: '1.0.0' });
    const index = await s.publisher.publish(['1.0.0', '1.1.0']);
    const r = await s.update();
    expect(r.stderr).toBe('');
    expect(r.code).toBe(ExitCode.ok);
    expect(r.stdout).toContain(
      `checked ${s.indexUrl}: index serial ${index.serial}, 2 releases, expires ${index.expires}\n`,
    );
    expect(r.stdout).toContain(
      `demo: installing 1.1.0 from release index ${s.indexUrl} (installed: 1.0.0)\n`,
    );
    expect(r.stdout).toContain('demo: installed 1.1.0\n');
    expect(await installedVersion(s.tree.root)).toBe('1.1.0');
    // The index and its signature from releases/latest/download, the bundle
    // relative to the index URL: each a 302 to the release, a 302 to the
    // object store, and the bytes there.
    expect(s.server.seen.map((q) => `${q.origin} ${q.status} ${q.path.split('?')[0]}`)).toEqual([
      'github 302 /acme/releases/releases/latest/download/index.json',
      'github 302 /acme/releases/releases/download/v1.1.0/index.json',
      expect.stringMatching(
        /^objects 200 \/github-production-release-asset-2e65be\/\d+\/[0-9a-f]+$/,
      ),
      'github 302 /acme/releases/releases/latest/download/index.json.sig',
      'github 302 /acme/releases/releases/download/v1.1.0/index.json.sig',
      expect.stringMatching(/^objects 200 /),
      'github 302 /acme/releases/releases/download/v1.1.0/demo-1.1.0.tgz',
      expect.stringMatching(/^objects 200 /),
      'github 302 /acme/releases/releases/download/v1.1.0/demo-1.1.0.tgz.sig',
      expect.stringMatching(/^objects 200 /),
    ]);
    expect(s.server.seen.some((q) => q.path.includes('/repos/'))).toBe(false);
    // The index is kept byte for byte: the floor against rollback, and what status reads.
    expect(await readFile(join(s.tree.root, 'var/lib/rick/release-index.json'), 'utf8')).toBe(
      serializeIndex(index),
    );
  });

  it('a FEED URL with a query string fetches the signature at <path>.sig?<query>', async () => {
    const s = await setup({ installed: '1.0.0', query: 'token=abc' });
    await s.publisher.publish(['1.1.0']);
    const r = await s.update();
    expect(r.stderr).toBe('');
    expect(r.code).toBe(ExitCode.ok);
    expect(await installedVersion(s.tree.root)).toBe('1.1.0');
    expect(
      s.server
        .requests('github')
        .map((q) => q.path)
        .slice(0, 2),
    ).toEqual([
      '/acme/releases/releases/latest/download/index.json?token=abc',
      '/acme/releases/releases/download/v1.1.0/index.json',
    ]);
    expect(s.server.requests('github').map((q) => q.path)[2]).toBe(
      '/acme/releases/releases/latest/download/index.json.sig?token=abc',
    );
  });

  it('a no-op tick is one request for the index, answered 304, and writes nothing', async () => {
    const s = await setup({ installed: '1.0.0' });
    await s.publisher.publish(['1.1.0']);
    expect((await s.update()).code).toBe(ExitCode.ok);
    const before = await snapshotTree(s.tree.root, { mtime: true });
    s.host.reset();
    s.server.seen.length = 0;
    const r = await s.update();
    expect(r.stderr).toBe('');
    expect(r.code).toBe(ExitCode.ok);
    expect(r.stdout).toBe(`checked ${s.indexUrl}: unchanged since the last check, nothing new\n`);
    expect(s.server.seen.map((q) => `${q.origin} ${q.status}`)).toEqual([
      'github 302',
      'github 302',
      'objects 304',
    ]);
    expect(s.server.seen.at(-1)?.headers['if-none-match']).toMatch(/^"0x[0-9A-F]{16}"$/);
    expect(s.host.calls).toEqual([]);
    expect(diffTrees(before, await snapshotTree(s.tree.root, { mtime: true }))).toEqual([]);
  });

  describe('refuses, changing nothing', () => {
    async function expectRefused(
      s: Setup,
      code: number,
      message: string | RegExp,
      options: { ignore?: string[]; args?: string[]; floorRaised?: boolean } = {},
    ): Promise<Awaited<ReturnType<Setup['update']>>> {
      const ignore = options.ignore ?? [];
      const before = await snapshotTree(s.tree.root, { mtime: true, ignore });
      const r = await s.update(...(options.args ?? []));
      if (typeof message === 'string') expect(r.stderr).toContain(message);
      else expect(r.stderr).toMatch(message);
      expect(r.code).toBe(code);
      // A verified index is the floor from then on, whatever became of the tick.
      expect(diffTrees(before, await snapshotTree(s.tree.root, { mtime: true, ignore }))).toEqual(
        options.floorRaised
          ? [
              '+ var/lib/rick/release-index.json (file)',
              '+ var/lib/rick/release-index.json.sig (file)',
              '~ var/lib/rick: mtimeMs',
            ]
          : [],
      );
      expect(s.host.calls).toEqual([]);
      expect(await installedVersion(s.tree.root)).toBe('1.0.0');
      return r;
    }

    it('a stale index (a frozen feed): its own exit code, a warning, the expiry in the metrics', async () => {
      const s = await setup({ installed: '1.0.0', metrics: true });
      const index = await s.publisher.publish(['1.1.0'], {
        issued: START - 10 * DAY,
        validForMs: 7 * DAY,
      });
      const r = await expectRefused(
        s,
        ExitCode.indexExpired,
        `error INDEX_EXPIRED: release index ${s.indexUrl} (serial ${index.serial}) expired at 2025-12-29T00:00:00Z: refusing it, since whoever serves it may be hiding newer releases\n`,
        { ignore: [METRICS_DIR] },
      );
      expect(ExitCode.indexExpired).toBe(13);
      expect(r.stdout).toContain(
        `warning: release index ${s.indexUrl} (serial ${index.serial}) expired at 2025-12-29T00:00:00Z: installing nothing until a fresh index is served; the feed may be frozen\n`,
      );
      const metrics = await readFile(join(s.tree.root, METRICS), 'utf8');
      expect(metrics).toContain(
        `rick_index_expires_timestamp_seconds ${Date.parse('2025-12-29T00:00:00Z') / 1000}\n`,
      );
      expect(metrics).toContain('rick_update_failure_total 1\n');
      expect(s.server.requests(undefined, 'demo-1.1.0.tgz')).toEqual([]);
    });

    it('an index that expired after it was accepted, though the server still answers 304', async () => {
      const s = await setup({ installed: '1.0.0', metrics: true });
      const index = await s.publisher.publish(['1.0.0'], {
        issued: START - 6 * DAY,
        validForMs: 7 * DAY,
      });
      expect((await s.update()).code).toBe(ExitCode.ok);
      await s.host.clock.sleep(DAY);
      const r = await expectRefused(
        s,
        ExitCode.indexExpired,
        `error INDEX_EXPIRED: release index ${s.indexUrl} (serial ${index.serial}) expired at`,
        { ignore: [METRICS_DIR] },
      );
      expect(r.stdout).toContain(
        `warning: release index ${s.indexUrl} (serial ${index.serial}) expired`,
      );
      expect(s.server.seen.at(-1)?.status).toBe(304);
    });

    it('a replayed older index, validly signed', async () => {
      const s = await setup({ installed: '1.0.0' });
      const older = await s.publisher.publish(['1.0.0', '1.1.0'], { issued: START - 2 * HOUR });
      const newer = await s.publisher.publish([], {
        issued: START - HOUR,
        yank: ['1.1.0'],
      });
      const first = await s.update();
      expect(first.code).toBe(ExitCode.ok);
      expect(first.stdout).toContain('demo: skipping 1.1.0, yanked: corrupts uploads\n');
      // A mirror, or someone in between, serves the index from before the yank.
      await s.publisher.serve(older);
      await expectRefused(
        s,
        ExitCode.feed,
        `error INDEX_ROLLBACK: release index ${s.indexUrl} has serial ${older.serial}, lower than serial ${newer.serial} accepted before: refusing to go back to an older index\n`,
      );
      expect(s.server.requests(undefined, 'demo-1.1.0.tgz')).toEqual([]);
    });

    it('a replayed older index after a tick whose download failed: the floor was kept', async () => {
      const s = await setup({ installed: '1.0.0' });
      const older = await s.publisher.publish(['1.1.0'], { issued: START - 3 * HOUR });
      // 1.1.0 is yanked and the fix 1.2.0 added; the mirror answers 404 for the fix.
      const newer = await s.publisher.publish(['1.2.0'], {
        issued: START - 2 * HOUR,
        yank: ['1.1.0'],
      });
      s.server.remove('v1.2.0', 'demo-1.2.0.tgz');
      const failed = await s.update();
      expect(failed.code).toBe(ExitCode.feed);
      expect(failed.stderr).toMatch(
        /error FEED_ERROR: demo-1\.2\.0\.tgz \(http:\/\/127\.0\.0\.1:\d+\/acme\/releases\/releases\/download\/v1\.2\.0\/demo-1\.2\.0\.tgz\): HTTP 404\n/,
      );
      expect(await installedVersion(s.tree.root)).toBe('1.0.0');
      // The verified index is the floor although nothing was installed.
      expect(await readFile(join(s.tree.root, 'var/lib/rick/release-index.json'), 'utf8')).toBe(
        serializeIndex(newer),
      );
      // The mirror then replays the index from before the yank.
      await s.publisher.serve(older);
      s.server.seen.length = 0;
      s.host.reset();
      await expectRefused(
        s,
        ExitCode.feed,
        `error INDEX_ROLLBACK: release index ${s.indexUrl} has serial ${older.serial}, lower than serial ${newer.serial} accepted before: refusing to go back to an older index\n`,
      );
      expect(s.server.requests(undefined, 'demo-1.1.0.tgz')).toEqual([]);
    });

    it('an index issued more than an hour ahead of the host clock: refused, warned, counted', async () => {
      const s = await setup({ installed: '1.0.0', metrics: true });
      const index = await s.publisher.publish(['1.1.0'], { issued: START + 2 * HOUR });
      const r = await expectRefused(
        s,
        ExitCode.feed,
        new RegExp(
          `error INDEX_NOT_YET_VALID: release index ${s.indexUrl.replace(/[.?]/g, '\\$&')} \\(serial ${index.serial}\\) is issued at 2026-01-01T02:00:00Z, 120 minutes after this host's clock \\(2026-01-01T00:00:\\d\\d\\.000Z\\): refusing it\n`,
        ),
        { ignore: [METRICS_DIR] },
      );
      expect(r.stdout).toContain(
        `warning: release index ${s.indexUrl} (serial ${index.serial}) is issued at 2026-01-01T02:00:00Z, in the future by this host's clock: installing nothing; check the clocks\n`,
      );
      const metrics = await readFile(join(s.tree.root, METRICS), 'utf8');
      expect(metrics).toContain('rick_index_not_yet_valid_total 1\n');
      expect(metrics).toContain('rick_update_failure_total 1\n');
      expect(metrics).not.toContain(`rick_index_serial ${index.serial}`);
      expect(s.server.requests(undefined, 'demo-1.1.0.tgz')).toEqual([]);
      // Within the hour of skew the same kind of index is taken.
      await s.host.clock.sleep(HOUR);
      const later = await s.update();
      expect(later.stderr).toBe('');
      expect(later.code).toBe(ExitCode.ok);
      expect(await installedVersion(s.tree.root)).toBe('1.1.0');
      expect(await readFile(join(s.tree.root, METRICS), 'utf8')).toContain(
        'rick_index_not_yet_valid_total 1\n',
      );
    });

    it('an index signed by another key', async () => {
      const s = await setup({ installed: '1.0.0' });
      await s.publisher.publish(['1.1.0'], { by: otherKey });
      await expectRefused(
        s,
        ExitCode.untrustedSignature,
        new RegExp(
          `^error SIGNATURE_INVALID: release index ${s.indexUrl.replace(/[.?]/g, '\\$&')}: no valid signature by a trusted key \\(key [0-9A-F]+: not a trusted key\\)\n`,
        ),
      );
    });

    it('a bundle whose size differs from the index, before its signature is checked', async () => {
      const s = await setup({ installed: '1.0.0' });
      const index = await s.publisher.publish(['1.1.0']);
      const listed = index.releases[0]!;
      // Another genuine, validly signed bundle takes the listed one's place.
      const other = await writeSignedBundle(join(s.tree.work, 'other'), key, {
        version: '1.1.0',
        files: [...sampleFiles('demo', '1.1.0'), { path: 'env/extra.env', content: 'EXTRA=1\n' }],
      });
      s.server.put('v1.1.0', 'demo-1.1.0.tgz', other.tgz);
      s.server.put('v1.1.0', 'demo-1.1.0.tgz.sig', await readFile(other.signaturePath));
      expect(other.tgz.length).toBeGreaterThan(listed.size);
      await expectRefused(
        s,
        ExitCode.feed,
        `error FEED_ERROR: demo-1.1.0.tgz (${listed.size} bytes by the index): server announces ${other.tgz.length} bytes, more than the cap of ${listed.size}\n`,
        { floorRaised: true },
      );
      // And one shorter than the index says.
      s.server.put(
        'v1.1.0',
        'demo-1.1.0.tgz',
        listed.size > 10 ? other.tgz.subarray(0, 10) : other.tgz,
      );
      await expectRefused(
        s,
        ExitCode.feed,
        /error FEED_ERROR: demo-1\.1\.0\.tgz from http:\/\/127\.0\.0\.1:\d+\/acme\/releases\/releases\/download\/v1\.1\.0\/demo-1\.1\.0\.tgz is 10 bytes, the index says \d+: refusing it\n/,
      );
    });

    it('a bundle whose sha256 differs from the index', async () => {
      const s = await setup({ installed: '1.0.0' });
      const index = await s.publisher.publish(['1.1.0']);
      const tampered = Buffer.from(s.server.get('v1.1.0', 'demo-1.1.0.tgz'));
      tampered.writeUInt8(tampered.readUInt8(tampered.length - 20) ^ 1, tampered.length - 20);
      s.server.put('v1.1.0', 'demo-1.1.0.tgz', tampered);
      const digest = createHash('sha256').update(tampered).digest('hex');
      await expectRefused(
        s,
        ExitCode.feed,
        `has sha256 ${digest}, the index says ${index.releases[0]?.sha256}: refusing it\n`,
        { floorRaised: true },
      );
      // Refused before the bundle's signature was even fetched.
      expect(s.server.requests('github', 'demo-1.1.0.tgz.sig')).toEqual([]);
    });
  });

  it('passes over a yanked version, and says when the installed one is yanked, without rolling back', async () => {
    const s = await setup({ installed: '1.0.0', metrics: true });
    await s.publisher.publish(['1.0.0', '1.1.0'], { yank: ['1.1.0'] });
    const skipped = await s.update();
    expect(skipped.code).toBe(ExitCode.ok);
    expect(skipped.stdout).toContain('demo: skipping 1.1.0, yanked: corrupts uploads\n');
    expect(skipped.stdout).toContain('demo: nothing new (nothing newer than 1.0.0 in range *)\n');
    expect(s.server.requests(undefined, 'demo-1.1.0.tgz')).toEqual([]);

    await s.publisher.publish([], { yank: ['1.0.0'], issued: START - HOUR / 2 });
    const before = await snapshotTree(s.tree.root, {
      ignore: [
        METRICS,
        'var/lib/rick/index-cache.json',
        'var/lib/rick/release-index.json',
        'var/lib/rick/release-index.json.sig',
      ],
    });
    const live = await s.update();
    expect(live.code).toBe(ExitCode.ok);
    const warning =
      'warning: demo: the installed version 1.0.0 is yanked (corrupts uploads); rick does not roll back by itself: install a fixed release or roll back by hand (docs/release-index.md)\n';
    expect(live.stdout).toContain(warning);
    expect(s.host.calls).toEqual([]);
    expect(await installedVersion(s.tree.root)).toBe('1.0.0');
    expect(
      diffTrees(
        before,
        await snapshotTree(s.tree.root, {
          ignore: [
            METRICS,
            'var/lib/rick/index-cache.json',
            'var/lib/rick/release-index.json',
            'var/lib/rick/release-index.json.sig',
          ],
        }),
      ),
    ).toEqual([]);
    expect(await readFile(join(s.tree.root, METRICS), 'utf8')).toContain(
      'rick_bundle_yanked{bundle="demo",version="1.0.0"} 1\n',
    );
    // Every tick says it again, the no-op ones included.
    const again = await s.update();
    expect(again.stdout).toBe(
      `checked ${s.indexUrl}: unchanged since the last check, nothing new\n${warning}`,
    );
    expect((await s.status()).stdout).toContain(
      '  demo: the installed version 1.0.0 is YANKED: corrupts uploads (rick does not roll back by itself)\n',
    );
  });

  describe('staged rollout, with a fixed clock and chosen machine-ids', () => {
    const waves = [
      { afterMs: HOUR, percent: 10 },
      { afterMs: DAY + HOUR, percent: 100 },
    ];
    // Issued an hour before the clock: the first wave starts at START.
    const issued = START - HOUR;

    it('a canary takes the release with the first wave', async () => {
      const canary = machineIdWhere('1.1.0', (b) => b < 10);
      const s = await setup({ installed: '1.0.0', machineId: canary });
      await s.publisher.publish(['1.1.0'], { waves, issued });
      const r = await s.update();
      expect(r.code).toBe(ExitCode.ok);
      expect(r.stdout).toContain('demo: installed 1.1.0\n');
    });

    it('a later host waits, shows its bucket and time in status, and takes it when its wave starts', async () => {
      const later = machineIdWhere('1.1.0', (b) => b >= 50);
      const bucket = rolloutBucket(later, 'demo', '1.1.0');
      const s = await setup({ installed: '1.0.0', machineId: later });
      await s.publisher.publish(['1.1.0'], { waves, issued });
      const waiting = await s.update();
      expect(waiting.code).toBe(ExitCode.ok);
      expect(waiting.stdout).toContain(
        `demo: nothing new (waiting for the rollout of 1.1.0 to reach this host (bucket ${bucket}, from 2026-01-02T00:00:00.000Z))\n`,
      );
      expect(s.server.requests(undefined, 'demo-1.1.0.tgz')).toEqual([]);
      const status = await s.status();
      expect(status.stdout).toContain(`release index ${s.indexUrl}\n`);
      expect(status.stdout).toContain(
        `  demo: 1.1.0 pending, rollout bucket ${bucket}, from 2026-01-02T00:00:00.000Z; \`rick-install update --now\` takes it at once\n`,
      );

      // An hour on, still before its wave: the no-op tick.
      await s.host.clock.sleep(HOUR);
      const noop = await s.update();
      expect(noop.stdout).toBe(
        `checked ${s.indexUrl}: unchanged since the last check, nothing new\n`,
      );

      // Its wave starts: the index has not changed (304), the decision has.
      await s.host.clock.sleep(DAY - HOUR);
      const taken = await s.update();
      expect(taken.stderr).toBe('');
      expect(taken.code).toBe(ExitCode.ok);
      expect(s.server.requests('objects', undefined).at(-3)?.status).toBe(304);
      expect(taken.stdout).toContain(
        `checked ${s.indexUrl}: unchanged, deciding again (rick.conf, the state or the time changed)\n`,
      );
      expect(taken.stdout).toContain('demo: installed 1.1.0\n');
      expect((await s.status()).stdout).toContain('  demo: up to date (1.1.0)\n');
    });

    it("a wave's start on an unchanged index does not verify the kept copy again while the trusted keys are the same", async () => {
      const later = machineIdWhere('1.1.0', (b) => b >= 10);
      const s = await setup({ installed: '1.0.0', machineId: later });
      await s.publisher.publish(['1.1.0'], { waves, issued });
      expect((await s.update()).stdout).toContain('waiting for the rollout of 1.1.0');
      // The kept signature is not looked at: the index was verified when it
      // was accepted, with these very keys.
      await writeFile(join(s.tree.root, 'var/lib/rick/release-index.json.sig'), 'not a signature');
      const sigRequests = s.server.requests(undefined, 'index.json.sig').length;
      await s.host.clock.sleep(DAY);
      const taken = await s.update();
      expect(taken.stderr).toBe('');
      expect(taken.code).toBe(ExitCode.ok);
      expect(taken.stdout).toContain(
        `checked ${s.indexUrl}: unchanged, deciding again (rick.conf, the state or the time changed)\n`,
      );
      expect(taken.stdout).toContain('demo: installed 1.1.0\n');
      expect(s.server.requests(undefined, 'index.json.sig').length).toBe(sigRequests);
    });

    it("a wave's start after the trusted key was replaced verifies the kept index again, and refuses it", async () => {
      const later = machineIdWhere('1.1.0', (b) => b >= 10);
      const s = await setup({ installed: '1.0.0', machineId: later });
      await s.publisher.publish(['1.1.0'], { waves, issued });
      expect((await s.update()).stdout).toContain('waiting for the rollout of 1.1.0');
      // The operator stops trusting the release key.
      await writeFile(join(s.tree.root, 'etc/rick/keys/release.asc'), otherKey.publicKeyArmored, {
        mode: 0o644,
      });
      await s.host.clock.sleep(DAY);
      const before = await snapshotTree(s.tree.root, { mtime: true });
      const r = await s.update();
      expect(r.stderr).toMatch(/^error SIGNATURE_INVALID: release index .*index\.json: /m);
      expect(r.code).toBe(ExitCode.untrustedSignature);
      expect(r.stdout).not.toContain('installing 1.1.0');
      expect(diffTrees(before, await snapshotTree(s.tree.root, { mtime: true }))).toEqual([]);
      expect(s.host.calls).toEqual([]);
      expect(await installedVersion(s.tree.root)).toBe('1.0.0');
      expect(s.server.requests(undefined, 'demo-1.1.0.tgz')).toEqual([]);
    });

    it('update --now takes a release its wave has not reached', async () => {
      const later = machineIdWhere('1.1.0', (b) => b >= 10);
      const s = await setup({ installed: '1.0.0', machineId: later });
      await s.publisher.publish(['1.1.0'], { waves, issued });
      expect((await s.update()).stdout).toContain('waiting for the rollout of 1.1.0');
      const r = await s.update('--now');
      expect(r.code).toBe(ExitCode.ok);
      expect(r.stdout).toContain('demo: installed 1.1.0\n');
    });

    it('a host without a machine-id takes it with the last wave', async () => {
      const s = await setup({ installed: '1.0.0' });
      await rm(join(s.tree.root, 'etc/machine-id'), { force: true });
      await s.publisher.publish(['1.1.0'], { waves, issued });
      const r = await s.update();
      expect(r.stdout).toContain(
        `no machine-id in ${join(s.tree.root, 'etc/machine-id')}: this host takes staged releases with their last wave\n`,
      );
      expect(r.stdout).toContain('(bucket 99, from 2026-01-02T00:00:00.000Z)');
    });
  });

  it('decides with a kept index whose signature no longer verifies by fetching it whole', async () => {
    const s = await setup({ installed: '1.0.0' });
    await s.publisher.publish(['1.0.0']);
    expect((await s.update()).code).toBe(ExitCode.ok);
    await writeFile(join(s.tree.root, 'var/lib/rick/release-index.json.sig'), 'not a signature');
    // A second trusted key: the keys changed, so the kept copy is verified again.
    await writeFile(join(s.tree.root, 'etc/rick/keys/other.asc'), otherKey.publicKeyArmored, {
      mode: 0o644,
    });
    await writeFile(
      join(s.tree.root, 'etc/rick/rick.conf'),
      `FEED=${s.indexUrl}\nBUNDLES=demo\nRANGE=^1\n`,
    );
    const r = await s.update();
    expect(r.stderr).toBe('');
    expect(r.code).toBe(ExitCode.ok);
    expect(r.stdout).toContain('demo: nothing new (nothing newer than 1.0.0 in range ^1)\n');
    expect(
      await readFile(join(s.tree.root, 'var/lib/rick/release-index.json.sig'), 'latin1'),
    ).not.toBe('not a signature');
  });
});
