/**
 * Caddy sites and plain systemd units as bundle files, through install,
 * plan, verify and rollback, on a fake service manager with the real judges:
 * Caddy's own `caddy validate` (Debian's caddy package, installed by
 * scripts/setup.sh), systemd's `systemd-analyze verify` and podman's quadlet.
 * Each refusal proves its message and that the host tree did not change.
 * Without caddy or systemd-analyze the suite is skipped, except under CI=true.
 */
import { lstat, mkdir, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CADDY_IMPORT_LINE } from '../../src/bundle/caddy.js';
import { ExitCode } from '../../src/errors.js';
import { UNIT_GENERATOR_SCRIPT } from '../../src/host/unit-generator.js';
import {
  type FactoryFile,
  makeTestKey,
  sampleFiles,
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
import { havePrograms } from '../helpers/programs.js';
import { diffTrees, snapshotTree } from '../helpers/tree-snapshot.js';

const tools = havePrograms('caddy', 'systemd-analyze');

let key: TestKey;
let tree: HostTree;
beforeAll(async () => {
  key = await makeTestKey();
});
afterEach(async () => {
  await tree?.cleanup();
});

const CADDYFILE = `{\n\tadmin off\n}\n\n${CADDY_IMPORT_LINE}\n`;

function site(marker: string, body = `reverse_proxy 127.0.0.1:8080`): FactoryFile {
  return {
    path: 'caddy/demo.caddy',
    content: `# ${marker}\nhttp://demo.test:8081 {\n\t${body}\n}\n`,
  };
}

function fixUnit(marker: string, execStart = '/bin/true'): FactoryFile {
  return {
    path: 'systemd/demo-fix.service',
    content: [
      '[Unit]',
      `Description=demo socket fix (${marker})`,
      'BindsTo=demo-app.service',
      'After=demo-app.service',
      '',
      '[Service]',
      'Type=oneshot',
      `ExecStart=${execStart}`,
      'RemainAfterExit=yes',
      'EnvironmentFile=@@rick:path:env/demo.env@@',
      '',
      '[Install]',
      'WantedBy=demo-app.service',
      '',
    ].join('\n'),
  };
}

const services = [
  { unit: 'demo.pod', service: 'demo-pod.service', activeTimeoutSec: 30, checks: [] },
  { unit: 'demo-app.container', service: 'demo-app.service', activeTimeoutSec: 30, checks: [] },
  { unit: 'demo-fix.service', service: 'demo-fix.service', activeTimeoutSec: 30, checks: [] },
];

async function bundle(
  version: string,
  options: { site?: FactoryFile | null; unit?: FactoryFile | null; marker?: string } = {},
) {
  const marker = options.marker ?? `v${version}`;
  const unit = options.unit === undefined ? fixUnit(marker) : options.unit;
  const files = [
    ...sampleFiles('demo', marker),
    ...(options.site === null ? [] : [options.site ?? site(marker)]),
    ...(unit === null ? [] : [unit]),
  ];
  return writeSignedBundle(tree.work, key, {
    version,
    files,
    services: unit === null ? services.slice(0, 2) : services,
  });
}

/** The sample bundle's grant, and the host command of its plain unit (demo-fix.service). */
const GRANT = `${DEMO_GRANT}SERVICE=ExecStart\n`;

async function hostWithCaddy(caddyfile: string | null = CADDYFILE): Promise<FakeHost> {
  tree = await makeHostTree(key, { grants: { demo: GRANT } });
  if (caddyfile !== null) {
    await mkdir(join(tree.root, 'etc/caddy'), { recursive: true });
    await writeFile(join(tree.root, 'etc/caddy/Caddyfile'), caddyfile);
  }
  return new FakeHost({ root: tree.root });
}

/** A refused first install leaves nothing behind, not even the lock or its directories. */
async function expectNothingLeft(before: Awaited<ReturnType<typeof snapshotTree>>): Promise<void> {
  expect(diffTrees(before, await snapshotTree(tree.root))).toEqual([]);
}

const live = (rel: string) => readFile(join(tree.root, 'var/lib/rick/current', rel), 'utf8');

describe.skipIf(!tools)('Caddy sites and plain units in a bundle', () => {
  it('installs them into the generation, links them once, restarts the unit and reloads Caddy', async () => {
    const host = await hostWithCaddy();
    const v1 = await bundle('1.0.0');
    const r = await runInstaller(host, [v1.bundlePath, '--root', tree.root]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('reload  caddy.service (demo/caddy/demo.caddy changed)');
    // The unit is wanted by the app (its [Install]), which the pod starts.
    expect(r.stdout).toContain(
      'start   demo-pod.service (starts demo-app.service, demo-fix.service: new)',
    );
    expect(r.stdout).toContain('reloaded caddy.service');

    expect(await live('caddy/demo/demo.caddy')).toContain('# v1.0.0');
    expect(await live('caddy/demo.caddy')).toContain('import demo/*.caddy');
    const unit = await live('systemd/demo/demo-fix.service');
    expect(unit).toContain(
      'EnvironmentFile=/var/lib/rick/generations/1/bundles/demo/env/demo.env\n',
    );
    expect(await readlink(join(tree.root, 'etc/caddy/rick'))).toBe('/var/lib/rick/current/caddy');
    const generator = join(tree.root, 'etc/systemd/system-generators/rick-units');
    expect(await readFile(generator, 'utf8')).toBe(UNIT_GENERATOR_SCRIPT);
    expect((await lstat(generator)).mode & 0o7777).toBe(0o755);
    // The host's Caddyfile is the operator's: rick never writes it.
    expect(await readFile(join(tree.root, 'etc/caddy/Caddyfile'), 'utf8')).toBe(CADDYFILE);

    expect(host.serviceCalls()).toEqual([
      { op: 'daemon-reload' },
      { op: 'restart', units: ['demo-pod.service'] },
      { op: 'reload', units: ['caddy.service'] },
    ]);
    expect([...host.active.keys()].sort()).toEqual([
      'demo-app.service',
      'demo-fix.service',
      'demo-pod.service',
    ]);
    expect((await runInstaller(host, ['verify', '--root', tree.root])).code).toBe(0);
  });

  it('a release that changes only the site reloads Caddy and restarts nothing; plan shows the diff', async () => {
    const host = await hostWithCaddy();
    await runInstaller(host, [
      (await bundle('1.0.0', { marker: 'same' })).bundlePath,
      '--root',
      tree.root,
    ]);
    host.reset();
    const v2 = await bundle('2.0.0', {
      marker: 'same',
      site: site('same', 'reverse_proxy 127.0.0.1:8090'),
    });
    const plan = await runInstaller(host, ['plan', v2.bundlePath, '--root', tree.root]);
    expect(plan.code).toBe(0);
    expect(plan.stdout).toContain('reload  caddy.service (demo/caddy/demo.caddy changed)');
    expect(plan.stdout).toContain('keep    demo-fix.service (unchanged)');
    expect(plan.stdout).toContain(
      '-\treverse_proxy 127.0.0.1:8080\n+\treverse_proxy 127.0.0.1:8090',
    );
    expect(host.serviceCalls()).toEqual([]);

    const r = await runInstaller(host, [v2.bundlePath, '--root', tree.root]);
    expect(r.code).toBe(0);
    expect(host.serviceCalls()).toEqual([
      { op: 'daemon-reload' },
      { op: 'reload', units: ['caddy.service'] },
    ]);
  });

  it('a changed plain unit restarts, and plan shows its diff', async () => {
    const host = await hostWithCaddy();
    await runInstaller(host, [
      (await bundle('1.0.0', { marker: 'same' })).bundlePath,
      '--root',
      tree.root,
    ]);
    host.reset();
    const v2 = await bundle('2.0.0', { marker: 'same', unit: fixUnit('same', '/bin/echo fixed') });
    const plan = await runInstaller(host, ['plan', v2.bundlePath, '--root', tree.root]);
    expect(plan.stdout).toContain('restart demo-fix.service (systemd/demo-fix.service changed)');
    expect(plan.stdout).toContain('+ExecStart=/bin/echo fixed');
    const r = await runInstaller(host, [v2.bundlePath, '--root', tree.root]);
    expect(r.code).toBe(0);
    expect(host.serviceCalls()).toEqual([
      { op: 'daemon-reload' },
      { op: 'restart', units: ['demo-fix.service'] },
    ]);
  });

  it('refuses a site Caddy rejects, with Caddy’s message, before anything changed (fresh host)', async () => {
    const host = await hostWithCaddy();
    const bad = await bundle('1.0.0', { site: site('bad', 'reverse_prox 127.0.0.1:8080') });
    const before = await snapshotTree(tree.root);
    const r = await runInstaller(host, [bad.bundlePath, '--root', tree.root]);
    expect(r.code).toBe(ExitCode.invalidBundle);
    expect(r.stderr).toContain(
      "error SITE_REJECTED: Caddy rejects the new generation's sites: adapting config using caddyfile: ",
    );
    expect(r.stderr).toContain(
      '/etc/caddy/rick/demo/demo.caddy:3: unrecognized directive: reverse_prox',
    );
    await expectNothingLeft(before);
    // Refused before systemd-sysusers or anything else ran.
    expect(host.calls).toEqual([]);
  });

  it('refuses a broken site over a live one: the old site stays live, Caddy is not reloaded', async () => {
    const host = await hostWithCaddy();
    await runInstaller(host, [(await bundle('1.0.0')).bundlePath, '--root', tree.root]);
    host.reset();
    const bad = await bundle('2.0.0', { site: site('bad', 'encode nosuchencoding') });
    const before = await snapshotTree(tree.root);
    const r = await runInstaller(host, [bad.bundlePath, '--root', tree.root]);
    expect(r.code).toBe(ExitCode.invalidBundle);
    expect(r.stderr).toMatch(
      /error SITE_REJECTED: Caddy rejects the new generation's sites: .*demo\.caddy/,
    );
    expect(diffTrees(before, await snapshotTree(tree.root))).toEqual([]);
    expect(await live('caddy/demo/demo.caddy')).toContain('# v1.0.0');
    expect(host.serviceCalls()).toEqual([]);
  });

  it('plan runs the same checks: a site Caddy rejects is named there, and nothing changes', async () => {
    const host = await hostWithCaddy();
    await runInstaller(host, [(await bundle('1.0.0')).bundlePath, '--root', tree.root]);
    host.reset();
    const bad = await bundle('2.0.0', { site: site('bad', 'reverse_prox 127.0.0.1:8080') });
    const before = await snapshotTree(tree.root);
    const r = await runInstaller(host, ['plan', bad.bundlePath, '--root', tree.root]);
    expect(r.code).toBe(ExitCode.invalidBundle);
    expect(r.stderr).toContain('error SITE_REJECTED:');
    expect(r.stderr).toContain('unrecognized directive: reverse_prox');
    expect(diffTrees(before, await snapshotTree(tree.root))).toEqual([]);
    expect(host.calls).toEqual([]);
  });

  it('judges the whole Caddyfile: a site clashing with one of the operator’s is refused', async () => {
    const host = await hostWithCaddy(
      `{\n\tadmin off\n}\n\nhttp://demo.test:8081 {\n\trespond "the operator's"\n}\n\n${CADDY_IMPORT_LINE}\n`,
    );
    const v1 = await bundle('1.0.0');
    const before = await snapshotTree(tree.root);
    const r = await runInstaller(host, [v1.bundlePath, '--root', tree.root]);
    expect(r.code).toBe(ExitCode.invalidBundle);
    expect(r.stderr).toContain(
      `error SITE_REJECTED: ${join(tree.root, 'etc/caddy/Caddyfile')} http://demo.test:8081 and demo/caddy/demo.caddy:2 http://demo.test:8081 both claim the host demo.test`,
    );
    await expectNothingLeft(before);
  });

  it('refuses a plain unit systemd-analyze rejects, with its message, changing nothing', async () => {
    const host = await hostWithCaddy();
    const bad = await bundle('1.0.0', { unit: fixUnit('bad', 'relative/path') });
    const before = await snapshotTree(tree.root);
    const r = await runInstaller(host, [bad.bundlePath, '--root', tree.root]);
    expect(r.code).toBe(ExitCode.invalidBundle);
    expect(r.stderr).toContain(
      "error UNITS_REJECTED: systemd-analyze rejects the new generation's units (demo/systemd/demo-fix.service): systemd/demo-fix.service:8: Neither a valid executable name nor an absolute path: relative/path",
    );
    await expectNothingLeft(before);
    expect(host.calls).toEqual([]);
  });

  it('refuses a plain unit whose program this host lacks', async () => {
    const host = await hostWithCaddy();
    const bad = await bundle('1.0.0', { unit: fixUnit('bad', '/usr/bin/rick-no-such-program') });
    const before = await snapshotTree(tree.root);
    const r = await runInstaller(host, [bad.bundlePath, '--root', tree.root]);
    expect(r.code).toBe(ExitCode.invalidBundle);
    expect(r.stderr).toContain(
      'demo-fix.service: Command /usr/bin/rick-no-such-program is not executable',
    );
    await expectNothingLeft(before);
  });

  it('refuses sites when the host Caddyfile does not import them, naming the line to add', async () => {
    const host = await hostWithCaddy(
      '{\n\tadmin off\n}\n\nhttp://other.test {\n\trespond "x"\n}\n',
    );
    const v1 = await bundle('1.0.0');
    const before = await snapshotTree(tree.root);
    const r = await runInstaller(host, [v1.bundlePath, '--root', tree.root]);
    expect(r.code).toBe(ExitCode.missingPrerequisite);
    expect(r.stderr).toContain(
      'error PREREQUISITE_MISSING: ' +
        join(tree.root, 'etc/caddy/Caddyfile') +
        " does not import rick's Caddy sites",
    );
    expect(r.stderr).toContain(`hint: add this line to ${join(tree.root, 'etc/caddy/Caddyfile')}`);
    expect(r.stderr).toContain(CADDY_IMPORT_LINE);
    await expectNothingLeft(before);
  });

  it('refuses sites on a host without a Caddyfile', async () => {
    const host = await hostWithCaddy(null);
    const v1 = await bundle('1.0.0');
    const before = await snapshotTree(tree.root);
    const r = await runInstaller(host, [v1.bundlePath, '--root', tree.root]);
    expect(r.code).toBe(ExitCode.missingPrerequisite);
    expect(r.stderr).toContain('the new generation has Caddy sites, but');
    expect(r.stderr).toContain('etc/caddy/Caddyfile does not exist');
    await expectNothingLeft(before);
  });

  it('refuses when /etc/caddy/rick is someone else’s directory', async () => {
    const host = await hostWithCaddy();
    await mkdir(join(tree.root, 'etc/caddy/rick'));
    const v1 = await bundle('1.0.0');
    const before = await snapshotTree(tree.root);
    const r = await runInstaller(host, [v1.bundlePath, '--root', tree.root]);
    expect(r.code).toBe(ExitCode.missingPrerequisite);
    expect(r.stderr).toContain(
      `error PREREQUISITE_MISSING: ${join(tree.root, 'etc/caddy/rick')} exists and is not a symlink: rick serves its Caddy sites through a link to /var/lib/rick/current/caddy`,
    );
    await expectNothingLeft(before);
  });

  it('refuses a plain unit that would shadow another bundle’s unit', async () => {
    const host = await hostWithCaddy();
    await runInstaller(host, [(await bundle('1.0.0')).bundlePath, '--root', tree.root]);
    const thief = await writeSignedBundle(tree.work, key, {
      name: 'thief',
      files: [{ path: 'systemd/demo-app.service', content: '[Service]\nExecStart=/bin/true\n' }],
      services: [],
    });
    const before = await snapshotTree(tree.root);
    const r = await runInstaller(host, [thief.bundlePath, '--root', tree.root]);
    expect(r.code).toBe(ExitCode.invalidBundle);
    expect(r.stderr).toContain(
      "error BUNDLE_INVALID: bundle thief's units collide with units this host already has: systemd/demo-app.service is demo-app.service, as does demo-app.container of bundle demo (demo-app.service)",
    );
    expect(diffTrees(before, await snapshotTree(tree.root))).toEqual([]);
  });

  it('refuses a plain unit that would shadow a host unit, naming the host’s file', async () => {
    const host = await hostWithCaddy();
    await mkdir(join(tree.root, 'etc/systemd/system'), { recursive: true });
    await writeFile(
      join(tree.root, 'etc/systemd/system/demo-fix.service'),
      '[Service]\nExecStart=/bin/true\n',
    );
    const v1 = await bundle('1.0.0');
    const before = await snapshotTree(tree.root);
    const r = await runInstaller(host, [v1.bundlePath, '--root', tree.root]);
    expect(r.code).toBe(ExitCode.invalidBundle);
    expect(r.stderr).toContain(
      "error BUNDLE_INVALID: bundle demo's units collide with units this host already has: systemd/demo-fix.service is demo-fix.service, which the host already has: /etc/systemd/system/demo-fix.service",
    );
    await expectNothingLeft(before);
  });

  it('does not take the generator’s own links to the live plain units for host units', async () => {
    const host = await hostWithCaddy();
    expect(
      (await runInstaller(host, [(await bundle('1.0.0')).bundlePath, '--root', tree.root])).code,
    ).toBe(0);
    // What the rick-units generator leaves in systemd's generator directory.
    const out = join(tree.root, 'run/systemd/generator');
    await mkdir(join(out, 'demo-app.service.wants'), { recursive: true });
    const unit = '/var/lib/rick/generations/1/systemd/demo/demo-fix.service';
    await symlink(unit, join(out, 'demo-fix.service'));
    await symlink(unit, join(out, 'demo-app.service.wants/demo-fix.service'));
    const r = await runInstaller(host, [(await bundle('2.0.0')).bundlePath, '--root', tree.root]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  it('gates through Caddy with a Host header; a failed gate restores the previous site and reloads Caddy again', async () => {
    const host = await hostWithCaddy();
    const withCheck = (version: string, marker: string, name = 'demo.test') =>
      writeSignedBundle(tree.work, key, {
        version,
        files: [...sampleFiles('demo', marker), site(marker)],
        services: [
          services[0]!,
          {
            ...services[1]!,
            checks: [
              {
                type: 'http',
                url: 'http://127.0.0.1:8081/',
                host: name,
                timeoutSec: 5,
                intervalSec: 1,
              },
            ],
          },
        ],
      });
    expect(
      (await runInstaller(host, [(await withCheck('1.0.0', 'v1')).bundlePath, '--root', tree.root]))
        .code,
    ).toBe(0);
    expect(host.calls).toContainEqual({
      op: 'http',
      url: 'http://127.0.0.1:8081/',
      host: 'demo.test',
    });
    host.reset();
    // Generation 2's site answers its own name with 503 (the fake host's stand-in for it).
    host.failingUrls.add('http://127.0.0.1:8081/ v2.demo.test');
    const v2 = await withCheck('2.0.0', 'v2', 'v2.demo.test');
    const r = await runInstaller(host, [v2.bundlePath, '--root', tree.root]);
    expect(r.code).toBe(ExitCode.rolledBack);
    expect(r.stderr).toContain(
      'demo-app.service: http://127.0.0.1:8081/ (Host: v2.demo.test) did not answer 2xx within 5s (last: 503)',
    );
    expect(await liveGeneration(tree.root)).toBe('generations/1');
    expect(await live('caddy/demo/demo.caddy')).toContain('# v1');
    const reloads = host.serviceCalls().filter((c) => c.op === 'reload');
    expect(reloads).toEqual([
      { op: 'reload', units: ['caddy.service'] },
      { op: 'reload', units: ['caddy.service'] },
    ]);
  });

  it('a reload Caddy refuses fails the gate and rolls back, naming caddy.service', async () => {
    const host = await hostWithCaddy();
    await runInstaller(host, [(await bundle('1.0.0')).bundlePath, '--root', tree.root]);
    host.reset();
    // Caddy refuses generation 2's sites at reload (a port taken, which validate cannot see).
    host.onReload = async () => {
      if ((await liveGeneration(tree.root)) === 'generations/2') {
        throw new Error(
          'Job for caddy.service failed because the control process exited with error code.',
        );
      }
    };
    host.journalLines = [
      'caddy[7]: Error: loading new config: http app module: start: listening on :8081: address already in use',
    ];
    const r = await runInstaller(host, [(await bundle('2.0.0')).bundlePath, '--root', tree.root]);
    expect(r.code).toBe(ExitCode.rolledBack);
    expect(r.stderr).toContain(
      'error ROLLED_BACK: demo 2.0.0 failed its health gate: reload of caddy.service failed: Job for caddy.service failed',
    );
    expect(r.stderr).toContain('(last journal line: caddy[7]: Error: loading new config');
    expect(await liveGeneration(tree.root)).toBe('generations/1');
    // Reloaded for generation 2 (refused), then again for generation 1's sites.
    expect(host.serviceCalls().filter((c) => c.op === 'reload')).toHaveLength(2);
  });

  it('a reload that fails on the way back too leaves the host needing attention', async () => {
    const host = await hostWithCaddy();
    await runInstaller(host, [(await bundle('1.0.0')).bundlePath, '--root', tree.root]);
    host.reset();
    host.failingReloads.add('caddy.service');
    const r = await runInstaller(host, [(await bundle('2.0.0')).bundlePath, '--root', tree.root]);
    expect(r.code).toBe(ExitCode.rollbackFailed);
    expect(r.stderr).toContain(
      'error ROLLBACK_FAILED: demo 2.0.0 failed its health gate (reload of caddy.service failed',
    );
    expect(await liveGeneration(tree.root)).toBe('generations/1');
  });

  it('rollback puts the previous sites and units back and reloads Caddy', async () => {
    const host = await hostWithCaddy();
    await runInstaller(host, [(await bundle('1.0.0')).bundlePath, '--root', tree.root]);
    await runInstaller(host, [
      (await bundle('2.0.0', { unit: null })).bundlePath,
      '--root',
      tree.root,
    ]);
    expect(await live('caddy/demo/demo.caddy')).toContain('# v2.0.0');
    host.reset();
    const r = await runInstaller(host, ['rollback', '--root', tree.root]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(await live('caddy/demo/demo.caddy')).toContain('# v1.0.0');
    expect(await live('systemd/demo/demo-fix.service')).toContain('(v1.0.0)');
    expect(host.serviceCalls()).toContainEqual({ op: 'reload', units: ['caddy.service'] });
    // The app's env file changed back: the pod restarts with it, and the app
    // starts the unit generation 2 dropped (it wants it again).
    expect(host.serviceCalls()).toContainEqual({ op: 'restart', units: ['demo-pod.service'] });
    expect(r.stdout).toContain(
      'restarted demo-pod.service (with demo-app.service demo-fix.service)',
    );
    expect(host.active.has('demo-fix.service')).toBe(true);
  });

  it('a release without its site removes it: Caddy reloads without it', async () => {
    const host = await hostWithCaddy();
    await runInstaller(host, [(await bundle('1.0.0')).bundlePath, '--root', tree.root]);
    host.reset();
    const r = await runInstaller(host, [
      (await bundle('2.0.0', { site: null })).bundlePath,
      '--root',
      tree.root,
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('reload  caddy.service (demo/caddy/demo.caddy changed)');
    await expect(live('caddy/demo.caddy')).rejects.toThrow(/ENOENT/);
    expect(host.serviceCalls()).toContainEqual({ op: 'reload', units: ['caddy.service'] });
    expect((await runInstaller(host, ['verify', '--root', tree.root])).code).toBe(0);
  });

  it('verify names a changed site, a stray site, a changed unit and a changed generator', async () => {
    const host = await hostWithCaddy();
    await runInstaller(host, [(await bundle('1.0.0')).bundlePath, '--root', tree.root]);
    const gen = join(tree.root, 'var/lib/rick/generations/1');
    await writeFile(join(gen, 'caddy/demo/demo.caddy'), 'http://evil.test {\n\trespond "x"\n}\n');
    await writeFile(join(gen, 'caddy/stray.caddy'), 'import /tmp/*.caddy\n');
    await writeFile(join(gen, 'systemd/demo/demo-fix.service'), '[Service]\nExecStart=/bin/sh\n');
    const generator = join(tree.root, 'etc/systemd/system-generators/rick-units');
    await writeFile(generator, `${UNIT_GENERATOR_SCRIPT}\nrm -rf /\n`);
    const r = await runInstaller(host, ['verify', '--root', tree.root]);
    expect(r.code).toBe(ExitCode.drift);
    const out = r.stdout + r.stderr;
    expect(out).toContain(
      `${join(gen, 'caddy/demo/demo.caddy')}: content changed since generation 1 was written`,
    );
    expect(out).toContain(`${join(gen, 'caddy/stray.caddy')}: not written by rick`);
    expect(out).toContain(
      `${join(gen, 'systemd/demo/demo-fix.service')}: content changed since generation 1 was written`,
    );
    expect(out).toContain(`${generator}: differs from the generator rick writes`);
  });

  it('an offline tree judges the sites on their own and installs them', async () => {
    tree = await makeHostTree(key, { grants: { demo: GRANT } });
    const host = new FakeHost({ root: tree.root, offline: true });
    const v1 = await bundle('1.0.0');
    const r = await runInstaller(host, [v1.bundlePath, '--root', tree.root]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(await live('caddy/demo/demo.caddy')).toContain('# v1.0.0');
    const bad = await bundle('2.0.0', { site: site('bad', 'reverse_prox x') });
    const before = await snapshotTree(tree.root);
    const refused = await runInstaller(host, [bad.bundlePath, '--root', tree.root]);
    expect(refused.code).toBe(ExitCode.invalidBundle);
    expect(refused.stderr).toContain('unrecognized directive: reverse_prox');
    expect(diffTrees(before, await snapshotTree(tree.root))).toEqual([]);
  });
});

describe.skipIf(!tools)('the bundle refuses [Install] keys its generator cannot carry out', () => {
  it('refuses Alias= with the file and line', async () => {
    tree = await makeHostTree(key);
    const host = new FakeHost({ root: tree.root });
    const b = await writeSignedBundle(tree.work, key, {
      files: [
        ...sampleFiles('demo'),
        {
          path: 'systemd/demo-x.service',
          content: '[Service]\nExecStart=/bin/true\n\n[Install]\nAlias=x.service\n',
        },
      ],
    });
    const before = await snapshotTree(tree.root);
    const r = await runInstaller(host, [b.bundlePath, '--root', tree.root]);
    expect(r.code).toBe(ExitCode.invalidBundle);
    expect(r.stderr).toContain(
      'error BUNDLE_INVALID: bundle demo: systemd/demo-x.service:5: [Install] Alias= is not supported',
    );
    expect(diffTrees(before, await snapshotTree(tree.root))).toEqual([]);
    await rm(join(tree.work), { recursive: true, force: true });
  });
});
