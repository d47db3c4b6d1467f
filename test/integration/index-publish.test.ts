/**
 * scripts/index-publish.sh, the index workflow's one step, against a fake
 * GitHub CLI (test/fixtures/fake-gh: releases and their assets in a
 * directory) and the real rick-bundle: it lists every release, applies
 * release-index.yaml, puts the signed index on the newest stable release and
 * makes it the latest; when GitHub cannot be asked, it changes nothing.
 */
import { execFile } from 'node:child_process';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseIndex } from '../../src/bundle/release-index.js';
import { keyringFor, verifyWithGpgv } from '../../src/host/intake/gpgv.js';
import { makeTestKey, type TestKey, writeSignedBundle } from '../helpers/bundle-factory.js';
import { repoRoot } from '../helpers/host-tree.js';
import { makeTempDir } from '../helpers/rick-bundle.js';
import { diffTrees, snapshotTree } from '../helpers/tree-snapshot.js';

const run = promisify(execFile);
let work: string;
let github: string;
let key: TestKey;
let keyFile: string;

beforeAll(async () => {
  work = await makeTempDir('rick-index-publish-');
  github = join(work, 'github');
  key = await makeTestKey('rick index');
  keyFile = join(work, 'index-key.asc');
  await writeFile(keyFile, key.privateKeyArmored, { mode: 0o600 });
  for (const version of ['1.0.0', '1.1.0']) {
    await writeSignedBundle(join(github, 'releases', `v${version}`), key, { version });
  }
  await writeFile(
    join(github, 'releases.json'),
    JSON.stringify([
      { tag: 'v1.1.0', prerelease: false, draft: false },
      { tag: 'v1.0.0', prerelease: false, draft: false },
    ]),
  );
  await writeFile(join(github, 'latest'), 'v1.0.0\n');
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

function publish(state: string, out: string, extraEnv: Record<string, string> = {}) {
  return run(
    'sh',
    [
      join(repoRoot, 'scripts/index-publish.sh'),
      '--key',
      keyFile,
      '--state',
      state,
      '--out',
      out,
      '--upload',
    ],
    {
      cwd: repoRoot,
      env: {
        PATH: `${join(repoRoot, 'test/fixtures/fake-gh')}:${process.env.PATH}`,
        GH_REPO: 'owner/name',
        FAKE_GH_DIR: github,
        ...extraEnv,
      },
      maxBuffer: 8 * 1024 * 1024,
    },
  );
}

async function published(tag: string) {
  const dir = join(github, 'releases', tag);
  const bytes = await readFile(join(dir, 'index.json'));
  const verified = await verifyWithGpgv(
    bytes,
    await readFile(join(dir, 'index.json.sig')),
    keyringFor([{ path: 'index.asc', data: Buffer.from(key.publicKeyArmored) }], 'k'),
  );
  return { index: parseIndex(bytes.toString('utf8'), 'index'), fingerprint: verified.fingerprint };
}

describe('scripts/index-publish.sh', () => {
  it('lists every release, applies the yanks, and moves the latest to the newest stable release', async () => {
    const state = join(work, 'state.yaml');
    await writeFile(
      state,
      'yanked:\n  - release: demo@1.0.0\n    reason: loses uploads\nrollouts: []\n',
    );
    const first = await publish(state, join(work, 'out1'));
    expect(first.stdout).toContain(
      'index-publish: v1.0.0 has no index.json yet: starting a new index',
    );
    expect(first.stdout).toContain(
      'index-publish: index.json and index.json.sig now on release v1.1.0',
    );
    expect(first.stdout).toContain('index-publish: v1.1.0 is now the latest release');
    expect(first.stdout.trimEnd().split('\n').at(-1)).toBe('latest=v1.1.0');
    expect((await readFile(join(github, 'latest'), 'utf8')).trim()).toBe('v1.1.0');
    const one = await published('v1.1.0');
    expect(one.fingerprint).toBe(key.fingerprint);
    expect(one.index.releases.map((r) => `${r.version} ${r.location}`)).toEqual([
      '1.0.0 ../../download/v1.0.0/',
      '1.1.0 ../../download/v1.1.0/',
    ]);
    expect(one.index.yanked.map((y) => `${y.version}: ${y.reason}`)).toEqual([
      '1.0.0: loses uploads',
    ]);

    // The next run, with nothing new: the same contents, signed again.
    const second = await publish(state, join(work, 'out2'));
    expect(second.stdout).toContain('index-publish: from the index of release v1.1.0');
    expect(second.stdout).not.toContain('is now the latest release');
    const two = await published('v1.1.0');
    expect(two.index.serial).toBeGreaterThan(one.index.serial);
    expect(two.index.releases).toEqual(one.index.releases);
    expect(two.index.yanked).toEqual(one.index.yanked);
  }, 120_000);

  it('publishes no index while there are only prereleases, and says so', async () => {
    const only = join(work, 'prereleases');
    await writeSignedBundle(join(only, 'releases', 'v2.0.0-rc.1'), key, { version: '2.0.0-rc.1' });
    await writeFile(
      join(only, 'releases.json'),
      JSON.stringify([{ tag: 'v2.0.0-rc.1', prerelease: true, draft: false }]),
    );
    const state = join(work, 'empty.yaml');
    await writeFile(state, 'yanked: []\nrollouts: []\n');
    const before = await snapshotTree(only, { ignore: ['calls.log'] });
    const r = await publish(state, join(work, 'out-pre'), { FAKE_GH_DIR: only });
    expect(r.stdout).toContain('index-publish: no stable release yet: no index published');
    expect(r.stdout.trimEnd().split('\n').at(-1)).toBe('latest=');
    expect(diffTrees(before, await snapshotTree(only, { ignore: ['calls.log'] }))).toEqual([]);
  }, 60_000);

  it('changes nothing when GitHub cannot be asked', async () => {
    const state = join(work, 'state.yaml');
    await mkdir(join(work, 'out3'));
    // calls.log is the fake's own record of the calls.
    const before = await snapshotTree(github, { ignore: ['calls.log'] });
    const error = await publish(state, join(work, 'out3'), { FAKE_GH_FAIL: 'api' }).then(
      () => undefined,
      (e: { code: number; stderr: string }) => e,
    );
    expect(error?.stderr).toContain('HTTP 502: Bad Gateway');
    expect(error?.code).toBe(1);
    expect(diffTrees(before, await snapshotTree(github, { ignore: ['calls.log'] }))).toEqual([]);
    expect(await readdir(join(work, 'out3'))).toEqual([]);
  });
});
