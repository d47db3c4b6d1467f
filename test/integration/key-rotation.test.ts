/**
 * Release keys under a root key, through the update timer: the key list
 * (keys.json) and a root hand-over are published beside the signed index,
 * written by `rick-bundle keys` itself; the host takes them (gpgv, against
 * root.asc) before it verifies the index and the bundles. Installs go
 * through the real pipeline into a --root tree; only the service manager
 * and the clock are fake (FakeHost, 2026-01-01T00:00:00Z).
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { signDetached } from '../../src/bundle/openpgp.js';
import { ExitCode } from '../../src/errors.js';
import { readState } from '../../src/host/state.js';
import { type KeyList, serializeKeyList } from '../../src/trust/key-list.js';
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
import { runBundleCli } from '../helpers/rick-bundle.js';
import { diffTrees, snapshotTree } from '../helpers/tree-snapshot.js';

/** FakeHost's clock starts here; lists are signed an hour before. */
const START = Date.parse('2026-01-01T00:00:00Z');
const HOUR = 3_600_000;
const signedAt = () => new Date(START - HOUR);
/** Long enough that the kept list stays valid by the real clock too (bundle installs judge it so). */
const LONG = '3650d';

let root: TestKey;
let root2: TestKey;
let keyA: TestKey;
let keyB: TestKey;
let stranger: TestKey;
const cleanups: Array<() => Promise<void>> = [];

beforeAll(async () => {
  [root, root2, keyA, keyB, stranger] = await Promise.all([
    makeTestKey('rick root'),
    makeTestKey('rick root 2027'),
    makeTestKey('rick release A'),
    makeTestKey('rick release B'),
    makeTestKey('someone else'),
  ]);
  for (const name of ['HTTPS_PROXY', 'HTTP_PROXY', 'https_proxy', 'http_proxy', 'GITHUB_TOKEN']) {
    delete process.env[name];
  }
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

interface Setup {
  tree: HostTree;
  server: ReleaseServer;
  host: FakeHost;
  /** Publishes bundles and indexes signed by A. */
  byA: Publisher;
  /** Publishes bundles and indexes signed by B, continuing the same index. */
  byB: Publisher;
  /** The publisher's working directory: keys, lists. */
  dir: string;
  indexUrl: string;
  update: () => ReturnType<typeof runInstaller>;
  /** Runs rick-bundle keys as the root key holder would, an hour before the host's clock. */
  keys: (...args: string[]) => Promise<void>;
  /** Puts DIR's keys.json(.sig) and root-handover.json(.sig), when there, beside the latest index. */
  serveKeys: (from?: string) => Promise<void>;
}

async function setup(options: { rootKey?: boolean } = {}): Promise<Setup> {
  // The host was set up with release key A, as every host before root keys.
  const tree = await makeHostTree(keyA);
  if (options.rootKey !== false) {
    await writeFile(join(tree.root, 'etc/rick/keys/root.asc'), root.publicKeyArmored, {
      mode: 0o644,
    });
  }
  const server = await ReleaseServer.start();
  cleanups.push(
    () => server.stop(),
    () => tree.cleanup(),
  );
  const host = new FakeHost({ root: tree.root });
  const indexUrl = server.latestUrl('index.json');
  await writeFile(join(tree.root, 'etc/rick/rick.conf'), `FEED=${indexUrl}\nBUNDLES=demo\n`);
  const dir = join(tree.work, 'publish');
  const b = await writeSignedBundle(join(tree.work, 'local'), keyA, {
    version: '1.0.0',
    files: sampleFiles('demo', '1.0.0'),
  });
  expect((await runInstaller(host, [b.bundlePath, '--root', tree.root])).code).toBe(ExitCode.ok);
  host.reset();
  const files: Record<string, TestKey> = { root, root2, keyA, keyB, stranger };
  const { mkdir } = await import('node:fs/promises');
  await mkdir(dir, { recursive: true });
  for (const [name, k] of Object.entries(files)) {
    await writeFile(join(dir, `${name}.asc`), k.privateKeyArmored, { mode: 0o600 });
    await writeFile(join(dir, `${name}.pub.asc`), k.publicKeyArmored);
  }
  const byA = new Publisher(server, join(dir, 'a'), keyA);
  const byB = new Publisher(server, join(dir, 'b'), keyB);
  return {
    tree,
    server,
    host,
    byA,
    byB,
    dir,
    indexUrl,
    update: () => runInstaller(host, ['update', '--root', tree.root]),
    keys: async (...args) => {
      const r = await runBundleCli(args, {
        cwd: dir,
        env: { PATH: process.env.PATH },
        now: signedAt,
      });
      expect(r.stderr).toBe('');
      expect(r.code).toBe(ExitCode.ok);
    },
    serveKeys: async (from = dir) => {
      for (const name of [
        'keys.json',
        'keys.json.sig',
        'root-handover.json',
        'root-handover.json.sig',
      ]) {
        const data = await readFile(join(from, name)).catch(() => undefined);
        if (data !== undefined) server.put(latestTag(server), name, data);
      }
    },
  };
}

/** The next index (continuing the one published last, whoever signed it) with `versions` added. */
async function publish(s: Setup, by: Publisher, versions: string[]): Promise<void> {
  const other = by === s.byA ? s.byB : s.byA;
  if (other.index && (!by.index || other.index.serial > by.index.serial)) by.index = other.index;
  await by.publish(versions);
  await s.serveKeys();
}

/** The tag of the latest release, where the index and its neighbours are served. */
function latestTag(server: ReleaseServer): string {
  if (server.latest === undefined) throw new Error('no release published yet');
  return server.latest;
}

async function installedVersion(rootDir: string): Promise<string | undefined> {
  return (await readState(join(rootDir, 'var/lib/rick/state.json'))).bundles.demo?.installed;
}

describe('release keys that rotate under a root key', () => {
  it('rotates from A to B through the update timer: B-signed releases install, A-signed ones are refused once A is removed', async () => {
    const s = await setup();
    await s.keys(
      'keys',
      '--root-key',
      'root.asc',
      '--new',
      '--add',
      'keyA.pub.asc',
      '--valid-for',
      LONG,
      '--out',
      '.',
    );
    await publish(s, s.byA, ['1.1.0']);
    let r = await s.update();
    expect(r.stderr).toBe('');
    expect(r.code).toBe(ExitCode.ok);
    expect(r.stdout).toContain(
      `accepted key list serial 1 (expires 2035-12-29T23:00:00Z): ${keyA.fingerprint} for bundles and index\n`,
    );
    expect(await installedVersion(s.tree.root)).toBe('1.1.0');
    expect(await readFile(join(s.tree.root, 'var/lib/rick/keys.json'), 'utf8')).toBe(
      await readFile(join(s.dir, 'keys.json'), 'utf8'),
    );

    // Add B: releases signed by B install, with no change on the host.
    await s.keys(
      'keys',
      '--root-key',
      'root.asc',
      '--previous',
      'keys.json',
      '--add',
      'keyB.pub.asc',
      '--valid-for',
      LONG,
      '--out',
      '.',
    );
    await publish(s, s.byB, ['1.2.0']);
    s.host.reset();
    r = await s.update();
    expect(r.stderr).toBe('');
    expect(r.code).toBe(ExitCode.ok);
    expect(r.stdout).toContain('accepted key list serial 2');
    expect(await installedVersion(s.tree.root)).toBe('1.2.0');

    // Remove A (say it was stolen): whoever holds it can no longer publish.
    await s.keys(
      'keys',
      '--root-key',
      'root.asc',
      '--previous',
      'keys.json',
      '--remove',
      keyA.fingerprint,
      '--valid-for',
      LONG,
      '--out',
      '.',
    );
    await publish(s, s.byA, ['1.3.0']);
    s.host.reset();
    r = await s.update();
    expect(r.code).toBe(ExitCode.untrustedSignature);
    expect(r.stdout).toContain(
      `accepted key list serial 3 (expires 2035-12-29T23:00:00Z): ${keyB.fingerprint} for bundles and index\n`,
    );
    expect(r.stderr).toMatch(
      new RegExp(
        `^error SIGNATURE_INVALID: release index .*: no valid signature by a trusted key \\(key ${keyA.fingerprint.slice(-16)}: not a trusted key\\)`,
        'm',
      ),
    );
    expect(await installedVersion(s.tree.root)).toBe('1.2.0');

    // An index by B naming a bundle signed by A: the bundle is refused.
    await publish(s, s.byB, []);
    s.host.reset();
    r = await s.update();
    expect(r.code).toBe(ExitCode.untrustedSignature);
    expect(r.stdout).toContain(
      'demo: not installed 1.3.0 because SIGNATURE_INVALID: no valid signature by a trusted key',
    );
    expect(await installedVersion(s.tree.root)).toBe('1.2.0');
    expect(s.host.calls).toEqual([]);

    // B's next release installs.
    await publish(s, s.byB, ['1.3.1']);
    s.host.reset();
    r = await s.update();
    expect(r.stderr).toBe('');
    expect(r.code).toBe(ExitCode.ok);
    expect(await installedVersion(s.tree.root)).toBe('1.3.1');
  });

  it("answers a stolen key's huge serial: the list that removes the key drops the index it signed as the floor", async () => {
    const s = await setup();
    await s.keys(
      'keys',
      '--root-key',
      'root.asc',
      '--new',
      '--add',
      'keyA.pub.asc',
      '--valid-for',
      LONG,
      '--out',
      '.',
    );
    await publish(s, s.byA, ['1.1.0']);
    expect((await s.update()).code).toBe(ExitCode.ok);
    // Whoever stole A signs an index with a serial no honest index will reach.
    const honest = s.byA.index;
    if (!honest) throw new Error('no index');
    await s.byA.serve({ ...honest, serial: 10 ** 12 });
    await s.serveKeys();
    s.host.reset();
    let r = await s.update();
    expect(r.code).toBe(ExitCode.ok);
    expect(
      JSON.parse(await readFile(join(s.tree.root, 'var/lib/rick/release-index.json'), 'utf8'))
        .serial,
    ).toBe(10 ** 12);
    // The root key holder removes A and names B, and B signs the next honest index.
    await s.keys(
      'keys',
      '--root-key',
      'root.asc',
      '--previous',
      'keys.json',
      '--add',
      'keyB.pub.asc',
      '--remove',
      keyA.fingerprint,
      '--valid-for',
      LONG,
      '--out',
      '.',
    );
    s.byB.index = honest;
    await s.byB.publish(['1.2.0']);
    await s.serveKeys();
    s.host.reset();
    r = await s.update();
    expect(r.stderr).toBe('');
    expect(r.code).toBe(ExitCode.ok);
    expect(r.stdout).toContain(
      'the kept release index (serial 1000000000000) is signed by no key the new list names for the index: it is no longer the rollback floor\n',
    );
    expect(await installedVersion(s.tree.root)).toBe('1.2.0');
    expect(
      JSON.parse(await readFile(join(s.tree.root, 'var/lib/rick/release-index.json'), 'utf8'))
        .serial,
    ).toBe(honest.serial + 1);
  });

  it('a bundle installed by hand is judged by the kept list, not by the key files beside root.asc', async () => {
    const s = await setup();
    await s.keys(
      'keys',
      '--root-key',
      'root.asc',
      '--new',
      '--add',
      'keyB.pub.asc',
      '--roles',
      'bundles',
      '--valid-for',
      LONG,
      '--out',
      '.',
    );
    // Imported by hand: no feed needed.
    let r = await runInstaller(s.host, [
      'keys',
      'import',
      join(s.dir, 'keys.json'),
      '--root',
      s.tree.root,
    ]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(ExitCode.ok);
    expect(r.stdout).toBe(
      `accepted key list serial 1 (expires 2035-12-29T23:00:00Z): ${keyB.fingerprint} for bundles\n`,
    );
    // release.asc (A) is still in /etc/rick/keys, but the list does not name A.
    const byA = await writeSignedBundle(join(s.tree.work, 'hand'), keyA, {
      version: '1.5.0',
      files: sampleFiles('demo', '1.5.0'),
    });
    const before = await snapshotTree(s.tree.root, { mtime: true });
    r = await runInstaller(s.host, [byA.bundlePath, '--root', s.tree.root]);
    expect(r.code).toBe(ExitCode.untrustedSignature);
    expect(r.stderr).toContain(
      `error SIGNATURE_INVALID: no valid signature by a trusted key (key ${keyA.fingerprint.slice(-16)}: not a trusted key)`,
    );
    expect(diffTrees(before, await snapshotTree(s.tree.root, { mtime: true }))).toEqual([]);
    const byB = await writeSignedBundle(join(s.tree.work, 'hand-b'), keyB, {
      version: '1.5.0',
      files: sampleFiles('demo', '1.5.0'),
    });
    r = await runInstaller(s.host, [byB.bundlePath, '--root', s.tree.root]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(ExitCode.ok);
    expect(await installedVersion(s.tree.root)).toBe('1.5.0');
  });

  it('imports a hand-over and the list of the new root by hand; refuses a list by a release key, changing nothing', async () => {
    const s = await setup();
    await s.keys('keys', '--root-key', 'root.asc', '--new-root', 'root2.pub.asc', '--out', '.');
    await s.keys(
      'keys',
      '--root-key',
      'root2.asc',
      '--new',
      '--add',
      'keyB.pub.asc',
      '--valid-for',
      LONG,
      '--out',
      '.',
    );
    const keysImport = (file: string) =>
      runInstaller(s.host, ['keys', 'import', join(s.dir, file), '--root', s.tree.root]);
    // The list first: signed by root2, which this host does not trust yet.
    let before = await snapshotTree(s.tree.root, { mtime: true });
    let r = await keysImport('keys.json');
    expect(r.code).toBe(ExitCode.untrustedSignature);
    expect(r.stderr).toContain(
      `error KEY_LIST_UNTRUSTED: ${join(s.dir, 'keys.json')} is not signed by the root key ${root.fingerprint} this host trusts`,
    );
    expect(diffTrees(before, await snapshotTree(s.tree.root, { mtime: true }))).toEqual([]);
    r = await keysImport('root-handover.json');
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(
      `root key handed over from ${root.fingerprint} to ${root2.fingerprint}\n`,
    );
    r = await keysImport('root-handover.json');
    expect(r.stdout).toBe(
      `${join(s.dir, 'root-handover.json')}: this hand-over was accepted before; nothing changed\n`,
    );
    r = await keysImport('keys.json');
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('accepted key list serial 1');
    // A list by a release key is refused.
    const text = serializeKeyList({
      ...(JSON.parse(await readFile(join(s.dir, 'keys.json'), 'utf8')) as KeyList),
      serial: 2,
    });
    await writeFile(join(s.dir, 'by-b.json'), text);
    await writeFile(
      join(s.dir, 'by-b.json.sig'),
      await signDetached(Buffer.from(text), keyB.privateKey),
    );
    before = await snapshotTree(s.tree.root, { mtime: true });
    r = await keysImport('by-b.json');
    expect(r.code).toBe(ExitCode.untrustedSignature);
    expect(r.stderr).toContain(
      `error KEY_LIST_UNTRUSTED: ${join(s.dir, 'by-b.json')} is not signed by the root key ${root2.fingerprint} this host trusts`,
    );
    expect(diffTrees(before, await snapshotTree(s.tree.root, { mtime: true }))).toEqual([]);
  });

  it('refuses to import a list on a host without root.asc, changing nothing', async () => {
    const s = await setup({ rootKey: false });
    await s.keys('keys', '--root-key', 'root.asc', '--new', '--add', 'keyB.pub.asc', '--out', '.');
    const before = await snapshotTree(s.tree.root, { mtime: true });
    const r = await runInstaller(s.host, [
      'keys',
      'import',
      join(s.dir, 'keys.json'),
      '--root',
      s.tree.root,
    ]);
    expect(r.code).toBe(ExitCode.untrustedSignature);
    expect(r.stderr).toContain(
      `error KEYRING_INVALID: no root key ${join(s.tree.root, 'etc/rick/keys')}/root.asc: this host cannot judge ${join(s.dir, 'keys.json')}`,
    );
    expect(diffTrees(before, await snapshotTree(s.tree.root, { mtime: true }))).toEqual([]);
  });

  describe('refuses a list, changing nothing', () => {
    /** A host that accepted list serial 2 (A and B), and a fresh index by B to decide on. */
    async function accepted(): Promise<Setup> {
      const s = await setup();
      await s.keys(
        'keys',
        '--root-key',
        'root.asc',
        '--new',
        '--add',
        'keyA.pub.asc',
        '--valid-for',
        LONG,
        '--out',
        'v1',
      );
      await s.keys(
        'keys',
        '--root-key',
        'root.asc',
        '--previous',
        'v1/keys.json',
        '--add',
        'keyB.pub.asc',
        '--valid-for',
        LONG,
        '--out',
        '.',
      );
      await publish(s, s.byB, ['1.1.0']);
      const r = await s.update();
      expect(r.code).toBe(ExitCode.ok);
      await publish(s, s.byB, ['1.2.0']);
      s.host.reset();
      return s;
    }

    async function expectRefused(s: Setup, message: RegExp): Promise<void> {
      const before = await snapshotTree(s.tree.root, { mtime: true });
      const r = await s.update();
      expect(r.stderr).toMatch(message);
      expect(r.code).toBe(ExitCode.untrustedSignature);
      expect(diffTrees(before, await snapshotTree(s.tree.root, { mtime: true }))).toEqual([]);
      expect(s.host.calls).toEqual([]);
      expect(await installedVersion(s.tree.root)).toBe('1.1.0');
      expect(s.server.requests(undefined, 'demo-1.2.0.tgz')).toEqual([]);
    }

    async function serveSigned(s: Setup, list: KeyList | string, by: TestKey): Promise<void> {
      const text = typeof list === 'string' ? list : serializeKeyList(list);
      s.server.put(latestTag(s.server), 'keys.json', text);
      s.server.put(
        latestTag(s.server),
        'keys.json.sig',
        Buffer.from(await signDetached(Buffer.from(text), by.privateKey)),
      );
    }

    it('a list signed by a release key, not the root', async () => {
      const s = await accepted();
      const list = JSON.parse(await readFile(join(s.dir, 'keys.json'), 'utf8')) as KeyList;
      await serveSigned(s, { ...list, serial: 3 }, keyB);
      await expectRefused(
        s,
        new RegExp(
          `^error KEY_LIST_UNTRUSTED: the published keys.json is not signed by the root key ${root.fingerprint} this host trusts: no valid signature by a trusted key \\(key ${keyB.fingerprint.slice(-16)}: not a trusted key\\)\n`,
          'm',
        ),
      );
    });

    it('an older list (serial 1, which does not name B)', async () => {
      const s = await accepted();
      await s.serveKeys(join(s.dir, 'v1'));
      await expectRefused(
        s,
        /^error KEY_LIST_ROLLBACK: the published keys.json has serial 1, older than the list accepted before \(serial 2\)\n/m,
      );
    });

    it('an expired list', async () => {
      const s = await accepted();
      const list = JSON.parse(await readFile(join(s.dir, 'keys.json'), 'utf8')) as KeyList;
      await serveSigned(
        s,
        { ...list, serial: 3, issued: '2025-11-01T00:00:00Z', expires: '2025-12-01T00:00:00Z' },
        root,
      );
      await expectRefused(
        s,
        /^error KEY_LIST_EXPIRED: the published keys.json \(serial 3\) expired at 2025-12-01T00:00:00Z\n/m,
      );
    });

    it('a list naming no key', async () => {
      const s = await accepted();
      const list = JSON.parse(await readFile(join(s.dir, 'keys.json'), 'utf8')) as KeyList;
      await serveSigned(s, `${JSON.stringify({ ...list, serial: 3, keys: [] }, null, 2)}\n`, root);
      await expectRefused(
        s,
        /^error KEY_LIST_INVALID: the published keys.json \(serial 3\) names no key\n/m,
      );
    });

    it('a list whose public key is not the fingerprint it names', async () => {
      const s = await accepted();
      const list = JSON.parse(await readFile(join(s.dir, 'keys.json'), 'utf8')) as KeyList;
      const keys = list.keys.map((k) =>
        k.fingerprint === keyB.fingerprint ? { ...k, publicKey: stranger.publicKeyArmored } : k,
      );
      await serveSigned(s, { ...list, serial: 3, keys }, root);
      await expectRefused(
        s,
        new RegExp(
          `^error KEY_LIST_INVALID: the published keys.json: keys.\\d: the public key is ${stranger.fingerprint}, not the ${keyB.fingerprint} listed\n`,
          'm',
        ),
      );
    });
  });

  describe('root hand-over', () => {
    it('accepts the new root when the old one signs the hand-over, and lists signed by it from then on', async () => {
      const s = await setup();
      await s.keys(
        'keys',
        '--root-key',
        'root.asc',
        '--new',
        '--add',
        'keyA.pub.asc',
        '--valid-for',
        LONG,
        '--out',
        '.',
      );
      await publish(s, s.byA, ['1.1.0']);
      expect((await s.update()).code).toBe(ExitCode.ok);

      await s.keys('keys', '--root-key', 'root.asc', '--new-root', 'root2.pub.asc', '--out', '.');
      await s.keys(
        'keys',
        '--root-key',
        'root2.asc',
        '--previous',
        'keys.json',
        '--keyring',
        'root.pub.asc',
        '--add',
        'keyB.pub.asc',
        '--valid-for',
        LONG,
        '--out',
        '.',
      );
      await publish(s, s.byB, ['1.2.0']);
      s.host.reset();
      const r = await s.update();
      expect(r.stderr).toBe('');
      expect(r.code).toBe(ExitCode.ok);
      expect(r.stdout).toContain(
        `root key handed over from ${root.fingerprint} to ${root2.fingerprint}\n`,
      );
      expect(r.stdout).toContain('accepted key list serial 2');
      expect(await installedVersion(s.tree.root)).toBe('1.2.0');
      // From now on a list signed by the old root is refused.
      const list = JSON.parse(await readFile(join(s.dir, 'keys.json'), 'utf8')) as KeyList;
      const text = serializeKeyList({ ...list, serial: 3 });
      await publish(s, s.byB, ['1.3.0']);
      s.server.put(latestTag(s.server), 'keys.json', text);
      s.server.put(
        latestTag(s.server),
        'keys.json.sig',
        Buffer.from(await signDetached(Buffer.from(text), root.privateKey)),
      );
      s.host.reset();
      const before = await snapshotTree(s.tree.root, { mtime: true });
      const refused = await s.update();
      expect(refused.code).toBe(ExitCode.untrustedSignature);
      expect(refused.stderr).toContain(
        `error KEY_LIST_UNTRUSTED: the published keys.json is not signed by the root key ${root2.fingerprint} this host trusts`,
      );
      expect(diffTrees(before, await snapshotTree(s.tree.root, { mtime: true }))).toEqual([]);
    });

    it('refuses a forged hand-over (signed by another key), changing nothing', async () => {
      const s = await setup();
      await s.keys(
        'keys',
        '--root-key',
        'root.asc',
        '--new',
        '--add',
        'keyA.pub.asc',
        '--valid-for',
        LONG,
        '--out',
        '.',
      );
      await publish(s, s.byA, ['1.1.0']);
      expect((await s.update()).code).toBe(ExitCode.ok);
      // Someone hands "the root" over to a key of theirs, signed with that key.
      await s.keys(
        'keys',
        '--root-key',
        'stranger.asc',
        '--new-root',
        'keyB.pub.asc',
        '--out',
        'forged',
      );
      await publish(s, s.byA, ['1.2.0']);
      await s.serveKeys(join(s.dir, 'forged'));
      s.host.reset();
      const before = await snapshotTree(s.tree.root, { mtime: true });
      const r = await s.update();
      expect(r.code).toBe(ExitCode.untrustedSignature);
      expect(r.stderr).toMatch(
        new RegExp(
          `^error ROOT_HANDOVER_INVALID: the published root-handover.json is not signed by the root key ${root.fingerprint} this host trusts: no valid signature by a trusted key \\(key ${stranger.fingerprint.slice(-16)}: not a trusted key\\)\n`,
          'm',
        ),
      );
      expect(diffTrees(before, await snapshotTree(s.tree.root, { mtime: true }))).toEqual([]);
      expect(await installedVersion(s.tree.root)).toBe('1.1.0');
    });
  });

  it("follows the GitHub releases feed too: the list among the newest release's assets", async () => {
    const s = await setup();
    const feed = await FeedServer.start();
    cleanups.push(() => feed.stop());
    await writeFile(
      join(s.tree.root, 'etc/rick/rick.conf'),
      `FEED=${feed.listUrl}\nBUNDLES=demo\n`,
    );
    await s.keys(
      'keys',
      '--root-key',
      'root.asc',
      '--new',
      '--add',
      'keyB.pub.asc',
      '--valid-for',
      LONG,
      '--out',
      '.',
    );
    const withList = async (version: string, by: TestKey) => {
      const b = await writeSignedBundle(join(s.tree.work, 'feed'), by, {
        version,
        files: sampleFiles('demo', version),
      });
      const release = await feed.addBundle(b.bundlePath);
      for (const name of ['keys.json', 'keys.json.sig']) {
        release.assets.push({ name, data: await readFile(join(s.dir, name)) });
      }
    };
    await withList('1.1.0', keyB);
    let r = await s.update();
    expect(r.stderr).toBe('');
    expect(r.code).toBe(ExitCode.ok);
    expect(r.stdout).toContain(
      `accepted key list serial 1 (expires 2035-12-29T23:00:00Z): ${keyB.fingerprint} for bundles and index\n`,
    );
    expect(await installedVersion(s.tree.root)).toBe('1.1.0');
    // A, still in release.asc, is not named by the list: its release is refused.
    await withList('1.2.0', keyA);
    s.host.reset();
    const before = await snapshotTree(s.tree.root, { mtime: true });
    r = await s.update();
    expect(r.code).toBe(ExitCode.untrustedSignature);
    expect(r.stdout).toContain(
      `demo: not installed 1.2.0 because SIGNATURE_INVALID: no valid signature by a trusted key (key ${keyA.fingerprint.slice(-16)}: not a trusted key)`,
    );
    expect(diffTrees(before, await snapshotTree(s.tree.root, { mtime: true }))).toEqual([]);
    expect(await installedVersion(s.tree.root)).toBe('1.1.0');
  });

  it('a host with release.asc alone works as before: it asks for no key list and keeps none', async () => {
    const s = await setup({ rootKey: false });
    await s.keys(
      'keys',
      '--root-key',
      'root.asc',
      '--new',
      '--add',
      'keyB.pub.asc',
      '--valid-for',
      LONG,
      '--out',
      '.',
    );
    await publish(s, s.byA, ['1.1.0']);
    const r = await s.update();
    expect(r.stderr).toBe('');
    expect(r.code).toBe(ExitCode.ok);
    expect(await installedVersion(s.tree.root)).toBe('1.1.0');
    expect(s.server.requests(undefined, 'keys.json')).toEqual([]);
    expect(s.server.requests(undefined, 'root-handover.json')).toEqual([]);
    await expect(readFile(join(s.tree.root, 'var/lib/rick/keys.json'))).rejects.toThrow(/ENOENT/);
  });
});
