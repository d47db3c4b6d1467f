/**
 * Interrupted runs on a host with a service manager (the fake one of
 * test/helpers/fake-host.ts): whoever started the run, and wherever it died
 * or was stopped, the next run (any run, the update tick with nothing new
 * included) completes it. When the intent record shows that the new
 * generation went live, the previous generation's services are restored
 * (daemon-reload, its restart plan, its gate) before the new generation is
 * removed, even when `current` is already back.
 *
 * What a SIGKILL leaves is written here as the record and state.json it
 * leaves (as crash-recovery-online.test.ts does); the kills themselves, with
 * the built installer, are in crash-consistency.test.ts and
 * stop-signals.test.ts.
 */
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Manifest } from '../../src/bundle/manifest.js';
import { ExitCode } from '../../src/errors.js';
import { flipCurrent } from '../../src/host/generations.js';
import { clearInterruption, noteSignal } from '../../src/host/interrupt.js';
import { hostPaths } from '../../src/host/paths.js';
import { markIntent, writeIntent } from '../../src/host/recovery.js';
import { readState } from '../../src/host/state.js';
import { sampleFiles, writeSignedBundle } from '../helpers/bundle-factory.js';
import { FakeHost } from '../helpers/fake-host.js';
import { type HostTree, liveGeneration, runInstaller } from '../helpers/host-tree.js';
import { useHostTrees } from '../helpers/host-trees.js';

const hosts = useHostTrees();
let tree: HostTree | undefined;
afterEach(() => {
  clearInterruption();
  tree = undefined;
});

const HEALTH = 'http://127.0.0.1:9000/-/health';
/** Every service answers one loopback check: its calls show that a gate ran. */
const withCheck = (m: Record<string, unknown>): Record<string, unknown> => ({
  ...m,
  services: (m.services as Manifest['services']).map((s) => ({
    ...s,
    checks: [{ type: 'http' as const, url: HEALTH, timeoutSec: 10, intervalSec: 1 }],
  })),
});

/**
 * The fake, with its `systemctl restart` noting whether generation 2 is
 * still on disk when it is called (recovery removes it only afterwards),
 * and running `beforeRestart` first.
 */
function watched(fake: FakeHost, beforeRestart: () => void = () => {}) {
  const systemctl = fake.systemctl!;
  const generation2OnDisk: boolean[] = [];
  const host = Object.create(fake) as FakeHost;
  Object.defineProperty(host, 'systemctl', {
    value: {
      ...systemctl,
      restart: async (units: string[]) => {
        generation2OnDisk.push(existsSync(join(fake.root, 'var/lib/rick/generations/2')));
        beforeRestart();
        await systemctl.restart(units);
      },
    },
  });
  return { host, generation2OnDisk };
}

/** demo 1.0.0 installed (generation 1), demo 2.0.0 signed beside it. */
async function installed() {
  tree = await hosts.make();
  const host = new FakeHost({ root: tree.root });
  const v1 = await writeSignedBundle(tree.work, hosts.key, {
    version: '1.0.0',
    files: sampleFiles('demo', 'v1'),
    manifestPatch: withCheck,
  });
  const v2 = await writeSignedBundle(tree.work, hosts.key, {
    version: '2.0.0',
    files: sampleFiles('demo', 'v2'),
    manifestPatch: withCheck,
  });
  expect((await runInstaller(host, [v1.bundlePath, '--root', tree.root])).code).toBe(0);
  const stateFile = join(tree.root, 'var/lib/rick/state.json');
  return { root: tree.root, host, v1: v1.bundlePath, v2: v2.bundlePath, stateFile };
}

/**
 * What a run installing demo 2.0.0, killed at the given point, leaves:
 * generation 2 went live (its units loaded, demo-pod restarted on them),
 * state.json still confirming generation 1, the run's intent record with
 * the given phase, and `current` where that point left it.
 */
async function killedUpgrade(
  setup: Awaited<ReturnType<typeof installed>>,
  at: { current: 1 | 2; phase: 'prepared' | 'live' | 'restoring' | 'none' },
): Promise<void> {
  const { root, host, v2, stateFile } = setup;
  const confirmed = await readFile(stateFile, 'utf8');
  expect((await runInstaller(host, [v2, '--root', root])).code).toBe(0);
  await writeFile(stateFile, confirmed);
  const paths = hostPaths(root);
  await writeIntent(paths, {
    operation: 'install',
    reason: 'install demo 2.0.0',
    from: 1,
    to: 2,
    created: true,
    time: '2026-01-01T00:00:00.000Z',
  });
  if (at.phase === 'live' || at.phase === 'restoring') await markIntent(paths, at.phase);
  if (at.phase === 'none') {
    // A record written by an older rick, which had no phase.
    const record = JSON.parse(await readFile(paths.intentFile, 'utf8'));
    delete record.phase;
    await writeFile(paths.intentFile, JSON.stringify(record));
  }
  if (at.current === 1) await flipCurrent(paths, 1);
  host.reset();
}

describe('the next run restores the previous generation before it removes the new one', () => {
  it('killed after the flip (current at 2): daemon-reload, restart, gate of generation 1, then 2 goes', async () => {
    const s = await installed();
    await killedUpgrade(s, { current: 2, phase: 'live' });
    const { host, generation2OnDisk } = watched(s.host);
    // Any run: here the same version again, which has nothing to install.
    const r = await runInstaller(host, [s.v1, '--root', s.root]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(
      'generation 2 went live in a run that did not finish (install demo 2.0.0): restoring 1',
    );
    expect(s.host.serviceCalls()).toEqual([
      { op: 'daemon-reload' },
      { op: 'restart', units: ['demo-pod.service'] },
    ]);
    expect(s.host.calls.some((c) => c.op === 'http' && c.url === HEALTH)).toBe(true);
    expect(generation2OnDisk).toEqual([true]);
    expect(existsSync(join(s.root, 'var/lib/rick/generations/2'))).toBe(false);
    expect(await liveGeneration(s.root)).toBe('generations/1');
    expect(s.host.active.has('demo-pod.service')).toBe(true);
  });

  for (const phase of ['live', 'restoring', 'none'] as const) {
    const what =
      phase === 'live'
        ? 'killed after the flip back, before the record said so'
        : phase === 'restoring'
          ? 'killed after the flip back, before its restarts and gate'
          : 'a record of an older rick, without a phase, after the flip back';
    it(`${what}: generation 1's services are restored before 2 is removed`, async () => {
      const s = await installed();
      await killedUpgrade(s, { current: 1, phase });
      const status = await runInstaller(s.host, ['status', '--root', s.root]);
      expect(status.stdout).toContain(
        'generation 2 went live in an interrupted run (install demo 2.0.0) and current is back at 1, but its services may not be; the next run (the update timer',
      );
      const { host, generation2OnDisk } = watched(s.host);
      const r = await runInstaller(host, [s.v1, '--root', s.root]);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(
        'generation 2 went live in a run that did not finish (install demo 2.0.0); current is back at 1, but its services may not be: restoring them (daemon-reload, restarts, health gate) before anything is removed',
      );
      expect(s.host.serviceCalls()).toEqual([
        { op: 'daemon-reload' },
        { op: 'restart', units: ['demo-pod.service'] },
      ]);
      expect(s.host.calls.some((c) => c.op === 'http' && c.url === HEALTH)).toBe(true);
      expect(generation2OnDisk).toEqual([true]);
      expect(existsSync(join(s.root, 'var/lib/rick/generations/2'))).toBe(false);
      expect(await liveGeneration(s.root)).toBe('generations/1');
      const state = await readState(s.stateFile);
      expect(state.history.map((h) => `${h.generation} ${h.outcome}`)).toEqual([
        '1 installed',
        '2 recovered',
      ]);
      const after = await runInstaller(s.host, ['status', '--root', s.root]);
      expect(after.stdout).not.toContain('warning');
    });
  }

  it('killed before the flip (phase prepared): nothing restarted, generation 2 removed', async () => {
    const s = await installed();
    await killedUpgrade(s, { current: 1, phase: 'prepared' });
    const r = await runInstaller(s.host, [s.v1, '--root', s.root]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(
      'removed generation 2, written by an interrupted run (install demo 2.0.0) and never confirmed',
    );
    expect(s.host.serviceCalls()).toEqual([]);
    expect(existsSync(join(s.root, 'var/lib/rick/generations/2'))).toBe(false);
  });

  it('a rollback that failed (daemon-reload refused): the next run redoes it, then records it', async () => {
    const s = await installed();
    // Generation 2's pod never starts; the restore's daemon-reload (the
    // second of the run) fails.
    s.host.failingUnits.set('demo-pod.service', 2);
    s.host.reset();
    s.host.failDaemonReloadFrom = 2;
    const failed = await runInstaller(s.host, [s.v2, '--root', s.root]);
    expect(failed.code).toBe(ExitCode.rollbackFailed);
    expect(failed.stderr).toContain(
      'restoring generation 1 failed too: fake: daemon-reload failed',
    );
    expect(await liveGeneration(s.root)).toBe('generations/1');
    expect(JSON.parse(await readFile(hostPaths(s.root).intentFile, 'utf8'))).toMatchObject({
      from: 1,
      to: 2,
      phase: 'restoring',
    });
    // The pod runs nothing: it failed on generation 2's units, still loaded.
    expect(s.host.active.has('demo-pod.service')).toBe(false);

    s.host.failDaemonReloadFrom = undefined;
    s.host.reset();
    const { host, generation2OnDisk } = watched(s.host);
    const r = await runInstaller(host, [s.v1, '--root', s.root]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('current is back at 1, but its services may not be: restoring them');
    expect(s.host.serviceCalls()).toEqual([
      { op: 'daemon-reload' },
      { op: 'restart', units: ['demo-pod.service'] },
    ]);
    expect(s.host.calls.some((c) => c.op === 'http' && c.url === HEALTH)).toBe(true);
    expect(generation2OnDisk).toEqual([true]);
    expect(s.host.active.has('demo-pod.service')).toBe(true);
    expect(existsSync(hostPaths(s.root).intentFile)).toBe(false);
    // Its outcome was recorded (rollback-failed): generation 2 stays on disk, quarantined.
    const state = await readState(s.stateFile);
    expect(state.bundles.demo).toMatchObject({ installed: '1.0.0', quarantined: ['2.0.0'] });
    expect(state.history.map((h) => `${h.generation} ${h.outcome}`)).toEqual([
      '1 installed',
      '2 rollback-failed',
      '2 recovered',
    ]);
  });
});

describe('a stop signal while the services restart', () => {
  it('activation turns into a restore of generation 1: exit 16, not quarantined, generation 2 removed', async () => {
    const s = await installed();
    s.host.reset();
    // The signal arrives while `systemctl restart` of generation 2 runs.
    const { host } = watched(s.host, () => {
      noteSignal('SIGTERM');
    });
    const r = await runInstaller(host, [s.v2, '--root', s.root]);
    expect(r.code).toBe(ExitCode.interrupted);
    expect(r.stderr).toContain(
      'error INTERRUPTED: stopped by SIGTERM at step health-checked after generation 2 went live; generation 1 is live again, its services restored',
    );
    // The run stops at the boundary after the restarts: the gate is not waited for.
    expect(r.stdout).not.toContain('health gate failed');
    expect(r.stdout).toContain(
      'stopped by SIGTERM at step health-checked, after generation 2 went live: restoring generation 1 before stopping',
    );
    expect(s.host.serviceCalls()).toEqual([
      { op: 'daemon-reload' },
      { op: 'restart', units: ['demo-pod.service'] },
      { op: 'daemon-reload' },
      { op: 'restart', units: ['demo-pod.service'] },
    ]);
    expect(await liveGeneration(s.root)).toBe('generations/1');
    expect(existsSync(join(s.root, 'var/lib/rick/generations/2'))).toBe(false);
    expect(existsSync(hostPaths(s.root).intentFile)).toBe(false);
    const state = await readState(s.stateFile);
    expect(state.bundles.demo).toMatchObject({ installed: '1.0.0', quarantined: [] });
    expect(state.history.at(-1)).toMatchObject({
      generation: 2,
      outcome: 'recovered',
      detail: 'stopped by SIGTERM at step health-checked; generation 1 restored',
    });
  });

  it('a rollback stopped the same way puts back the generation it was leaving: exit 16', async () => {
    const s = await installed();
    expect((await runInstaller(s.host, [s.v2, '--root', s.root])).code).toBe(0);
    s.host.reset();
    const { host } = watched(s.host, () => {
      noteSignal('SIGHUP');
    });
    const r = await runInstaller(host, ['rollback', '--root', s.root]);
    expect(r.code).toBe(ExitCode.interrupted);
    expect(r.stderr).toContain(
      'error INTERRUPTED: stopped by SIGHUP at step health-checked after generation 1 went live; generation 2 is live again, its services restored',
    );
    expect(s.host.serviceCalls()).toEqual([
      { op: 'daemon-reload' },
      { op: 'restart', units: ['demo-pod.service'] },
      { op: 'daemon-reload' },
      { op: 'restart', units: ['demo-pod.service'] },
    ]);
    expect(await liveGeneration(s.root)).toBe('generations/2');
    // A rollback writes no generation: both stay.
    expect(existsSync(join(s.root, 'var/lib/rick/generations/1'))).toBe(true);
    expect(existsSync(hostPaths(s.root).intentFile)).toBe(false);
    const state = await readState(s.stateFile);
    expect(state.live).toBe(2);
    expect(state.bundles.demo).toMatchObject({ installed: '2.0.0', quarantined: [] });
  });
});
