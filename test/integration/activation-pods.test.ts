/**
 * Activation through the fake host's systemd, which models BindsTo=, dropped
 * start jobs and podman's --exit-policy=stop on the units the real quadlet
 * generates (test/helpers/fake-host.ts): the pod upgrades that failed on the
 * real host with "Job … failed with result 'dependency'", and the images
 * pulled before the flip.
 */
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Manifest } from '../../src/bundle/manifest.js';
import { ExitCode } from '../../src/errors.js';
import { readState } from '../../src/host/state.js';
import {
  type FactoryFile,
  makeTestKey,
  type TestKey,
  writeSignedBundle,
} from '../helpers/bundle-factory.js';
import { FakeHost } from '../helpers/fake-host.js';
import {
  DEMO_GRANT,
  type HostTree,
  liveGeneration,
  makeHostTree,
  runInstaller,
} from '../helpers/host-tree.js';
import { quadletPath, requireQuadletUnderCi } from '../helpers/quadlet.js';
import { diffTrees, snapshotTree } from '../helpers/tree-snapshot.js';

let key: TestKey;
let tree: HostTree;
beforeAll(async () => {
  requireQuadletUnderCi();
  key = await makeTestKey();
});
beforeEach(async () => {
  tree = await makeHostTree(key, {
    secrets: 'db_password=one\n',
    // The units run as the image's user (no User=): this host allows it.
    grants: { demo: `${DEMO_GRANT}USERS=root\n` },
  });
});
afterEach(async () => {
  await tree?.cleanup();
});

const POD = 'demo-pod.service';
const SERVER = 'demo-server.service';
const WORKER = 'demo-worker.service';
const IMAGE = 'registry.example.org/demo';
/** What podman 5.4.2 said on the test host when the registry could not be reached. */
const PODMAN_PULL_ERROR =
  'initializing source docker://registry.example.org/demo:9.9.9: pinging container registry registry.example.org: Get "https://registry.example.org/v2/": dial tcp [::1]:443: connect: connection refused';

interface Release {
  server?: string;
  worker?: string | false;
  extra?: boolean;
  env?: string;
}

function container(role: string, tag: string): FactoryFile {
  return {
    path: `quadlet/demo-${role}.container`,
    content: [
      '[Unit]',
      'Requires=demo-pod.service',
      'After=demo-pod.service',
      '',
      '[Container]',
      `Image=${IMAGE}:${tag}`,
      'Pod=demo.pod',
      `Exec=${role}`,
      'EnvironmentFile=@@rick:path:env/demo.env@@',
      '',
      '[Install]',
      'WantedBy=multi-user.target',
      '',
    ].join('\n'),
  };
}

/** The Authentik shape: one pod, a server and a worker sharing one env file. */
function podFiles(r: Release = {}): FactoryFile[] {
  const files: FactoryFile[] = [
    {
      path: 'quadlet/demo.pod',
      content: '[Pod]\nPodName=demo\n\n[Install]\nWantedBy=multi-user.target\n',
    },
    container('server', r.server ?? '1.0.0'),
    {
      path: 'env/demo.env',
      content: `${r.env ?? 'CACHE_DB=1'}\nDB_PASSWORD=@@rick:secret:db_password@@\n`,
      mode: 0o600,
    },
  ];
  if (r.worker !== false) files.push(container('worker', r.worker ?? '1.0.0'));
  if (r.extra) files.push(container('extra', '1.0.0'));
  return files;
}

/** As in the Authentik bundle, the server answers the HTTP check and the worker has none. */
const serverCheck = (input: Record<string, unknown>): Record<string, unknown> => ({
  ...input,
  services: (input as unknown as Manifest).services.map((s) =>
    s.service === SERVER
      ? {
          ...s,
          checks: [
            {
              type: 'http',
              url: 'http://127.0.0.1:9000/-/health/live/',
              timeoutSec: 30,
              intervalSec: 1,
            },
          ],
        }
      : s,
  ),
});

async function install(host: FakeHost, version: string, r: Release = {}) {
  const b = await writeSignedBundle(tree.work, key, {
    version,
    files: podFiles(r),
    manifestPatch: serverCheck,
  });
  return runInstaller(host, [b.bundlePath, '--root', tree.root]);
}

async function installedHost(r: Release = {}): Promise<FakeHost> {
  const host = new FakeHost({ root: tree.root });
  const first = await install(host, '1.0.0', r);
  expect(first.stderr).toBe('');
  expect(first.code).toBe(0);
  host.reset();
  return host;
}

const pids = (host: FakeHost) => Object.fromEntries(host.active);
const stateOf = () => readState(join(tree.root, 'var/lib/rick/state.json'));

describe.skipIf(!quadletPath)('pod activation through the fake systemd', () => {
  it("restarting both containers of a pod directly fails with result 'dependency', as on the real host", async () => {
    // What activation did before it planned on the generated units.
    // `--no-block`: systemctl returns once the jobs are queued; their
    // failure shows in the units' state and journal once they are done.
    const host = await installedHost();
    await host.systemctl!.restart([SERVER, WORKER]);
    expect(await host.systemctl!.state(SERVER)).toMatchObject({
      activeState: 'inactive',
      job: undefined,
    });
    expect(await host.systemctl!.journal(SERVER, 5)).toEqual([
      `fake systemd[1]: Stopped ${SERVER}.`,
      `fake systemd[1]: ${SERVER}: Bound to unit ${POD}, but unit isn't active.`,
      `fake systemd[1]: Dependency failed for ${SERVER}.`,
      `fake systemd[1]: ${SERVER}: Job ${SERVER}/start failed with result 'dependency'.`,
    ]);
    expect((await host.systemctl!.state(POD)).activeState).toBe('inactive');
  });

  it('a version bump of server and worker restarts them one at a time, the pod kept running, pulls first, and ends healthy', async () => {
    const host = await installedHost();
    const before = pids(host);
    const r = await install(host, '1.1.0', { server: '1.1.0', worker: '1.1.0' });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(
      `restart ${WORKER}, then ${SERVER}, one at a time (quadlet/demo-worker.container, quadlet/demo-server.container changed; each waits for the one before, so ${POD} is never empty and keeps running`,
    );
    expect(r.stdout).toContain(`keep    ${POD} (unchanged)`);
    expect(r.stdout).toContain(`restarted ${WORKER}, then ${SERVER}\n`);
    expect(r.stdout).toContain(
      `image ${IMAGE}:1.1.0: pulled in 0.0s (Pull=missing; for ${SERVER}, ${WORKER})`,
    );
    // Two systemctl runs, the worker's first; the server, which answers the check, last.
    expect(host.serviceCalls()).toEqual([
      { op: 'daemon-reload' },
      { op: 'restart', units: [WORKER] },
      { op: 'restart', units: [SERVER] },
    ]);
    // The pull came before anything went live.
    const order = host.calls.map((c) => c.op);
    expect(order.indexOf('pull')).toBeLessThan(order.indexOf('daemon-reload'));
    expect(host.pulls()).toEqual([`${IMAGE}:1.1.0`]);
    const after = pids(host);
    // The pod never stopped; both containers have new processes.
    expect(after[POD]).toBe(before[POD]);
    for (const unit of [SERVER, WORKER]) {
      expect(after[unit]).toBeDefined();
      expect(after[unit]).not.toBe(before[unit]);
    }
    expect(await host.systemctl!.journal(POD, 5)).not.toContainEqual(
      expect.stringContaining('--exit-policy=stop'),
    );
    expect(await liveGeneration(tree.root)).toBe('generations/2');
  });

  it('each container of a rolling restart is queued with --no-block only once the one before finished its start job', async () => {
    const host = await installedHost();
    const before = pids(host);
    // The worker's new start takes 20 s: its job stays queued meanwhile.
    host.startDelays.set(WORKER, { ms: 20_000, whileGeneration: 2 });
    const queued: Array<{ units: string; at: number; worker: string; job: boolean }> = [];
    const systemctl = host.systemctl!;
    const restart = systemctl.restart;
    systemctl.restart = async (units) => {
      const w = await systemctl.state(WORKER);
      queued.push({
        units: units.join(' '),
        at: host.elapsedMs,
        worker: w.activeState,
        job: w.job !== undefined,
      });
      return restart(units);
    };
    const r = await install(host, '1.1.0', { server: '1.1.0', worker: '1.1.0' });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(queued.map((q) => q.units)).toEqual([WORKER, SERVER]);
    // The server's restart was queued 20 s later, once the worker ran again
    // with no job left: the pod always had a running container.
    expect(queued[1]!.at - queued[0]!.at).toBeGreaterThanOrEqual(20_000);
    expect(queued[1]).toMatchObject({ worker: 'active', job: false });
    expect(pids(host)[POD]).toBe(before[POD]);
  });

  it('an env-only change and a rotated secret restart server and worker one at a time', async () => {
    const host = await installedHost();
    const podPid = pids(host)[POD];
    const env = await install(host, '1.1.0', { env: 'CACHE_DB=2' });
    expect(env.code).toBe(0);
    expect(host.serviceCalls().slice(-2)).toEqual([
      { op: 'restart', units: [WORKER] },
      { op: 'restart', units: [SERVER] },
    ]);
    expect(env.stdout).toContain(
      `restart ${WORKER}, then ${SERVER}, one at a time (env/demo.env changed;`,
    );

    host.reset();
    const secrets = join(tree.root, 'etc/rick/secrets/demo.env');
    const { writeFile } = await import('node:fs/promises');
    await writeFile(secrets, 'db_password=two\n', { mode: 0o600 });
    const rotated = await install(host, '1.1.1', { env: 'CACHE_DB=2' });
    expect(rotated.stderr).toBe('');
    expect(rotated.code).toBe(0);
    expect(rotated.stdout).toContain('secret  demo/env/demo.env (a secret value changed)');
    expect(host.serviceCalls().slice(-2)).toEqual([
      { op: 'restart', units: [WORKER] },
      { op: 'restart', units: [SERVER] },
    ]);
    expect([...host.active.keys()].sort()).toEqual([POD, SERVER, WORKER]);
    expect(pids(host)[POD]).toBe(podPid);
    // The image is there already: made present, not pulled again.
    expect(rotated.stdout).toContain(`image ${IMAGE}:1.0.0: present, not pulled`);
  });

  it('one container changed: only it restarts, the pod and the other keep their processes', async () => {
    const host = await installedHost();
    const before = pids(host);
    const r = await install(host, '1.1.0', { worker: '1.1.0' });
    expect(r.code).toBe(0);
    expect(host.serviceCalls()).toEqual([
      { op: 'daemon-reload' },
      { op: 'restart', units: [WORKER] },
    ]);
    const after = pids(host);
    expect(after[POD]).toBe(before[POD]);
    expect(after[SERVER]).toBe(before[SERVER]);
    expect(after[WORKER]).not.toBe(before[WORKER]);
  });

  it('a container added to the running pod starts alone; removing it stops it alone', async () => {
    const host = await installedHost();
    const before = pids(host);
    const added = await install(host, '1.1.0', { extra: true });
    expect(added.code).toBe(0);
    expect(added.stdout).toContain('start   demo-extra.service (new)');
    expect(host.serviceCalls().at(-1)).toEqual({
      op: 'restart',
      units: ['demo-extra.service'],
    });
    expect(pids(host)[SERVER]).toBe(before[SERVER]);

    host.reset();
    const removed = await install(host, '1.2.0');
    expect(removed.code).toBe(0);
    expect(host.serviceCalls()).toEqual([
      { op: 'daemon-reload' },
      { op: 'stop', units: ['demo-extra.service'] },
    ]);
    expect([...host.active.keys()].sort()).toEqual([POD, SERVER, WORKER]);
  });

  it('the worker removed while the server changes: the pod restarts with the server', async () => {
    const host = await installedHost();
    const r = await install(host, '1.1.0', { server: '1.1.0', worker: false });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(host.serviceCalls()).toEqual([
      { op: 'daemon-reload' },
      { op: 'stop', units: [WORKER] },
      { op: 'restart', units: [POD] },
    ]);
    expect([...host.active.keys()].sort()).toEqual([POD, SERVER]);
  });

  it('a failed gate restores one container at a time too, and rollback replays the plan backwards', async () => {
    const host = await installedHost();
    const podPid = pids(host)[POD];
    host.failUnit(SERVER, 2);
    const r = await install(host, '1.1.0', { server: '1.1.0', worker: '1.1.0' });
    expect(r.code).toBe(ExitCode.rolledBack);
    expect(r.stderr).toContain(`${SERVER} failed (ActiveState=failed)`);
    // The worker kept the pod running while the server failed. Restoring the
    // worker alone would then empty the pod: the pod restarts with both.
    expect(host.serviceCalls()).toEqual([
      { op: 'daemon-reload' },
      { op: 'restart', units: [WORKER] },
      { op: 'restart', units: [SERVER] },
      { op: 'daemon-reload' },
      { op: 'restart', units: [POD] },
    ]);
    expect(r.stdout).toContain(
      `${POD}: no other container of the pod is active (${SERVER} is failed); restarting ${WORKER} alone would empty it, so ${POD} restarts with all its containers`,
    );
    expect([...host.active.keys()].sort()).toEqual([POD, SERVER, WORKER]);
    expect(pids(host)[POD]).not.toBe(podPid);

    host.failingUnits.clear();
    host.reset();
    const v12 = await install(host, '1.2.0', { server: '1.2.0', worker: '1.2.0' });
    expect(v12.code).toBe(0);
    host.reset();
    const back = await runInstaller(host, ['rollback', '--root', tree.root]);
    expect(back.stderr).toBe('');
    expect(back.code).toBe(0);
    expect(host.serviceCalls()).toEqual([
      { op: 'daemon-reload' },
      { op: 'restart', units: [WORKER] },
      { op: 'restart', units: [SERVER] },
    ]);
    expect([...host.active.keys()].sort()).toEqual([POD, SERVER, WORKER]);
  });

  it('a worker that fails its restart ends the run: the server is not restarted and keeps serving', async () => {
    const host = await installedHost();
    const before = pids(host);
    host.failUnit(WORKER, 2);
    const r = await install(host, '1.1.0', { server: '1.1.0', worker: '1.1.0' });
    expect(r.code).toBe(ExitCode.rolledBack);
    expect(r.stderr).toContain(`${WORKER} failed (ActiveState=failed)`);
    expect(r.stdout).toContain(
      `restarted ${WORKER} (the restart job of ${WORKER} ended with ActiveState=failed)`,
    );
    // The server's restart was never queued: it kept its process, and the pod
    // with it. The restore restarts the failed worker first, then the server.
    expect(host.serviceCalls()).toEqual([
      { op: 'daemon-reload' },
      { op: 'restart', units: [WORKER] },
      { op: 'daemon-reload' },
      { op: 'restart', units: [WORKER] },
      { op: 'restart', units: [SERVER] },
    ]);
    expect(pids(host)[POD]).toBe(before[POD]);
    expect([...host.active.keys()].sort()).toEqual([POD, SERVER, WORKER]);
  });

  it('rick-install plan lists the restarts one at a time and the images it would pull', async () => {
    const host = await installedHost();
    const b = await writeSignedBundle(tree.work, key, {
      version: '1.1.0',
      files: podFiles({ server: '1.1.0', worker: '1.1.0' }),
      manifestPatch: serverCheck,
    });
    const before = await snapshotTree(tree.root);
    const r = await runInstaller(host, ['plan', b.bundlePath, '--root', tree.root]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(
      `restart ${WORKER}, then ${SERVER}, one at a time (quadlet/demo-worker.container, quadlet/demo-server.container changed; each waits for the one before, so ${POD} is never empty and keeps running: podman stops a pod when its last container exits, --exit-policy=stop)`,
    );
    expect(r.stdout).toContain(`pull    ${IMAGE}:1.1.0 (Pull=missing; for ${SERVER}, ${WORKER})`);
    expect(host.calls).toEqual([]);
    expect(diffTrees(before, await snapshotTree(tree.root))).toEqual([]);
  });
});

describe.skipIf(!quadletPath)('images pulled before the flip', () => {
  it('a failed pull refuses the install with nothing changed, no quarantine, and the next try installs', async () => {
    const host = await installedHost();
    host.failingImages.set(`${IMAGE}:9.9.9`, PODMAN_PULL_ERROR);
    const servingBefore = pids(host);
    const before = await snapshotTree(tree.root);
    const r = await install(host, '1.1.0', { server: '9.9.9', worker: '9.9.9' });
    expect(r.code).toBe(ExitCode.imagePull);
    expect(r.stderr).toContain(
      `error IMAGE_PULL_FAILED: cannot pull image ${IMAGE}:9.9.9: ${PODMAN_PULL_ERROR}`,
    );
    expect(diffTrees(before, await snapshotTree(tree.root))).toEqual([]);
    expect(host.serviceCalls()).toEqual([]);
    expect(pids(host)).toEqual(servingBefore);
    const state = await stateOf();
    expect(state.bundles.demo?.quarantined).toEqual([]);
    expect(state.live).toBe(1);

    // The registry is back: the same release installs.
    host.failingImages.clear();
    const again = await install(host, '1.1.0', { server: '9.9.9', worker: '9.9.9' });
    expect(again.stderr).toBe('');
    expect(again.code).toBe(0);
    expect(await liveGeneration(tree.root)).toBe('generations/2');
  });

  it('a failed pull on a first install leaves nothing behind, not even the lock', async () => {
    const host = new FakeHost({ root: tree.root });
    host.failingImages.set(`${IMAGE}:1.0.0`, PODMAN_PULL_ERROR);
    const before = await snapshotTree(tree.root);
    const r = await install(host, '1.0.0');
    expect(r.code).toBe(ExitCode.imagePull);
    expect(r.stderr).toContain(`cannot pull image ${IMAGE}:1.0.0`);
    expect(diffTrees(before, await snapshotTree(tree.root))).toEqual([]);
  });

  it('an offline tree (no systemctl) pulls nothing and says so', async () => {
    const host = new FakeHost({ root: tree.root, offline: true });
    const r = await install(host, '1.0.0');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('note: offline tree (--root): no images pulled');
    expect(host.pulls()).toEqual([]);
  });
});
