/**
 * End to end on a real systemd host: the real authentik bundle, built and
 * signed as CI does, bootstrapped from a loopback release feed on a Debian 13
 * host (systemd-nspawn) with native PostgreSQL and Valkey on Unix sockets and
 * a loopback image registry, then upgraded, reconfigured, given a rotated
 * secret, refused, broken, rolled back, interrupted and rebooted. Each step
 * prints what it checked; a failure step asserts its cause (the unit and the
 * journal or log line that show it), and a failed step prints the units'
 * status and journal.
 *
 * Run as root: `npm run test:e2e`. The test host's root is cached under
 * /var/cache/rick-e2e (RICK_E2E_CACHE); RICK_E2E_KEEP=1 keeps the host's
 * directory after the run for inspection. test/e2e/README.md describes every
 * step and what it proves.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, cp, mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { ExitCode } from '../../src/errors.js';
import { diffTrees, snapshotTree, type TreeSnapshot } from '../helpers/tree-snapshot.js';
import { log, repo, run, TestHost } from './testhost.js';

const FEED_PORT = 8089;
const FEED_REPO = 'acme/rick-releases';
const FEED_URL = `http://127.0.0.1:${FEED_PORT}/repos/${FEED_REPO}/releases`;
const DOWNLOAD = `http://127.0.0.1:${FEED_PORT}/${FEED_REPO}/releases/download`;
const HEALTH_URL = 'http://127.0.0.1:9000/-/health/live/';
const FEED_DIR = '/srv/rick-e2e-feed';
/** The loopback registry inside the host (scripts/e2e/testhost.sh configures it). */
const REGISTRY = 'localhost:5000';
const IMAGE = `${REGISTRY}/authentik-standin`;
const WORKER_IMAGE = `${REGISTRY}/authentik-standin-worker`;
/** The stand-in built to run `ak upgrade-db …`, a command it does not know: it exits at start. */
const CRASH_IMAGE = `${REGISTRY}/authentik-standin-crash`;
/** The names the host's Caddy serves the bundles' sites at (plain HTTP on the test host). */
const AUTH_HOST = 'auth.e2e.test';
const GIT_HOST = 'git.e2e.test';
/** The stand-in plays Gitea under the gitea bundle's own tag scheme (<version>-rootless). */
const GITEA_IMAGE = `${REGISTRY}/gitea-standin`;
const GITEA_TAG = '1.0.0';
/** A Gitea stand-in image whose health check fails (publish-image.sh --command unhealthy). */
const GITEA_BROKEN_TAG = '1.0.1';
const CADDY_LINE = 'import {$RICK_CADDY_SITES:/etc/caddy/rick}/*.caddy';
/** A tag that is never pushed: its pull must fail. */
const MISSING_TAG = '2099.1.0';
/** The tag step 31 pins by its digest, then moves to another image. */
const PINNED_TAG = '2026.1.0';
const UNITS = ['authentik-pod.service', 'authentik-server.service', 'authentik-worker.service'];
const DIAGNOSED = [
  ...UNITS,
  'rick-update.service',
  'rick-update.timer',
  'rick-e2e-interrupted.service',
  'docker-registry.service',
  'caddy.service',
  'gitea.service',
  'rick-e2e-index.service',
];
/** What systemd logs when a container's start fails because its pod stopped under it. */
const DEPENDENCY_FAILURE =
  /Bound to unit \S+, but unit isn't active|failed with result 'dependency'/;
const TIMER_DROP_IN = '/etc/systemd/system/rick-update.timer.d/50-e2e-soon.conf';
/**
 * The signed release index (steps 22 to 24), served by a second Caddy of the
 * host's own package: GitHub's `releases/latest/download/` answered by two
 * 302s, the second to another origin (the object store), which serves the
 * files with ETags and 304s.
 */
const INDEX_PORT = 8092;
const STORE_PORT = 8093;
const INDEX_TAG = 'v1.9.0';
const INDEX_URL = `http://127.0.0.1:${INDEX_PORT}/${FEED_REPO}/releases/latest/download/index.json`;
const INDEX_STORE = '/srv/rick-e2e-index';
const INDEX_CADDYFILE = '/etc/rick-e2e/index.Caddyfile';
const INDEX_UNIT = 'rick-e2e-index.service';
/** node-exporter's textfile directory: the test host has none until step 22 makes it. */
const METRICS_FILE = '/var/lib/prometheus/node-exporter/rick.prom';

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

/** The exit code of a refused image pull (src/errors.ts), if the tree has one. */
const imagePullExitCode: number | undefined = (ExitCode as Record<string, number>).imagePull;

interface Release {
  version: string;
  tag: string;
  dir: string;
  tgz: string;
}

let host: TestHost;
let work: string;
/** The image tag the bundle names by default, and the one a version bump moves to. */
let oldTag: string;
let newTag: string;
let infra: Record<string, string>;
/** The host's authentik_secret_key as the operator first wrote it (step 8 rotates it). */
const firstSecretKey = `e2e-${Date.now().toString(36)}-not-a-real-key`;
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
  history: Array<{
    generation: number;
    bundle?: string;
    version: string;
    outcome: string;
    detail?: string;
  }>;
}

async function status(): Promise<Status> {
  const r = await host.exec(['rick-install', 'status', '--json'], { quiet: true });
  return JSON.parse(r.stdout) as Status;
}

async function liveVersion(): Promise<string | undefined> {
  return (await status()).bundles.find((b) => b.name === 'authentik')?.version;
}

async function quarantined(): Promise<string[]> {
  return (await status()).bundles.find((b) => b.name === 'authentik')?.quarantined ?? [];
}

/** Each unit's MainPID and InvocationID: both change when systemd restarts it. */
async function identities(): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const unit of UNITS) {
    out[unit] =
      `${await host.show(unit, 'MainPID')}/${await host.show(unit, 'InvocationID')}`.trim();
  }
  return out;
}

async function expectActive(context: string): Promise<void> {
  for (const unit of UNITS) {
    const state = await host.show(unit, 'ActiveState');
    check(`${unit} is active ${context}`, state === 'active', state);
  }
}

/** Where the host's journal ends now: later reads see only what came after. */
async function journalCursor(): Promise<string> {
  const r = await host.exec(['journalctl', '--no-pager', '-n', '0', '--show-cursor'], {
    quiet: true,
  });
  const cursor = /^-- cursor: (.+)$/m.exec(r.stdout)?.[1];
  if (!cursor) throw new Error(`journalctl printed no cursor: ${r.stdout}`);
  return cursor;
}

/** The journal lines of units since a cursor (message text only), at `priority` or higher if given. */
async function journalSince(cursor: string, units: string[], priority?: string): Promise<string> {
  const r = await host.exec(
    [
      'journalctl',
      '--no-pager',
      '-o',
      'cat',
      ...(priority ? ['-p', priority] : []),
      `--after-cursor=${cursor}`,
      ...units.flatMap((u) => ['-u', u]),
    ],
    { quiet: true, allowFail: true },
  );
  return r.stdout;
}

/** No container start failed because its pod went away under it (issue 10's failure). */
async function expectNoDependencyFailure(cursor: string): Promise<void> {
  const journal = await journalSince(cursor, UNITS);
  const line = journal.split('\n').find((l) => DEPENDENCY_FAILURE.test(l));
  check(
    "no unit's start failed on its pod (no \"Bound to unit … isn't active\", no result 'dependency')",
    line === undefined,
    line ?? '',
  );
}

/** Snapshot of everything an install writes: the live units and rick's state. */
async function hostTrees(): Promise<Record<string, TreeSnapshot>> {
  const out: Record<string, TreeSnapshot> = {};
  for (const dir of ['etc/containers/systemd', 'var/lib/rick', 'etc/rick']) {
    out[dir] = await snapshotTree(join(host.root, dir));
  }
  return out;
}

async function expectTreesUnchanged(before: Record<string, TreeSnapshot>): Promise<void> {
  const after = await hostTrees();
  for (const [dir, snapshot] of Object.entries(before)) {
    const diff = diffTrees(snapshot, after[dir] ?? []);
    check(
      `/${dir} is unchanged (${snapshot.length} entries compared)`,
      diff.length === 0,
      diff.join('; '),
    );
  }
}

/** What a refusal must leave as it was: the trees an install writes, and (with `units`) authentik's units. */
interface HostBefore {
  trees: Record<string, TreeSnapshot>;
  units?: Record<string, string>;
}

async function hostBefore(options: { units?: boolean } = {}): Promise<HostBefore> {
  return {
    trees: await hostTrees(),
    ...(options.units ? { units: await identities() } : {}),
  };
}

/**
 * A refusal changed nothing: the trees as `before` found them, no unit of
 * authentik restarted (when `before` has them), and the version that was
 * live still is.
 */
async function expectRefusedUnchanged(
  before: HostBefore,
  still?: { bundle: string; version: string },
): Promise<void> {
  await expectTreesUnchanged(before.trees);
  if (before.units) {
    check(
      'no service restarted',
      JSON.stringify(await identities()) === JSON.stringify(before.units),
    );
  }
  if (still) {
    const live = (await status()).bundles.find((b) => b.name === still.bundle)?.version;
    check(`${still.bundle} ${still.version} is still live`, live === still.version, `${live}`);
  }
}

/** rick-install <bundle> refused with `code`; the error line names what `names` says. */
async function expectInstallRefused(
  path: string,
  code: number,
  what: string,
  names: (error: string, out: string) => boolean,
): Promise<string> {
  const out = await rickInstall(path, code);
  const error = out.split('\n').find((l) => l.startsWith('error ')) ?? '';
  check(what, names(error, out), error || out);
  return out;
}

async function expectVerifyClean(): Promise<void> {
  const verify = await host.exec(['rick-install', 'verify'], { allowFail: true });
  check(
    'rick-install verify finds no drift',
    verify.code === 0,
    `exit ${verify.code}${verify.code === 0 ? '' : `: ${verify.stdout}${verify.stderr}`}`,
  );
}

/** Publishes a stand-in image in the loopback registry; `command` makes one that runs `ak COMMAND`. */
async function publishImage(refs: string[], command?: string): Promise<void> {
  await host.exec(
    [
      'sh',
      '/usr/local/lib/rick-e2e/publish-image.sh',
      ...(command ? ['--command', command] : []),
      ...refs,
    ],
    { timeoutMs: 600_000 },
  );
}

/**
 * A bundle of one container as another tool (an Ansible role) deployed it
 * before rick: the unit text is the same on both sides, written by hand into
 * /etc/containers/systemd by the step and built into a bundle here.
 */
function adoptUnit(): string {
  return [
    '[Unit]',
    'Description=rick e2e: a service another tool deployed, then adopted',
    '',
    '[Container]',
    'ContainerName=e2e-adopt',
    `Image=${IMAGE}:${newTag}`,
    'Exec=worker',
    'User=65534:65534',
    '',
    '[Service]',
    'Restart=always',
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ].join('\n');
}

async function writeAdoptBundle(): Promise<string> {
  const dir = await mkdtemp(join(work, 'e2e-adopt-'));
  await mkdir(join(dir, 'quadlet'));
  await writeFile(
    join(dir, 'bundle.yaml'),
    [
      'name: e2e-adopt',
      'files:',
      '  quadlet: [quadlet/e2e-adopt.container]',
      'services:',
      '  - unit: e2e-adopt.container',
      // A literal host user and group: beyond the restricted profile.
      'needs:',
      '  users: ["65534"]',
      '  groups: ["65534"]',
      '',
    ].join('\n'),
  );
  await writeFile(join(dir, 'quadlet/e2e-adopt.container'), adoptUnit());
  return dir;
}

/** Builds and signs a bundle with the real rick-bundle. */
async function buildRelease(
  version: string,
  vars: Record<string, string>,
  bundle = 'authentik',
  options: { bundleDir?: string; extra?: string[] } = {},
): Promise<Release> {
  requirePiece(rickBundle, 'rick-bundle (npm run build)');
  requirePiece(installerFile, 'the single-file installer (npm run build:installer)');
  // The test host has no public name: Caddy serves the site over plain HTTP.
  if (bundle === 'authentik') vars = { authentik_site_address: `http://${AUTH_HOST}`, ...vars };
  const dir = join(work, bundle === 'authentik' ? `v${version}` : `${bundle}-v${version}`);
  await mkdir(dir, { recursive: true });
  const varsFile = join(dir, 'vars.yaml');
  await writeFile(
    varsFile,
    Object.entries(vars)
      .map(([k, v]) => `${k}: ${JSON.stringify(v)}\n`)
      .join(''),
  );
  const bundleDir = options.bundleDir ?? join(repo, `bundles/${bundle}`);
  log(
    `$ rick-bundle build ${bundleDir.replace(`${repo}/`, '')} --version ${version} --vars ${varsFile} ${(options.extra ?? []).join(' ')}`,
  );
  log(`    vars: ${JSON.stringify(vars)}`);
  await run('node', [
    rickBundle,
    'build',
    bundleDir,
    ...(options.extra ?? []),
    '--version',
    version,
    '--vars',
    varsFile,
    '--out',
    dir,
    '--installer',
    installerFile,
  ]);
  const tgz = join(dir, `${bundle}-${version}.tgz`);
  log(`$ rick-bundle sign ${tgz} --key signing-key.asc`);
  await run('node', [rickBundle, 'sign', tgz, '--key', join(work, 'key/signing-key.asc')]);
  const release = { version, tag: `v${version}`, dir, tgz };
  if (bundle === 'authentik') releases.set(version, release);
  return release;
}

/**
 * `rick-bundle pin` of this machine on a bundle directory, run in the test
 * host's network namespace (nsenter --net into its init): the loopback
 * registry answers only there. Returns what pin printed.
 */
async function pinInHostNetwork(bundleDir: string, vars: Record<string, string>): Promise<string> {
  requirePiece(rickBundle, 'rick-bundle (npm run build)');
  const varsFile = `${bundleDir}.vars.yaml`;
  await writeFile(
    varsFile,
    Object.entries(vars)
      .map(([k, v]) => `${k}: ${JSON.stringify(v)}\n`)
      .join(''),
  );
  log(`    vars: ${JSON.stringify(vars)}`);
  const r = await host.execInNetwork('node', [rickBundle, 'pin', bundleDir, '--vars', varsFile]);
  return r.stdout;
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

/** Copies a bundle and its signature into the host, for an install by hand. */
async function copyBundleIn(release: Release, tgz = release.tgz): Promise<string> {
  const path = `/root/bundles/${release.tgz.split('/').at(-1)}`;
  await host.copyIn(tgz, path);
  await host.copyIn(`${release.tgz}.sig`, `${path}.sig`);
  return path;
}

async function rickUpdate(expectCode: number): Promise<string> {
  const r = await host.exec(['rick-install', 'update'], { allowFail: true, timeoutMs: 600_000 });
  check(`rick-install update exits ${expectCode}`, r.code === expectCode, `exit ${r.code}`);
  return `${r.stdout}${r.stderr}`;
}

/** rick-install <bundle> by hand, as an operator runs it. */
async function rickInstall(
  path: string,
  expectCode: number,
  flags: string[] = [],
): Promise<string> {
  const r = await host.exec(['rick-install', path, ...flags], {
    allowFail: true,
    timeoutMs: 600_000,
  });
  check(
    `rick-install ${[path, ...flags].join(' ')} exits ${expectCode}`,
    r.code === expectCode,
    `exit ${r.code}`,
  );
  return `${r.stdout}${r.stderr}`;
}

async function containerPid(name: string): Promise<string> {
  const r = await host.exec(['podman', 'inspect', '--format', '{{.State.Pid}}', name], {
    quiet: true,
  });
  return r.stdout.trim();
}

async function imageOf(container: string): Promise<string> {
  const r = await host.exec(['podman', 'inspect', '--format', '{{.ImageName}}', container], {
    quiet: true,
  });
  return r.stdout.trim();
}

async function imageExists(ref: string): Promise<boolean> {
  const r = await host.exec(['podman', 'image', 'exists', ref], { allowFail: true, quiet: true });
  return r.code === 0;
}

/** A variable of the container's environment, as its process sees it (the image has `env`). */
async function containerEnv(container: string, name: string): Promise<string> {
  const r = await host.exec(['podman', 'exec', container, 'env'], { quiet: true, allowFail: true });
  const line = r.stdout.split('\n').find((l) => l.startsWith(`${name}=`));
  return line === undefined ? '' : line.slice(name.length + 1);
}

async function groupsOf(pid: string): Promise<string[]> {
  const r = await host.exec(['cat', `/proc/${pid}/status`], { quiet: true });
  const line = r.stdout.split('\n').find((l) => l.startsWith('Groups:')) ?? '';
  log(`    /proc/${pid}/status ${line.trim()}`);
  return line.replace('Groups:', '').trim().split(/\s+/).filter(Boolean);
}

/** The registry's own log of the requests for a repository's manifests since a cursor. */
async function registryManifestRequests(cursor: string, repository: string): Promise<string[]> {
  const journal = await journalSince(cursor, ['docker-registry.service']);
  // Its access log: "GET /v2/NAME/manifests/REF HTTP/1.1" STATUS …
  const request = new RegExp(`"GET /v2/${repository}/manifests/\\S+ HTTP/[\\d.]+" \\d{3}`);
  return journal.split('\n').filter((l) => request.test(l));
}

/** What a client accepts of a tag's manifest: OCI and Docker, single-platform and index. */
const MANIFEST_ACCEPT = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');

/** The digest the loopback registry names for a tag now: HEAD on its manifest, `Docker-Content-Digest`. */
async function registryDigest(repository: string, tag: string): Promise<string> {
  const url = `http://${REGISTRY}/v2/${repository}/manifests/${tag}`;
  const r = await host.exec(['curl', '-fsS', '-I', '-H', `Accept: ${MANIFEST_ACCEPT}`, url], {
    quiet: true,
  });
  const digest = /^docker-content-digest:\s*(\S+)/im.exec(r.stdout)?.[1] ?? '';
  log(`    HEAD ${url}: Docker-Content-Digest ${digest || '(none)'}`);
  return digest;
}

/**
 * The image a container runs, as podman records it: the digest it was
 * created from (`.ImageDigest`), and the digest of the image its ID names.
 */
async function runningDigests(container: string): Promise<{ recorded: string; ofId: string }> {
  const r = await host.exec(
    ['podman', 'inspect', '--format', '{{.ImageDigest}} {{.Image}} {{.ImageName}}', container],
    { quiet: true },
  );
  const [recorded = '', id = '', name = ''] = r.stdout.trim().split(' ');
  const image = await host.exec(['podman', 'image', 'inspect', '--format', '{{.Digest}}', id], {
    quiet: true,
  });
  const ofId = image.stdout.trim();
  log(
    `    podman inspect ${container}: ImageDigest ${recorded}, Image ${id} (digest ${ofId}), ImageName ${name}`,
  );
  return { recorded, ofId };
}

/** Both of authentik's containers run the image of `digest`, by podman's own record and by image ID. */
async function expectRunningDigest(digest: string, context: string): Promise<void> {
  for (const container of ['authentik-server', 'authentik-worker']) {
    const { recorded, ofId } = await runningDigests(container);
    check(
      `podman inspect: ${container} runs ${digest} ${context}`,
      recorded === digest && ofId === digest,
      `ImageDigest ${recorded}, its image's digest ${ofId}`,
    );
  }
}

/**
 * Every image was pulled before the swap: the installer names each image it
 * pulled before it says the new generation is live.
 */
function expectPulledBeforeSwap(out: string, images: string[]): void {
  const lines = out.split('\n');
  const live = lines.findIndex((l) => /generation \d+ is live$/.test(l.trim()));
  check('the installer made a new generation live', live >= 0);
  for (const image of images) {
    // `image REF: pulled in 1.2s (Pull=missing; for …)`; not the plan's `pull    REF` line.
    const pulled = lines.findIndex((l) => l.trim().startsWith(`image ${image}: pulled in `));
    check(
      `the installer pulled ${image} before the swap`,
      pulled >= 0 && pulled < live,
      pulled >= 0 ? `line ${pulled + 1}: ${lines[pulled]!.trim()}` : 'no pull line names it',
    );
  }
}

interface CaddyAnswer {
  status: string;
  body: string;
  location: string;
}

/** A request through the host's Caddy to a site, as a browser of that site makes it. */
async function throughCaddy(
  site: string,
  path: string,
  headers: Record<string, string> = {},
): Promise<CaddyAnswer> {
  const args = ['curl', '-s', '--max-time', '10', '-w', '\n%{http_code} %{redirect_url}'];
  args.push('-H', `Host: ${site}`);
  for (const [name, value] of Object.entries(headers)) args.push('-H', `${name}: ${value}`);
  args.push(`http://127.0.0.1${path}`);
  const r = await host.exec(args, { allowFail: true, quiet: true });
  const lines = r.stdout.split('\n');
  const [status = 'no answer', location = ''] = (lines.pop() ?? '').split(' ');
  const answer = { status: status || 'no answer', body: lines.join('\n'), location };
  log(
    `    curl -H 'Host: ${site}' ${Object.keys(headers).length ? `(${Object.keys(headers).join(', ')}) ` : ''}http://127.0.0.1${path}: ${answer.status}${location ? ` -> ${location}` : ''} ${answer.body.slice(0, 160)}`,
  );
  return answer;
}

/** What the Gitea stand-in saw of a request (it answers with the identity headers it received). */
function giteaSaw(answer: CaddyAnswer): Record<string, string | null> {
  try {
    return JSON.parse(answer.body) as Record<string, string | null>;
  } catch {
    return {};
  }
}

/**
 * Gitea's role and database as PostgreSQL's catalog has them, asked as the
 * postgres system user: `<roles named gitea> <owner of database gitea or none>`.
 */
async function giteaCatalog(): Promise<string> {
  const r = await host.exec(
    [
      'runuser',
      '-u',
      'postgres',
      '--',
      'psql',
      '-X',
      '-tAc',
      "select (select count(*) from pg_roles where rolname = 'gitea') || ' ' || coalesce((select pg_get_userbyid(datdba) from pg_database where datname = 'gitea'), 'none')",
    ],
    { quiet: true },
  );
  log(`    pg_roles and pg_database for gitea: ${r.stdout.trim()}`);
  return r.stdout.trim();
}

/** A secret's value in the host's secrets file of a bundle (/etc/rick/secrets/<bundle>.env). */
async function hostSecret(bundle: string, name: string): Promise<string> {
  const text = await readFile(join(host.root, `etc/rick/secrets/${bundle}.env`), 'utf8');
  const line = text.split('\n').find((l) => l.startsWith(`${name}=`));
  if (line === undefined) throw new Error(`/etc/rick/secrets/${bundle}.env has no ${name}`);
  return line.slice(name.length + 1).replace(/^'(.*)'$/, '$1');
}

interface GiteaLogin {
  code: number;
  /** psql's answer to `select current_user, current_database()`, or its error. */
  answer: string;
  uid: string;
  groups: string[];
}

/**
 * Logs in to PostgreSQL from inside the gitea container, as its process
 * runs (its UID and groups), through the socket directory it mounts, as
 * role gitea to database gitea with `password`. The shell prints its own
 * Uid and Groups first (builtins only: the stand-in has no `id`).
 */
async function giteaLogin(password: string, which: string): Promise<GiteaLogin> {
  log(
    `[host]$ podman exec --env PGPASSWORD=(${which}) gitea sh -c '… psql -h /var/run/postgresql -U gitea -d gitea -tAc "select current_user, current_database()"'`,
  );
  const r = await host.exec(
    [
      'podman',
      'exec',
      '--env',
      `PGPASSWORD=${password}`,
      'gitea',
      'sh',
      '-c',
      'while read -r k v; do case $k in Uid:|Groups:) echo "$k $v";; esac; done </proc/self/status; ' +
        'psql -X -w -h /var/run/postgresql -U gitea -d gitea -tAc "select current_user, current_database()" 2>&1',
    ],
    { allowFail: true, quiet: true },
  );
  const lines = r.stdout.trim().split('\n');
  const field = (k: string) =>
    (lines.find((l) => l.startsWith(`${k}:`)) ?? '').slice(k.length + 1).trim();
  const answer = lines
    .filter((l) => !/^(Uid|Groups):/.test(l))
    .join(' ')
    .trim();
  log(`    Uid: ${field('Uid')}; Groups: ${field('Groups')}; psql (exit ${r.code}): ${answer}`);
  return {
    code: r.code,
    answer,
    uid: field('Uid').split(/\s+/)[0] ?? '',
    groups: field('Groups').split(/\s+/).filter(Boolean),
  };
}

/** The gitea container's login with `password` succeeds as role gitea in database gitea. */
async function expectGiteaLogin(password: string, which: string): Promise<void> {
  const login = await giteaLogin(password, which);
  const uid = (await host.exec(['id', '-u', 'gitea'], { quiet: true })).stdout.trim();
  check(
    `inside the gitea container (uid ${uid} gitea, group postgres-clients ${infra.PG_CLIENTS_GID}), psql with ${which} logs in as gitea to gitea through /var/run/postgresql`,
    login.code === 0 &&
      login.answer === 'gitea|gitea' &&
      login.uid === uid &&
      login.groups.includes(infra.PG_CLIENTS_GID!),
    `exit ${login.code}, uid ${login.uid}, groups ${login.groups.join(' ')}: ${login.answer}`,
  );
}

async function giteaVersion(): Promise<string | undefined> {
  return (await status()).bundles.find((b) => b.name === 'gitea')?.version;
}

/**
 * A bundle of plain systemd units only, written for the run: a oneshot that
 * touches /run/e2e-marker-<marker> (wanted by multi-user.target) and a timer
 * with its service. `execStart` breaks the oneshot; `withMarker` false drops it.
 */
async function writePlainUnitsBundle(execStart?: string, withMarker = true): Promise<string> {
  const dir = await mkdtemp(join(work, 'e2e-units-'));
  await mkdir(join(dir, 'systemd'));
  const units = [
    ...(withMarker ? ['systemd/e2e-marker.service.j2'] : []),
    'systemd/e2e-tick.timer',
    'systemd/e2e-tick.service',
  ];
  await writeFile(
    join(dir, 'bundle.yaml'),
    [
      'name: e2e-units',
      'variables:',
      '  marker: v0',
      'files:',
      `  systemd: [${units.join(', ')}]`,
      'services:',
      ...(withMarker ? ['  - unit: e2e-marker.service'] : []),
      '  - unit: e2e-tick.timer',
      // Plain units run their commands on the host: beyond the restricted profile.
      'needs:',
      '  service: [ExecStart]',
      '',
    ].join('\n'),
  );
  await writeFile(
    join(dir, 'systemd/e2e-marker.service.j2'),
    `[Unit]\nDescription=rick e2e: a plain unit of a bundle ({{ marker }})\n\n[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=${execStart ?? '/usr/bin/touch /run/e2e-marker-{{ marker }}'}\n\n[Install]\nWantedBy=multi-user.target\n`,
  );
  await writeFile(
    join(dir, 'systemd/e2e-tick.timer'),
    '[Unit]\nDescription=rick e2e: a timer of a bundle\n\n[Timer]\nOnCalendar=hourly\n\n[Install]\nWantedBy=timers.target\n',
  );
  await writeFile(
    join(dir, 'systemd/e2e-tick.service'),
    '[Unit]\nDescription=rick e2e: what the timer runs\n\n[Service]\nType=oneshot\nExecStart=/bin/true\n',
  );
  return dir;
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
    // podman runs with cgroups on the test host (README: cgroups): quadlet's
    // --cgroups=split puts the container in its own cgroup inside its unit's.
    const id = (
      await host.exec(['podman', 'inspect', '--format', '{{.Id}}', container], { quiet: true })
    ).stdout.trim();
    const cgroup = /^0::(.*)$/m.exec(
      (await host.exec(['cat', `/proc/${pid}/cgroup`], { quiet: true })).stdout,
    )?.[1];
    check(
      `${container}'s process sits in its own cgroup under ${container}.service in system.slice`,
      cgroup === `/system.slice/${container}.service/libpod-payload-${id}`,
      cgroup ?? 'no cgroup v2 line',
    );
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

/**
 * The plan line that restarts a unit: its own (`restart UNIT (… changed)`),
 * the one of the unit that brings it (`restart POD (restarts A, UNIT: …)`),
 * or a rolling restart's (`restart A, then UNIT, one at a time (…)`).
 */
function restartLine(out: string, unit: string): string | undefined {
  return out
    .split('\n')
    .map((l) => l.trim())
    .find(
      (l) =>
        l.startsWith(`restart ${unit} `) ||
        (/^restart \S+ \(restarts /.test(l) && l.split(':')[0]!.includes(unit)) ||
        (/^restart .+, one at a time \(/.test(l) &&
          l
            .slice(0, l.indexOf(', one at a time ('))
            .split(/,? then |\s/)
            .includes(unit)),
    );
}

const ROLLING_PLAN =
  'restart authentik-worker.service, then authentik-server.service, one at a time (';

/**
 * Server and worker restarted one at a time with the pod kept running, as
 * the real host did it: the pod's MainPID and InvocationID unchanged, both
 * containers' changed, and in the journal the worker stopped and started
 * again before the server stopped, and the pod never stopped.
 */
async function expectRollingRestart(
  cursor: string,
  before: Record<string, string>,
  out: string,
): Promise<void> {
  const [pod, server, worker] = UNITS as [string, string, string];
  const after = await identities();
  log(`    MainPID/InvocationID before: ${JSON.stringify(before)}`);
  log(`    MainPID/InvocationID after: ${JSON.stringify(after)}`);
  check(
    'the plan restarts the worker, then the server, one at a time',
    out.includes(ROLLING_PLAN),
    restartLine(out, server) ?? 'no restart line names the server',
  );
  check(
    'the installer restarted the worker, then the server',
    out.includes(`restarted ${worker}, then ${server}`),
  );
  check(
    'the pod kept its MainPID and InvocationID',
    before[pod] === after[pod],
    `${before[pod]} -> ${after[pod]}`,
  );
  for (const unit of [server, worker]) {
    const invocation = (id: string | undefined) => id?.split('/')[1];
    check(
      `${unit} has a new InvocationID`,
      invocation(before[unit]) !== invocation(after[unit]),
      `${before[unit]} -> ${after[unit]}`,
    );
  }
  const journal = (await journalSince(cursor, UNITS)).split('\n');
  const at = (re: RegExp) => journal.findIndex((l) => re.test(l));
  const order = [
    at(/^Stopping authentik-worker\.service/),
    at(/^Started authentik-worker\.service/),
    at(/^Stopping authentik-server\.service/),
    at(/^Started authentik-server\.service/),
  ];
  check(
    'the journal has the worker stopped and started before the server stopped, then the server started',
    order.every((i, n) => i >= 0 && (n === 0 || i > order[n - 1]!)),
    `line numbers ${order.join(' < ')}`,
  );
  const podStop = journal.find((l) => /^(Stopping|Stopped) authentik-pod\.service/.test(l));
  check('the journal never has the pod stopping', podStop === undefined, podStop ?? '');
}

/**
 * The end of a rolling restart that went right: server and worker one at a
 * time (expectRollingRestart), no start failed on its pod, every unit
 * active and the service answering.
 */
async function expectRolledOutAndServing(
  cursor: string,
  before: Record<string, string>,
  out: string,
  context: string,
  timeoutMs?: number,
): Promise<void> {
  await expectRollingRestart(cursor, before, out);
  await expectNoDependencyFailure(cursor);
  await expectActive(context);
  await expectServing(context, timeoutMs);
}

/** Server and worker were restarted (their MainPID/InvocationID changed since `before`). */
async function expectBothRestarted(before: Record<string, string>): Promise<void> {
  const after = await identities();
  for (const unit of ['authentik-server.service', 'authentik-worker.service']) {
    check(`${unit} was restarted`, before[unit] !== after[unit]);
  }
}

/** The next patch version of a dotted version: the tag a version bump moves to. */
function nextPatch(version: string): string {
  const parts = version.split('.');
  const last = Number(parts.at(-1));
  if (!Number.isInteger(last)) throw new Error(`cannot bump version ${version}`);
  return [...parts.slice(0, -1), String(last + 1)].join('.');
}

/**
 * Lets rick-update.timer fire on its own, two seconds after it is started,
 * and waits until rick-update.service's journal since `cursor` matches
 * `done` and the run has ended. Returns that journal; checks that the timer,
 * not the test, started the service.
 *
 * Test-only drop-in: the timer elapses two seconds after it starts, with no
 * random delay, instead of minutes after boot and then hourly. (Not a
 * shorter OnBootSec: systemd does not fire a boot-relative trigger that
 * passed before the timer's last trigger, and bootstrap.sh started the
 * timer once already.)
 */
async function timerTick(cursor: string, done: RegExp): Promise<string> {
  const triggeredBefore = await host.show('rick-update.timer', 'LastTriggerUSec');
  await host.writeFile(
    TIMER_DROP_IN,
    [
      '[Timer]',
      'OnBootSec=',
      'OnCalendar=',
      'OnActiveSec=2s',
      'OnUnitActiveSec=1h',
      'RandomizedDelaySec=0',
      'AccuracySec=1s',
      '',
    ].join('\n'),
    '0644',
  );
  await host.exec(['systemctl', 'daemon-reload']);
  await host.exec(['systemctl', 'start', 'rick-update.timer']);
  let journal = '';
  try {
    journal = await until(`rick-update.service logs ${done}`, 300_000, async () => {
      const j = await journalSince(cursor, ['rick-update.service']);
      const state = await host.show('rick-update.service', 'ActiveState');
      return done.test(j) && state !== 'activating' ? j : undefined;
    });
  } finally {
    await host.exec(['systemctl', 'stop', 'rick-update.timer']);
    await host.exec(['rm', '-f', TIMER_DROP_IN]);
    await host.exec(['systemctl', 'daemon-reload']);
  }
  log(journal.trimEnd().replace(/^/gm, '    [rick-update] '));
  const triggered = await host.show('rick-update.timer', 'LastTriggerUSec');
  check(
    'rick-update.timer fired',
    triggered !== '' && triggered !== 'n/a' && triggered !== triggeredBefore,
    `LastTriggerUSec ${triggeredBefore || '(never)'} -> ${triggered}`,
  );
  return journal;
}

/**
 * Runs the installer as a transient unit held right after its flip of
 * `current` (RICK_FAULT_WAIT_AT, a test-only hook), kills it there with
 * SIGKILL and waits until it is gone. Returns where `current` pointed then.
 */
async function killAfterFlip(unit: string, command: string[]): Promise<string> {
  const before = (
    await host.exec(['readlink', '/var/lib/rick/current'], { quiet: true })
  ).stdout.trim();
  await host.exec([
    'systemd-run',
    `--unit=${unit}`,
    '--setenv=RICK_FAULT_WAIT_AT=flipped:/run/rick-e2e-never',
    ...command,
  ]);
  const flipped = await until(`the install of ${unit} flips current`, 180_000, async () => {
    const now = (
      await host.exec(['readlink', '/var/lib/rick/current'], { quiet: true })
    ).stdout.trim();
    const state = await host.show(`${unit}.service`, 'ActiveState');
    if (state !== 'active' && state !== 'activating') {
      throw new Error(`the install ended before the flip (ActiveState=${state})`);
    }
    return now !== before ? now : undefined;
  });
  log(`    current: ${before} -> ${flipped}; killing the installer with SIGKILL`);
  await host.exec(['systemctl', 'kill', '--signal=SIGKILL', `${unit}.service`]);
  await until('the killed installer is gone', 30_000, async () => {
    const state = await host.show(`${unit}.service`, 'ActiveState');
    return state === 'active' || state === 'activating' || state === 'deactivating'
      ? undefined
      : state;
  });
  return flipped;
}

/**
 * An interrupted install settled: the live generation confirmed again,
 * `version` live, no drift, no start failed on its pod, every unit active
 * and the service answering.
 */
async function expectRecovered(cursor: string, version: string, context: string): Promise<void> {
  const s = await status();
  check(
    'the live generation is confirmed again',
    s.live !== undefined && s.live === s.confirmed,
    `${s.live} / ${s.confirmed}`,
  );
  check(`authentik ${version} is live`, (await liveVersion()) === version);
  await expectVerifyClean();
  await expectNoDependencyFailure(cursor);
  await expectActive(context);
  await expectServing(context, 60_000);
}

/** rick-update.service's journal lines since a cursor at warning priority or higher. */
async function warningsSince(cursor: string): Promise<string> {
  return journalSince(cursor, ['rick-update.service'], 'warning');
}

/** Runs `rick-bundle index` on this machine, as the release workflows do. */
async function signIndex(out: string, args: string[]): Promise<string> {
  log(`$ rick-bundle index --key signing-key.asc --out ${out} ${args.join(' ')}`);
  await run('node', [
    rickBundle,
    'index',
    '--key',
    join(work, 'key/signing-key.asc'),
    '--out',
    out,
    ...args,
  ]);
  return join(out, 'index.json');
}

/**
 * An index `rick-bundle index` would not sign: the previous one re-signed,
 * issued at `issued` and valid for `validForMs`, by its own planner and key.
 */
async function signExpiredIndex(
  out: string,
  previous: string,
  issued: Date,
  validForMs: number,
): Promise<string> {
  const { planIndex } = await import('../../src/build/release-index.js');
  const { parseIndex, serializeIndex } = await import('../../src/bundle/release-index.js');
  const { readSigningKey, signDetached } = await import('../../src/bundle/openpgp.js');
  log(`signing an index issued ${issued.toISOString()}, valid for ${validForMs} ms, in-process`);
  const key = await readSigningKey(
    await readFile(join(work, 'key/signing-key.asc'), 'utf8'),
    process.env.RICK_SIGNING_PASSPHRASE || undefined,
  );
  const before = parseIndex(await readFile(previous, 'utf8'), previous);
  const { index } = planIndex(
    before,
    { add: [], rollout: [], yank: [], unyank: [] },
    issued,
    validForMs,
  );
  const text = serializeIndex(index);
  await mkdir(out, { recursive: true });
  await writeFile(join(out, 'index.json.sig'), await signDetached(Buffer.from(text), key));
  await writeFile(join(out, 'index.json'), text);
  return join(out, 'index.json');
}

/**
 * Publishes an index (and files) in the object store's directory of the
 * release, each file by rename, the signature before the index as the
 * release workflows upload them.
 */
async function publishIndex(files: string[]): Promise<void> {
  const release = join(host.root, INDEX_STORE, INDEX_TAG);
  await mkdir(release, { recursive: true });
  const names = files.map((f) => f.split('/').at(-1) as string);
  for (const [i, file] of files.entries()) {
    const target = join(release, names[i] as string);
    await copyFile(file, `${target}.tmp`);
    await rename(`${target}.tmp`, target);
  }
  log(`published in ${INDEX_STORE}/${INDEX_TAG}: ${names.join(', ')}`);
}

/** The Caddy access log lines (status and URI) of the index server since a cursor. */
async function indexServerRequests(cursor: string): Promise<string[]> {
  const journal = await journalSince(cursor, [INDEX_UNIT]);
  const out: string[] = [];
  for (const line of journal.split('\n')) {
    try {
      const entry = JSON.parse(line) as {
        msg?: string;
        status?: number;
        request?: { host?: string; uri?: string };
      };
      if (entry.msg === 'handled request') {
        out.push(`${entry.status} ${entry.request?.host}${entry.request?.uri}`);
      }
    } catch {
      // Caddy's other log lines.
    }
  }
  log(out.map((l) => `    [caddy] ${l}`).join('\n'));
  return out;
}

async function readMetrics(): Promise<string> {
  return readFile(join(host.root, METRICS_FILE), 'utf8').catch(() => '');
}

beforeAll(async () => {
  if (process.getuid?.() !== 0) {
    throw new Error('the end-to-end suite must run as root (systemd-nspawn, nsenter, podman)');
  }
  const definition = parseYaml(
    await readFile(join(repo, 'bundles/authentik/bundle.yaml'), 'utf8'),
  ) as { variables?: Record<string, unknown> };
  oldTag = String(definition.variables?.authentik_version ?? '');
  if (!oldTag) throw new Error('bundles/authentik/bundle.yaml has no authentik_version');
  newTag = nextPatch(oldTag);
  work = await mkdtemp('/var/tmp/rick-e2e-work.');

  log('=== test host');
  host = await TestHost.create();
  await host.boot();
  infra = await host.infra();
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
      const stat = await host.exec([
        'stat',
        '-c',
        '%n|%F|%a|%U|%G',
        '/var/run/postgresql',
        '/var/run/postgresql/.s.PGSQL.5432',
        '/var/run/valkey',
        '/var/run/valkey/valkey.sock',
      ]);
      const entries = new Map(
        stat.stdout
          .trim()
          .split('\n')
          .map((l) => {
            const [name, type, mode, owner, group] = l.split('|');
            return [name!, { type, mode, owner, group }] as const;
          }),
      );
      const expectEntry = (
        path: string,
        want: { type: string; mode: string; owner: string; group: string },
      ) => {
        const got = entries.get(path);
        check(
          `${path} is a ${want.type} of mode ${want.mode}, ${want.owner}:${want.group}`,
          got !== undefined &&
            got.type === want.type &&
            got.mode === want.mode &&
            got.owner === want.owner &&
            got.group === want.group,
          got ? `${got.type} ${got.mode} ${got.owner}:${got.group}` : 'missing',
        );
      };
      // The directories are the gate: 0770 of the client group. PostgreSQL's
      // socket keeps its default mode (0777), so that the directory alone
      // decides; Valkey's is 0770 (unixsocketperm) and in the client group too.
      expectEntry('/var/run/postgresql', {
        type: 'directory',
        mode: '770',
        owner: 'postgres',
        group: 'postgres-clients',
      });
      expectEntry('/var/run/postgresql/.s.PGSQL.5432', {
        type: 'socket',
        mode: '777',
        owner: 'postgres',
        group: 'postgres',
      });
      expectEntry('/var/run/valkey', {
        type: 'directory',
        mode: '770',
        owner: 'valkey',
        group: 'valkey-clients',
      });
      expectEntry('/var/run/valkey/valkey.sock', {
        type: 'socket',
        mode: '770',
        owner: 'valkey',
        group: 'valkey-clients',
      });
      const valkeyGroup = await host.show('valkey-socket-group.service', 'ActiveState');
      check(
        "Valkey's socket group is set by its oneshot unit",
        valkeyGroup === 'active',
        valkeyGroup,
      );
      // The modes above are what keeps others out: a process without the
      // client groups cannot open either socket, one with them can.
      const outsider = await host.exec(
        [
          'setpriv',
          '--reuid=65534',
          '--regid=65534',
          '--clear-groups',
          'sh',
          '-c',
          'psql -h /var/run/postgresql -U authentik -d authentik -tAc "select 1" 2>&1; valkey-cli -s /var/run/valkey/valkey.sock PING 2>&1',
        ],
        { allowFail: true },
      );
      check(
        'without the client groups, both sockets refuse with "Permission denied"',
        (outsider.stdout.match(/Permission denied/g) ?? []).length === 2,
        outsider.stdout.trim().replace(/\n/g, ' | '),
      );
      const member = await host.exec(
        [
          'env',
          `PGPASSWORD=${infra.PG_PASSWORD}`,
          `REDISCLI_AUTH=${infra.VALKEY_PASSWORD}`,
          'setpriv',
          '--reuid=65534',
          `--regid=65534`,
          `--groups=${infra.PG_CLIENTS_GID},${infra.VALKEY_CLIENTS_GID}`,
          'sh',
          '-c',
          'psql -h /var/run/postgresql -U authentik -d authentik -tAc "select 1"; valkey-cli -s /var/run/valkey/valkey.sock PING',
        ],
        { allowFail: true, quiet: true },
      );
      check(
        'with the client groups (and the passwords), both answer',
        member.stdout.trim() === '1\nPONG',
        member.stdout.trim().replace(/\n/g, ' | '),
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

  it('2. the loopback registry holds the stand-in under two tags, and the host has neither', async () => {
    await step('2. registry', async () => {
      const state = await host.show('docker-registry.service', 'ActiveState');
      check("Debian's docker-registry runs", state === 'active', state);
      const tcp = await host.exec(['ss', '-Hltnp', 'sport = :5000'], { quiet: true });
      check(
        'it listens on 127.0.0.1:5000 only',
        tcp.stdout.trim().split('\n').length === 1 && /\s127\.0\.0\.1:5000\s/.test(tcp.stdout),
        tcp.stdout.trim(),
      );
      log(`=== stand-in images ${IMAGE}:${oldTag}, ${IMAGE}:${newTag}, ${WORKER_IMAGE}:${oldTag}`);
      await publishImage([`${IMAGE}:${oldTag}`, `${WORKER_IMAGE}:${oldTag}`]);
      // A different image (it carries its own name), as a new release's would be.
      await publishImage([`${IMAGE}:${newTag}`]);
      const tags = await host.exec([
        'curl',
        '-fsS',
        `http://${REGISTRY}/v2/authentik-standin/tags/list`,
      ]);
      const listed = (JSON.parse(tags.stdout) as { tags: string[] }).tags.sort();
      check(
        `the registry lists ${oldTag} and ${newTag}`,
        JSON.stringify(listed) === JSON.stringify([oldTag, newTag].sort()),
        listed.join(', '),
      );
      for (const ref of [`${IMAGE}:${oldTag}`, `${IMAGE}:${newTag}`, `${WORKER_IMAGE}:${oldTag}`]) {
        check(`${ref} is not in the host's image store`, !(await imageExists(ref)));
      }
    });
  });

  it('3. bootstrap from release 1.0.0 on the loopback feed, as an operator does', async () => {
    await step('3. bootstrap', async () => {
      requirePiece(bootstrapScript, 'installer/bootstrap.sh');
      for (const unit of timerUnits) requirePiece(unit, 'the update timer units');
      const cursor = await journalCursor();
      const v1 = await buildRelease('1.0.0', { authentik_image: IMAGE });
      await publish(v1);
      // What the operator provides: the release key (obtained out of band) and the secrets.
      await host.copyIn(join(work, 'key/signing-key.pub.asc'), '/root/release.asc');
      await host.writeFile(
        '/etc/rick/secrets/authentik.env',
        [
          `authentik_db_password='${infra.PG_PASSWORD}'`,
          `authentik_valkey_password='${infra.VALKEY_PASSWORD}'`,
          `authentik_secret_key='${firstSecretKey}'`,
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
          // --yes: no terminal to ask on; the operator accepts the first release's needs.
          `sh bootstrap.sh --bundle authentik-1.0.0.tgz --key /root/release.asc --feed ${FEED_URL} --bundles authentik --caddy --yes`,
        ].join('\n'),
        { allowFail: true, timeoutMs: 600_000 },
      );
      check('bootstrap.sh exits 0', bootstrap.code === 0, `exit ${bootstrap.code}`);
      check(
        'bootstrap.sh --caddy says it added the import line to the Caddyfile',
        bootstrap.stdout.includes(`bootstrap: added to /etc/caddy/Caddyfile: ${CADDY_LINE}`),
      );
      const caddyfile = await readFile(join(host.root, 'etc/caddy/Caddyfile'), 'utf8');
      check(
        "Debian's Caddyfile keeps its own site and gains the one line",
        caddyfile.includes(':80 {') && caddyfile.trimEnd().endsWith(CADDY_LINE),
      );
      // Authentik runs under the restricted profile with exactly the grant the README shows.
      const grant = await host.exec(['cat', '/etc/rick/policy.d/authentik.conf'], { quiet: true });
      const granted = grant.stdout.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
      check(
        'bootstrap.sh granted authentik its client groups, state and socket directories',
        JSON.stringify(granted) ===
          JSON.stringify([
            'GROUPS=postgres-clients valkey-clients',
            'PATHS=/var/lib/authentik:rw /var/run/postgresql:rw /var/run/valkey:rw',
          ]),
        granted.join(' | '),
      );
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
      // The test drives the update ticks itself (step 5 lets the timer fire
      // once); a tick at the timer's own time would race the other steps.
      await host.exec(['systemctl', 'stop', 'rick-update.timer']);
      const s = await status();
      check(
        'authentik 1.0.0 is live',
        (await liveVersion()) === '1.0.0',
        JSON.stringify(s.bundles),
      );
      await expectActive('after the bootstrap');
      const pulled = await registryManifestRequests(cursor, 'authentik-standin');
      check(
        `the host pulled ${IMAGE}:${oldTag} from the loopback registry`,
        pulled.some((l) => l.includes(`/manifests/${oldTag}`)) &&
          (await imageExists(`${IMAGE}:${oldTag}`)),
        pulled[0] ?? 'the registry logged no request for it',
      );
      for (const container of ['authentik-server', 'authentik-worker']) {
        const image = await imageOf(container);
        check(`${container} runs ${IMAGE}:${oldTag}`, image === `${IMAGE}:${oldTag}`, image);
      }
    });
  });

  it('4. the infrastructure checklist holds', async () => {
    await step('4. infrastructure checklist', async () => {
      await infrastructureChecklist('after the bootstrap');
    });
  });

  it('5. the timer, on its own, installs a release changing only the worker; only the worker restarts', async () => {
    await step('5. timer-driven worker-only update', async () => {
      const v = await buildRelease('1.1.0', {
        authentik_image: IMAGE,
        authentik_worker_image: WORKER_IMAGE,
      });
      const before = await identities();
      log(`    MainPID/InvocationID before: ${JSON.stringify(before)}`);
      await publish(v);
      const cursor = await journalCursor();
      // The update runs as the timer runs it, in the hardened rick-update.service.
      const journal = await timerTick(cursor, /authentik: (installed|rolled back) 1\.1\.0/);
      check(
        "rick-update.service's journal says it installed 1.1.0",
        /authentik: installed 1\.1\.0/.test(journal),
      );
      const result = await host.show('rick-update.service', 'Result');
      check('rick-update.service finished with result success', result === 'success', result);
      check('authentik 1.1.0 is live', (await liveVersion()) === '1.1.0');
      const after = await identities();
      log(`    MainPID/InvocationID after: ${JSON.stringify(after)}`);
      const [pod, server, worker] = UNITS as [string, string, string];
      check('the server was not restarted', before[server] === after[server]);
      check('the pod was not restarted', before[pod] === after[pod]);
      check('the worker was restarted', before[worker] !== after[worker]);
      const image = await imageOf('authentik-worker');
      check(
        'the worker runs the image of release 1.1.0',
        image === `${WORKER_IMAGE}:${oldTag}`,
        image,
      );
      await expectNoDependencyFailure(cursor);
      await expectActive('after the update');
      await expectServing('after the update');
    });
  });

  it('6. a version bump pulls the new image before the swap and restarts worker and server one at a time, the pod kept running', async () => {
    await step('6. version bump', async () => {
      const v = await buildRelease('1.2.0', { authentik_image: IMAGE, authentik_version: newTag });
      const ref = `${IMAGE}:${newTag}`;
      check(`${ref} is not in the host's image store yet`, !(await imageExists(ref)));
      const before = await identities();
      const cursor = await journalCursor();
      const out = await rickInstall(await copyBundleIn(v), ExitCode.ok);
      check('authentik 1.2.0 is live', (await liveVersion()) === '1.2.0');
      expectPulledBeforeSwap(out, [ref]);
      const requests = await registryManifestRequests(cursor, 'authentik-standin');
      check(
        `the registry served ${ref}'s manifest`,
        requests.some((l) => l.includes(`/manifests/${newTag}`)),
        requests.join(' | ') || 'no request',
      );
      const after = await identities();
      for (const unit of ['authentik-server.service', 'authentik-worker.service']) {
        check(
          `${unit} was restarted`,
          before[unit] !== after[unit],
          `${before[unit]} -> ${after[unit]}`,
        );
      }
      for (const container of ['authentik-server', 'authentik-worker']) {
        const image = await imageOf(container);
        check(`${container} runs ${ref}`, image === ref, image);
      }
      await expectRolledOutAndServing(cursor, before, out, 'after the version bump');
    });
  });

  it('7. a release changing only the shared env file restarts both, with the new setting', async () => {
    await step('7. env-only change', async () => {
      const v = await buildRelease('1.3.0', {
        authentik_image: IMAGE,
        authentik_version: newTag,
        authentik_valkey_db: '2',
      });
      const before = await identities();
      const cursor = await journalCursor();
      const out = await rickInstall(await copyBundleIn(v), ExitCode.ok);
      check('authentik 1.3.0 is live', (await liveVersion()) === '1.3.0');
      for (const unit of ['authentik-server.service', 'authentik-worker.service']) {
        const line = restartLine(out, unit);
        check(
          `the installer restarts ${unit} because env/authentik.env changed`,
          line?.includes('env/authentik.env changed') === true,
          line ?? 'no restart line names it',
        );
      }
      await expectBothRestarted(before);
      for (const container of ['authentik-server', 'authentik-worker']) {
        const url = await containerEnv(container, 'AUTHENTIK_CACHE__URL');
        check(
          `${container} sees the new Valkey database (db=2)`,
          /\?db=2&/.test(url),
          url.replace(/password=[^&]*/, 'password=…'),
        );
      }
      await expectRolledOutAndServing(cursor, before, out, 'after the env change');
    });
  });

  it('8. a release whose only change is a rotated host secret restarts both with the new value', async () => {
    await step('8. rotated secret', async () => {
      const v = await buildRelease('1.4.0', {
        authentik_image: IMAGE,
        authentik_version: newTag,
        authentik_valkey_db: '2',
      });
      const rotated = `e2e-rotated-${Date.now().toString(36)}-not-a-real-key`;
      await host.sh(
        `sed -i "s/^authentik_secret_key=.*/authentik_secret_key='${rotated}'/" /etc/rick/secrets/authentik.env`,
      );
      const path = await copyBundleIn(v);
      const plan = await host.exec(['rick-install', 'plan', path], { allowFail: true });
      check('rick-install plan exits 0', plan.code === 0, `exit ${plan.code}`);
      check(
        'the plan says a secret changed in the env file',
        /^secret\s+authentik\/env\/authentik\.env \(a secret value changed\)$/m.test(plan.stdout),
      );
      for (const unit of ['authentik-server.service', 'authentik-worker.service']) {
        const line = restartLine(plan.stdout, unit);
        check(
          `the plan restarts ${unit} because env/authentik.env changed`,
          line?.includes('env/authentik.env changed') === true,
          line ?? 'no restart line names it',
        );
      }
      check('the plan does not show the secret', !plan.stdout.includes(rotated));
      const before = await identities();
      const cursor = await journalCursor();
      const out = await rickInstall(path, ExitCode.ok);
      check('authentik 1.4.0 is live', (await liveVersion()) === '1.4.0');
      await expectBothRestarted(before);
      for (const container of ['authentik-server', 'authentik-worker']) {
        check(
          `${container} has the rotated AUTHENTIK_SECRET_KEY`,
          (await containerEnv(container, 'AUTHENTIK_SECRET_KEY')) === rotated,
        );
      }
      await expectRolledOutAndServing(cursor, before, out, 'after the rotation');
    });
  });

  it('9. a release naming an image tag the registry does not have is refused before anything changes', async () => {
    await step('9. image pull fails', async () => {
      const v = await buildRelease('1.5.0', {
        authentik_image: IMAGE,
        authentik_version: MISSING_TAG,
        authentik_valkey_db: '2',
      });
      const ref = `${IMAGE}:${MISSING_TAG}`;
      const path = await copyBundleIn(v);
      const before = await hostBefore({ units: true });
      const cursor = await journalCursor();
      const r = await host.exec(['rick-install', path], { allowFail: true, timeoutMs: 600_000 });
      const out = `${r.stdout}${r.stderr}`;
      check(
        `rick-install exits ${imagePullExitCode ?? '(MISSING PIECE: no image-pull exit code in src/errors.ts)'}: the image could not be pulled`,
        imagePullExitCode !== undefined && r.code === imagePullExitCode,
        `exit ${r.code}`,
      );
      check(
        `the error names the image ${ref}`,
        out.split('\n').some((l) => l.startsWith('error ') && l.includes(ref)),
      );
      const requests = await registryManifestRequests(cursor, 'authentik-standin');
      check(
        `the registry was asked for ${MISSING_TAG} and answered 404 (manifest unknown)`,
        requests.some((l) => l.includes(`/manifests/${MISSING_TAG}`) && /\b404\b/.test(l)),
        requests.join(' | ') || 'no request',
      );
      check('no generation went live', !/generation \d+ is live/.test(out));
      await expectRefusedUnchanged(before, { bundle: 'authentik', version: '1.4.0' });
      check(
        '1.5.0 is not quarantined (a failed pull is transient)',
        !(await quarantined()).includes('1.5.0'),
      );
      await expectServing('after the refused install (1.4.0 keeps serving)');
    });
  });

  it('10. a tampered bundle is refused on the real host, and nothing changes', async () => {
    await step('10. tampered bundle', async () => {
      const v = await buildRelease('1.6.0', {
        authentik_image: IMAGE,
        authentik_version: newTag,
        authentik_valkey_db: '2',
      });
      // The attacker's edit: the server unit's description, same length, in a
      // validly compressed tarball that keeps the release's signature.
      const tar = gunzipSync(await readFile(v.tgz));
      const from = Buffer.from('Description=Authentik server');
      const at = tar.indexOf(from);
      check('the tarball holds the server unit to tamper with', at >= 0);
      Buffer.from('Description=Authentik SERVER').copy(tar, at);
      const tampered = join(v.dir, 'tampered.tgz');
      await writeFile(tampered, gzipSync(tar));
      await copyFile(`${v.tgz}.sig`, `${tampered}.sig`);
      const path = await copyBundleIn(v, tampered);
      const before = await hostBefore({ units: true });
      const r = await host.exec(['rick-install', path], { allowFail: true, timeoutMs: 600_000 });
      const out = `${r.stdout}${r.stderr}`;
      check(
        `rick-install exits ${ExitCode.untrustedSignature}`,
        r.code === ExitCode.untrustedSignature,
        `exit ${r.code}`,
      );
      check(
        'the error says the signature is invalid (gpgv: BAD signature)',
        /^error SIGNATURE_INVALID: .*BAD signature/m.test(out),
      );
      await expectRefusedUnchanged(before, { bundle: 'authentik', version: '1.4.0' });
      await expectServing('after the refused bundle');
    });
  });

  it('11. a release whose server cannot reach its socket fails its health gate for that reason, and is rolled back and quarantined', async () => {
    await step('11. failed release', async () => {
      const missing = '/var/run/valkey/e2e-missing.sock';
      const v = await buildRelease('1.7.0', {
        authentik_image: IMAGE,
        authentik_version: newTag,
        authentik_valkey_db: '2',
        // A socket that does not exist, in the directory the unit mounts: the
        // container starts, and its health check cannot reach Valkey.
        authentik_valkey_socket: missing,
      });
      await publish(v);
      const cursor = await journalCursor();
      const out = await rickUpdate(ExitCode.rolledBack);
      check('the installer says it rolled back 1.7.0', /rolled back 1\.7\.0/.test(out));
      const gate =
        /authentik-server\.service: http:\/\/127\.0\.0\.1:9000\/-\/health\/live\/ did not answer 2xx within \d+s \(last: 503\)/;
      check(
        "the cause given is the server's health check answering 503",
        gate.test(out),
        out.split('\n').find((l) => /health gate failed/.test(l)) ?? '',
      );
      const serverLog = await host.exec(['cat', '/var/lib/authentik/logs/server.log'], {
        quiet: true,
      });
      const standin = serverLog.stdout
        .split('\n')
        .find(
          (l) => /authentik-standin server: unhealthy: valkey: /.test(l) && l.includes(missing),
        );
      check(
        "the stand-in's own log says why: it cannot reach Valkey's socket",
        standin !== undefined && /No such file or directory/.test(standin),
        standin?.trim() ?? 'no such line in /var/lib/authentik/logs/server.log',
      );
      await expectNoDependencyFailure(cursor);
      check('authentik 1.4.0 is live again', (await liveVersion()) === '1.4.0');
      await expectActive('after the rollback');
      await expectServing('after the rollback (1.4.0 keeps serving)', 60_000);
      const s = await status();
      check('1.7.0 is quarantined', (await quarantined()).includes('1.7.0'));
      const entry = s.history.find((h) => h.version === '1.7.0');
      check(
        "the history records the health check's answer as the cause",
        entry !== undefined && /last: 503/.test(entry.detail ?? ''),
        entry?.detail ?? 'no history entry',
      );
      check(
        'the live generation is confirmed',
        s.live === s.confirmed,
        `${s.live} / ${s.confirmed}`,
      );

      // A changed feed (a new asset on the release) makes the next tick decide
      // again instead of answering from its 304 cache: quarantine must hold.
      await writeFile(join(host.root, FEED_DIR, v.tag, 'NOTES.txt'), 'known bad release\n');
      log(`added NOTES.txt to release ${v.tag}: the feed changed`);
      const ids = await identities();
      const again = await rickUpdate(ExitCode.ok);
      check(
        'the next update decides again and skips 1.7.0 as quarantined',
        /skipping 1\.7\.0, quarantined/.test(again),
      );
      check('the next update did not install anything', !/installing 1\.7\.0/.test(again));
      const later = await status();
      check(
        'the history has no new entry for 1.7.0',
        later.history.filter((h) => h.version === '1.7.0').length ===
          s.history.filter((h) => h.version === '1.7.0').length,
      );
      check('no service restarted', JSON.stringify(await identities()) === JSON.stringify(ids));
      check('authentik 1.4.0 is still live', (await liveVersion()) === '1.4.0');
    });
  });

  it('12. rick-install rollback returns to 1.3.0, restarting server and worker, which serve', async () => {
    await step('12. rollback to 1.3.0', async () => {
      const s = await status();
      const target = s.history.find((h) => h.version === '1.3.0' && h.outcome === 'installed');
      check(
        'the history names the generation of 1.3.0',
        target !== undefined,
        JSON.stringify(s.history),
      );
      const before = await identities();
      const cursor = await journalCursor();
      const r = await host.exec(['rick-install', 'rollback', '--to', String(target!.generation)], {
        allowFail: true,
        timeoutMs: 600_000,
      });
      check('rick-install rollback exits 0', r.code === 0, `exit ${r.code}`);
      check('authentik 1.3.0 is live', (await liveVersion()) === '1.3.0');
      await expectBothRestarted(before);
      for (const container of ['authentik-server', 'authentik-worker']) {
        check(
          `${container} has 1.3.0's AUTHENTIK_SECRET_KEY again, the one before the rotation (a generation keeps its rendered env files)`,
          (await containerEnv(container, 'AUTHENTIK_SECRET_KEY')) === firstSecretKey,
        );
      }
      await expectRolledOutAndServing(
        cursor,
        before,
        r.stdout + r.stderr,
        'after the rollback',
        60_000,
      );
    });
  });

  it('13. an install killed with SIGKILL halfway is recovered by the next run', async () => {
    await step('13. interrupted install', async () => {
      const v = await buildRelease('1.8.0', {
        authentik_image: IMAGE,
        authentik_version: newTag,
        authentik_valkey_db: '2',
      });
      await publish(v);
      // The installer holds still right after it flipped `current` (test-only
      // hook), and is killed there from outside, as a power cut would stop it.
      const flipped = await killAfterFlip('rick-e2e-interrupted', [
        '/usr/local/bin/rick-install',
        'update',
      ]);
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

      const cursor = await journalCursor();
      const out = await rickUpdate(ExitCode.ok);
      check(
        'the next run says it found and reconciled the interrupted install',
        /interrupted|did not finish/.test(out),
      );
      await expectRecovered(cursor, '1.8.0', 'after the recovery');
    });
  });

  it('14. after a restart of the host the services come back from the installed generation', async () => {
    await step('14. host restart', async () => {
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
      check('authentik 1.8.0 is live', (await liveVersion()) === '1.8.0');
      await infrastructureChecklist('after the restart');
    });
  });

  it('15. Caddy publishes Authentik at its own site, through the link into the live generation', async () => {
    await step('15. Authentik through Caddy', async () => {
      const link = await host.exec(['readlink', '/etc/caddy/rick'], { quiet: true });
      check(
        '/etc/caddy/rick leads to the live generation',
        link.stdout.trim() === '/var/lib/rick/current/caddy',
        link.stdout.trim(),
      );
      const site = await readFile(
        join(host.root, 'var/lib/rick/current/caddy/authentik/authentik.caddy'),
        'utf8',
      );
      check(
        'the live site proxies the Authentik domain to the server on loopback',
        site.includes(`http://${AUTH_HOST} {`) && site.includes('reverse_proxy 127.0.0.1:9000'),
      );
      const state = await host.show('caddy.service', 'ActiveState');
      check('caddy.service is active', state === 'active', state);
      const health = await throughCaddy(AUTH_HOST, '/-/health/live/');
      check(`Caddy serves Authentik at ${AUTH_HOST} (health 200)`, health.status === '200');
      const other = await throughCaddy('nobody.e2e.test', '/-/health/live/');
      check('another name does not reach Authentik', other.status !== '200', other.status);
    });
  });

  it('16. Gitea behind forward auth: no approval is sent to sign in, approval hands Gitea the user, the group rule holds', async () => {
    await step('16. Gitea behind forward auth', async () => {
      log(`=== stand-in image ${GITEA_IMAGE}:${GITEA_TAG}-rootless (plays Gitea)`);
      await publishImage([`${GITEA_IMAGE}:${GITEA_TAG}-rootless`]);
      await host.writeFile(
        '/etc/rick/secrets/gitea.env',
        [
          `gitea_db_password='${infra.PG_PASSWORD}'`,
          "gitea_secret_key='e2e-gitea-secret-key'",
          "gitea_internal_token='e2e-gitea-internal-token'",
          '',
        ].join('\n'),
        '0600',
      );
      const v1 = await buildRelease(
        '1.0.0',
        {
          gitea_image: GITEA_IMAGE,
          gitea_version: GITEA_TAG,
          gitea_domain: GIT_HOST,
          gitea_site_address: `http://${GIT_HOST}`,
        },
        'gitea',
      );
      const v1Path = await copyBundleIn(v1);
      // Gitea runs under the restricted profile with the grant its hosts keep.
      const ungranted = await hostBefore();
      await expectInstallRefused(
        v1Path,
        ExitCode.policy,
        'without its grant, Gitea is refused naming the SSH port it publishes',
        (_, out) =>
          out.includes('error POLICY_REFUSED: gitea 1.0.0 needs what') &&
          out.includes('port 0.0.0.0:2222/tcp (declared; gitea.container:'),
      );
      await expectRefusedUnchanged(ungranted);
      await host.writeFile(
        '/etc/rick/policy.d/gitea.conf',
        await readFile(join(repo, 'bundles/gitea/policy.conf'), 'utf8'),
        '0644',
      );
      check(
        "PostgreSQL has no gitea role nor database before the install (the test host makes only authentik's)",
        (await giteaCatalog()) === '0 none',
      );
      const caddyPid = await host.show('caddy.service', 'MainPID');
      const out = await rickInstall(v1Path, 0);
      const lines = out.split('\n').map((l) => l.trim());
      const liveAt = lines.findIndex((l) => /^generation \d+ is live$/.test(l));
      for (const made of ['created role gitea', 'created database gitea owned by gitea']) {
        const at = lines.indexOf(`database: gitea: ${made}`);
        check(
          `the installer says, before the flip: database: gitea: ${made}`,
          at >= 0 && at < liveAt,
          `line ${at + 1}, live at line ${liveAt + 1}`,
        );
      }
      const preflightAt = lines.findIndex((l) =>
        /^pre-flight: \d+ socket check\(s\) passed as the services' users$/.test(l),
      );
      check(
        "the pre-flight passed as gitea's container before the flip",
        preflightAt >= 0 && preflightAt < liveAt,
        lines[preflightAt] ?? 'no pre-flight line',
      );
      check(
        'PostgreSQL now has the role gitea, owner of the database gitea',
        (await giteaCatalog()) === '1 gitea',
      );
      const giteaPassword = await hostSecret('gitea', 'gitea_db_password');
      check("the role's password appears nowhere in the output", !out.includes(giteaPassword));
      const privileges = (
        await host.exec(
          [
            'runuser',
            '-u',
            'postgres',
            '--',
            'psql',
            '-X',
            '-tAc',
            "select rolsuper, rolcreatedb, rolcreaterole from pg_roles where rolname = 'gitea'",
          ],
          { quiet: true },
        )
      ).stdout.trim();
      check(
        'the role is no superuser and creates no databases nor roles (rick makes roles of ordinary privilege)',
        privileges === 'f|f|f',
        `rolsuper|rolcreatedb|rolcreaterole: ${privileges}`,
      );
      check(
        'the plan reloads Caddy for the new site',
        /reload +caddy\.service \(gitea\/caddy\/gitea\.caddy changed\)/.test(out),
      );
      check('the installer reloaded Caddy', out.includes('reloaded caddy.service'));
      check(
        'Caddy was reloaded, not restarted (same main process)',
        (await host.show('caddy.service', 'MainPID')) === caddyPid,
        caddyPid,
      );
      const state = await host.show('gitea.service', 'ActiveState');
      check('gitea.service is active', state === 'active', state);
      const groups = await groupsOf(await containerPid('gitea'));
      check(
        `gitea's process carries postgres-clients (${infra.PG_CLIENTS_GID})`,
        groups.includes(infra.PG_CLIENTS_GID!),
        groups.join(' '),
      );
      await expectGiteaLogin(giteaPassword, 'the password of the host secret gitea_db_password');

      const anonymous = await throughCaddy(GIT_HOST, '/explore/repos');
      check(
        "a request without the outpost's approval is sent to sign in",
        anonymous.status === '302' && anonymous.location.includes('/outpost.goauthentik.io/start'),
        `${anonymous.status} ${anonymous.location}`,
      );
      check('Gitea did not answer it', giteaSaw(anonymous).path === undefined, anonymous.body);
      const spoofed = await throughCaddy(GIT_HOST, '/', { 'Remote-User': 'admin' });
      check(
        'a client claiming to be admin is sent to sign in too',
        spoofed.status === '302',
        spoofed.status,
      );

      const alice = await throughCaddy(GIT_HOST, '/user/settings', {
        Cookie: 'standin_session=alice:staff|gitea-users',
        'Remote-User': 'admin',
      });
      const seen = giteaSaw(alice);
      check(
        'with approval Gitea receives Remote-User from the outpost, not from the client',
        alice.status === '200' && seen.remoteUser === 'alice',
        `${alice.status} ${alice.body}`,
      );
      check(
        'and Remote-Email, Remote-Name, Remote-Groups',
        seen.remoteEmail === 'alice@e2e.test' &&
          seen.remoteName === 'Stand-in alice' &&
          seen.remoteGroups === 'staff|gitea-users',
        alice.body,
      );
      const bob = await throughCaddy(GIT_HOST, '/', { Cookie: 'standin_session=bob:staff' });
      check(
        'a user outside gitea-users gets 403 from the site',
        bob.status === '403' && bob.body.includes('Forbidden: gitea-users only'),
        `${bob.status} ${bob.body}`,
      );
      await expectVerifyClean();
    });
  });

  it("17. a Gitea release whose site claims Authentik's host name is refused before anything changes; the old site serves", async () => {
    await step("17. site claiming another bundle's address refused", async () => {
      // It passes the builder's own checks (the site alone is valid) and
      // claims Authentik's host name only beside Authentik's site on the host.
      const bad = await buildRelease(
        '1.1.0',
        {
          gitea_image: GITEA_IMAGE,
          gitea_version: GITEA_TAG,
          gitea_domain: GIT_HOST,
          gitea_site_address: `http://${AUTH_HOST}`,
        },
        'gitea',
      );
      const path = await copyBundleIn(bad);
      const before = await hostBefore();
      const caddyBefore = await snapshotTree(join(host.root, 'etc/caddy'));
      const out = await expectInstallRefused(
        path,
        ExitCode.invalidBundle,
        'the install is refused naming both claims and the normalized address',
        (error) =>
          error.startsWith(`error SITE_REJECTED: authentik/caddy/authentik.caddy:`) &&
          error.includes(
            `http://${AUTH_HOST}:80 (written http://${AUTH_HOST}) and gitea/caddy/gitea.caddy:`,
          ) &&
          error.includes(`both claim the host ${AUTH_HOST}`),
      );
      check('nothing went live', !out.includes('is live'));
      await expectRefusedUnchanged(before);
      const caddyDiff = diffTrees(caddyBefore, await snapshotTree(join(host.root, 'etc/caddy')));
      check('/etc/caddy is unchanged', caddyDiff.length === 0, caddyDiff.join('; '));
      check('gitea 1.0.0 is still live', (await giteaVersion()) === '1.0.0');
      const alice = await throughCaddy(GIT_HOST, '/', {
        Cookie: 'standin_session=alice:gitea-users',
      });
      check(
        'the old site keeps serving Gitea',
        giteaSaw(alice).remoteUser === 'alice',
        alice.status,
      );
      const health = await throughCaddy(AUTH_HOST, '/-/health/live/');
      check('and Authentik', health.status === '200', health.status);
    });
  });

  it('18. a Gitea release that breaks the application behind a working site is rolled back, and Caddy serves the old site again', async () => {
    await step('18. broken app rolled back with its site', async () => {
      // An application release that serves but fails its health check (its
      // database is provisioned and reachable: the pre-flight passes). The
      // site changes too (another group), so which site serves afterwards shows.
      await publishImage([`${GITEA_IMAGE}:${GITEA_BROKEN_TAG}-rootless`], 'unhealthy');
      const broken = await buildRelease(
        '1.2.0',
        {
          gitea_image: GITEA_IMAGE,
          gitea_version: GITEA_BROKEN_TAG,
          gitea_domain: GIT_HOST,
          gitea_site_address: `http://${GIT_HOST}`,
          gitea_required_group: 'gitea-admins',
        },
        'gitea',
      );
      const caddyPid = await host.show('caddy.service', 'MainPID');
      const out = await rickInstall(await copyBundleIn(broken), ExitCode.rolledBack);
      const gate = out.split('\n').find((l) => /health gate failed/.test(l)) ?? '';
      check(
        "the gate fails on Gitea's health check",
        gate.includes('gitea.service') && gate.includes('/api/healthz'),
        gate,
      );
      check(
        'Caddy was reloaded for the new site and again for the old one',
        out.split('\n').filter((l) => l.trim() === 'reloaded caddy.service').length === 2,
      );
      check(
        'by reloads, not restarts',
        (await host.show('caddy.service', 'MainPID')) === caddyPid,
        caddyPid,
      );
      check('gitea 1.0.0 is live again', (await giteaVersion()) === '1.0.0');
      const gitea = (await status()).bundles.find((b) => b.name === 'gitea');
      check('gitea 1.2.0 is quarantined', gitea?.quarantined.includes('1.2.0') ?? false);
      const site = await readFile(
        join(host.root, 'var/lib/rick/current/caddy/gitea/gitea.caddy'),
        'utf8',
      );
      check(
        'the live site is the old one (gitea-users)',
        site.includes('Forbidden: gitea-users only'),
      );
      const alice = await throughCaddy(GIT_HOST, '/', {
        Cookie: 'standin_session=alice:gitea-users',
      });
      check(
        'Caddy serves the old site: a gitea-users member reaches the restored Gitea',
        alice.status === '200' && giteaSaw(alice).remoteUser === 'alice',
        `${alice.status} ${alice.body}`,
      );
    });
  });

  it('19. a bundle of plain systemd units: the generator shows them to systemd from the live generation, enabled as their [Install] says', async () => {
    await step('19. plain units', async () => {
      const dir = await writePlainUnitsBundle();
      const v1 = await buildRelease('1.0.0', { marker: 'v1' }, 'e2e-units', { bundleDir: dir });
      const v1Path = await copyBundleIn(v1);
      // The host commands of plain units wait for the operator's grant.
      const ungranted = await hostBefore();
      await expectInstallRefused(
        v1Path,
        ExitCode.policy,
        "without a grant, the install is refused naming the plain units' host command",
        (_, out) =>
          out.includes('error POLICY_REFUSED: e2e-units 1.0.0 needs what') &&
          out.includes('service directive ExecStart (declared; e2e-marker.service:'),
      );
      await expectRefusedUnchanged(ungranted);
      const out = await rickInstall(v1Path, 0, ['--grant', '--yes']);
      const grant = await host.exec(['cat', '/etc/rick/policy.d/e2e-units.conf'], { quiet: true });
      check(
        '--grant --yes recorded SERVICE=ExecStart for e2e-units',
        grant.stdout.split('\n').includes('SERVICE=ExecStart'),
        grant.stdout,
      );
      check(
        'the plan starts the plain units',
        /start +e2e-marker\.service \(new\)/.test(out) &&
          /start +e2e-tick\.timer \(new\)/.test(out),
      );
      const state = await host.show('e2e-marker.service', 'ActiveState');
      check('e2e-marker.service ran and is active', state === 'active', state);
      const marker = await host.exec(['test', '-e', '/run/e2e-marker-v1'], { allowFail: true });
      check('its ExecStart ran (/run/e2e-marker-v1)', marker.code === 0);
      const timer = await host.show('e2e-tick.timer', 'ActiveState');
      check('e2e-tick.timer is active (waiting)', timer === 'active', timer);
      const generator = await host.exec(
        ['stat', '-c', '%a %U', '/etc/systemd/system-generators/rick-units'],
        {
          quiet: true,
        },
      );
      check(
        'rick wrote its generator, 0755 root',
        generator.stdout.trim() === '755 root',
        generator.stdout.trim(),
      );
      const fragment = await host.show('e2e-marker.service', 'FragmentPath');
      check(
        'systemd loads the unit from the generator directory',
        fragment === '/run/systemd/generator/e2e-marker.service',
        fragment,
      );
      const link = await host.exec(['readlink', '/run/systemd/generator/e2e-marker.service'], {
        quiet: true,
      });
      const live = (await status()).live;
      check(
        'which links into the live generation',
        link.stdout.trim() ===
          `/var/lib/rick/generations/${live}/systemd/e2e-units/e2e-marker.service`,
        link.stdout.trim(),
      );
      const wants = await host.exec(
        ['readlink', '/run/systemd/generator/multi-user.target.wants/e2e-marker.service'],
        { allowFail: true, quiet: true },
      );
      check(
        'its WantedBy=multi-user.target is a wants link',
        wants.code === 0,
        wants.stdout.trim(),
      );
      await expectVerifyClean();
    });
  });

  it('20. a plain unit systemd-analyze rejects on the host is refused before anything changes', async () => {
    await step('20. plain unit refused', async () => {
      const dir = await writePlainUnitsBundle('relative/path');
      const bad = await buildRelease('2.0.0', { marker: 'v2' }, 'e2e-units', {
        bundleDir: dir,
        extra: ['--no-systemd-check'],
      });
      const path = await copyBundleIn(bad);
      const before = await hostBefore();
      await expectInstallRefused(
        path,
        ExitCode.invalidBundle,
        "the install is refused with systemd-analyze's own message",
        (error) =>
          error.startsWith(
            "error UNITS_REJECTED: systemd-analyze rejects the new generation's units",
          ) &&
          error.includes('Neither a valid executable name nor an absolute path: relative/path'),
      );
      await expectRefusedUnchanged(before);
      const state = await host.show('e2e-marker.service', 'ActiveState');
      check('e2e-marker.service of 1.0.0 is still active', state === 'active', state);
    });
  });

  it('21. a release without a plain unit stops it, and systemd no longer has it', async () => {
    await step('21. plain unit removed', async () => {
      const dir = await writePlainUnitsBundle(undefined, false);
      const v3 = await buildRelease('3.0.0', { marker: 'v3' }, 'e2e-units', { bundleDir: dir });
      const out = await rickInstall(await copyBundleIn(v3), 0);
      check('the plan stops it', /stop +e2e-marker\.service \(removed\)/.test(out));
      const load = await host.show('e2e-marker.service', 'LoadState');
      check('systemd has no e2e-marker.service any more', load === 'not-found', load);
      const link = await host.exec(['test', '-e', '/run/systemd/generator/e2e-marker.service'], {
        allowFail: true,
      });
      check('the generator no longer links it', link.code !== 0);
      const timer = await host.show('e2e-tick.timer', 'ActiveState');
      check('e2e-tick.timer is still active', timer === 'active', timer);
    });
  });

  it('22. the timer follows a signed index served by Caddy, through two redirects, and takes a new release from it', async () => {
    await step('22. release index: a new release', async () => {
      // A second Caddy (the host's package) on loopback: GitHub's redirects and its object store.
      await host.writeFile(
        INDEX_CADDYFILE,
        [
          '{',
          '\tadmin off',
          '\tauto_https off',
          '}',
          '',
          "# GitHub's release pages: the latest release's download, then the release's own download.",
          `http://127.0.0.1:${INDEX_PORT} {`,
          '\tlog',
          `\thandle_path /${FEED_REPO}/releases/latest/download/* {`,
          `\t\tredir * /${FEED_REPO}/releases/download/${INDEX_TAG}{path} 302`,
          '\t}',
          `\thandle_path /${FEED_REPO}/releases/download/* {`,
          `\t\tredir * http://127.0.0.1:${STORE_PORT}{path} 302`,
          '\t}',
          '\thandle {',
          '\t\trespond 404',
          '\t}',
          '}',
          '',
          '# The object store: another origin, files with ETags.',
          `http://127.0.0.1:${STORE_PORT} {`,
          '\tlog',
          `\troot * ${INDEX_STORE}`,
          '\tfile_server',
          '}',
          '',
        ].join('\n'),
        '0644',
      );
      await mkdir(join(host.root, INDEX_STORE), { recursive: true });
      await host.exec([
        'systemd-run',
        `--unit=${INDEX_UNIT}`,
        '--property=Restart=on-failure',
        '--setenv=XDG_CONFIG_HOME=/var/lib/rick-e2e-index/config',
        '--setenv=XDG_DATA_HOME=/var/lib/rick-e2e-index/data',
        'caddy',
        'run',
        '--adapter',
        'caddyfile',
        '--config',
        INDEX_CADDYFILE,
      ]);
      await host.exec(['mkdir', '-p', METRICS_FILE.replace(/\/[^/]+$/, '')]);

      const v = await buildRelease('1.9.0', {
        authentik_image: IMAGE,
        authentik_version: newTag,
        authentik_valkey_db: '2',
      });
      const first = await signIndex(join(work, 'index-1'), [
        '--new',
        '--add',
        v.tgz,
        '--location',
        `../../download/${INDEX_TAG}/`,
      ]);
      await publishIndex([v.tgz, `${v.tgz}.sig`, `${first}.sig`, first]);
      const served = await until(
        'Caddy serves the index through its redirects',
        30_000,
        async () => {
          const r = await host.exec(
            [
              'curl',
              '-sS',
              '-L',
              '-o',
              '/dev/null',
              '-w',
              '%{http_code} %{num_redirects} %{url_effective}',
              INDEX_URL,
            ],
            { allowFail: true, quiet: true },
          );
          return r.stdout.startsWith('200 ') ? r.stdout.trim() : undefined;
        },
      );
      check(
        'curl reaches the index through two redirects, the last to the object store',
        served === `200 2 http://127.0.0.1:${STORE_PORT}/${INDEX_TAG}/index.json`,
        served,
      );

      const conf = await readFile(join(host.root, 'etc/rick/rick.conf'), 'utf8');
      await host.writeFile(
        '/etc/rick/rick.conf',
        `${conf.replace(/^FEED=.*$/m, `FEED=${INDEX_URL}`)}`,
        '0644',
      );
      const before = await identities();
      const cursor = await journalCursor();
      const journal = await timerTick(
        cursor,
        /authentik: (installed|rolled back|not installed) 1\.9\.0|^error /m,
      );
      const serial = /index serial (\d+),/.exec(journal)?.[1];
      check(
        "rick-update.service's journal says it verified the index",
        serial !== undefined &&
          journal.includes(`checked ${INDEX_URL}: index serial ${serial}, 1 releases`),
      );
      check(
        "rick-update.service's journal says it installed 1.9.0 from the index",
        journal.includes(`authentik: installing 1.9.0 from release index ${INDEX_URL}`) &&
          /authentik: installed 1\.9\.0/.test(journal),
      );
      const result = await host.show('rick-update.service', 'Result');
      check('rick-update.service finished with result success', result === 'success', result);
      check('authentik 1.9.0 is live', (await liveVersion()) === '1.9.0');
      const requests = await indexServerRequests(cursor);
      for (const expected of [
        `302 127.0.0.1:${INDEX_PORT}/${FEED_REPO}/releases/latest/download/index.json`,
        `302 127.0.0.1:${INDEX_PORT}/${FEED_REPO}/releases/download/${INDEX_TAG}/index.json`,
        `200 127.0.0.1:${STORE_PORT}/${INDEX_TAG}/index.json`,
        `200 127.0.0.1:${STORE_PORT}/${INDEX_TAG}/index.json.sig`,
        `302 127.0.0.1:${INDEX_PORT}/${FEED_REPO}/releases/download/${INDEX_TAG}/authentik-1.9.0.tgz`,
        `200 127.0.0.1:${STORE_PORT}/${INDEX_TAG}/authentik-1.9.0.tgz`,
      ]) {
        check(`Caddy's access log has ${expected}`, requests.includes(expected));
      }
      const api = (await journalSince(cursor, ['rick-e2e-feed.service']))
        .split('\n')
        .filter((l) => l.includes('/repos/'));
      check('no request reached the releases API', api.length === 0, api.join(' | '));
      const metrics = await readMetrics();
      check(
        'the metrics file has the index serial',
        metrics.includes(`rick_index_serial ${serial}\n`),
      );
      const after = await identities();
      log(`    MainPID/InvocationID: ${JSON.stringify(before)} -> ${JSON.stringify(after)}`);
      await expectNoDependencyFailure(cursor);
      await expectActive('after the update from the index');
      await expectServing('after the update from the index');
    });
  });

  it('23. a yank of the live version is seen by the timer: an alert at warning priority and in the metrics, nothing rolled back', async () => {
    await step('23. release index: the live version yanked', async () => {
      const reason = 'e2e: loses uploads on restart';
      const second = await signIndex(join(work, 'index-2'), [
        '--previous',
        join(work, 'index-1/index.json'),
        '--yank',
        '1.9.0',
        '--reason',
        reason,
      ]);
      await publishIndex([`${second}.sig`, second]);
      const before = await identities();
      const trees = await hostTrees();
      const live = (await status()).live;
      const cursor = await journalCursor();
      const alert = `authentik: the installed version 1.9.0 is yanked (${reason}); rick does not roll back by itself`;
      const journal = await timerTick(cursor, /is yanked|^error /m);
      check(
        "rick-update.service's journal alerts that the live version is yanked",
        journal.includes(alert),
      );
      const warnings = await warningsSince(cursor);
      check(
        'the alert is at warning priority (journalctl -p warning)',
        warnings.includes(alert),
        warnings.trim(),
      );
      const result = await host.show('rick-update.service', 'Result');
      check('rick-update.service finished with result success', result === 'success', result);
      const metrics = await readMetrics();
      check(
        'the metrics file has rick_bundle_yanked for 1.9.0',
        metrics.includes('rick_bundle_yanked{bundle="authentik",version="1.9.0"} 1\n'),
        metrics
          .split('\n')
          .filter((l) => l.startsWith('rick_bundle_yanked'))
          .join(' | '),
      );
      check('authentik 1.9.0 is still live', (await liveVersion()) === '1.9.0');
      check('the same generation is live', (await status()).live === live);
      const after = await identities();
      check('no unit restarted', JSON.stringify(before) === JSON.stringify(after));
      check('nothing was rolled back', !/rolled back|rollback/.test(journal));
      // The tick keeps the new index (the rollback floor) and its decision.
      const diff = diffTrees(
        trees['var/lib/rick'] ?? [],
        await snapshotTree(join(host.root, 'var/lib/rick')),
      ).map((d) => d.split(':')[0] ?? d);
      log(`    /var/lib/rick changes: ${diff.join('; ') || '(none)'}`);
      for (const dir of ['etc/containers/systemd', 'etc/rick']) {
        const d = diffTrees(trees[dir] ?? [], await snapshotTree(join(host.root, dir)));
        check(`/${dir} is unchanged`, d.length === 0, d.join('; '));
      }
      await expectServing('with the yanked version live');
    });
  });

  it('24. an expired index is refused by the timer: its own exit code, a warning, the expiry in the metrics, the trees unchanged', async () => {
    await step('24. release index: expired', async () => {
      // Signed with an old clock: issued two hours ago, valid for one.
      const issued = new Date(Date.now() - 2 * 3_600_000);
      issued.setMilliseconds(0);
      const expires = new Date(issued.getTime() + 3_600_000);
      // rick-bundle index refuses to sign an expired index, so this one is
      // planned and signed as it would, with the old clock.
      const third = await signExpiredIndex(
        join(work, 'index-3'),
        join(work, 'index-2/index.json'),
        issued,
        3_600_000,
      );
      const serial = JSON.parse(await readFile(third, 'utf8')).serial as number;
      await publishIndex([`${third}.sig`, third]);
      const before = await hostBefore({ units: true });
      const cursor = await journalCursor();
      const journal = await timerTick(cursor, /^error /m);
      const expiresText = expires.toISOString().replace('.000Z', 'Z');
      check(
        "rick-update.service's journal refuses the index with INDEX_EXPIRED",
        journal.includes(
          `INDEX_EXPIRED: release index ${INDEX_URL} (serial ${serial}) expired at ${expiresText}`,
        ),
      );
      const warnings = await warningsSince(cursor);
      check(
        'a warning-priority line says the feed may be frozen',
        warnings.includes(
          `release index ${INDEX_URL} (serial ${serial}) expired at ${expiresText}: installing nothing until a fresh index is served; the feed may be frozen`,
        ),
        warnings.trim(),
      );
      const result = await host.show('rick-update.service', 'Result');
      const status13 = await host.show('rick-update.service', 'ExecMainStatus');
      check(
        `rick-update.service failed with exit ${ExitCode.indexExpired}`,
        result === 'exit-code' && status13 === String(ExitCode.indexExpired),
        `${result}, ${status13}`,
      );
      const metrics = await readMetrics();
      check(
        'the metrics file has the expiry',
        metrics.includes(`rick_index_expires_timestamp_seconds ${expires.getTime() / 1000}\n`),
        metrics
          .split('\n')
          .filter((l) => l.startsWith('rick_index'))
          .join(' | '),
      );
      await expectRefusedUnchanged(before, { bundle: 'authentik', version: '1.9.0' });
      await expectServing('after the refused index');
    });
  });

  it('25. a release whose worker crash-loops is caught by the health gate and rolled back; the service still answers', async () => {
    await step('25. crash-looping worker', async () => {
      // Every container of this image exits at start; Restart=always brings
      // it back each time, and each start reads ActiveState=active at first.
      await publishImage([`${CRASH_IMAGE}:${newTag}`], 'upgrade-db');
      const v = await buildRelease('1.10.0', {
        authentik_image: IMAGE,
        authentik_worker_image: CRASH_IMAGE,
        authentik_version: newTag,
        authentik_valkey_db: '2',
      });
      const path = await copyBundleIn(v);
      const cursor = await journalCursor();
      const out = await rickInstall(path, ExitCode.rolledBack);
      const gate = out.split('\n').find((l) => /health gate failed/.test(l)) ?? '';
      // Which of the two the gate sees first is systemd's timing: a restart
      // counted during the settle period, or the unit already failed at its
      // start limit (5 starts in 10 s) by the time its restart job ended.
      // Either way the cause is the worker's own exits, which its log shows below.
      const crashLoop =
        /authentik-worker\.service.*(restarted \d+ times? during the gate|failed \(ActiveState=failed\))/;
      check(
        'the gate fails the worker for restarting, or for failing at its start limit',
        crashLoop.test(gate),
        gate,
      );
      const workerLog = await host.exec(['cat', '/var/lib/authentik/logs/worker.log'], {
        quiet: true,
      });
      const exits = workerLog.stdout
        .split('\n')
        .filter((l) => /authentik-standin upgrade-db: unknown command upgrade-db/.test(l));
      check(
        "the worker's own log says why it exits: the image does not know its command",
        exits.length >= 2,
        `${exits.length} such lines in /var/lib/authentik/logs/worker.log`,
      );
      await expectNoDependencyFailure(cursor);
      check('authentik 1.9.0 is live again', (await liveVersion()) === '1.9.0');
      await expectActive('after the rollback');
      await expectServing('after the rollback (1.9.0 keeps serving)', 60_000);
      check(
        "the worker runs 1.9.0's image again",
        (await imageOf('authentik-worker')) === `${IMAGE}:${newTag}`,
        await imageOf('authentik-worker'),
      );
      check('1.10.0 is quarantined', (await quarantined()).includes('1.10.0'));
      const entry = (await status()).history.find((h) => h.version === '1.10.0');
      check(
        'the history records the crash loop as the cause',
        entry !== undefined && crashLoop.test(entry.detail ?? ''),
        entry?.detail ?? 'no history entry',
      );
    });
  });

  it("26. an operator's install killed after the flip is healed by the timer's next tick, with nothing new on the feed", async () => {
    await step('26. killed install healed by the timer', async () => {
      const v = await buildRelease('1.11.0', {
        authentik_image: IMAGE,
        authentik_version: newTag,
        authentik_valkey_db: '3',
      });
      const path = await copyBundleIn(v);
      // The operator's own run, held right after its flip (test-only hook) and
      // killed there, as a dropped session's SIGKILL or a power cut would.
      await killAfterFlip('rick-e2e-operator', ['/usr/local/bin/rick-install', path]);
      const interrupted = await status();
      check(
        'status shows the flipped generation live but unconfirmed',
        interrupted.live !== undefined && interrupted.live !== interrupted.confirmed,
        `live ${interrupted.live}, confirmed ${interrupted.confirmed}`,
      );

      // A fresh index (the last one expired in step 24) that offers nothing
      // new: 1.9.0, installed, is still the newest release it lists.
      const fourth = await signIndex(join(work, 'index-4'), [
        '--previous',
        join(work, 'index-3/index.json'),
      ]);
      await publishIndex([`${fourth}.sig`, fourth]);
      const cursor = await journalCursor();
      const journal = await timerTick(cursor, /authentik: nothing new|^error /m);
      check(
        "rick-update.service's journal says it restored the generation live before the interrupted install",
        /did not finish|interrupted/.test(journal) && journal.includes('install authentik 1.11.0'),
        journal
          .split('\n')
          .filter((l) => /did not finish|interrupted/.test(l))
          .join(' | '),
      );
      check(
        'the tick found nothing new on the feed',
        /authentik: nothing new/.test(journal) && !/installing 1\.11\.0/.test(journal),
      );
      const result = await host.show('rick-update.service', 'Result');
      check('rick-update.service finished with result success', result === 'success', result);
      await expectRecovered(cursor, '1.9.0', 'after the healing tick');
    });
  });

  it('27. a service another tool deployed is adopted in one flip: not restarted, its file kept, verify clean', async () => {
    await step('27. adopt', async () => {
      // The other tool's deployment: the unit at the top level, started.
      await host.writeFile('/etc/containers/systemd/e2e-adopt.container', adoptUnit(), '0644');
      await host.exec(['systemctl', 'daemon-reload']);
      await host.exec(['systemctl', 'start', 'e2e-adopt.service'], { timeoutMs: 300_000 });
      const running = await host.show('e2e-adopt.service', 'ActiveState');
      check('the foreign e2e-adopt.service runs', running === 'active', running);
      await host.writeFile(
        '/etc/rick/policy.d/e2e-adopt.conf',
        '# e2e: the literal user and group of the adopted container\nUSERS=65534\nGROUPS=65534\n',
        '0644',
      );
      const v = await buildRelease('1.0.0', {}, 'e2e-adopt', {
        bundleDir: await writeAdoptBundle(),
      });
      const path = await copyBundleIn(v);

      const unadopted = await hostBefore();
      const refused = await rickInstall(path, ExitCode.invalidBundle);
      check(
        'a plain install is refused on the collision, its hint naming adopt',
        /e2e-adopt/.test(refused) && /rick-install adopt/.test(refused),
        refused
          .split('\n')
          .filter((l) => /^(error|hint)/.test(l.trim()))
          .join(' | '),
      );
      await expectRefusedUnchanged(unadopted);

      const identity = async () =>
        `${await host.show('e2e-adopt.service', 'MainPID')}/${await host.show('e2e-adopt.service', 'InvocationID')}`;
      const before = await identity();
      const others = await identities();
      const r = await host.exec(['rick-install', 'adopt', path], {
        allowFail: true,
        timeoutMs: 600_000,
      });
      const out = `${r.stdout}${r.stderr}`;
      check('rick-install adopt exits 0', r.code === 0, `exit ${r.code}`);
      check(
        'the plan keeps the adopted service',
        /keep +e2e-adopt\.service \(adopted, unchanged\)/.test(out),
        out.split('\n').find((l) => l.includes('e2e-adopt.service')) ?? '',
      );
      check(
        'e2e-adopt.service was not restarted (same MainPID and InvocationID)',
        (await identity()) === before,
        `${before} -> ${await identity()}`,
      );
      check(
        "authentik's units were not restarted either",
        JSON.stringify(await identities()) === JSON.stringify(others),
      );
      const source = await host.show('e2e-adopt.service', 'SourcePath');
      check(
        "systemd reads e2e-adopt.service from rick's live generation now",
        source !== '/etc/containers/systemd/e2e-adopt.container' &&
          source.endsWith('/e2e-adopt.container'),
        source,
      );
      const gone = await host.exec(['test', '-e', '/etc/containers/systemd/e2e-adopt.container'], {
        allowFail: true,
        quiet: true,
      });
      check('the foreign file left /etc/containers/systemd', gone.code !== 0);
      const kept = await host.exec(
        ['find', '/var/lib/rick/adopted', '-name', 'e2e-adopt.container', '-type', 'f'],
        { quiet: true },
      );
      check(
        'the foreign file is kept under /var/lib/rick/adopted',
        kept.stdout.trim().split('\n').filter(Boolean).length === 1,
        kept.stdout.trim(),
      );
      const s = await status();
      check(
        'state.json records e2e-adopt 1.0.0 installed, live confirmed',
        s.bundles.some((b) => b.name === 'e2e-adopt' && b.version === '1.0.0') &&
          s.live === s.confirmed,
      );
      await expectVerifyClean();
      await expectActive('after the adoption');
      await expectServing('after the adoption');
    });
  });

  it('28. a Gitea release with a rotated database password whose health gate fails is rolled back, and the old generation connects with the old password', async () => {
    await step('28. rotated database password rolled back', async () => {
      const oldPassword = await hostSecret('gitea', 'gitea_db_password');
      const newPassword = `e2e-gitea-rotated-${Date.now().toString(36)}`;
      await host.sh(
        `sed -i "s/^gitea_db_password=.*/gitea_db_password='${newPassword}'/" /etc/rick/secrets/gitea.env`,
      );
      log('[host] rotated gitea_db_password in /etc/rick/secrets/gitea.env');
      // The image of step 18 that serves but fails its health check.
      const broken = await buildRelease(
        '1.3.0',
        {
          gitea_image: GITEA_IMAGE,
          gitea_version: GITEA_BROKEN_TAG,
          gitea_domain: GIT_HOST,
          gitea_site_address: `http://${GIT_HOST}`,
        },
        'gitea',
      );
      const cursor = await journalCursor();
      const out = await rickInstall(await copyBundleIn(broken), ExitCode.rolledBack);
      const lines = out.split('\n').map((l) => l.trim());
      const set = 'database: gitea: set the password of role gitea (secret gitea_db_password)';
      const setAt = lines.indexOf(set);
      const liveAt = lines.findIndex((l) => /^generation \d+ is live$/.test(l));
      const gateAt = lines.findIndex((l) => /health gate failed/.test(l));
      const backAt = lines.findIndex((l) => /^generation \d+ is live again$/.test(l));
      const restoredAt = lines.indexOf(set, backAt + 1);
      check(
        "before the flip, the installer set the role's password from the rotated secret",
        setAt >= 0 && liveAt > setAt,
        `"${set}" at line ${setAt + 1}, live at line ${liveAt + 1}`,
      );
      check(
        "the gate fails on Gitea's health check",
        gateAt > liveAt &&
          lines[gateAt]!.includes('gitea.service') &&
          lines[gateAt]!.includes('/api/healthz'),
        lines[gateAt] ?? 'no health gate line',
      );
      check(
        "after the old generation went live again, the installer set the role's password back (before its services restart)",
        backAt > gateAt && restoredAt > backAt,
        `live again at line ${backAt + 1}, password set at line ${restoredAt + 1}`,
      );
      const journal = await journalSince(cursor, ['gitea.service']);
      const cause = journal
        .split('\n')
        .find((l) =>
          l.includes('this image is built to fail its health check (--command unhealthy)'),
        );
      check(
        "gitea.service's journal says why the new generation was unhealthy (the stand-in's own words)",
        cause !== undefined,
        cause?.trim() ?? 'no such line in the journal of gitea.service',
      );
      check(
        'neither password appears in the output',
        !out.includes(newPassword) && !out.includes(oldPassword),
      );
      check('gitea 1.0.0 is live again', (await giteaVersion()) === '1.0.0');
      const gitea = (await status()).bundles.find((b) => b.name === 'gitea');
      check('gitea 1.3.0 is quarantined', gitea?.quarantined.includes('1.3.0') ?? false);
      const entry = (await status()).history.find(
        (h) => h.bundle === 'gitea' && h.version === '1.3.0' && h.outcome === 'rolled-back',
      );
      check(
        "the history records Gitea's health check as the cause",
        entry !== undefined && /api\/healthz/.test(entry.detail ?? ''),
        entry?.detail ?? 'no history entry',
      );
      await expectGiteaLogin(oldPassword, 'the OLD password');
      const rotated = await giteaLogin(newPassword, 'the new password');
      check(
        'with the new password the login fails: PostgreSQL refuses it',
        rotated.code !== 0 &&
          /password authentication failed for user "gitea"/.test(rotated.answer),
        `exit ${rotated.code}: ${rotated.answer}`,
      );
      const health = await until('the restored Gitea answers /api/healthz', 60_000, async () => {
        const r = await host.exec(
          [
            'curl',
            '-s',
            '-o',
            '/dev/null',
            '-w',
            '%{http_code}',
            '--max-time',
            '5',
            'http://127.0.0.1:3000/api/healthz',
          ],
          { allowFail: true, quiet: true },
        );
        return r.stdout.trim() === '200' ? r.stdout.trim() : undefined;
      }).catch((error: Error) => error.message);
      check(
        "the restored Gitea's own health check (select 1 with its rendered password) answers 200",
        health === '200',
        health,
      );
      // The host's secret goes back to what the live generation was rendered with.
      const secrets = join(host.root, 'etc/rick/secrets/gitea.env');
      const text = await readFile(secrets, 'utf8');
      await host.writeFile(
        '/etc/rick/secrets/gitea.env',
        text.replace(/^gitea_db_password=.*$/m, () => `gitea_db_password='${oldPassword}'`),
        '0600',
      );
      check(
        'the host secret is back to the old password',
        (await hostSecret('gitea', 'gitea_db_password')) === oldPassword,
      );
    });
  });

  it('29. a release whose containers lack the client group of a socket they mount is refused by the pre-flight before the flip', async () => {
    await step('29. pre-flight: client group missing', async () => {
      // The authentik bundle, its containers joining postgres-clients only:
      // they still mount Valkey's socket directory (0770 valkey-clients).
      const dir = join(work, 'authentik-without-valkey-group');
      await cp(join(repo, 'bundles/authentik'), dir, { recursive: true });
      for (const name of ['authentik-server', 'authentik-worker']) {
        const file = join(dir, `quadlet/${name}.container.j2`);
        const text = await readFile(file, 'utf8');
        const edited = text.replace(
          'quadlet.group_add([authentik_postgres_clients_group, authentik_valkey_clients_group])',
          'quadlet.group_add([authentik_postgres_clients_group])',
        );
        check(`${name}'s unit no longer adds valkey-clients`, edited !== text);
        await writeFile(file, edited);
      }
      const v = await buildRelease(
        '1.12.0',
        { authentik_image: IMAGE, authentik_version: newTag, authentik_valkey_db: '2' },
        'authentik',
        { bundleDir: dir },
      );
      const path = await copyBundleIn(v);
      const before = await hostBefore({ units: true });
      const gid = infra.VALKEY_CLIENTS_GID!;
      const out = await expectInstallRefused(
        path,
        ExitCode.missingPrerequisite,
        "the pre-flight refuses both containers, naming the socket, its directory's owner and mode, and the missing group",
        (error) =>
          error.startsWith('error PREFLIGHT_FAILED: pre-flight of authentik: ') &&
          ['authentik-server', 'authentik-worker'].every((c) =>
            new RegExp(
              `${c}\\.container \\(uid \\d+ authentik, groups [^)]*${infra.PG_CLIENTS_GID} postgres-clients\\) cannot reach /var/run/valkey/valkey\\.sock: permission denied: /var/run/valkey is valkey:valkey-clients mode 0770, and the container is not in group valkey-clients \\(gid ${gid}\\)`,
            ).test(error),
          ),
      );
      const hint = out.split('\n').find((l) => l.trim().startsWith('hint')) ?? '';
      check(
        "the hint says nothing went live and how to add the group, in the pattern's words",
        hint.includes('nothing went live') &&
          hint.includes(
            'add the container to valkey-clients: PodmanArgs=--group-add {{ gid("valkey-clients") }}',
          ) &&
          hint.includes('valkey-cli -s /var/run/valkey/valkey.sock ping'),
        hint,
      );
      check('no generation went live', !/generation \d+ is live/.test(out));
      await expectRefusedUnchanged(before, { bundle: 'authentik', version: '1.9.0' });
      check('1.12.0 is not quarantined (it never ran)', !(await quarantined()).includes('1.12.0'));
      await expectActive('after the refusal');
      await expectServing('after the refusal (1.9.0 keeps serving)');
    });
  });

  it('30. a Gitea release whose container joins no client group at all is refused by the pre-flight before the flip', async () => {
    await step('30. pre-flight: no client group at all', async () => {
      // The gitea bundle without its --group-add: the container mounts
      // PostgreSQL's socket directory (0770 postgres-clients) as gitea alone.
      const dir = join(work, 'gitea-without-group');
      await cp(join(repo, 'bundles/gitea'), dir, { recursive: true });
      const file = join(dir, 'quadlet/gitea.container.j2');
      const text = await readFile(file, 'utf8');
      const edited = text.replace(
        /^PodmanArgs=\{\{ quadlet\.group_add\(\[gitea_postgres_clients_group\]\) \}\}\n/m,
        '',
      );
      check("gitea's unit no longer adds postgres-clients", edited !== text);
      await writeFile(file, edited);
      const v = await buildRelease(
        '1.4.0',
        {
          gitea_image: GITEA_IMAGE,
          gitea_version: GITEA_TAG,
          gitea_domain: GIT_HOST,
          gitea_site_address: `http://${GIT_HOST}`,
        },
        'gitea',
        { bundleDir: dir },
      );
      const path = await copyBundleIn(v);
      const before = await hostBefore();
      const giteaIdentity = `${await host.show('gitea.service', 'MainPID')}/${await host.show('gitea.service', 'InvocationID')}`;
      const out = await expectInstallRefused(
        path,
        ExitCode.missingPrerequisite,
        "the pre-flight refuses gitea's container, naming the socket, its directory's owner and mode, and the missing group",
        (error) =>
          new RegExp(
            `^error PREFLIGHT_FAILED: pre-flight of gitea: gitea\\.container \\(uid \\d+ gitea, groups \\d+ \\S+\\) cannot reach /var/run/postgresql/\\.s\\.PGSQL\\.5432: permission denied: /var/run/postgresql is postgres:postgres-clients mode 0770, and the container is not in group postgres-clients \\(gid ${infra.PG_CLIENTS_GID}\\)$`,
          ).test(error),
      );
      const hint = out.split('\n').find((l) => l.trim().startsWith('hint')) ?? '';
      check(
        'the hint names the group-add and the test as the service user, with no groups',
        hint.includes('add the container to postgres-clients') &&
          /setpriv --reuid=\d+ --regid=\d+ --clear-groups psql -h \/var\/run\/postgresql -U gitea gitea/.test(
            hint,
          ),
        hint,
      );
      check('no generation went live', !/generation \d+ is live/.test(out));
      await expectRefusedUnchanged(before, { bundle: 'gitea', version: '1.0.0' });
      const after = `${await host.show('gitea.service', 'MainPID')}/${await host.show('gitea.service', 'InvocationID')}`;
      check(
        'gitea.service was not restarted',
        after === giteaIdentity,
        `${giteaIdentity} -> ${after}`,
      );
      const gitea = (await status()).bundles.find((b) => b.name === 'gitea');
      check(
        'gitea 1.4.0 is not quarantined (it never ran)',
        !(gitea?.quarantined.includes('1.4.0') ?? true),
      );
    });
  });

  it('31. a release pinned to a digest keeps running that digest after its tag moves in the registry: through a restart and the next install', async () => {
    await step('31. pinned digest, tag moved', async () => {
      const ref = `${IMAGE}:${PINNED_TAG}`;
      await publishImage([ref]);
      const published = await registryDigest('authentik-standin', PINNED_TAG);
      check(
        `the registry names a sha256 digest for ${ref}`,
        /^sha256:[0-9a-f]{64}$/.test(published),
        published,
      );

      // The release workflow's path: pin a copy of the bundle, build with
      // --require-pinned, sign; the host installs it as any release.
      const dir = join(work, 'authentik-pinned');
      await cp(join(repo, 'bundles/authentik'), dir, { recursive: true });
      const vars = {
        authentik_site_address: `http://${AUTH_HOST}`,
        authentik_image: IMAGE,
        authentik_version: PINNED_TAG,
        authentik_valkey_db: '2',
      };
      const pinned = await pinInHostNetwork(dir, vars);
      const lock = JSON.parse(await readFile(join(dir, 'images.lock'), 'utf8')) as {
        schemaVersion: number;
        images: Record<string, string>;
      };
      check(
        `images.lock pins ${ref}, the one image of both units, to the digest the registry named`,
        lock.schemaVersion === 1 &&
          JSON.stringify(lock.images) === JSON.stringify({ [ref]: published }),
        JSON.stringify(lock),
      );
      check(
        'rick-bundle pin reported it as new',
        pinned.includes(`${ref} ${published} (new)`),
        pinned.trim().replace(/\n/g, ' | '),
      );
      const digest = published;
      const v = await buildRelease('1.13.0', vars, 'authentik', {
        bundleDir: dir,
        extra: ['--require-pinned'],
      });
      const verified = await run('node', [
        rickBundle,
        'verify',
        v.tgz,
        '--keyring',
        join(work, 'key/signing-key.pub.asc'),
      ]);
      check(
        "the signed bundle's build record names the pinned image",
        verified.stdout.includes(`images pinned: ${ref}@${digest}`),
        verified.stdout.split('\n').find((l) => l.startsWith('images pinned')) ?? '',
      );

      const before = await identities();
      const cursor = await journalCursor();
      const path = await copyBundleIn(v);
      const out = await rickInstall(path, ExitCode.ok);
      check('authentik 1.13.0 is live', (await liveVersion()) === '1.13.0');
      const lines = out.split('\n').map((l) => l.trim());
      const liveAt = lines.findIndex((l) => /^generation \d+ is live$/.test(l));
      const pulledAt = lines.findIndex((l) => l.startsWith(`image ${ref}@${digest}: pulled in `));
      check(
        `the installer pulled ${ref}@${digest} before the swap`,
        pulledAt >= 0 && liveAt > pulledAt,
        pulledAt >= 0 ? lines[pulledAt]! : 'no pull line names the pinned reference',
      );
      const requests = await registryManifestRequests(cursor, 'authentik-standin');
      check(
        'the registry served the manifest by its digest, and nobody asked it for the tag',
        requests.some((l) => l.includes(`/manifests/${digest} `)) &&
          !requests.some((l) => l.includes(`/manifests/${PINNED_TAG} `)),
        requests.join(' | ') || 'no request',
      );
      for (const name of ['authentik-server', 'authentik-worker']) {
        const unit = `/etc/containers/systemd/rick/authentik/${name}.container`;
        // Read inside the host: the directory is a link into its own /var/lib/rick.
        const text = (await host.exec(['cat', unit], { quiet: true, allowFail: true })).stdout;
        const image = text.split('\n').find((l) => l.startsWith('Image='));
        check(
          `the live ${unit} names the image by the locked digest`,
          image === `Image=${ref}@${digest}`,
          image ?? 'no Image= line',
        );
      }
      await expectRunningDigest(digest, 'after the install');
      await expectRolledOutAndServing(cursor, before, out, 'after the pinned release');

      // Whoever controls the registry moves the tag to another image: the
      // stand-in built to fail its health check, so that a container running
      // it could not pass for the pinned one.
      // (Built under a name of its own, then pushed as the tag: the host's
      // store has the pinned image already, which must not stand in for it.)
      await publishImage([`${IMAGE}-moved:${PINNED_TAG}`, ref], 'unhealthy');
      const moved = await registryDigest('authentik-standin', PINNED_TAG);
      check(
        `the registry now names another digest for ${ref}`,
        /^sha256:[0-9a-f]{64}$/.test(moved) && moved !== digest,
        `${digest} -> ${moved}`,
      );
      // The host's own image store learns the moved tag too: a unit naming
      // the tag alone would now start the moved image.
      await host.exec(['podman', 'pull', '--quiet', ref], { timeoutMs: 300_000 });
      const stored = (
        await host.exec(['podman', 'image', 'inspect', '--format', '{{.Digest}}', ref], {
          quiet: true,
        })
      ).stdout.trim();
      check(
        `the host's image store has ${ref} as the moved image`,
        stored === moved,
        `${ref}: ${stored}`,
      );

      const beforeRestart = await identities();
      const restartCursor = await journalCursor();
      // One at a time, as the installer restarts them: both stopped at once
      // would leave the pod empty, and podman stops an empty pod
      // (--exit-policy=stop), failing both starts on their dependency.
      for (const unit of ['authentik-worker.service', 'authentik-server.service']) {
        await host.exec(['systemctl', 'restart', unit], { timeoutMs: 300_000 });
      }
      await expectBothRestarted(beforeRestart);
      await expectRunningDigest(digest, 'after systemctl restart');
      await expectNoDependencyFailure(restartCursor);
      await expectActive('after the restart');
      await expectServing('after the restart (the moved image would answer 503)', 60_000);

      // The next install of the same release: nothing to do, nothing pulled.
      const afterRestart = await identities();
      const again = await rickInstall(path, ExitCode.ok);
      check(
        'the install of the same release again has nothing to do',
        again.includes('authentik 1.13.0: version 1.13.0 is already installed; nothing to do'),
        again.trim().split('\n').at(-1) ?? '',
      );
      check('it pulled no image', !/^image .*: pulled in /m.test(again));
      check(
        'no service restarted',
        JSON.stringify(await identities()) === JSON.stringify(afterRestart),
      );
      await expectRunningDigest(digest, 'after the install again');
      const since = await registryManifestRequests(restartCursor, 'authentik-standin');
      check(
        'since the tag moved, neither the restart nor the install asked the registry for the tag',
        !since.some((l) => l.includes(`/manifests/${PINNED_TAG} `)),
        since.join(' | ') || 'no manifest request',
      );

      // A moved tag becomes a new lock and a new release: its plan shows the move.
      const repinned = await pinInHostNetwork(dir, vars);
      check(
        'rick-bundle pin again reports the tag moved',
        repinned.includes(`${ref} ${digest} → ${moved}`),
        repinned.trim().replace(/\n/g, ' | '),
      );
      const next = await buildRelease('1.14.0', vars, 'authentik', {
        bundleDir: dir,
        extra: ['--require-pinned'],
      });
      const nextPath = await copyBundleIn(next);
      const untouched = await hostBefore({ units: true });
      const plan = await host.exec(['rick-install', 'plan', nextPath], { allowFail: true });
      check('rick-install plan exits 0', plan.code === 0, `exit ${plan.code}`);
      const short = (d: string) => `${d.slice(0, 'sha256:'.length + 12)}…`;
      const imageLine = plan.stdout.split('\n').find((l) => l.startsWith('image '));
      check(
        "the plan shows the image's digest change as its own line",
        imageLine === `image   ${ref} ${short(digest)} → ${short(moved)}`,
        imageLine ?? 'no image line',
      );
      // A plan changes nothing: the trees, the units, the live version as they were.
      await expectRefusedUnchanged(untouched, { bundle: 'authentik', version: '1.13.0' });

      // The host as a later step would find it: the moved image out of its
      // store, the pinned release live, clean and serving.
      await host.exec(['podman', 'rmi', ref]);
      check(`${ref} (the moved image) left the host's store`, !(await imageExists(ref)));
      await expectRunningDigest(digest, 'at the end');
      await expectVerifyClean();
      await expectActive('at the end');
      await expectServing('at the end');
    });
  });

  it('every step passed', () => {
    check('no step failed', failed.length === 0, failed.join('; '));
  });
});
