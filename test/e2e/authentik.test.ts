/**
 * End to end on a real systemd host: the real authentik bundle, built and
 * signed as CI does, bootstrapped from a loopback release feed on a Debian 13
 * host (systemd-nspawn) with native PostgreSQL and Valkey on Unix sockets,
 * then updated, broken, rolled back, interrupted and rebooted. Each step
 * prints what it checked; a failed step prints the units' status and journal.
 *
 * Run as root: `npm run test:e2e`. The test host's root is cached under
 * /var/cache/rick-e2e (RICK_E2E_CACHE); RICK_E2E_KEEP=1 keeps the host's
 * directory after the run for inspection.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { ExitCode } from '../../src/errors.js';
import { log, repo, run, TestHost } from './testhost.js';

const FEED_PORT = 8089;
const FEED_REPO = 'acme/rick-releases';
const FEED_URL = `http://127.0.0.1:${FEED_PORT}/repos/${FEED_REPO}/releases`;
const DOWNLOAD = `http://127.0.0.1:${FEED_PORT}/${FEED_REPO}/releases/download`;
const HEALTH_URL = 'http://127.0.0.1:9000/-/health/live/';
const FEED_DIR = '/srv/rick-e2e-feed';
const IMAGE = 'localhost/authentik-standin';
const WORKER_IMAGE = 'localhost/authentik-standin-worker';
const UNITS = ['authentik-pod.service', 'authentik-server.service', 'authentik-worker.service'];
const DIAGNOSED = [...UNITS, 'rick-update.service', 'rick-e2e-interrupted.service'];

const rickBundle = join(repo, 'dist/cli/rick-bundle.js');
const installerFile = join(repo, 'dist/installer/rick-install.cjs');
const bootstrapScript = join(repo, 'installer/bootstrap.sh');
const timerUnits = ['rick-update.timer', 'rick-update.service'].map((u) =>
  join(repo, 'installer/systemd', u),
);

/** A piece another part of the project delivers; its absence fails the steps that need it. */
function requirePiece(path: string, what: string): void {
  if (!existsSync(path)) {
    throw new Error(`MISSING PIECE: ${what} (${path.replace(`${repo}/`, '')}) is not in the tree`);
  }
}

interface Release {
  version: string;
  tag: string;
  dir: string;
  tgz: string;
}

let host: TestHost;
let work: string;
let authentikVersion: string;
let infra: Record<string, string>;
const releases = new Map<string, Release>();
const failed: string[] = [];

/** Wraps a step: prints its name, and the units' status and journal if it fails. */
async function step(name: string, body: () => Promise<void>): Promise<void> {
  log(`\n=== ${name}`);
  try {
    await body();
    log(`=== ${name}: passed`);
  } catch (error) {
    failed.push(name);
    log(`=== ${name}: FAILED: ${error instanceof Error ? error.message.split('\n')[0] : error}`);
    await host?.diagnose(DIAGNOSED).catch(() => undefined);
    throw error;
  }
}

function check(what: string, ok: boolean, detail = ''): void {
  log(`  check: ${what}: ${ok ? 'yes' : 'NO'}${detail ? ` (${detail})` : ''}`);
  expect(ok, `${what}${detail ? ` (${detail})` : ''}`).toBe(true);
}

async function sleep(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

/** Polls until fn returns a value, or throws what it last said. */
async function until<T>(what: string, timeoutMs: number, fn: () => Promise<T | undefined>) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000}s: ${what}`);
    await sleep(1000);
  }
}

async function healthStatus(): Promise<string> {
  const r = await host.exec(
    ['curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '5', HEALTH_URL],
    { allowFail: true, quiet: true },
  );
  return r.stdout.trim() || 'no answer';
}

async function expectServing(context: string, timeoutMs = 5000): Promise<void> {
  let last = '';
  const deadline = Date.now() + timeoutMs;
  do {
    last = await healthStatus();
    if (last === '200') break;
    await sleep(1000);
  } while (Date.now() < deadline);
  check(`curl ${HEALTH_URL} answers 200 ${context}`, last === '200', `got ${last}`);
}

interface Status {
  live?: number;
  confirmed?: number;
  generations: number[];
  bundles: Array<{ name: string; version: string; highest?: string; quarantined: string[] }>;
  services: Array<{ service: string; state: string; mainPid?: number }>;
  history: Array<{ generation: number; version: string; outcome: string; detail?: string }>;
}

async function status(): Promise<Status> {
  const r = await host.exec(['rick-install', 'status', '--json'], { quiet: true });
  return JSON.parse(r.stdout) as Status;
}

async function liveVersion(): Promise<string | undefined> {
  return (await status()).bundles.find((b) => b.name === 'authentik')?.version;
}

async function mainPids(): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const unit of UNITS) out[unit] = await host.show(unit, 'MainPID');
  return out;
}

async function expectActive(context: string): Promise<void> {
  for (const unit of UNITS) {
    const state = await host.show(unit, 'ActiveState');
    check(`${unit} is active ${context}`, state === 'active', state);
  }
}

/** Builds and signs a bundle with the real rick-bundle, then publishes it as a release. */
async function buildRelease(version: string, vars: Record<string, string>): Promise<Release> {
  requirePiece(rickBundle, 'rick-bundle (npm run build)');
  requirePiece(installerFile, 'the single-file installer (npm run build:installer)');
  const dir = join(work, `v${version}`);
  await mkdir(dir, { recursive: true });
  const varsFile = join(dir, 'vars.yaml');
  await writeFile(
    varsFile,
    Object.entries(vars)
      .map(([k, v]) => `${k}: ${JSON.stringify(v)}\n`)
      .join(''),
  );
  log(`$ rick-bundle build bundles/authentik --version ${version} --vars ${varsFile}`);
  log(`    vars: ${JSON.stringify(vars)}`);
  await run('node', [
    rickBundle,
    'build',
    join(repo, 'bundles/authentik'),
    '--version',
    version,
    '--vars',
    varsFile,
    '--out',
    dir,
    '--installer',
    installerFile,
  ]);
  const tgz = join(dir, `authentik-${version}.tgz`);
  log(`$ rick-bundle sign ${tgz} --key signing-key.asc`);
  await run('node', [rickBundle, 'sign', tgz, '--key', join(work, 'key/signing-key.asc')]);
  const release = { version, tag: `v${version}`, dir, tgz };
  releases.set(version, release);
  return release;
}

/** Publishes a release on the loopback feed (one rename: the feed never sees half of it). */
async function publish(release: Release): Promise<void> {
  const feedDir = join(host.root, FEED_DIR);
  const staging = join(feedDir, `.${release.tag}`);
  await rm(staging, { recursive: true, force: true });
  await mkdir(staging, { recursive: true });
  const name = `authentik-${release.version}.tgz`;
  await writeFile(join(staging, name), await readFile(release.tgz));
  await writeFile(join(staging, `${name}.sig`), await readFile(`${release.tgz}.sig`));
  await writeFile(join(staging, 'bootstrap.sh'), await readFile(bootstrapScript));
  await rename(staging, join(feedDir, release.tag));
  log(`published release ${release.tag} on the feed: ${name}, ${name}.sig, bootstrap.sh`);
}

async function rickUpdate(expectCode: number): Promise<string> {
  const r = await host.exec(['rick-install', 'update'], { allowFail: true, timeoutMs: 600_000 });
  check(`rick-install update exits ${expectCode}`, r.code === expectCode, `exit ${r.code}`);
  return `${r.stdout}${r.stderr}`;
}

async function containerPid(name: string): Promise<string> {
  const r = await host.exec(['podman', 'inspect', '--format', '{{.State.Pid}}', name], {
    quiet: true,
  });
  return r.stdout.trim();
}

async function groupsOf(pid: string): Promise<string[]> {
  const r = await host.exec(['cat', `/proc/${pid}/status`], { quiet: true });
  const line = r.stdout.split('\n').find((l) => l.startsWith('Groups:')) ?? '';
  log(`    /proc/${pid}/status ${line.trim()}`);
  return line.replace('Groups:', '').trim().split(/\s+/).filter(Boolean);
}

async function infrastructureChecklist(context: string): Promise<void> {
  for (const unit of UNITS) {
    const cgroup = await host.show(unit, 'ControlGroup');
    const state = await host.show(unit, 'ActiveState');
    check(
      `${unit} runs in system.slice ${context}`,
      state === 'active' && cgroup.startsWith('/system.slice/'),
      `${state}, ${cgroup}`,
    );
  }
  const uid = (await host.exec(['id', '-u', 'authentik'], { quiet: true })).stdout.trim();
  for (const container of ['authentik-server', 'authentik-worker']) {
    const pid = await containerPid(container);
    const groups = await groupsOf(pid);
    check(
      `${container}'s process carries postgres-clients (${infra.PG_CLIENTS_GID}) and valkey-clients (${infra.VALKEY_CLIENTS_GID})`,
      groups.includes(infra.PG_CLIENTS_GID!) && groups.includes(infra.VALKEY_CLIENTS_GID!),
      `Groups: ${groups.join(' ')}`,
    );
    const status = (await host.exec(['cat', `/proc/${pid}/status`], { quiet: true })).stdout;
    const realUid = /^Uid:\s+(\d+)/m.exec(status)?.[1];
    check(
      `${container} runs as the authentik user`,
      realUid === uid,
      `uid ${realUid}, authentik ${uid}`,
    );
  }
  const psql = await host.exec(
    [
      'podman',
      'exec',
      'authentik-server',
      'sh',
      '-c',
      'PGPASSWORD="$AUTHENTIK_POSTGRESQL__PASSWORD" psql -h "$AUTHENTIK_POSTGRESQL__HOST" -U "$AUTHENTIK_POSTGRESQL__USER" -d "$AUTHENTIK_POSTGRESQL__NAME" -tAc "select 1"',
    ],
    { allowFail: true },
  );
  check('psql "select 1" succeeds from inside authentik-server', psql.stdout.trim() === '1');
  const valkey = await host.exec(
    [
      'podman',
      'exec',
      '--env',
      `REDISCLI_AUTH=${infra.VALKEY_PASSWORD}`,
      'authentik-server',
      'valkey-cli',
      '-s',
      '/var/run/valkey/valkey.sock',
      '-n',
      '1',
      'PING',
    ],
    { allowFail: true, quiet: true },
  );
  log(
    `    valkey-cli PING inside authentik-server: ${valkey.stdout.trim()} ${valkey.stderr.trim()}`,
  );
  check('valkey-cli PING succeeds from inside authentik-server', valkey.stdout.trim() === 'PONG');
  await expectServing(context, 60_000);
}

beforeAll(async () => {
  if (process.getuid?.() !== 0) {
    throw new Error('the end-to-end suite must run as root (systemd-nspawn, nsenter, podman)');
  }
  const definition = parseYaml(
    await readFile(join(repo, 'bundles/authentik/bundle.yaml'), 'utf8'),
  ) as { variables?: Record<string, unknown> };
  authentikVersion = String(definition.variables?.authentik_version ?? '');
  if (!authentikVersion) throw new Error('bundles/authentik/bundle.yaml has no authentik_version');
  work = await mkdtemp('/var/tmp/rick-e2e-work.');

  log('=== test host');
  host = await TestHost.create();
  await host.boot();
  infra = await host.infra();
  log(`=== stand-in image ${IMAGE}:${authentikVersion} (only the image variable is overridden)`);
  await host.exec(['sh', '/usr/local/lib/rick-e2e/build-image.sh', `${IMAGE}:${authentikVersion}`]);
  await host.exec([
    'podman',
    'tag',
    `${IMAGE}:${authentikVersion}`,
    `${WORKER_IMAGE}:${authentikVersion}`,
  ]);
  await mkdir(join(host.root, FEED_DIR), { recursive: true });
  log(`=== loopback release feed ${FEED_URL} (inside the test host)`);
  await host.exec([
    'systemd-run',
    '--unit=rick-e2e-feed',
    '--property=Restart=on-failure',
    'node',
    '/usr/local/lib/rick-e2e/feed-server.mjs',
    FEED_DIR,
    `127.0.0.1:${FEED_PORT}`,
    FEED_REPO,
  ]);
  await until('the feed answers', 30_000, async () => {
    const r = await host.exec(['curl', '-fsS', '-o', '/dev/null', FEED_URL], {
      allowFail: true,
      quiet: true,
    });
    return r.code === 0 ? true : undefined;
  });

  log('=== release signing key (generated for this run)');
  requirePiece(rickBundle, 'rick-bundle (npm run build)');
  await run('node', [rickBundle, 'keygen', '--name', 'rick e2e', '--out', join(work, 'key')]);
}, 900_000);

afterAll(async () => {
  if (!host) return;
  if (process.env.RICK_E2E_KEEP === '1') {
    log(`RICK_E2E_KEEP=1: stopping but keeping ${host.runDir} and ${work}`);
    await host.stop().catch(() => undefined);
    return;
  }
  await host.destroy();
  await rm(work, { recursive: true, force: true });
}, 180_000);

// A test run killed from outside still powers the host off.
process.on('exit', () => {
  if (host && process.env.RICK_E2E_KEEP !== '1') {
    try {
      execFileSync(join(repo, 'scripts/e2e/testhost.sh'), ['stop', host.runDir], {
        stdio: 'ignore',
      });
    } catch {
      // Nothing more can be done at exit.
    }
  }
});

describe.sequential('authentik on a real systemd host', () => {
  it('1. PostgreSQL and Valkey listen on Unix sockets only, in 0770 directories of the client groups', async () => {
    await step('1. infrastructure', async () => {
      const tcp = await host.exec(['ss', '-Hltnp'], { quiet: true });
      log(`    TCP listeners: ${tcp.stdout.trim() || '(none)'}`);
      check(
        'neither postgres nor valkey listens on TCP',
        !/postgres|valkey/.test(tcp.stdout),
        tcp.stdout.trim(),
      );
      const sockets = await host.exec([
        'stat',
        '-c',
        '%n %F %a %U:%G',
        '/var/run/postgresql',
        '/var/run/postgresql/.s.PGSQL.5432',
        '/var/run/valkey',
        '/var/run/valkey/valkey.sock',
      ]);
      check(
        '/var/run/postgresql is 0770 postgres:postgres-clients',
        sockets.stdout.includes('/var/run/postgresql directory 770 postgres:postgres-clients'),
      );
      check(
        '/var/run/valkey is 0770 valkey:valkey-clients',
        sockets.stdout.includes('/var/run/valkey directory 770 valkey:valkey-clients'),
      );
      const valkeyGroup = await host.show('valkey-socket-group.service', 'ActiveState');
      check(
        "Valkey's socket group is set by its oneshot unit",
        valkeyGroup === 'active',
        valkeyGroup,
      );
      const groups = await host.exec(['getent', 'group', 'postgres-clients', 'valkey-clients']);
      const machineGroups = await readFile('/etc/group', 'utf8');
      for (const gid of [infra.PG_CLIENTS_GID!, infra.VALKEY_CLIENTS_GID!]) {
        check(
          `GID ${gid} exists on the test host and on no group of the build machine`,
          groups.stdout.includes(`:${gid}:`) &&
            !machineGroups.split('\n').some((l) => l.split(':')[2] === gid),
        );
      }
    });
  });

  it('2. bootstrap from release 1.0.0 on the loopback feed, as an operator does', async () => {
    await step('2. bootstrap', async () => {
      requirePiece(bootstrapScript, 'installer/bootstrap.sh');
      for (const unit of timerUnits) requirePiece(unit, 'the update timer units');
      const v1 = await buildRelease('1.0.0', { authentik_image: IMAGE });
      await publish(v1);
      // What the operator provides: the release key (obtained out of band) and the secrets.
      await host.copyIn(join(work, 'key/signing-key.pub.asc'), '/root/release.asc');
      await host.writeFile(
        '/etc/rick/secrets/authentik.env',
        [
          `authentik_db_password='${infra.PG_PASSWORD}'`,
          `authentik_valkey_password='${infra.VALKEY_PASSWORD}'`,
          `authentik_secret_key='e2e-${Date.now().toString(36)}-not-a-real-key'`,
          '',
        ].join('\n'),
        '0600',
      );
      await host.sh('chmod 0700 /etc/rick/secrets');
      const bootstrap = await host.sh(
        [
          'set -e',
          'mkdir -p /root/bootstrap && cd /root/bootstrap',
          `curl -fsSLO ${DOWNLOAD}/v1.0.0/bootstrap.sh`,
          `curl -fsSLO ${DOWNLOAD}/v1.0.0/authentik-1.0.0.tgz`,
          `curl -fsSLO ${DOWNLOAD}/v1.0.0/authentik-1.0.0.tgz.sig`,
          `sh bootstrap.sh --bundle authentik-1.0.0.tgz --key /root/release.asc --feed ${FEED_URL} --bundles authentik`,
        ].join('\n'),
        { allowFail: true, timeoutMs: 600_000 },
      );
      check('bootstrap.sh exits 0', bootstrap.code === 0, `exit ${bootstrap.code}`);
      const link = await host.exec(['readlink', '/usr/local/bin/rick-install'], { quiet: true });
      check(
        '/usr/local/bin/rick-install points at the live generation installer',
        link.stdout.trim() === '/var/lib/rick/current/installer/rick-install.cjs',
        link.stdout.trim(),
      );
      const timer = await host.exec(['systemctl', 'is-enabled', 'rick-update.timer'], {
        allowFail: true,
        quiet: true,
      });
      check('rick-update.timer is enabled', timer.stdout.trim() === 'enabled', timer.stdout.trim());
      // The test drives each update tick itself; a timer tick in between would race it.
      await host.exec(['systemctl', 'stop', 'rick-update.timer']);
      const s = await status();
      check(
        'authentik 1.0.0 is live',
        (await liveVersion()) === '1.0.0',
        JSON.stringify(s.bundles),
      );
      await expectActive('after the bootstrap');
    });
  });

  it('3. the infrastructure checklist holds', async () => {
    await step('3. infrastructure checklist', async () => {
      await infrastructureChecklist('after the bootstrap');
    });
  });

  it('4. a release changing only the worker restarts only the worker', async () => {
    await step('4. worker-only update', async () => {
      const v2 = await buildRelease('1.1.0', {
        authentik_image: IMAGE,
        authentik_worker_image: WORKER_IMAGE,
      });
      const before = await mainPids();
      log(`    MainPIDs before: ${JSON.stringify(before)}`);
      await publish(v2);
      // The update runs as the timer runs it: the hardened rick-update.service.
      const r = await host.exec(['systemctl', 'start', 'rick-update.service'], {
        allowFail: true,
        timeoutMs: 600_000,
      });
      await host.exec(
        ['journalctl', '--no-pager', '-o', 'cat', '-n', '30', '-u', 'rick-update.service'],
        {
          allowFail: true,
        },
      );
      check('systemctl start rick-update.service succeeds', r.code === 0, `exit ${r.code}`);
      check('authentik 1.1.0 is live', (await liveVersion()) === '1.1.0');
      const after = await mainPids();
      log(`    MainPIDs after: ${JSON.stringify(after)}`);
      const server = 'authentik-server.service';
      const worker = 'authentik-worker.service';
      check('the server was not restarted (MainPID unchanged)', before[server] === after[server]);
      check(
        'the pod was not restarted (MainPID unchanged)',
        before[UNITS[0]!] === after[UNITS[0]!],
      );
      check('the worker was restarted (MainPID changed)', before[worker] !== after[worker]);
      const image = await host.exec(
        ['podman', 'inspect', '--format', '{{.ImageName}}', 'authentik-worker'],
        { quiet: true },
      );
      check(
        'the worker runs the image of release 1.1.0',
        image.stdout.trim() === `${WORKER_IMAGE}:${authentikVersion}`,
        image.stdout.trim(),
      );
      await expectActive('after the update');
      await expectServing('after the update');
    });
  });

  it('5. a release whose server cannot reach its socket is rolled back and quarantined', async () => {
    await step('5. failed release', async () => {
      const v3 = await buildRelease('1.2.0', {
        authentik_image: IMAGE,
        authentik_worker_image: WORKER_IMAGE,
        // A socket path that does not exist on the host.
        authentik_valkey_socket: '/var/run/valkey-e2e-missing/valkey.sock',
      });
      await publish(v3);
      const out = await rickUpdate(ExitCode.rolledBack);
      check('the installer says it rolled back 1.2.0', /rolled back 1\.2\.0/.test(out));
      check('authentik 1.1.0 is live again', (await liveVersion()) === '1.1.0');
      await expectActive('after the rollback');
      await expectServing('after the rollback (1.1.0 keeps serving)', 60_000);
      const s = await status();
      const quarantined = s.bundles.find((b) => b.name === 'authentik')?.quarantined ?? [];
      check('1.2.0 is quarantined', quarantined.includes('1.2.0'), quarantined.join(', '));
      check(
        'the live generation is confirmed',
        s.live === s.confirmed,
        `${s.live} / ${s.confirmed}`,
      );

      // A changed feed (a new asset on the release) makes the next tick decide
      // again instead of answering from its 304 cache: quarantine must hold.
      await writeFile(join(host.root, FEED_DIR, v3.tag, 'NOTES.txt'), 'known bad release\n');
      log(`added NOTES.txt to release ${v3.tag}: the feed changed`);
      const pids = await mainPids();
      const again = await rickUpdate(ExitCode.ok);
      check(
        'the next update decides again and skips 1.2.0 as quarantined',
        /1\.2\.0/.test(again) && /quarantin/.test(again),
      );
      check('the next update did not install anything', !/installing 1\.2\.0/.test(again));
      const later = await status();
      check(
        'the history has no new entry for 1.2.0',
        later.history.filter((h) => h.version === '1.2.0').length ===
          s.history.filter((h) => h.version === '1.2.0').length,
      );
      check('no service restarted', JSON.stringify(await mainPids()) === JSON.stringify(pids));
      check('authentik 1.1.0 is still live', (await liveVersion()) === '1.1.0');
    });
  });

  it('6. rick-install rollback returns to 1.0.0, which serves', async () => {
    await step('6. rollback to 1.0.0', async () => {
      const s = await status();
      const first = s.history.find((h) => h.version === '1.0.0' && h.outcome === 'installed');
      check(
        'the history names the generation of 1.0.0',
        first !== undefined,
        JSON.stringify(s.history),
      );
      const r = await host.exec(['rick-install', 'rollback', '--to', String(first!.generation)], {
        allowFail: true,
        timeoutMs: 600_000,
      });
      check('rick-install rollback exits 0', r.code === 0, `exit ${r.code}`);
      check('authentik 1.0.0 is live', (await liveVersion()) === '1.0.0');
      const image = await host.exec(
        ['podman', 'inspect', '--format', '{{.ImageName}}', 'authentik-worker'],
        { quiet: true },
      );
      check(
        'the worker runs the image of 1.0.0 again',
        image.stdout.trim() === `${IMAGE}:${authentikVersion}`,
        image.stdout.trim(),
      );
      await expectActive('after the rollback');
      await expectServing('after the rollback', 60_000);
    });
  });

  it('7. an install killed with SIGKILL halfway is recovered by the next run', async () => {
    await step('7. interrupted install', async () => {
      const v4 = await buildRelease('1.3.0', {
        authentik_image: IMAGE,
        authentik_worker_image: WORKER_IMAGE,
      });
      await publish(v4);
      const before = (
        await host.exec(['readlink', '/var/lib/rick/current'], { quiet: true })
      ).stdout.trim();
      // The installer holds still right after it flipped `current` (test-only
      // hook), and is killed there from outside, as a power cut would stop it.
      await host.exec([
        'systemd-run',
        '--unit=rick-e2e-interrupted',
        '--setenv=RICK_FAULT_WAIT_AT=flipped:/run/rick-e2e-never',
        '/usr/local/bin/rick-install',
        'update',
      ]);
      const flipped = await until('the interrupted install flips current', 180_000, async () => {
        const now = (
          await host.exec(['readlink', '/var/lib/rick/current'], { quiet: true })
        ).stdout.trim();
        const state = await host.show('rick-e2e-interrupted.service', 'ActiveState');
        if (state !== 'active' && state !== 'activating') {
          throw new Error(`the install ended before the flip (ActiveState=${state})`);
        }
        return now !== before ? now : undefined;
      });
      log(`    current: ${before} -> ${flipped}; killing the installer with SIGKILL`);
      await host.exec(['systemctl', 'kill', '--signal=SIGKILL', 'rick-e2e-interrupted.service']);
      await until('the killed installer is gone', 30_000, async () => {
        const state = await host.show('rick-e2e-interrupted.service', 'ActiveState');
        return state === 'active' || state === 'activating' || state === 'deactivating'
          ? undefined
          : state;
      });
      const result = await host.show('rick-e2e-interrupted.service', 'Result');
      check('the installer died of SIGKILL', result === 'signal', `Result=${result}`);
      const flippedDir = flipped.startsWith('/') ? flipped : `/var/lib/rick/${flipped}`;
      const complete = await host.exec(['test', '-f', `${flippedDir}/generation.json`], {
        allowFail: true,
        quiet: true,
      });
      check('current points at a complete generation (never a mix)', complete.code === 0, flipped);
      await host.exec(['rick-install', 'status'], { allowFail: true });
      const interrupted = await status();
      check(
        'status shows the flipped generation as live but unconfirmed',
        interrupted.live !== undefined && interrupted.live !== interrupted.confirmed,
        `live ${interrupted.live}, confirmed ${interrupted.confirmed}`,
      );

      const out = await rickUpdate(ExitCode.ok);
      check(
        'the next run says it found and reconciled the interrupted install',
        /interrupted|did not finish/.test(out),
      );
      const s = await status();
      check(
        'the live generation is confirmed again',
        s.live !== undefined && s.live === s.confirmed,
        `${s.live} / ${s.confirmed}`,
      );
      check('authentik 1.3.0 is live', (await liveVersion()) === '1.3.0');
      const verify = await host.exec(['rick-install', 'verify'], { allowFail: true });
      check('rick-install verify finds no drift', verify.code === 0, `exit ${verify.code}`);
      await expectActive('after the recovery');
      await expectServing('after the recovery', 60_000);
    });
  });

  it('8. after a restart of the host the services come back from the installed generation', async () => {
    await step('8. host restart', async () => {
      const before = await status();
      await host.stop();
      await host.boot();
      await host.exec(['systemctl', 'stop', 'rick-update.timer'], { allowFail: true });
      const s = await status();
      check(
        'the same generation is live',
        s.live === before.live,
        `${s.live}, before ${before.live}`,
      );
      const link = await host.exec(['readlink', '/etc/containers/systemd/rick'], { quiet: true });
      check(
        '/etc/containers/systemd/rick leads to the live generation',
        link.stdout.trim() === '/var/lib/rick/current/quadlet',
        link.stdout.trim(),
      );
      for (const unit of UNITS) {
        const source = await host.show(unit, 'SourcePath');
        check(
          `${unit} is generated at boot from the live generation's unit`,
          source.startsWith(`/var/lib/rick/generations/${s.live}/quadlet/`),
          source,
        );
      }
      check('authentik 1.3.0 is live', (await liveVersion()) === '1.3.0');
      await infrastructureChecklist('after the restart');
    });
  });

  it('every step passed', () => {
    check('no step failed', failed.length === 0, failed.join('; '));
  });
});
