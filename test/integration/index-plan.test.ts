/**
 * scripts/index-plan.mjs, which the index workflow runs through
 * scripts/index-publish.sh: the next index is planned from the state of the
 * repository (the releases and release-index.yaml), so the one run that
 * remains after GitHub cancelled a pending one still applies every change,
 * and a second run changes nothing but the signature. The planned steps run
 * here through the real `rick-bundle index`.
 */
import { execFile } from 'node:child_process';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseIndex } from '../../src/bundle/release-index.js';
import { makeTestKey, type TestKey, writeSignedBundle } from '../helpers/bundle-factory.js';
import { repoRoot } from '../helpers/host-tree.js';
import { makeTempDir, runBundleCli } from '../helpers/rick-bundle.js';

const run = promisify(execFile);
let work: string;
let key: TestKey;
let keyFile: string;

beforeAll(async () => {
  work = await makeTempDir('rick-index-plan-');
  key = await makeTestKey('rick index');
  keyFile = join(work, 'index-key.asc');
  await writeFile(keyFile, key.privateKeyArmored, { mode: 0o600 });
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

interface Release {
  tag: string;
  prerelease: boolean;
  draft: boolean;
  assets: string[];
}

/** Plans, then runs each step as index-publish.sh does; returns the steps and the last index. */
async function apply(
  name: string,
  previous: string | undefined,
  releases: Release[],
  state: string,
) {
  const dir = join(work, name);
  const releasesFile = join(work, `${name}.jsonl`);
  await writeFile(releasesFile, releases.map((r) => JSON.stringify(r)).join('\n'));
  const stateFile = join(work, `${name}.yaml`);
  await writeFile(stateFile, state);
  const args = [
    join(repoRoot, 'scripts/index-plan.mjs'),
    '--releases',
    releasesFile,
    '--state',
    stateFile,
    '--downloads',
    join(work, 'downloads'),
    '--out',
    join(dir, 'plan'),
    ...(previous ? ['--previous', previous] : []),
  ];
  await run('node', args);
  const stepFiles = (await readdir(join(dir, 'plan'))).filter((f) => f.endsWith('.args')).sort();
  const steps: string[][] = [];
  let last = previous;
  for (const [i, f] of stepFiles.entries()) {
    const stepArgs = (await readFile(join(dir, 'plan', f), 'utf8')).split('\n').slice(0, -1);
    steps.push(stepArgs);
    const out = join(dir, `step${i + 1}`);
    const r = await runBundleCli(
      [
        'index',
        '--key',
        keyFile,
        '--out',
        out,
        ...(last ? ['--previous', last] : ['--new']),
        ...stepArgs,
      ],
      { env: { PATH: process.env.PATH } },
    );
    expect(r.stderr, `step ${f}`).toBe('');
    last = join(out, 'index.json');
  }
  const target = (await readFile(join(dir, 'plan', 'target'), 'utf8')).trim();
  const index = parseIndex(await readFile(last as string, 'utf8'), 'index');
  return { steps, last: last as string, index, target };
}

const none = 'yanked: []\nrollouts: []\n';

describe('the index planned from the repository state', () => {
  it('applies a yank and a release made while one run was pending, then changes nothing', async () => {
    const downloads = join(work, 'downloads');
    await writeSignedBundle(join(downloads, 'v1.0.0'), key, { version: '1.0.0' });
    await writeSignedBundle(join(downloads, 'v1.1.0'), key, { version: '1.1.0' });
    await writeSignedBundle(join(downloads, 'v1.2.0-rc.1'), key, { version: '1.2.0-rc.1' });
    const v1: Release = {
      tag: 'v1.0.0',
      prerelease: false,
      draft: false,
      assets: ['demo-1.0.0.tgz', 'demo-1.0.0.tgz.sig'],
    };
    const first = await apply('first', undefined, [v1], none);
    expect(first.steps).toEqual([
      ['--add', join(downloads, 'v1.0.0/demo-1.0.0.tgz'), '--location', '../../download/v1.0.0/'],
      [],
    ]);
    expect(first.target).toBe('v1.0.0');

    // A yank is committed, then v1.1.0 and a prerelease are published: the
    // runs they started were cancelled while pending but one, which reads
    // the state as it is when it starts.
    const v11: Release = {
      tag: 'v1.1.0',
      prerelease: false,
      draft: false,
      assets: ['demo-1.1.0.tgz'],
    };
    const rc: Release = {
      tag: 'v1.2.0-rc.1',
      prerelease: true,
      draft: false,
      assets: ['demo-1.2.0-rc.1.tgz'],
    };
    const yank =
      'yanked:\n  - release: demo@1.0.0\n    reason: loses uploads on restart\nrollouts: []\n';
    const second = await apply('second', first.last, [rc, v11, v1], yank);
    expect(second.steps).toEqual([
      ['--add', join(downloads, 'v1.1.0/demo-1.1.0.tgz'), '--location', '../../download/v1.1.0/'],
      [
        '--add',
        join(downloads, 'v1.2.0-rc.1/demo-1.2.0-rc.1.tgz'),
        '--location',
        '../../download/v1.2.0-rc.1/',
        '--channel',
        'prerelease',
      ],
      ['--yank', 'demo@1.0.0', '--reason', 'loses uploads on restart'],
      [],
    ]);
    expect(second.target).toBe('v1.1.0');
    expect(second.index.releases.map((r) => `${r.version} ${r.channel}`)).toEqual([
      '1.0.0 stable',
      '1.1.0 stable',
      '1.2.0-rc.1 prerelease',
    ]);
    expect(second.index.yanked.map((y) => `${y.bundle}@${y.version}: ${y.reason}`)).toEqual([
      'demo@1.0.0: loses uploads on restart',
    ]);

    // Run again on the same state: only the signature and serial change.
    const third = await apply('third', second.last, [rc, v11, v1], yank);
    expect(third.steps).toEqual([[]]);
    expect(third.index.serial).toBeGreaterThan(second.index.serial);
    expect(third.index.releases).toEqual(second.index.releases);
    expect(third.index.yanked).toEqual(second.index.yanked);

    // A rollout counted from its own start, and the yank taken out of the file: lifted.
    const rollout =
      'yanked: []\nrollouts:\n  - release: 1.1.0\n    from: 2026-12-01T00:00:00Z\n    waves: 0h:5,24h:100\n';
    const fourth = await apply('fourth', third.last, [rc, v11, v1], rollout);
    expect(fourth.steps).toEqual([
      ['--unyank', 'demo@1.0.0'],
      [
        '--rollout',
        '1.1.0',
        '--waves',
        '0h:5,24h:100',
        '--issued',
        '2026-12-01T00:00:00Z',
        '--valid-for',
        '3650d',
      ],
      [],
    ]);
    expect(fourth.index.yanked).toEqual([]);
    expect(fourth.index.releases.find((r) => r.version === '1.1.0')?.rollout).toEqual([
      { at: '2026-12-01T00:00:00Z', percent: 5 },
      { at: '2026-12-02T00:00:00Z', percent: 100 },
    ]);
    // The last step signs with the current time: hosts never see the rollout step's expiry.
    expect(Date.parse(fourth.index.issued)).toBeGreaterThan(Date.parse('2026-12-02T00:00:00Z'));
    const fifth = await apply('fifth', fourth.last, [rc, v11, v1], rollout);
    expect(fifth.steps).toEqual([[]]);
  }, 120_000);

  it('refuses a release-index.yaml it cannot read, planning nothing', async () => {
    const stateFile = join(work, 'bad.yaml');
    await writeFile(stateFile, 'yanked:\n  - release: latest\nrollouts: []\nextra: 1\n');
    const releasesFile = join(work, 'none.jsonl');
    await writeFile(releasesFile, '');
    const out = join(work, 'bad-plan');
    const error = await run('node', [
      join(repoRoot, 'scripts/index-plan.mjs'),
      '--releases',
      releasesFile,
      '--state',
      stateFile,
      '--downloads',
      join(work, 'downloads'),
      '--out',
      out,
    ]).then(
      () => undefined,
      (e: { code: number; stderr: string }) => e,
    );
    expect(error?.stderr).toContain(
      'index-plan: release-index.yaml: unknown key extra; yanked.0.release must be VERSION or NAME@VERSION; yanked.0.reason must be one line saying what is wrong',
    );
    expect(error?.code).toBe(1);
    await expect(readdir(out)).rejects.toThrow(/ENOENT/);
  });
});
