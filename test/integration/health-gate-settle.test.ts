/**
 * The health gate keeps its promise: a unit passes only after it stayed
 * active for its settle period with the same main process and no automatic
 * restart, restarts are queued without blocking and waited for within the
 * gate's deadline, and every deadline reads the monotonic clock, whatever
 * the wall clock does meanwhile. Through the installer and the fake service
 * manager (test/helpers/fake-host.ts), whose clock costs no real time.
 */
import { createServer, type Server } from 'node:http';
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
import { FakeHost } from '../helpers/fake-host.js';
import {
  type HostTree,
  liveGeneration,
  makeHostTree,
  readLive,
  runInstaller,
} from '../helpers/host-tree.js';
import { diffTrees, snapshotTree } from '../helpers/tree-snapshot.js';

const APP = 'demo-app.service';
const POD = 'demo-pod.service';
const HOUR = 3_600_000;

let key: TestKey;
let tree: HostTree;
let server: Server | undefined;
beforeAll(async () => {
  key = await makeTestKey();
});
afterEach(async () => {
  server?.closeAllConnections();
  server?.close();
  server = undefined;
  await tree?.cleanup();
});

type Services = NonNullable<Parameters<typeof writeSignedBundle>[2]>['services'];

function services(app: Record<string, unknown> = {}): Services {
  return [
    { unit: 'demo.pod', service: POD, activeTimeoutSec: 30, checks: [] },
    { unit: 'demo-app.container', service: APP, activeTimeoutSec: 30, checks: [], ...app },
  ] as Services;
}

async function installedV1(): Promise<FakeHost> {
  tree = await makeHostTree(key);
  const host = new FakeHost({ root: tree.root });
  const v1 = await writeSignedBundle(tree.work, key, {
    version: '1.0.0',
    files: sampleFiles('demo', 'v1'),
  });
  const r = await runInstaller(host, [v1.bundlePath, '--root', tree.root]);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  host.reset();
  return host;
}

/** Installs 2.0.0 and returns the run with the fake monotonic time it took. */
async function installV2(host: FakeHost, app: Record<string, unknown> = {}) {
  const v2 = await writeSignedBundle(tree.work, key, {
    version: '2.0.0',
    files: sampleFiles('demo', 'v2'),
    services: services(app),
  });
  const start = host.elapsedMs;
  const r = await runInstaller(host, [v2.bundlePath, '--root', tree.root]);
  return { ...r, tookMs: host.elapsedMs - start, start };
}

const stateOf = (root: string) => readState(join(root, 'var/lib/rick/state.json'));

describe('the settle period: a unit passes only after staying up', () => {
  it('a crash-looping unit (Restart=always brings it back) fails the gate: "restarted N times during the gate" with its journal, rolled back and quarantined', async () => {
    const host = await installedV1();
    const before = await snapshotTree(join(tree.root, 'var/lib/rick/generations/1'));
    // The stand-in with an unknown command: it exits 400 ms after each start.
    host.crashLoop(APP, {
      everyMs: 400,
      whileGeneration: 2,
      lines: ['demo-app[77]: Error: unknown command "bogus" for "demo"'],
    });
    const r = await installV2(host);
    expect(r.code).toBe(ExitCode.rolledBack);
    // Two restarts between the first sample and the next, a second later.
    expect(r.stderr).toContain(`${APP} restarted 2 times during the gate (NRestarts=2`);
    expect(r.stdout).toContain(`${APP}: Scheduled restart job, restart counter is at 2.`);
    expect(r.stdout).toContain('demo-app[77]: Error: unknown command "bogus" for "demo"');
    expect(await liveGeneration(tree.root)).toBe('generations/1');
    expect(await readLive(tree.root, 'bundles/demo/env/demo.env')).toContain('MARKER=v1');
    expect(
      diffTrees(before, await snapshotTree(join(tree.root, 'var/lib/rick/generations/1'))),
    ).toEqual([]);
    const state = await stateOf(tree.root);
    expect(state.bundles.demo).toMatchObject({ installed: '1.0.0', quarantined: ['2.0.0'] });
    // The restored generation's unit stays up: the loop was the release's.
    expect((await host.systemctl!.state(APP)).activeState).toBe('active');
  });

  it("a crash loop that reaches systemd's start limit is still rolled back: the restore resets the unit before restarting it", async () => {
    const host = await installedV1();
    // Exits 50 ms after each start: five starts within 10 s before the gate's
    // second sample, and systemd refuses even an explicit start after that
    // ("Start request repeated too quickly") until reset-failed.
    host.crashLoop(APP, {
      everyMs: 50,
      whileGeneration: 2,
      lines: ['demo-app[77]: Error: unknown command "bogus" for "demo"'],
    });
    const r = await installV2(host);
    expect(r.stdout).toContain(`${APP}: Failed with result 'start-limit-hit'.`);
    expect(r.stderr).toMatch(
      new RegExp(
        `error ROLLED_BACK: demo 2\\.0\\.0 failed its health gate: ${APP.replace('.', '\\.')} (restarted \\d+ times during the gate|failed)`,
      ),
    );
    expect(r.code).toBe(ExitCode.rolledBack);
    expect(await liveGeneration(tree.root)).toBe('generations/1');
    expect((await host.systemctl!.state(APP)).activeState).toBe('active');
    const state = await stateOf(tree.root);
    expect(state.bundles.demo).toMatchObject({ installed: '1.0.0', quarantined: ['2.0.0'] });
  });

  it('a unit that crashes 4 s after its start, inside the settle period, fails: it read active at once and would have passed without it', async () => {
    const host = await installedV1();
    host.crashLoop(APP, { everyMs: 4000, whileGeneration: 2 });
    const r = await installV2(host);
    expect(r.code).toBe(ExitCode.rolledBack);
    expect(r.stderr).toContain(`${APP} restarted 1 time during the gate (NRestarts=1`);
    expect(await liveGeneration(tree.root)).toBe('generations/1');
  });

  it('a main process replaced without a restart counted by systemd fails the gate too', async () => {
    const host = await installedV1();
    let replaced = 0;
    host.at(host.elapsedMs + 2500, () => {
      replaced = 424_242;
      host.active.set(APP, replaced);
    });
    const r = await installV2(host);
    expect(replaced).toBe(424_242);
    expect(r.code).toBe(ExitCode.rolledBack);
    expect(r.stderr).toMatch(
      new RegExp(
        `${APP}'s main process changed during the gate \\(MainPID \\d+ → 424242\\) without a restart counted by systemd \\(NRestarts=0\\)`,
      ),
    );
  });

  it('a healthy unit passes only after its settle period: the default 5 s, or settleSec from the manifest', async () => {
    const host = await installedV1();
    const r = await installV2(host);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.tookMs).toBeGreaterThanOrEqual(5000);
    expect(r.tookMs).toBeLessThan(7000);

    host.reset();
    const v3 = await writeSignedBundle(tree.work, key, {
      version: '3.0.0',
      files: sampleFiles('demo', 'v3'),
      services: services({ settleSec: 20 }),
    });
    const start = host.elapsedMs;
    const r3 = await runInstaller(host, [v3.bundlePath, '--root', tree.root]);
    expect(r3.stderr).toBe('');
    expect(r3.code).toBe(0);
    expect(host.elapsedMs - start).toBeGreaterThanOrEqual(20_000);
    expect(host.elapsedMs - start).toBeLessThan(22_000);
  });

  it('an older bundle without settleSec installs and settles for the default', async () => {
    const host = await installedV1();
    const v2 = await writeSignedBundle(tree.work, key, {
      version: '2.0.0',
      files: sampleFiles('demo', 'v2'),
    });
    const manifest = JSON.stringify(v2.manifest.services);
    expect(manifest).not.toContain('settleSec');
    const start = host.elapsedMs;
    const r = await runInstaller(host, [v2.bundlePath, '--root', tree.root]);
    expect(r.code).toBe(0);
    expect(host.elapsedMs - start).toBeGreaterThanOrEqual(5000);
  });
});

describe('restarts queued with --no-block, waited for within the gate', () => {
  it('a start that takes 20 s is waited for through its job, then gated: the install passes', async () => {
    const host = await installedV1();
    host.startDelays.set(POD, { ms: 20_000, whileGeneration: 2 });
    const seen: Array<{ at: number; job: number | undefined; state: string }> = [];
    const start = host.elapsedMs;
    host.at(start + 10_000, () => {
      void host
        .systemctl!.state(APP)
        .then((s) => seen.push({ at: host.elapsedMs - start, job: s.job, state: s.activeState }));
    });
    const r = await installV2(host);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    // Mid-start the app had a job queued and was activating.
    expect(seen[0]).toMatchObject({ state: 'activating' });
    expect(seen[0]?.job).toBeGreaterThan(0);
    // The job's 20 s, then the settle period.
    expect(r.tookMs).toBeGreaterThanOrEqual(25_000);
    expect(host.serviceCalls()).toContainEqual({ op: 'restart', units: [POD] });
  });

  it("a start job still queued at the unit's activeTimeoutSec fails at that deadline, named with its job, and is rolled back", async () => {
    const host = await installedV1();
    host.startDelays.set(POD, { ms: 10 * HOUR, whileGeneration: 2 });
    const r = await installV2(host);
    expect(r.code).toBe(ExitCode.rolledBack);
    expect(r.stderr).toMatch(/still had job \d+ queued \(ActiveState=activating\) after 30s/);
    expect(r.tookMs).toBeGreaterThanOrEqual(30_000);
    expect(r.tookMs).toBeLessThan(60_000);
    expect(await liveGeneration(tree.root)).toBe('generations/1');
    expect((await host.systemctl!.state(APP)).activeState).toBe('active');
  });
});

describe('deadlines on the monotonic clock', () => {
  it('a wall-clock step of +2 h during the gate: a healthy unit passes, after its settle period', async () => {
    const host = await installedV1();
    host.at(host.elapsedMs + 1500, () => host.stepWallClock(2 * HOUR));
    const wallBefore = host.clock.now().getTime();
    const r = await installV2(host);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(host.clock.now().getTime() - wallBefore).toBeGreaterThan(2 * HOUR);
    expect(r.tookMs).toBeGreaterThanOrEqual(5000);
    expect((await stateOf(tree.root)).bundles.demo?.quarantined ?? []).toEqual([]);
  });

  it('a wall-clock step of -1 h during the gate: a healthy unit passes after its settle period, not an hour later', async () => {
    const host = await installedV1();
    host.at(host.elapsedMs + 1500, () => host.stepWallClock(-HOUR));
    const r = await installV2(host);
    expect(r.code).toBe(0);
    expect(r.tookMs).toBeLessThan(7000);
  });

  it.each([
    ['+2 h', 2 * HOUR],
    ['-1 h', -HOUR],
  ])(
    'a wall-clock step of %s: an HTTP check that never answers 2xx fails at its own 60 s, measured on the monotonic clock',
    async (_, step) => {
      const host = await installedV1();
      const url = 'http://127.0.0.1:9000/-/health/live/';
      host.failingUrls.add(url);
      host.at(host.elapsedMs + 1500, () => host.stepWallClock(step));
      const r = await installV2(host, {
        checks: [{ type: 'http', url, timeoutSec: 60, intervalSec: 5 }],
      });
      expect(r.code).toBe(ExitCode.rolledBack);
      expect(r.stderr).toContain(`${APP}: ${url} did not answer 2xx within 60s (last: 503)`);
      // Neither at once (+2 h) nor an hour late (-1 h): the check's 60 s and
      // the restore's settle period.
      expect(r.tookMs).toBeGreaterThanOrEqual(60_000);
      expect(r.tookMs).toBeLessThan(70_000);
    },
  );

  it('a wall-clock step of -1 h: a start that never finishes fails at its 30 s', async () => {
    const host = await installedV1();
    host.startDelays.set(POD, { ms: 10 * HOUR, whileGeneration: 2 });
    host.at(host.elapsedMs + 1000, () => host.stepWallClock(-HOUR));
    const r = await installV2(host);
    expect(r.code).toBe(ExitCode.rolledBack);
    expect(r.stderr).toMatch(/still had job \d+ queued \(ActiveState=activating\) after 30s/);
    expect(r.tookMs).toBeLessThan(60_000);
  });
});

describe('HTTP checks decide on the status line', () => {
  it('a server that sends its headers, then its body a byte every 300 ms, passes the gate on its status line', async () => {
    const host = await installedV1();
    host.realHttp = true;
    server = createServer((_, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      // Node sends the headers with the first body chunk unless flushed.
      res.flushHeaders();
      const timer = setInterval(() => res.write('.'), 300);
      res.on('close', () => clearInterval(timer));
    });
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    const url = `http://127.0.0.1:${port}/-/health/live/`;
    const r = await installV2(host, {
      checks: [{ type: 'http', url, timeoutSec: 60, intervalSec: 5 }],
    });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(host.calls).toContainEqual({ op: 'http', url });
  });
});
