/**
 * An operator's install killed after its flip leaves its generation live and
 * its intent record. The update timer's next tick completes it even when the
 * feed has nothing new: every tick looks for intent.json (one stat) and, when
 * it finds one, takes the lock and restores the confirmed generation. For
 * the GitHub feed through the built single-file installer the timer runs,
 * with a real SIGKILL (--root: activation is the flip alone); for the signed
 * index feed in-process, through the fake service manager.
 */
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ExitCode } from '../../src/errors.js';
import { clearInterruption, noteSignal } from '../../src/host/interrupt.js';
import { hostPaths } from '../../src/host/paths.js';
import { markIntent, writeIntent } from '../../src/host/recovery.js';
import { readState } from '../../src/host/state.js';
import {
  makeTestKey,
  sampleFiles,
  type TestKey,
  writeSignedBundle,
} from '../helpers/bundle-factory.js';
import { builtCli, builtInstaller, requireBuiltCli, runCli } from '../helpers/cli-process.js';
import { FakeHost } from '../helpers/fake-host.js';
import { FeedServer } from '../helpers/feed-server.js';
import { liveGeneration, makeHostTree, quadletPath, runInstaller } from '../helpers/host-tree.js';
import { Publisher } from '../helpers/index-publisher.js';
import { ReleaseServer } from '../helpers/release-server.js';

let key: TestKey;
const cleanups: Array<() => Promise<void>> = [];
const env: NodeJS.ProcessEnv = {
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
  for (const name of ['HTTPS_PROXY', 'HTTP_PROXY', 'https_proxy', 'http_proxy', 'GITHUB_TOKEN']) {
    delete process.env[name];
  }
});
afterEach(async () => {
  clearInterruption();
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

describe('the update tick completes an interrupted run when the feed has nothing new', () => {
  it('GitHub feed: an operator install SIGKILLed after the flip is restored by the next tick', async () => {
    const tree = await makeHostTree(key);
    const feed = await FeedServer.start({});
    cleanups.push(
      () => feed.stop(),
      () => tree.cleanup(),
    );
    const v1 = await writeSignedBundle(join(tree.work, 'local'), key, { version: '1.0.0' });
    expect((await runCli([v1.bundlePath, '--root', tree.root], env, builtCli)).code).toBe(0);
    await writeFile(
      join(tree.root, 'etc/rick/rick.conf'),
      `FEED=${feed.listUrl}\nBUNDLES=demo\nRANGE=^1\n`,
    );
    const tick = () => runCli(['update', '--root', tree.root], env, builtInstaller);
    expect((await tick()).code).toBe(ExitCode.ok);
    const noop = await tick();
    expect(noop.stdout).toContain('unchanged since the last check, nothing new');

    // The operator installs 1.5.0 by hand (not in the feed); the run is killed after its flip.
    const hand = await writeSignedBundle(join(tree.work, 'hand'), key, {
      version: '1.5.0',
      files: sampleFiles('demo', 'by-hand'),
    });
    const killed = await runCli(
      [hand.bundlePath, '--root', tree.root],
      { ...env, RICK_FAULT_KILL_AT: 'flipped' },
      builtCli,
    );
    expect(killed.signal).toBe('SIGKILL');
    expect(await liveGeneration(tree.root)).toBe('generations/2');
    const intentFile = hostPaths(tree.root).intentFile;
    expect(JSON.parse(await readFile(intentFile, 'utf8'))).toMatchObject({ to: 2, phase: 'live' });

    const healed = await tick();
    expect(healed.stderr).toBe('');
    expect(healed.code).toBe(ExitCode.ok);
    expect(healed.stdout).toContain(`${intentFile} is left by an interrupted run: completing it`);
    expect(healed.stdout).toContain(
      'generation 2 went live in a run that did not finish (install demo 1.5.0): restoring 1',
    );
    expect(healed.stdout).toContain('demo: nothing new');
    expect(healed.stdout).not.toContain('installing');
    expect(await liveGeneration(tree.root)).toBe('generations/1');
    expect(existsSync(intentFile)).toBe(false);
    expect(existsSync(join(tree.root, 'var/lib/rick/generations/2'))).toBe(false);
    const state = await readState(join(tree.root, 'var/lib/rick/state.json'));
    expect(state.bundles.demo).toMatchObject({ installed: '1.0.0', quarantined: [] });
    const status = await runCli(['status', '--root', tree.root], env, builtCli);
    expect(status.stdout).not.toContain('warning');

    // Completed: the next tick is the no-op one again.
    const after = await tick();
    expect(after.stdout).toContain('unchanged since the last check, nothing new');
    expect(after.stdout).not.toContain('interrupted run');
  });

  it('signed index feed: the restore runs through the service manager, before the feed is asked', async () => {
    const tree = await makeHostTree(key);
    const server = await ReleaseServer.start();
    cleanups.push(
      () => server.stop(),
      () => tree.cleanup(),
    );
    const host = new FakeHost({ root: tree.root });
    const indexUrl = server.latestUrl('index.json');
    await writeFile(join(tree.root, 'etc/rick/rick.conf'), `FEED=${indexUrl}\nBUNDLES=demo\n`);
    const v1 = await writeSignedBundle(join(tree.work, 'local'), key, {
      version: '1.0.0',
      files: sampleFiles('demo', '1.0.0'),
    });
    expect((await runInstaller(host, [v1.bundlePath, '--root', tree.root])).code).toBe(0);
    await new Publisher(server, join(tree.work, 'publish'), key).publish(['1.0.0']);
    const tick = () => runInstaller(host, ['update', '--root', tree.root]);
    expect((await tick()).code).toBe(ExitCode.ok);

    // What an operator's install of 1.5.0, killed after its flip and restarts, leaves.
    const stateFile = join(tree.root, 'var/lib/rick/state.json');
    const confirmed = await readFile(stateFile, 'utf8');
    const hand = await writeSignedBundle(join(tree.work, 'hand'), key, {
      version: '1.5.0',
      files: sampleFiles('demo', 'by-hand'),
    });
    expect((await runInstaller(host, [hand.bundlePath, '--root', tree.root])).code).toBe(0);
    await writeFile(stateFile, confirmed);
    const paths = hostPaths(tree.root);
    await writeIntent(paths, {
      operation: 'install',
      reason: 'install demo 1.5.0',
      from: 1,
      to: 2,
      created: true,
      time: '2026-01-01T00:00:00.000Z',
    });
    await markIntent(paths, 'live');
    host.reset();

    const healed = await tick();
    expect(healed.stderr).toBe('');
    expect(healed.code).toBe(ExitCode.ok);
    expect(healed.stdout).toContain(
      `${paths.intentFile} is left by an interrupted run: completing it`,
    );
    expect(healed.stdout).toContain(
      'generation 2 went live in a run that did not finish (install demo 1.5.0): restoring 1',
    );
    expect(healed.stdout).not.toContain('installing');
    expect(host.serviceCalls()).toEqual([
      { op: 'daemon-reload' },
      { op: 'restart', units: ['demo-pod.service'] },
    ]);
    expect(await liveGeneration(tree.root)).toBe('generations/1');
    expect(
      await readFile(join(tree.root, 'var/lib/rick/current/bundles/demo/env/demo.env'), 'utf8'),
    ).toContain('MARKER=1.0.0');
    expect(existsSync(paths.intentFile)).toBe(false);
    const status = await runInstaller(host, ['status', '--root', tree.root]);
    expect(status.stdout).not.toContain('warning');
  });

  it('a run in progress holds its own record: the tick leaves it alone and says so', async () => {
    const tree = await makeHostTree(key);
    cleanups.push(() => tree.cleanup());
    const host = new FakeHost({ root: tree.root, offline: true });
    const { completeInterruptedRun } = await import('../../src/host/install.js');
    const { acquireLock } = await import('../../src/host/lock.js');
    const paths = hostPaths(tree.root);
    const held = await acquireLock(paths.lockFile, { purpose: 'install demo-2.0.0.tgz' });
    try {
      await writeIntent(paths, {
        operation: 'install',
        reason: 'install demo 2.0.0',
        to: 1,
        created: true,
        time: '2026-01-01T00:00:00.000Z',
      });
      const lines: string[] = [];
      expect(await completeInterruptedRun(tree.root, { host, log: (l) => lines.push(l) })).toBe(
        false,
      );
      expect(lines.join('\n')).toContain(`${paths.intentFile} belongs to a run in progress`);
      expect(existsSync(paths.intentFile)).toBe(true);
    } finally {
      await held.release();
    }
  });

  it('a tick stopped by SIGTERM during its install restores, exits 16, and the next tick installs', async () => {
    const tree = await makeHostTree(key);
    const server = await ReleaseServer.start();
    cleanups.push(
      () => server.stop(),
      () => tree.cleanup(),
    );
    const fake = new FakeHost({ root: tree.root });
    await writeFile(
      join(tree.root, 'etc/rick/rick.conf'),
      `FEED=${server.latestUrl('index.json')}\nBUNDLES=demo\n`,
    );
    const v1 = await writeSignedBundle(join(tree.work, 'local'), key, {
      version: '1.0.0',
      files: sampleFiles('demo', '1.0.0'),
    });
    expect((await runInstaller(fake, [v1.bundlePath, '--root', tree.root])).code).toBe(0);
    await new Publisher(server, join(tree.work, 'publish'), key).publish(['1.0.0', '1.1.0']);
    fake.reset();
    // systemd stops the service while the new generation's units restart.
    const systemctl = fake.systemctl!;
    const host = Object.create(fake) as FakeHost;
    Object.defineProperty(host, 'systemctl', {
      value: {
        ...systemctl,
        restart: async (units: string[]) => {
          noteSignal('SIGTERM');
          await systemctl.restart(units);
        },
      },
    });
    const stopped = await runInstaller(host, ['update', '--root', tree.root]);
    expect(stopped.code).toBe(ExitCode.interrupted);
    expect(stopped.stderr).toContain(
      'error INTERRUPTED: stopped by SIGTERM at step health-checked after generation 2 went live; generation 1 is live again, its services restored',
    );
    expect(stopped.stdout).toContain('demo: installing 1.1.0');
    expect(await liveGeneration(tree.root)).toBe('generations/1');
    expect(existsSync(hostPaths(tree.root).intentFile)).toBe(false);
    const state = await readState(join(tree.root, 'var/lib/rick/state.json'));
    expect(state.bundles.demo).toMatchObject({ installed: '1.0.0', quarantined: [] });

    clearInterruption();
    const next = await runInstaller(fake, ['update', '--root', tree.root]);
    expect(next.stderr).toBe('');
    expect(next.code).toBe(ExitCode.ok);
    expect(next.stdout).toContain('demo: installed 1.1.0');
  });
});
