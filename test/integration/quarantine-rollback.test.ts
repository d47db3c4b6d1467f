/**
 * Nothing stuck: quarantines keep their reason and `unquarantine` lifts
 * them; `rollback --dry-run` changes nothing; moving forward says so;
 * `--quarantine` says what it quarantined; a live generation whose files
 * drifted is left only with `--force`. systemctl is the fake of the process
 * edge; podman's quadlet judges the units where it is present.
 */
import { appendFile, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ExitCode } from '../../src/errors.js';
import { readState } from '../../src/host/state.js';
import { sampleFiles, writeSignedBundle } from '../helpers/bundle-factory.js';
import { FakeHost } from '../helpers/fake-host.js';
import { type HostTree, liveGeneration, runInstaller } from '../helpers/host-tree.js';
import { useHostTrees } from '../helpers/host-trees.js';
import { diffTrees, snapshotTree } from '../helpers/tree-snapshot.js';

const hosts = useHostTrees();
let tree: HostTree;

const stateFile = () => join(tree.root, 'var/lib/rick/state.json');

async function bundle(version: string) {
  return writeSignedBundle(tree.work, hosts.key, {
    version,
    files: sampleFiles('demo', `v${version}`),
  });
}

async function install(host: FakeHost, version: string) {
  const b = await bundle(version);
  const r = await runInstaller(host, [b.bundlePath, '--root', tree.root]);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return b;
}

const run = (host: FakeHost, ...args: string[]) =>
  runInstaller(host, [...args, '--root', tree.root]);

/** 1.0.0 live, 2.0.0 failed its gate (quarantined by the gate). */
async function gateFailed(): Promise<FakeHost> {
  tree = await hosts.make();
  const host = new FakeHost({ root: tree.root });
  await install(host, '1.0.0');
  host.failUnit('demo-app.service', 2);
  host.journalLines = ['demo-app[42]: cannot connect to /var/run/postgresql/.s.PGSQL.5432'];
  const v2 = await bundle('2.0.0');
  const failed = await runInstaller(host, [v2.bundlePath, '--root', tree.root]);
  expect(failed.code).toBe(ExitCode.rolledBack);
  host.reset();
  return host;
}

describe('quarantine reasons and unquarantine', () => {
  it('status and status --json give a failed health gate as the reason', async () => {
    const host = await gateFailed();
    const text = await run(host, 'status');
    expect(text.stdout).toMatch(
      /^ {2}quarantined 2\.0\.0 since \S+: it failed its health gate on this host \(demo-app\.service failed/m,
    );
    const json = JSON.parse((await run(host, 'status', '--json')).stdout);
    expect(json.bundles[0].quarantined).toEqual(['2.0.0']);
    expect(json.bundles[0].quarantines).toEqual([
      expect.objectContaining({
        version: '2.0.0',
        reason: 'health-gate',
        detail: expect.stringContaining('demo-app.service failed'),
      }),
    ]);
  });

  it('rollback --quarantine says what it quarantined, and status gives the operator as the reason', async () => {
    tree = await hosts.make();
    const host = new FakeHost({ root: tree.root });
    await install(host, '1.0.0');
    await install(host, '2.0.0');
    const r = await run(host, 'rollback', '--quarantine');
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('quarantined demo 2.0.0\n');
    expect(r.stdout).toContain('rolled back from generation 2 to 1');
    const text = await run(host, 'status');
    // The fake clock moves with each gate's settle period: the time is the quarantine's own.
    expect(text.stdout).toMatch(
      /quarantined 2\.0\.0 since 2026-01-01T\d\d:\d\d:\d\d\.\d{3}Z: the operator quarantined it \(rollback --quarantine from generation 2 to 1\)/,
    );
    const json = JSON.parse((await run(host, 'status', '--json')).stdout);
    expect(json.bundles[0].quarantines).toEqual([
      {
        version: '2.0.0',
        reason: 'operator',
        time: expect.any(String),
        detail: 'rollback --quarantine from generation 2 to 1',
      },
    ]);
    // The refusal of an install gives the same reason and the pasteable lift.
    const again = await run(host, (await bundle('2.0.0')).bundlePath);
    expect(again.code).toBe(ExitCode.versionPolicy);
    expect(again.stderr).toContain(
      'error VERSION_QUARANTINED: version 2.0.0 is quarantined: the operator quarantined it (rollback --quarantine)',
    );
    expect(again.stderr).toContain('rick-install unquarantine demo@2.0.0');
  });

  it('rollback --quarantine to a generation of the same versions says there was nothing to quarantine', async () => {
    tree = await hosts.make();
    const host = new FakeHost({ root: tree.root });
    await install(host, '1.0.0');
    const other = await writeSignedBundle(tree.work, hosts.key, {
      name: 'other',
      version: '1.0.0',
      files: sampleFiles('other'),
    });
    await writeFile(
      join(tree.root, 'etc/rick/policy.d/other.conf'),
      'GROUPS=other postgres-clients\nUSERS=other\n',
    );
    await writeFile(join(tree.root, 'etc/rick/secrets/other.env'), 'db_password=x\n', {
      mode: 0o600,
    });
    expect((await run(host, other.bundlePath)).code).toBe(0);
    // Generation 2 holds demo 1.0.0 and other 1.0.0; back to 1 leaves only other behind.
    const back = await run(host, 'rollback', '--quarantine');
    expect(back.stdout).toContain('quarantined other 1.0.0\n');
    // Forward to 2 and back to 1 again would quarantine other once more; from 1 to 2 nothing is left behind.
    const forward = await run(host, 'rollback', '--to', '2', '--quarantine');
    expect(forward.stderr).toBe('');
    expect(forward.stdout).toContain(
      '--quarantine: nothing to quarantine, the generation returned to runs the same versions',
    );
    expect(forward.stdout).toContain('switched from generation 1 to 2');
  });

  it('unquarantine lifts a failed gate’s quarantine, and an install takes the version again', async () => {
    const host = await gateFailed();
    const lifted = await run(host, 'unquarantine', 'demo@2.0.0');
    expect(lifted.stderr).toBe('');
    expect(lifted.code).toBe(0);
    expect(lifted.stdout).toMatch(
      /^lifted the quarantine of demo 2\.0\.0 \(it failed its health gate on this host \(demo-app\.service failed.*\); an install or the update timer may take it again\n$/,
    );
    const state = await readState(stateFile());
    expect(state.bundles.demo?.quarantined).toEqual([]);
    expect(state.bundles.demo?.quarantineReasons).toBeUndefined();
    // The database is back: the same version installs.
    const again = await run(host, (await bundle('2.0.0')).bundlePath);
    expect(again.stderr).toBe('');
    expect(again.code).toBe(0);
    expect(await liveGeneration(tree.root)).toBe('generations/3');
    expect((await readState(stateFile())).bundles.demo?.installed).toBe('2.0.0');
  });

  it('unquarantine of a version that is not quarantined is refused (exit 2), nothing changed', async () => {
    const host = await gateFailed();
    const before = await snapshotTree(tree.root);
    const r = await run(host, 'unquarantine', 'demo@1.0.0');
    expect(r.code).toBe(ExitCode.usage);
    expect(r.stderr).toContain(
      'error USAGE: demo 1.0.0 is not quarantined on this host; nothing was changed',
    );
    expect(r.stderr).toContain('quarantined versions of demo: 2.0.0');
    const bad = await run(host, 'unquarantine', 'demo-2.0.0');
    expect(bad.code).toBe(ExitCode.usage);
    expect(bad.stderr).toContain(
      'error USAGE: unquarantine takes NAME@VERSION, such as authentik@1.2.0, not "demo-2.0.0"',
    );
    expect(host.calls).toEqual([]);
    expect(diffTrees(before, await snapshotTree(tree.root))).toEqual([]);
  });

  it('a state.json written before reasons were kept still loads; its quarantine reads as recorded before reasons', async () => {
    const host = await gateFailed();
    const state = JSON.parse(await readFile(stateFile(), 'utf8'));
    delete state.bundles.demo.quarantineReasons;
    await writeFile(stateFile(), `${JSON.stringify(state, null, 2)}\n`);
    const text = await run(host, 'status');
    expect(text.stderr).toBe('');
    expect(text.stdout).toContain(
      '  quarantined 2.0.0: recorded before rick kept reasons (a failed health gate or rollback --quarantine)',
    );
    const json = JSON.parse((await run(host, 'status', '--json')).stdout);
    expect(json.bundles[0].quarantines).toEqual([{ version: '2.0.0', reason: 'unknown' }]);
    const lifted = await run(host, 'unquarantine', 'demo@2.0.0');
    expect(lifted.code).toBe(0);
    expect((await readState(stateFile())).bundles.demo?.quarantined).toEqual([]);
  });
});

describe('rollback: dry run, direction, drift of the live generation', () => {
  it('rollback --dry-run prints the plan and changes nothing (no systemctl call)', async () => {
    tree = await hosts.make();
    const host = new FakeHost({ root: tree.root });
    await install(host, '1.0.0');
    await install(host, '2.0.0');
    host.reset();
    const before = await snapshotTree(tree.root);
    for (const args of [[], ['--to', '1'], ['--quarantine']]) {
      const r = await run(host, 'rollback', '--dry-run', ...args);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(
        'dry run: would roll back from generation 2 to 1; nothing was changed',
      );
      expect(r.stdout).toContain('demo-app.service');
      if (args[0] === '--quarantine') expect(r.stdout).toContain('would quarantine demo 2.0.0');
    }
    expect(host.calls).toEqual([]);
    expect(diffTrees(before, await snapshotTree(tree.root))).toEqual([]);
  });

  it('rollback --dry-run on a host whose state.json contradicts it is refused, nothing changed', async () => {
    tree = await hosts.make();
    const host = new FakeHost({ root: tree.root });
    await install(host, '1.0.0');
    await install(host, '2.0.0');
    const state = JSON.parse(await readFile(stateFile(), 'utf8'));
    state.live = 1;
    await writeFile(stateFile(), `${JSON.stringify(state, null, 2)}\n`);
    host.reset();
    const before = await snapshotTree(tree.root);
    const r = await run(host, 'rollback', '--dry-run', '--to', '1');
    expect(r.code).toBe(ExitCode.usage);
    expect(r.stderr).toContain(
      'error USAGE: rollback --dry-run plans only on a settled host: current points at generation 2, but state.json confirms generation 1',
    );
    expect(r.stderr).toContain('nothing was changed');
    expect(host.calls).toEqual([]);
    expect(diffTrees(before, await snapshotTree(tree.root))).toEqual([]);
  });

  it('rollback --to a newer generation says switched to, not rolled back', async () => {
    tree = await hosts.make();
    const host = new FakeHost({ root: tree.root });
    await install(host, '1.0.0');
    await install(host, '2.0.0');
    expect((await run(host, 'rollback')).stdout).toContain('rolled back from generation 2 to 1');
    const dry = await run(host, 'rollback', '--to', '2', '--dry-run');
    expect(dry.stdout).toContain('dry run: would switch from generation 1 to 2');
    const forward = await run(host, 'rollback', '--to', '2');
    expect(forward.stderr).toBe('');
    expect(forward.stdout).toContain('switched from generation 1 to 2');
    expect(forward.stdout).not.toContain('rolled back');
    expect(await liveGeneration(tree.root)).toBe('generations/2');
  });

  it('rollback from a live generation whose files drifted is refused naming the file, nothing changed; --force goes on', async () => {
    tree = await hosts.make();
    const host = new FakeHost({ root: tree.root });
    await install(host, '1.0.0');
    await install(host, '2.0.0');
    const envFile = join(tree.root, 'var/lib/rick/generations/2/bundles/demo/env/demo.env');
    await appendFile(envFile, 'EDITED=1\n');
    host.reset();
    const before = await snapshotTree(tree.root);
    for (const args of [[], ['--dry-run'], ['--to', '1']]) {
      const r = await run(host, 'rollback', ...args);
      expect(r.code).toBe(ExitCode.drift);
      expect(r.stderr).toContain(
        `error DRIFT: live generation 2 differs from what it recorded: ${envFile} (content changed since generation 2 was written); nothing was changed`,
      );
      expect(r.stderr).toContain('pass --force to roll back anyway');
    }
    expect(host.calls).toEqual([]);
    expect(diffTrees(before, await snapshotTree(tree.root))).toEqual([]);
    const forced = await run(host, 'rollback', '--force');
    expect(forced.stderr).toBe('');
    expect(forced.code).toBe(0);
    expect(forced.stdout).toContain(
      `warning: live generation 2 differs from what it recorded: ${envFile} (content changed since generation 2 was written); going on (--force)`,
    );
    expect(await liveGeneration(tree.root)).toBe('generations/1');
  });
});
