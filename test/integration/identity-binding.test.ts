/**
 * What was asked for is what is installed: the named tests of identity
 * binding, through the built rick-install on a --root host tree (by hand,
 * `plan`, and the update timer's single-file installer), each asserting
 * the exit code, the message and a host tree unchanged to the timestamp;
 * and the installer that never goes backwards.
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ExitCode } from '../../src/errors.js';
import { readState } from '../../src/host/state.js';
import {
  type FactoryFile,
  makeTestKey,
  sampleFiles,
  type TestKey,
  writeSignedBundle,
} from '../helpers/bundle-factory.js';
import { builtInstaller, requireBuiltCli, runCli } from '../helpers/cli-process.js';
import { FeedServer } from '../helpers/feed-server.js';
import { type HostTree, makeHostTree, quadletPath } from '../helpers/host-tree.js';
import { expectTreeUnchanged, snapshotTree } from '../helpers/tree-snapshot.js';

let key: TestKey;
let tree: HostTree | undefined;
let feed: FeedServer | undefined;

const env: NodeJS.ProcessEnv = {
  ...(quadletPath ? { RICK_QUADLET: quadletPath } : {}),
  HTTPS_PROXY: '',
  HTTP_PROXY: '',
  https_proxy: '',
  http_proxy: '',
  GITHUB_TOKEN: '',
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

/** A host tree that runs demo 1.0.0. */
async function runningHost(): Promise<HostTree> {
  const t = await makeHostTree(key);
  tree = t;
  const v1 = await writeSignedBundle(join(t.work, 'v1'), key, { version: '1.0.0' });
  const r = await runCli([v1.bundlePath, '--root', t.root], env);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(ExitCode.ok);
  return t;
}

/** A signed bundle of `name` `version`, saved as `fileName` with its signature beside it. */
async function signedAs(
  t: HostTree,
  fileName: string,
  spec: { name?: string; version: string },
): Promise<string> {
  const written = await writeSignedBundle(
    join(t.work, `${spec.name ?? 'demo'}-${spec.version}`),
    key,
    {
      ...spec,
      files: sampleFiles(spec.name ?? 'demo', spec.version),
    },
  );
  const path = join(t.work, fileName);
  await rename(written.bundlePath, path);
  await rename(written.signaturePath, `${path}.sig`);
  return path;
}

/** Runs the command line, which must be refused; the host tree must not change at all. */
async function refused(
  t: HostTree,
  args: string[],
  code: number,
  message: string,
  program?: string,
) {
  const before = await snapshotTree(t.root, { mtime: true });
  const r = await runCli([...args, '--root', t.root], env, program);
  expect(r.stderr.split('\n')[0]).toBe(message);
  expect(r.code).toBe(code);
  await expectTreeUnchanged(t.root, before, { mtime: true });
  return r;
}

describe('by hand: the file holds what its name, or --expect, says', () => {
  for (const command of ['install', 'plan']) {
    it(`${command} refuses demo-2.0.0.tgz holding a signed other 1.0.0`, async () => {
      const t = await runningHost();
      const file = await signedAs(t, 'demo-2.0.0.tgz', { name: 'other', version: '1.0.0' });
      const r = await refused(
        t,
        [command, file],
        ExitCode.invalidBundle,
        'error BUNDLE_MISMATCH: demo-2.0.0.tgz holds other 1.0.0 (its signed manifest), not demo 2.0.0 as its file name says',
      );
      expect(r.stderr).toContain(
        'hint: nothing was installed; if other 1.0.0 is what you mean to install, pass --expect other@1.0.0\n',
      );
    });

    it(`${command} refuses demo-1.1.0.tgz holding a signed demo 1.2.0`, async () => {
      const t = await runningHost();
      const file = await signedAs(t, 'demo-1.1.0.tgz', { version: '1.2.0' });
      await refused(
        t,
        [command, file],
        ExitCode.invalidBundle,
        'error BUNDLE_MISMATCH: demo-1.1.0.tgz holds demo 1.2.0 (its signed manifest), not demo 1.1.0 as its file name says',
      );
    });

    it(`${command} refuses a file whose name states no bundle, before reading it`, async () => {
      const t = await runningHost();
      const file = await signedAs(t, 'download.tgz', { version: '1.1.0' });
      const r = await refused(
        t,
        [command, file],
        ExitCode.usage,
        'error USAGE: download.tgz does not say which bundle and version it holds: its name is not <name>-<version>.tgz',
      );
      expect(r.stderr).toContain(
        'hint: keep the name the release published, or state it with --expect NAME@VERSION\n',
      );
    });

    it(`${command} refuses a file that is not what --expect says`, async () => {
      const t = await runningHost();
      const file = await signedAs(t, 'download.tgz', { version: '1.2.0' });
      await refused(
        t,
        [command, file, '--expect', 'demo@1.1.0'],
        ExitCode.invalidBundle,
        'error BUNDLE_MISMATCH: download.tgz holds demo 1.2.0 (its signed manifest), not demo 1.1.0 as --expect says',
      );
    });
  }

  it('refuses an --expect that is not NAME@VERSION', async () => {
    const t = await runningHost();
    const file = await signedAs(t, 'demo-1.1.0.tgz', { version: '1.1.0' });
    await refused(
      t,
      [file, '--expect', 'demo'],
      ExitCode.usage,
      'error USAGE: --expect must be NAME@VERSION, such as authentik@1.2.0, not "demo"',
    );
  });

  it('installs a file saved under another name when --expect states what it holds', async () => {
    const t = await runningHost();
    const file = await signedAs(t, 'download.tgz', { version: '1.1.0' });
    const r = await runCli([file, '--expect', 'demo@1.1.0', '--root', t.root], env);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(ExitCode.ok);
    expect(r.stdout).toContain('installed demo 1.1.0 as generation 2');
  });
});

describe('update: the bundle the release names, in channel and range by its signed manifest', () => {
  async function followingHost(range = '^1') {
    const t = await runningHost();
    feed = await FeedServer.start();
    await writeFile(
      join(t.root, 'etc/rick/rick.conf'),
      `FEED=${feed.listUrl}\nBUNDLES=demo\nRANGE=${range}\n`,
    );
    return t;
  }

  /** Publishes a signed bundle under an asset name of the test's choosing. */
  async function publishAs(t: HostTree, asset: string, spec: { name?: string; version: string }) {
    const written = await writeSignedBundle(join(t.work, 'feed', asset), key, {
      ...spec,
      files: sampleFiles(spec.name ?? 'demo', spec.version),
    });
    const version = /-(\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?)\.tgz$/.exec(asset)?.[1];
    await feed?.addBundle(written.bundlePath, { assetName: asset, tag: `v${version}` });
  }

  async function tick(t: HostTree, code: number, message: string) {
    const r = await refused(t, ['update'], code, message, builtInstaller);
    const state = await readState(join(t.root, 'var/lib/rick/state.json'));
    expect(state.bundles.demo).toEqual({ installed: '1.0.0', highest: '1.0.0', quarantined: [] });
    return r;
  }

  it('refuses an asset demo-2.0.0.tgz holding a signed other 1.0.0, and does not quarantine', async () => {
    const t = await followingHost('*');
    await publishAs(t, 'demo-2.0.0.tgz', { name: 'other', version: '1.0.0' });
    const message = `error BUNDLE_MISMATCH: demo-2.0.0.tgz holds other 1.0.0 (its signed manifest), not demo 2.0.0 as release v2.0.0 of ${feed?.listUrl} says`;
    const r = await tick(t, ExitCode.invalidBundle, message);
    expect(r.stdout).toContain('demo: installing 2.0.0 from release v2.0.0 (installed: 1.0.0)\n');
    expect(r.stdout).toContain(
      `demo: not installed 2.0.0 because BUNDLE_MISMATCH: ${message.slice('error BUNDLE_MISMATCH: '.length)}\n`,
    );
    expect(r.stdout).not.toContain('installed 2.0.0\n');
    expect(r.stderr).toContain(
      'hint: the release serves another bundle under this name; nothing was installed or quarantined, and the next tick tries again\n',
    );
    // The mirror's doing, not the release's: the next tick tries again.
    const downloads = feed?.assetRequests().length ?? 0;
    await tick(t, ExitCode.invalidBundle, message);
    expect(feed?.assetRequests().length).toBe(downloads * 2);
  });

  it('refuses a signed 2.0.0-rc.1 in an asset named like a stable release in range', async () => {
    const t = await followingHost();
    await publishAs(t, 'demo-1.5.0.tgz', { version: '2.0.0-rc.1' });
    await tick(
      t,
      ExitCode.versionPolicy,
      'error VERSION_REFUSED: demo-1.5.0.tgz holds demo 2.0.0-rc.1 (its signed manifest), a prerelease, and CHANNEL=stable takes none',
    );
  });

  it('refuses a signed 2.0.0 outside RANGE=^1 in an asset named 1.5.0', async () => {
    const t = await followingHost();
    await publishAs(t, 'demo-1.5.0.tgz', { version: '2.0.0' });
    await tick(
      t,
      ExitCode.versionPolicy,
      'error VERSION_REFUSED: demo-1.5.0.tgz holds demo 2.0.0 (its signed manifest), outside RANGE=^1',
    );
  });

  it('refuses an older signed demo 1.1.0 in an asset named 1.6.0', async () => {
    const t = await followingHost();
    await publishAs(t, 'demo-1.6.0.tgz', { version: '1.1.0' });
    await tick(
      t,
      ExitCode.invalidBundle,
      `error BUNDLE_MISMATCH: demo-1.6.0.tgz holds demo 1.1.0 (its signed manifest), not demo 1.6.0 as release v1.6.0 of ${feed?.listUrl} says`,
    );
  });
});

describe('the installer never goes backwards', () => {
  const installer = (version: string | undefined): FactoryFile => ({
    path: 'installer/rick-install.cjs',
    content: `#!/usr/bin/env node\n${version ? `// rick-install version ${version}\n` : ''}process.exit(0);\n`,
    mode: 0o755,
  });
  const linked = (t: HostTree) =>
    readFile(join(t.root, 'var/lib/rick/current/installer/rick-install.cjs'), 'utf8');

  it('keeps the live installer when a bundle carries an older one or one of no version', async () => {
    const t = await makeHostTree(key);
    tree = t;
    const install = async (version: string, carried: string | undefined) => {
      const b = await writeSignedBundle(join(t.work, version), key, {
        version,
        files: [...sampleFiles('demo', version), installer(carried)],
      });
      const r = await runCli([b.bundlePath, '--root', t.root], env);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(ExitCode.ok);
      return r.stdout;
    };
    const status = async () => (await runCli(['status', '--root', t.root], env)).stdout;

    await install('1.0.0', '2.0.0');
    expect(await linked(t)).toContain('// rick-install version 2.0.0\n');
    expect(await status()).toContain('installer: rick-install 2.0.0\n');

    const older = await install('1.1.0', '1.5.0');
    expect(older).toContain(
      'note: keeping rick-install 2.0.0: demo 1.1.0 carries the older 1.5.0, which is not linked\n',
    );
    expect(await linked(t)).toContain('// rick-install version 2.0.0\n');

    const unstated = await install('1.2.0', undefined);
    expect(unstated).toContain(
      'note: keeping rick-install 2.0.0: demo 1.2.0 carries an installer that states no version, which is not linked\n',
    );
    expect(await linked(t)).toContain('// rick-install version 2.0.0\n');

    const newer = await install('1.3.0', '2.1.0');
    expect(newer).not.toContain('keeping rick-install');
    expect(await linked(t)).toContain('// rick-install version 2.1.0\n');
    expect(await status()).toContain('installer: rick-install 2.1.0\n');
  });
});
