/**
 * Retention and rollback targets: what pruning keeps after failed releases,
 * where a plain `rollback` goes, a prune cut between its rename and its
 * deletion, and the check that refuses to make a changed generation live
 * (by `rollback --to`, plain `rollback`, and the recovery every install and
 * rollback starts with).
 */
import { randomBytes } from 'node:crypto';
import { appendFile, mkdtemp, readdir, readFile, rm, rmdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ExitCode } from '../../src/errors.js';
import { readState } from '../../src/host/state.js';
import { realCommandRunner } from '../../src/io/exec.js';
import { sampleFiles, writeSignedBundle } from '../helpers/bundle-factory.js';
import { builtCli, builtInstaller, requireBuiltCli, runCli } from '../helpers/cli-process.js';
import { FakeHost } from '../helpers/fake-host.js';
import {
  type HostTree,
  liveGeneration,
  quadletPath,
  readLive,
  runInstaller,
} from '../helpers/host-tree.js';
import { useHostTrees } from '../helpers/host-trees.js';
import { diffTrees, snapshotTree } from '../helpers/tree-snapshot.js';

const hosts = useHostTrees();
let tree: HostTree;

const stateOf = (root: string) => readState(join(root, 'var/lib/rick/state.json'));
const generationsOf = async (root: string) =>
  (await readdir(join(root, 'var/lib/rick/generations'))).sort();
const cliEnv = quadletPath ? { RICK_QUADLET: quadletPath } : {};

async function bundle(version: string, marker: string) {
  return writeSignedBundle(tree.work, hosts.key, { version, files: sampleFiles('demo', marker) });
}

/** Installs and expects success. */
async function install(host: FakeHost, version: string, extra: string[] = []) {
  const b = await bundle(version, `v${version}`);
  const r = await runInstaller(host, [b.bundlePath, '--root', tree.root, ...extra]);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return r;
}

async function rollback(host: FakeHost, ...args: string[]) {
  return runInstaller(host, ['rollback', ...args, '--root', tree.root]);
}

describe('retention', () => {
  it('retention after failed releases: keeps the last confirmed-live generation, prunes the failed ones first, and rollback still works', async () => {
    tree = await hosts.make();
    const host = new FakeHost({ root: tree.root });
    await install(host, '1.0.0', ['--keep', '2']);
    for (const [version, generation] of [
      ['2.0.0', 2],
      ['3.0.0', 3],
    ] as const) {
      host.failUnit('demo-app.service', generation);
      const b = await bundle(version, `v${version}`);
      const r = await runInstaller(host, [b.bundlePath, '--root', tree.root]);
      expect(r.code).toBe(ExitCode.rolledBack);
      expect(r.stderr).toContain(`demo ${version} failed its health gate`);
    }
    host.failingUnits.clear();
    expect(await generationsOf(tree.root)).toEqual(['1', '2', '3']);

    // By number, --keep 2 kept 3 and 4: two failed releases had pushed out
    // generation 1, the only one that ever ran before 4.
    const r = await install(host, '4.0.0');
    expect(r.stdout).toContain('pruned generation(s) 2, 3');
    expect(await generationsOf(tree.root)).toEqual(['1', '4']);

    host.reset();
    const back = await rollback(host);
    expect(back.stderr).toBe('');
    expect(back.code).toBe(0);
    expect(back.stdout).toContain('rolled back from generation 4 to 1');
    expect(await readLive(tree.root, 'bundles/demo/env/demo.env')).toContain('MARKER=v1.0.0');
    expect((await stateOf(tree.root)).live).toBe(1);
  });

  it('a prune cut after the rename leaves no numbered directory, and the next run removes the renamed one', async () => {
    requireBuiltCli();
    tree = await hosts.make();
    const v1 = await bundle('1.0.0', 'v1');
    const v2 = await bundle('2.0.0', 'v2');
    const first = await runCli([v1.bundlePath, '--root', tree.root, '--keep', '1'], cliEnv);
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);

    const cut = await runCli([v2.bundlePath, '--root', tree.root], {
      ...cliEnv,
      RICK_FAULT_KILL_AT: 'prune-renamed',
    });
    expect(cut.signal).toBe('SIGKILL');
    // Generation 1 is out of the numbered names before any of it is deleted.
    expect(await generationsOf(tree.root)).toEqual(['1.pruning', '2']);
    expect(await liveGeneration(tree.root)).toBe('generations/2');
    expect((await stateOf(tree.root)).live).toBe(2);
    // The next run removes it, and nothing can name it: it is no generation to rick.
    const next = await runCli(['rollback', '--to', '1', '--root', tree.root], cliEnv);
    expect(next.stdout).toContain(
      `removed ${join(tree.root, 'var/lib/rick/generations/1.pruning')} left by an interrupted run`,
    );
    expect(next.code).toBe(ExitCode.usage);
    expect(next.stderr).toContain('error USAGE: generation 1 is not on this host');
    expect(await generationsOf(tree.root)).toEqual(['2']);
  });
});

describe('plain rollback', () => {
  it('plain rollback skips a quarantined version and goes to the generation live before the current one', async () => {
    tree = await hosts.make();
    const host = new FakeHost({ root: tree.root });
    await install(host, '1.0.0');
    await install(host, '2.0.0');
    // 2.0.0 is rolled back from and quarantined, then brought back by hand.
    expect((await rollback(host, '--quarantine')).code).toBe(0);
    expect((await rollback(host, '--to', '2')).code).toBe(0);
    await install(host, '3.0.0');
    expect((await stateOf(tree.root)).bundles.demo?.quarantined).toEqual(['2.0.0']);

    host.reset();
    const r = await rollback(host);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    // Generation 2 was live before 3, but holds the quarantined 2.0.0.
    expect(r.stdout).toContain('passed over generation 2 (demo 2.0.0 quarantined)');
    expect(r.stdout).toContain('rolled back from generation 3 to 1');
    expect(await liveGeneration(tree.root)).toBe('generations/1');
  });

  it('plain rollback goes to the generation that was live before, not the highest-numbered one below', async () => {
    tree = await hosts.make();
    const host = new FakeHost({ root: tree.root });
    await install(host, '1.0.0');
    await install(host, '2.0.0');
    await install(host, '3.0.0');
    expect((await rollback(host, '--to', '1')).code).toBe(0);
    await install(host, '4.0.0');
    // history: 1, 2, 3 installed; rollback to 1; 4 installed. 3 is on disk
    // and below 4, but 1 is what ran before 4.
    expect(await generationsOf(tree.root)).toContain('3');

    host.reset();
    const r = await rollback(host);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('rolled back from generation 4 to 1');
    expect(await readLive(tree.root, 'bundles/demo/env/demo.env')).toContain('MARKER=v1.0.0');

    // Again: back from 1, never forward to a newer generation.
    const again = await rollback(host);
    expect(again.code).toBe(ExitCode.usage);
    expect(again.stderr).toContain(
      'error USAGE: no generation that was live before generation 1 can be returned to',
    );
  });
});

describe('a changed generation is never made live', () => {
  const appFile = (n: number) =>
    join(tree.root, `var/lib/rick/generations/${n}/quadlet/demo/demo-app.container`);
  const envFile = (n: number) =>
    join(tree.root, `var/lib/rick/generations/${n}/bundles/demo/env/demo.env`);

  it('rollback --to a generation whose file was altered is refused naming the file, nothing changed', async () => {
    tree = await hosts.make();
    const host = new FakeHost({ root: tree.root });
    await install(host, '1.0.0');
    await install(host, '2.0.0');
    await appendFile(envFile(1), 'EXTRA=1\n');
    host.reset();
    const snap = await snapshotTree(tree.root);
    for (const args of [['--to', '1'], []]) {
      const r = await rollback(host, ...args);
      expect(r.code).toBe(ExitCode.drift);
      expect(r.stderr).toContain(
        `error DRIFT: generation 1 differs from what it recorded, so it is not made live: ${envFile(1)} (content changed since generation 1 was written)`,
      );
      expect(r.stderr).not.toContain('    at ');
    }
    expect(host.serviceCalls()).toEqual([]);
    expect(diffTrees(snap, await snapshotTree(tree.root))).toEqual([]);
  });

  it('rollback --to a generation whose file was removed is refused naming the file, nothing changed', async () => {
    tree = await hosts.make();
    const host = new FakeHost({ root: tree.root });
    await install(host, '1.0.0');
    await install(host, '2.0.0');
    await rm(appFile(1));
    host.reset();
    const snap = await snapshotTree(tree.root);
    const r = await rollback(host, '--to', '1');
    expect(r.code).toBe(ExitCode.drift);
    expect(r.stderr).toContain(
      `error DRIFT: generation 1 differs from what it recorded, so it is not made live: ${appFile(1)} (missing)`,
    );
    expect(host.serviceCalls()).toEqual([]);
    expect(diffTrees(snap, await snapshotTree(tree.root))).toEqual([]);

    // A generation whose record is gone (an older rick's deletion cut short).
    const record = join(tree.root, 'var/lib/rick/generations/1/generation.json');
    await rm(record);
    const snap2 = await snapshotTree(tree.root);
    const gone = await rollback(host, '--to', '1');
    expect(gone.code).toBe(ExitCode.drift);
    expect(gone.stderr).toContain(
      `error DRIFT: generation 1 differs from what it recorded, so it is not made live: ${join(tree.root, 'var/lib/rick/generations/1')} (generation 1 is unreadable: ${record} is missing)`,
    );
    expect(host.serviceCalls()).toEqual([]);
    expect(diffTrees(snap2, await snapshotTree(tree.root))).toEqual([]);
  });

  it('recovery does not restore a changed generation: install and rollback refuse naming the file, nothing changed, and rollback --to keeps what is live', async () => {
    requireBuiltCli();
    tree = await hosts.make();
    const v1 = await bundle('1.0.0', 'v1');
    const v2 = await bundle('2.0.0', 'v2');
    expect((await runCli([v1.bundlePath, '--root', tree.root], cliEnv)).code).toBe(0);
    const cut = await runCli([v2.bundlePath, '--root', tree.root], {
      ...cliEnv,
      RICK_FAULT_KILL_AT: 'flipped',
    });
    expect(cut.signal).toBe('SIGKILL');
    expect(await liveGeneration(tree.root)).toBe('generations/2');
    await appendFile(envFile(1), 'EXTRA=1\n');
    // The killed run's lock file is taken over and released by the next run.
    const unlocked = { ignore: ['var/lib/rick/lock'] };
    const snap = await snapshotTree(tree.root, unlocked);

    for (const args of [[v2.bundlePath], ['rollback']]) {
      const r = await runCli([...args, '--root', tree.root], cliEnv);
      expect(r.code).toBe(ExitCode.drift);
      expect(r.stderr).toContain(
        `error DRIFT: generation 1 differs from what it recorded, so it is not made live: ${envFile(1)} (content changed since generation 1 was written)`,
      );
      expect(r.stderr).toContain('rick-install rollback --to 2');
      expect(diffTrees(snap, await snapshotTree(tree.root, unlocked))).toEqual([]);
    }

    const keep = await runCli(['rollback', '--to', '2', '--root', tree.root], cliEnv);
    expect(keep.stderr).toBe('');
    expect(keep.code).toBe(0);
    expect(keep.stdout).toContain('recorded generation 2, which is live, as confirmed');
    expect((await stateOf(tree.root)).live).toBe(2);
  });
});

describe('signature verification with a full TMPDIR', () => {
  const root = process.getuid?.() === 0;
  it.skipIf(!root)(
    'ENOSPC in TMPDIR during verification is error IO_ERROR naming TMPDIR, no stack trace, exit 1, nothing changed (needs root to mount a tmpfs)',
    async () => {
      requireBuiltCli();
      tree = await hosts.make();
      const small = await mkdtemp(join(tmpdir(), 'rick-small-tmp-'));
      const mounted = await realCommandRunner.run('mount', [
        '-t',
        'tmpfs',
        '-o',
        'size=64k',
        'tmpfs',
        small,
      ]);
      expect(mounted.code, mounted.stderr).toBe(0);
      try {
        // Incompressible, so the bundle itself is larger than the tmpfs.
        const files = sampleFiles('demo', 'v1');
        files.push({
          path: 'env/blob.env',
          content: `BLOB=${randomBytes(192 * 1024).toString('base64')}\n`,
          mode: 0o600,
        });
        const b = await writeSignedBundle(tree.work, hosts.key, { version: '1.0.0', files });
        expect((await readFile(b.bundlePath)).length).toBeGreaterThan(64 * 1024);
        const snap = await snapshotTree(tree.root);

        // The program and the single-file installer, which starts the check
        // before it has loaded the rest of itself.
        for (const program of [builtCli, builtInstaller]) {
          const r = await runCli(
            [b.bundlePath, '--root', tree.root],
            { ...cliEnv, TMPDIR: small },
            program,
          );
          expect(r.code).toBe(1);
          expect(r.stderr).toContain(
            `error IO_ERROR: cannot write the bundle to the temporary directory ${small} (TMPDIR) to check its signature: no space left on device`,
          );
          expect(r.stderr).not.toContain('INTERNAL');
          expect(r.stderr).not.toContain('    at ');
          expect(diffTrees(snap, await snapshotTree(tree.root))).toEqual([]);
          // Nothing is left in the temporary directory either.
          expect(await readdir(small)).toEqual([]);
        }
      } finally {
        await realCommandRunner.run('umount', [small]);
        await rmdir(small);
      }
    },
  );
});
