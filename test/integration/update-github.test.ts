/**
 * The release feed as GitHub really behaves (test/helpers/feed-server.ts is
 * modelled on recorded api.github.com exchanges), through the built
 * single-file installer that the timer runs: `rick-install update --root`.
 * One named test per input; a refusal asserts the exit code, the message
 * and a host tree unchanged to the byte and the timestamp.
 */
import { once } from 'node:events';
import { readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
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
import { builtCli, builtInstaller, requireBuiltCli, runCli } from '../helpers/cli-process.js';
import { type FeedReleaseSpec, FeedServer } from '../helpers/feed-server.js';
import { type HostTree, makeHostTree, quadletPath, repoRoot } from '../helpers/host-tree.js';
import { expectTreeUnchanged, snapshotTree } from '../helpers/tree-snapshot.js';

let key: TestKey;
let tree: HostTree | undefined;
let feed: FeedServer | undefined;

const tlsDir = join(repoRoot, 'test/fixtures/tls');
/** No proxy between the tick and the loopback feed; no token unless a test sets one. */
const baseEnv: NodeJS.ProcessEnv = {
  ...(quadletPath ? { RICK_QUADLET: quadletPath } : {}),
  HTTPS_PROXY: '',
  HTTP_PROXY: '',
  https_proxy: '',
  http_proxy: '',
  GITHUB_TOKEN: '',
  NODE_EXTRA_CA_CERTS: '',
};

beforeAll(async () => {
  requireBuiltCli();
  key = await makeTestKey('rick release');
});

afterEach(async () => {
  await feed?.stop();
  await tree?.cleanup();
  feed = undefined;
  tree = undefined;
});

interface Host {
  tree: HostTree;
  feed: FeedServer;
  /** One timer tick, as the timer runs it: the single-file installer. */
  update(env?: NodeJS.ProcessEnv): ReturnType<typeof runCli>;
  publish(version: string, options?: { tag?: string }): Promise<FeedReleaseSpec>;
  installed(): Promise<string | undefined>;
}

/** A host tree with demo 1.0.0 installed by hand, following a loopback feed. */
async function followingHost(options: { conf?: string; tls?: boolean } = {}): Promise<Host> {
  const t = await makeHostTree(key);
  tree = t;
  const f = await FeedServer.start(
    options.tls
      ? {
          tls: {
            key: await readFile(join(tlsDir, 'feed-key.pem')),
            cert: await readFile(join(tlsDir, 'feed-cert.pem')),
          },
        }
      : {},
  );
  feed = f;
  const v1 = await writeSignedBundle(join(t.work, 'local'), key, { version: '1.0.0' });
  const first = await runCli([v1.bundlePath, '--root', t.root], baseEnv, builtCli);
  expect(first.stderr).toBe('');
  expect(first.code).toBe(ExitCode.ok);
  await writeFile(
    join(t.root, 'etc/rick/rick.conf'),
    `FEED=${f.listUrl}\nBUNDLES=demo\nRANGE=^1\n${options.conf ?? ''}`,
  );
  return {
    tree: t,
    feed: f,
    update: (env = {}) =>
      runCli(['update', '--root', t.root], { ...baseEnv, ...env }, builtInstaller),
    async publish(version, publishOptions = {}) {
      const b = await writeSignedBundle(join(t.work, 'feed'), key, {
        version,
        files: sampleFiles('demo', version),
      });
      return f.addBundle(b.bundlePath, publishOptions);
    },
    installed: async () =>
      (await readState(join(t.root, 'var/lib/rick/state.json'))).bundles.demo?.installed,
  };
}

/** Runs a tick that must be refused: its exit code and first stderr line; nothing on the host changed. */
async function refusedTick(
  host: Host,
  code: number,
  message: string | RegExp,
  env: NodeJS.ProcessEnv = {},
): Promise<{ stdout: string; stderr: string }> {
  const before = await snapshotTree(host.tree.root, { mtime: true });
  const r = await host.update(env);
  const first = r.stderr.split('\n')[0] ?? '';
  if (typeof message === 'string') expect(first).toBe(message);
  else expect(first).toMatch(message);
  expect(r.code).toBe(code);
  await expectTreeUnchanged(host.tree.root, before, { mtime: true });
  expect(await host.installed()).toBe('1.0.0');
  return r;
}

/** Releases of demo 2.x (out of RANGE=^1), newest first, with placeholder assets. */
function outOfRange(count: number): FeedReleaseSpec[] {
  return Array.from({ length: count }, (_, i) => {
    const version = `2.0.${count - 1 - i}`;
    return {
      tag: `v${version}`,
      assets: [
        { name: `demo-${version}.tgz`, data: Buffer.from('not fetched') },
        { name: `demo-${version}.tgz.sig`, data: Buffer.from('not fetched') },
      ],
    };
  });
}

describe('pages: Link rel="next", per_page=100', () => {
  it('finds the release in range behind a full page of newer releases out of range', async () => {
    const host = await followingHost();
    await host.publish('1.1.0');
    host.feed.releases.unshift(...outOfRange(150));
    const r = await host.update();
    expect(r.stderr).toBe('');
    expect(r.code).toBe(ExitCode.ok);
    expect(r.stdout).toContain(`checked ${host.feed.listUrl}: 151 releases on 2 pages\n`);
    expect(r.stdout).toContain('demo: installed 1.1.0\n');
    expect(await host.installed()).toBe('1.1.0');
    expect(host.feed.listRequests().map((q) => q.query)).toEqual([
      '?per_page=100',
      '?per_page=100&page=2',
    ]);
  });

  it('stops at 10 pages and says so when nothing in range was found', async () => {
    const host = await followingHost();
    await host.publish('1.1.0');
    host.feed.releases.unshift(...outOfRange(1000));
    const r = await host.update();
    expect(r.stderr).toBe('');
    expect(r.code).toBe(ExitCode.ok);
    expect(r.stdout).toContain(
      `checked ${host.feed.listUrl}: 1000 releases on 10 pages; only the first 1000 releases were read (at most 10 pages)\n`,
    );
    expect(r.stdout).toContain(
      'demo: nothing new (nothing newer than 1.0.0 in range ^1; only the first 1000 releases were read (at most 10 pages))\n',
    );
    expect(host.feed.listRequests()).toHaveLength(10);
    expect(await host.installed()).toBe('1.0.0');
  });

  it('refuses a next page on another origin', async () => {
    const host = await followingHost();
    host.feed.releases.unshift(...outOfRange(101));
    const objects = host.feed.objectsOrigin;
    host.feed.rewriteLink = (link) => link.replaceAll(host.feed.apiOrigin, objects);
    await refusedTick(
      host,
      ExitCode.feed,
      `error FEED_ERROR: release feed ${host.feed.listUrl} (page 2): the next page is on another origin (${objects}/repos/acme/releases/releases?per_page=100&page=2); not following it`,
    );
    expect(host.feed.seen.filter((q) => q.origin === 'objects')).toEqual([]);
  });
});

describe('GITHUB_TOKEN goes to the feed only', () => {
  it("is sent to the feed's origin, not to storage its downloads redirect to", async () => {
    const host = await followingHost();
    await host.publish('1.1.0');
    const r = await host.update({ GITHUB_TOKEN: 'ghs_feedonly' });
    expect(r.code).toBe(ExitCode.ok);
    expect(host.feed.seen.map((q) => [q.origin, q.status, q.headers.authorization])).toEqual([
      ['api', 200, 'Bearer ghs_feedonly'],
      ['api', 302, 'Bearer ghs_feedonly'],
      ['objects', 200, undefined],
      ['api', 302, 'Bearer ghs_feedonly'],
      ['objects', 200, undefined],
    ]);
  });

  it('is not sent to an asset URL the list names on another origin', async () => {
    const host = await followingHost();
    const release = await host.publish('1.1.0');
    release.assetUrls = 'objects';
    const r = await host.update({ GITHUB_TOKEN: 'ghs_feedonly' });
    expect(r.code).toBe(ExitCode.ok);
    expect(host.feed.seen.map((q) => [q.origin, q.headers.authorization])).toEqual([
      ['api', 'Bearer ghs_feedonly'],
      ['objects', undefined],
      ['objects', undefined],
    ]);
  });
});

describe('https stays https', () => {
  const trust = { NODE_EXTRA_CA_CERTS: join(tlsDir, 'feed-cert.pem') };

  it('refuses an https feed whose download redirects to plain http', async () => {
    const host = await followingHost({ tls: true });
    await host.publish('1.1.0');
    host.feed.redirectAssets = (asset) => `http://downloads.example.invalid/${asset.name}`;
    const r = await refusedTick(
      host,
      ExitCode.feed,
      'error FEED_ERROR: demo-1.1.0.tgz: refusing to leave https for plain http: http://downloads.example.invalid/demo-1.1.0.tgz',
      { ...trust, GITHUB_TOKEN: 'ghs_tls' },
    );
    expect(r.stdout).toContain('demo: not installed 1.1.0 because FEED_ERROR:');
    expect(host.feed.seen.map((q) => [q.origin, q.status])).toEqual([
      ['api', 200],
      ['api', 302],
    ]);
  });

  it('refuses an https API redirect to a plain-http download origin, on loopback too', async () => {
    const host = await followingHost({ tls: true });
    await host.publish('1.1.0');
    // A real plain-http origin that serves the file: never reached.
    const hits: string[] = [];
    const plain = createServer((req, res) => {
      hits.push(req.url ?? '/');
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.end(host.feed.asset('demo-1.1.0.tgz').data);
    });
    plain.listen(0, '127.0.0.1');
    await once(plain, 'listening');
    const origin = `http://127.0.0.1:${(plain.address() as AddressInfo).port}`;
    host.feed.redirectAssets = (asset) => `${origin}/${asset.name}`;
    const r = await refusedTick(
      host,
      ExitCode.feed,
      `error FEED_ERROR: demo-1.1.0.tgz: refusing to leave https for plain http: ${origin}/demo-1.1.0.tgz`,
      { ...trust, GITHUB_TOKEN: 'ghs_tls' },
    );
    expect(r.stdout).toContain('demo: not installed 1.1.0 because FEED_ERROR:');
    expect(host.feed.seen.map((q) => [q.origin, q.status])).toEqual([
      ['api', 200],
      ['api', 302],
    ]);
    expect(hits).toEqual([]);
    plain.close();
  });

  it('follows a redirect to storage on another https origin, without the token', async () => {
    const host = await followingHost({ tls: true });
    await host.publish('1.1.0');
    const r = await host.update({ ...trust, GITHUB_TOKEN: 'ghs_tls' });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(ExitCode.ok);
    expect(await host.installed()).toBe('1.1.0');
    expect(
      host.feed.seen.filter((q) => q.origin === 'objects').map((q) => q.headers.authorization),
    ).toEqual([undefined, undefined]);
  });
});

describe('a download cut off is a download error, not a bad signature', () => {
  it('cut off at its deadline', async () => {
    const host = await followingHost({ conf: 'DOWNLOAD_TIMEOUT_SEC=1\n' });
    await host.publish('1.1.0');
    host.feed.asset('demo-1.1.0.tgz').trickleMs = 20;
    await refusedTick(
      host,
      ExitCode.feed,
      'error FEED_ERROR: demo-1.1.0.tgz: no complete answer within 1 s; download cut off',
    );
  });

  it('ended early by a connection that closes as if the file were complete', async () => {
    const host = await followingHost();
    await host.publish('1.1.0');
    const asset = host.feed.asset('demo-1.1.0.tgz');
    asset.cutAfter = 200;
    await refusedTick(
      host,
      ExitCode.feed,
      `error FEED_ERROR: demo-1.1.0.tgz: received 200 bytes, not the ${asset.data.length} the feed announced; download cut off`,
    );
  });
});

describe('assets not completely uploaded, and releases without the asset', () => {
  it('skips a bundle whose upload is not complete (state open), with a line', async () => {
    const host = await followingHost();
    await host.publish('1.1.0');
    host.feed.asset('demo-1.1.0.tgz').state = 'open';
    const r = await host.update();
    expect(r.code).toBe(ExitCode.ok);
    expect(r.stdout).toContain(
      'demo: skipping 1.1.0 of release v1.1.0: demo-1.1.0.tgz is not completely uploaded (state open)\n',
    );
    expect(r.stdout).toContain('demo: nothing new (nothing newer than 1.0.0 in range ^1)\n');
    expect(host.feed.assetRequests()).toEqual([]);
  });

  it('skips a bundle whose signature is still uploading, and takes the one before', async () => {
    const host = await followingHost();
    await host.publish('1.1.0');
    await host.publish('1.2.0');
    host.feed.asset('demo-1.2.0.tgz.sig').state = 'open';
    const r = await host.update();
    expect(r.code).toBe(ExitCode.ok);
    expect(r.stdout).toContain(
      'demo: skipping 1.2.0 of release v1.2.0: demo-1.2.0.tgz.sig is not completely uploaded (state open)\n',
    );
    expect(r.stdout).toContain('demo: installed 1.1.0\n');
  });

  it('names the assets of a release in range that has no <bundle>-<version>.tgz', async () => {
    const host = await followingHost();
    host.feed.releases.unshift({
      tag: 'v1.3.0',
      assets: [
        { name: 'demo_1.3.0.tgz', data: Buffer.from('x') },
        { name: 'SHA256SUMS', data: Buffer.from('x') },
      ],
    });
    const r = await host.update();
    expect(r.code).toBe(ExitCode.ok);
    expect(r.stdout).toContain(
      'demo: release v1.3.0 is in range but has no demo-1.3.0.tgz (its assets: demo_1.3.0.tgz, SHA256SUMS)\n',
    );
  });
});

describe('every answer other than 2xx is explained', () => {
  it('the primary rate limit without a token: until when, and GITHUB_TOKEN suggested', async () => {
    const host = await followingHost();
    host.feed.anonymous.used = host.feed.anonymous.limit;
    const reset = new Date(host.feed.anonymous.reset * 1000).toISOString().replace('.000Z', 'Z');
    const r = await refusedTick(
      host,
      ExitCode.feed,
      `error FEED_ERROR: release feed ${host.feed.listUrl} answered HTTP 403: GitHub's rate limit of 60 requests per hour is used up until ${reset}`,
    );
    expect(r.stderr).toContain(
      'hint: without a token every host behind this IP address shares 60 requests per hour, conditional ones included: set GITHUB_TOKEN in /etc/rick/update.env\n',
    );
  });

  it('the primary rate limit with a token: no token suggested', async () => {
    const host = await followingHost();
    host.feed.authenticated.used = host.feed.authenticated.limit;
    const reset = new Date(host.feed.authenticated.reset * 1000)
      .toISOString()
      .replace('.000Z', 'Z');
    const r = await refusedTick(
      host,
      ExitCode.feed,
      `error FEED_ERROR: release feed ${host.feed.listUrl} answered HTTP 403: GitHub's rate limit of 5000 requests per hour is used up until ${reset}`,
      { GITHUB_TOKEN: 'ghs_used_up' },
    );
    expect(r.stderr).not.toContain('set GITHUB_TOKEN');
    expect(r.stderr).toContain(
      'hint: nothing was changed; the next timer tick tries again after the reset\n',
    );
  });

  it('the primary rate limit hit by a download', async () => {
    const host = await followingHost();
    await host.publish('1.1.0');
    // The list takes one request; the asset's API URL finds the limit used up.
    host.feed.anonymous.used = host.feed.anonymous.limit - 1;
    await refusedTick(
      host,
      ExitCode.feed,
      /^error FEED_ERROR: demo-1\.1\.0\.tgz answered HTTP 403: GitHub's rate limit of 60 requests per hour is used up until /,
    );
  });

  it('an anonymous no-op tick costs one request of the 60; with a token, none', async () => {
    const host = await followingHost();
    expect((await host.update()).code).toBe(ExitCode.ok);
    const used = host.feed.anonymous.used;
    const noop = await host.update();
    expect(noop.stdout).toContain('unchanged since the last check, nothing new');
    expect(host.feed.listRequests().at(-1)?.status).toBe(304);
    expect(host.feed.anonymous.used).toBe(used + 1);
    // A token's ETag is its own: the first tick with it fetches in full.
    expect((await host.update({ GITHUB_TOKEN: 'ghs_304' })).code).toBe(ExitCode.ok);
    const withToken = host.feed.authenticated.used;
    expect((await host.update({ GITHUB_TOKEN: 'ghs_304' })).stdout).toContain(
      'unchanged since the last check',
    );
    expect(host.feed.authenticated.used).toBe(withToken);
  });

  it('the secondary rate limit: retry-after and GitHub message', async () => {
    const host = await followingHost();
    host.feed.refuseNext = {
      status: 403,
      headers: { 'retry-after': '60' },
      message:
        'You have exceeded a secondary rate limit. Please wait a few minutes before you try again.',
    };
    await refusedTick(
      host,
      ExitCode.feed,
      `error FEED_ERROR: release feed ${host.feed.listUrl} answered HTTP 403: GitHub's secondary rate limit, retry after 60 s (You have exceeded a secondary rate limit. Please wait a few minutes before you try again.)`,
    );
  });

  it("a missing repository: GitHub's message, and a hint about private repositories", async () => {
    const host = await followingHost();
    host.feed.refuseNext = { status: 404, message: 'Not Found' };
    const r = await refusedTick(
      host,
      ExitCode.feed,
      `error FEED_ERROR: release feed ${host.feed.listUrl} answered HTTP 404: Not Found`,
    );
    expect(r.stderr).toContain(
      'hint: check FEED in rick.conf; a private repository needs GITHUB_TOKEN in /etc/rick/update.env\n',
    );
  });

  it('a token GitHub refuses', async () => {
    const host = await followingHost();
    host.feed.refuseNext = { status: 401, message: 'Bad credentials' };
    const r = await refusedTick(
      host,
      ExitCode.feed,
      `error FEED_ERROR: release feed ${host.feed.listUrl} answered HTTP 401: Bad credentials`,
      { GITHUB_TOKEN: 'ghs_revoked' },
    );
    expect(r.stderr).toContain(
      'hint: GitHub refuses GITHUB_TOKEN: renew it in /etc/rick/update.env\n',
    );
  });

  it('an error without a message: the status alone', async () => {
    const host = await followingHost();
    host.feed.rawList = undefined;
    host.feed.refuseNext = { status: 502, message: '' };
    await refusedTick(
      host,
      ExitCode.feed,
      `error FEED_ERROR: release feed ${host.feed.listUrl} answered HTTP 502`,
    );
  });

  it('a download that storage does not find: the status alone', async () => {
    const host = await followingHost();
    const release = await host.publish('1.1.0');
    const asset = release.assets[0]!;
    host.feed.redirectAssets = () =>
      `${host.feed.objectsOrigin}/github-production-release-asset-2e65be/0`;
    await refusedTick(host, ExitCode.feed, `error FEED_ERROR: ${asset.name} answered HTTP 404`);
  });
});
