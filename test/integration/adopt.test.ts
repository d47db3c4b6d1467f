/**
 * `rick-install adopt`: a host whose units another tool (Ansible) wrote into
 * /etc/containers/systemd, under the names of the bundle's units, is taken
 * over in one run. The foreign files here are what the bundle renders on the
 * same host, with the env file at another path (as Ansible lays it out),
 * rendered by installing the bundle into a scratch tree with the same
 * accounts. Podman's real quadlet generator judges the units, as in the
 * install tests; systemctl is the fake of the process edge.
 */
import {
  chown,
  mkdir,
  readdir,
  readFile,
  readlink,
  rm,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CADDY_IMPORT_LINE } from '../../src/bundle/caddy.js';
import { ExitCode } from '../../src/errors.js';
import { FAULT_ENV } from '../../src/host/fault.js';
import { readState } from '../../src/host/state.js';
import {
  type FactoryFile,
  sampleFiles,
  type WrittenBundle,
  writeSignedBundle,
} from '../helpers/bundle-factory.js';
import { requireBuiltCli, runCli } from '../helpers/cli-process.js';
import { FakeHost } from '../helpers/fake-host.js';
import { type HostTree, liveGeneration, quadletPath, runInstaller } from '../helpers/host-tree.js';
import { useHostTrees } from '../helpers/host-trees.js';
import { havePrograms } from '../helpers/programs.js';
import { diffTrees, snapshotTree } from '../helpers/tree-snapshot.js';

const hosts = useHostTrees();

const UNITS = 'etc/containers/systemd';
const SITES = 'etc/caddy/sites-enabled';
const ANSIBLE_ENV = '/etc/demo/demo.env';
const CADDYFILE = `{\n\tadmin off\n}\n\n${CADDY_IMPORT_LINE}\n`;

function worker(): FactoryFile {
  return {
    path: 'quadlet/demo-worker.container',
    content: [
      '[Unit]',
      'Requires=demo-pod.service',
      'After=demo-pod.service',
      '',
      '[Container]',
      'ContainerName=demo-worker',
      'Image=registry.example.org/demo:1',
      'Pod=demo.pod',
      'EnvironmentFile=@@rick:path:env/demo.env@@',
      'User=4100:4100',
      'Exec=worker',
      '',
      '[Install]',
      'WantedBy=multi-user.target',
      '',
    ].join('\n'),
  };
}

const site: FactoryFile = {
  path: 'caddy/demo.caddy',
  content: 'http://demo.test:8081 {\n\treverse_proxy 127.0.0.1:8080\n}\n',
};

/**
 * The sample bundle, a worker beside its app, and optionally a site. The
 * units run as a literal id rather than the account the bundle creates:
 * `plan` runs before systemd-sysusers and cannot know that id (docs/adopt.md).
 */
function demoFiles(withSite: boolean): FactoryFile[] {
  const files = sampleFiles('demo', 'v1').map((f) => ({
    ...f,
    content: String(f.content).replace(
      'User=@@rick:uid:demo@@:@@rick:gid:demo@@',
      'User=4100:4100',
    ),
  }));
  return [...files, worker(), ...(withSite ? [site] : [])];
}

async function newTree(): Promise<HostTree> {
  // The units run as a literal id the host grants (see demoFiles).
  const tree = await hosts.make({
    grants: { demo: 'GROUPS=demo postgres-clients 4100\nUSERS=demo 4100\n' },
  });
  await mkdir(join(tree.root, 'etc/caddy'), { recursive: true });
  await writeFile(join(tree.root, 'etc/caddy/Caddyfile'), CADDYFILE);
  return tree;
}

/**
 * What "Ansible" wrote: the bundle's units as rendered on a tree with the
 * same accounts, reading their env file from /etc/demo, and its site.
 */
async function foreignFiles(bundle: WrittenBundle, withSite: boolean) {
  const scratch = await newTree();
  const host = new FakeHost({ root: scratch.root, offline: true });
  const r = await runInstaller(host, [bundle.bundlePath, '--root', scratch.root]);
  expect(r.stderr).toBe('');
  const gen = join(scratch.root, 'var/lib/rick/generations/1');
  const units = new Map<string, string>();
  for (const name of await readdir(join(gen, 'quadlet/demo'))) {
    const text = await readFile(join(gen, 'quadlet/demo', name), 'utf8');
    units.set(
      name,
      text.replaceAll('/var/lib/rick/generations/1/bundles/demo/env/demo.env', ANSIBLE_ENV),
    );
  }
  const env = await readFile(join(gen, 'bundles/demo/env/demo.env'), 'utf8');
  const sites = new Map<string, string>();
  if (withSite) sites.set('demo.caddy', await readFile(join(gen, 'caddy/demo/demo.caddy'), 'utf8'));
  return { units, env, sites };
}

async function writeForeign(tree: HostTree, files: Awaited<ReturnType<typeof foreignFiles>>) {
  await mkdir(join(tree.root, UNITS), { recursive: true });
  for (const [name, text] of files.units) await writeFile(join(tree.root, UNITS, name), text);
  await mkdir(join(tree.root, 'etc/demo'), { recursive: true });
  await writeFile(join(tree.root, ANSIBLE_ENV), files.env, { mode: 0o600 });
  if (files.sites.size) await mkdir(join(tree.root, SITES), { recursive: true });
  for (const [name, text] of files.sites) await writeFile(join(tree.root, SITES, name), text);
}

/** The fake live host, with the services the foreign units make running, as Ansible left them. */
function liveHost(tree: HostTree): FakeHost {
  const host = new FakeHost({ root: tree.root });
  let pid = 500;
  for (const unit of ['demo-pod.service', 'demo-app.service', 'demo-worker.service']) {
    host.active.set(unit, pid++);
  }
  return host;
}

/** The one adoption directory's path under var/lib/rick/adopted. */
async function adoptedDir(root: string): Promise<string> {
  const dirs = await readdir(join(root, 'var/lib/rick/adopted'));
  expect(dirs).toHaveLength(1);
  return join(root, 'var/lib/rick/adopted', dirs[0]!);
}

async function record(root: string): Promise<Record<string, unknown>> {
  return JSON.parse(await readFile(join(await adoptedDir(root), 'record.json'), 'utf8'));
}

const onlyWithQuadlet = !quadletPath && process.env.CI !== 'true';

describe.skipIf(onlyWithQuadlet)('rick-install adopt', () => {
  it('takes over identical units (env file at another path, same content) and restarts nothing', async () => {
    const bundle = await writeSignedBundle((await newTree()).work, hosts.key, {
      version: '1.0.0',
      files: demoFiles(false),
    });
    const foreign = await foreignFiles(bundle, false);
    const tree = await newTree();
    await writeForeign(tree, foreign);
    const host = liveHost(tree);
    const r = await runInstaller(host, ['adopt', bundle.bundlePath, '--root', tree.root]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(ExitCode.ok);
    for (const unit of ['demo-app', 'demo-worker']) {
      expect(r.stdout).toContain(
        `adopt   /etc/containers/systemd/${unit}.container (same service, text differs, diff below: demo/quadlet/${unit}.container)`,
      );
      expect(r.stdout).toContain(`keep    ${unit}.service (adopted, unchanged)`);
    }
    expect(r.stdout).toContain(
      'adopt   /etc/containers/systemd/demo.pod (same unit: demo/quadlet/demo.pod)',
    );
    expect(r.stdout).toContain('keep    demo-pod.service (adopted, unchanged)');
    // The diff shows the env file's path, which is all that differs.
    expect(r.stdout).toContain(`-EnvironmentFile=${ANSIBLE_ENV}`);
    expect(r.stdout).toContain(
      '+EnvironmentFile=/var/lib/rick/generations/1/bundles/demo/env/demo.env',
    );
    // No restart: systemd re-reads the units, nothing else.
    expect(host.serviceCalls()).toEqual([{ op: 'daemon-reload' }]);
    expect(await liveGeneration(tree.root)).toBe('generations/1');

    // Moved, not copied: quadlet reads the bundle's units only.
    expect(await readdir(join(tree.root, UNITS))).toEqual(['rick']);
    const dir = await adoptedDir(tree.root);
    for (const [name, text] of foreign.units) {
      expect(await readFile(join(dir, 'files', UNITS, name), 'utf8')).toBe(text);
    }
    expect(await record(tree.root)).toMatchObject({
      bundle: 'demo',
      version: '1.0.0',
      generation: 1,
      state: 'done',
      services: ['demo-app.service', 'demo-pod.service', 'demo-worker.service'],
    });
    // The env file Ansible wrote is not one of the units: it stays.
    expect(await readFile(join(tree.root, ANSIBLE_ENV), 'utf8')).toBe(foreign.env);
    const state = await readState(join(tree.root, 'var/lib/rick/state.json'));
    expect(state.live).toBe(1);
    expect(state.history.at(-1)?.detail).toMatch(/^adopted the host's files, kept in /);
  });

  it('restarts only the unit changed by hand, shows its diff, and plan --adopt shows the same', async () => {
    const bundle = await writeSignedBundle((await newTree()).work, hosts.key, {
      version: '1.0.0',
      files: demoFiles(false),
    });
    const foreign = await foreignFiles(bundle, false);
    const worker = foreign.units.get('demo-worker.container')!;
    foreign.units.set('demo-worker.container', worker.replace('Exec=worker', 'Exec=worker --old'));
    const tree = await newTree();
    await writeForeign(tree, foreign);
    const host = liveHost(tree);

    const before = await snapshotTree(tree.root);
    const plan = await runInstaller(host, [
      'plan',
      '--adopt',
      bundle.bundlePath,
      '--root',
      tree.root,
    ]);
    expect(plan.stderr).toBe('');
    expect(plan.code).toBe(ExitCode.ok);
    expect(diffTrees(before, await snapshotTree(tree.root))).toEqual([]);
    expect(host.serviceCalls()).toEqual([]);

    const r = await runInstaller(host, ['adopt', bundle.bundlePath, '--root', tree.root]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(ExitCode.ok);
    expect(r.stdout).toContain(
      'adopt   /etc/containers/systemd/demo-worker.container (service differs, diff below: demo/quadlet/demo-worker.container)',
    );
    expect(r.stdout).toContain('-Exec=worker --old\n+Exec=worker\n');
    expect(r.stdout).toContain(
      'restart demo-worker.service (quadlet/demo-worker.container changed)',
    );
    expect(r.stdout).toContain('keep    demo-app.service (adopted, unchanged)');
    expect(r.stdout).toContain('keep    demo-pod.service (adopted, unchanged)');
    expect(host.serviceCalls()).toEqual([
      { op: 'daemon-reload' },
      { op: 'restart', units: ['demo-worker.service'] },
    ]);

    // plan printed the same lines and diffs as adopt.
    const planned = plan.stdout.slice(plan.stdout.indexOf('adopt   '));
    expect(planned).toContain(
      'restart demo-worker.service (quadlet/demo-worker.container changed)',
    );
    expect(planned).toContain('keep    demo-app.service (adopted, unchanged)');
    const adoptReport = r.stdout.slice(
      r.stdout.indexOf('adopt   '),
      r.stdout.indexOf('restart demo-worker.service'),
    );
    expect(adoptReport).toContain('+Exec=worker');
    expect(planned.startsWith(adoptReport.trimEnd())).toBe(true);
  });

  it('restarts the units that read an env file whose content differs', async () => {
    const bundle = await writeSignedBundle((await newTree()).work, hosts.key, {
      version: '1.0.0',
      files: demoFiles(false),
    });
    const foreign = await foreignFiles(bundle, false);
    foreign.env = foreign.env.replace('MARKER=v1', 'MARKER=ansible');
    const tree = await newTree();
    await writeForeign(tree, foreign);
    const host = liveHost(tree);
    const r = await runInstaller(host, ['adopt', bundle.bundlePath, '--root', tree.root]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(ExitCode.ok);
    // Same unit text (but the env file's path), different env content: both containers restart.
    expect(r.stdout).toContain(
      'adopt   /etc/containers/systemd/demo-app.container (service differs, diff below: demo/quadlet/demo-app.container)',
    );
    expect(r.stdout).toContain('restart demo-app.service, then demo-worker.service, one at a time');
    expect(r.stdout).toContain('keep    demo-pod.service (adopted, unchanged)');
    expect(host.serviceCalls()).toEqual([
      { op: 'daemon-reload' },
      { op: 'restart', units: ['demo-app.service'] },
      { op: 'restart', units: ['demo-worker.service'] },
    ]);
  });

  it('a failed health gate puts the adopted files back and starts their services', async () => {
    const bundle = await writeSignedBundle((await newTree()).work, hosts.key, {
      version: '1.0.0',
      files: demoFiles(false),
    });
    const foreign = await foreignFiles(bundle, false);
    const worker = foreign.units.get('demo-worker.container')!;
    foreign.units.set('demo-worker.container', worker.replace('Exec=worker', 'Exec=worker --old'));
    const tree = await newTree();
    await writeForeign(tree, foreign);
    const host = liveHost(tree);
    host.failingUnits.set('demo-worker.service', 1);
    const r = await runInstaller(host, ['adopt', bundle.bundlePath, '--root', tree.root]);
    expect(r.code).toBe(ExitCode.rolledBack);
    expect(r.stderr).toContain('error ROLLED_BACK: demo 1.0.0 failed its health gate');
    expect(r.stdout).toContain(
      "generation 1, which adopted demo's files, is not live: putting them back",
    );
    expect(await liveGeneration(tree.root)).toBeUndefined();
    for (const [name, text] of foreign.units) {
      expect(await readFile(join(tree.root, UNITS, name), 'utf8')).toBe(text);
    }
    expect(await record(tree.root)).toMatchObject({ state: 'restored' });
    expect(host.serviceCalls().slice(-2)).toEqual([
      { op: 'daemon-reload' },
      { op: 'start', units: ['demo-app.service', 'demo-pod.service', 'demo-worker.service'] },
    ]);
  });

  it('refuses a foreign unit of another name that makes one of the bundle’s services, changing nothing', async () => {
    const bundle = await writeSignedBundle((await newTree()).work, hosts.key, {
      version: '1.0.0',
      files: demoFiles(false),
    });
    const foreign = await foreignFiles(bundle, false);
    // Ansible named the worker differently; it makes the same service.
    const text = foreign.units.get('demo-worker.container')!;
    foreign.units.delete('demo-worker.container');
    foreign.units.set(
      'legacy-worker.container',
      text.replace('[Container]', '[Container]\nServiceName=demo-worker'),
    );
    const tree = await newTree();
    await writeForeign(tree, foreign);
    const host = liveHost(tree);
    const before = await snapshotTree(tree.root);
    const r = await runInstaller(host, ['adopt', bundle.bundlePath, '--root', tree.root]);
    expect(r.code).toBe(ExitCode.invalidBundle);
    expect(r.stderr).toContain(
      "error BUNDLE_INVALID: bundle demo's units collide with units this host already has: quadlet/demo-worker.container makes demo-worker.service, as does the host's quadlet file /etc/containers/systemd/legacy-worker.container (demo-worker.service)",
    );
    expect(r.stderr).toContain(
      "hint: adopt takes over only the files of the top level of /etc/containers/systemd and of /etc/caddy/sites-enabled that have the names of the bundle's units and sites",
    );
    expect(host.serviceCalls()).toEqual([]);
    expect(diffTrees(before, await snapshotTree(tree.root))).toEqual([]);
  });

  it('a plain install on such a host is still refused, and its hint names adopt', async () => {
    const bundle = await writeSignedBundle((await newTree()).work, hosts.key, {
      version: '1.0.0',
      files: demoFiles(false),
    });
    const tree = await newTree();
    await writeForeign(tree, await foreignFiles(bundle, false));
    const host = liveHost(tree);
    const before = await snapshotTree(tree.root);
    const r = await runInstaller(host, [bundle.bundlePath, '--root', tree.root]);
    expect(r.code).toBe(ExitCode.invalidBundle);
    expect(r.stderr).toContain(
      "quadlet/demo-app.container has the name of the host's quadlet file /etc/containers/systemd/demo-app.container",
    );
    expect(r.stderr).toContain(
      'hint: /etc/containers/systemd/demo.pod, /etc/containers/systemd/demo-app.container, /etc/containers/systemd/demo-worker.container have the name of a unit of the bundle: take them over with `rick-install adopt BUNDLE.tgz`',
    );
    expect(host.serviceCalls()).toEqual([]);
    expect(diffTrees(before, await snapshotTree(tree.root))).toEqual([]);
  });

  it('adopts containers whose pod the host does not have, comparing them as written', async () => {
    const bundle = await writeSignedBundle((await newTree()).work, hosts.key, {
      version: '1.0.0',
      files: demoFiles(false),
    });
    const foreign = await foreignFiles(bundle, false);
    foreign.units.delete('demo.pod');
    const tree = await newTree();
    await writeForeign(tree, foreign);
    const host = liveHost(tree);
    const r = await runInstaller(host, ['adopt', bundle.bundlePath, '--root', tree.root]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(ExitCode.ok);
    expect(r.stdout).toContain('note: quadlet rejects the adopted units on their own');
    expect(r.stdout).toContain(
      'adopt   /etc/containers/systemd/demo-app.container (same service, text differs, diff below: demo/quadlet/demo-app.container)',
    );
    expect(r.stdout).toContain('start   demo-pod.service');
    expect(await record(tree.root)).toMatchObject({
      state: 'done',
      files: [
        { path: '/etc/containers/systemd/demo-app.container', kind: 'unit' },
        { path: '/etc/containers/systemd/demo-worker.container', kind: 'unit' },
      ],
    });
  });

  it('refuses a link with the name of one of the bundle’s units, changing nothing', async () => {
    const bundle = await writeSignedBundle((await newTree()).work, hosts.key, {
      version: '1.0.0',
      files: demoFiles(false),
    });
    const foreign = await foreignFiles(bundle, false);
    const tree = await newTree();
    await writeForeign(tree, foreign);
    await rm(join(tree.root, UNITS, 'demo.pod'));
    await symlink('/srv/units/demo.pod', join(tree.root, UNITS, 'demo.pod'));
    const host = liveHost(tree);
    const before = await snapshotTree(tree.root);
    const r = await runInstaller(host, ['adopt', bundle.bundlePath, '--root', tree.root]);
    expect(r.code).toBe(ExitCode.invalidBundle);
    expect(r.stderr).toContain(
      'error BUNDLE_INVALID: cannot adopt: /etc/containers/systemd/demo.pod is not a regular file',
    );
    expect(host.serviceCalls()).toEqual([]);
    expect(diffTrees(before, await snapshotTree(tree.root))).toEqual([]);
  });

  it('refuses adopt where nothing has the bundle’s names, changing nothing', async () => {
    const tree = await newTree();
    const bundle = await writeSignedBundle(tree.work, hosts.key, {
      version: '1.0.0',
      files: demoFiles(false),
    });
    const host = liveHost(tree);
    const before = await snapshotTree(tree.root);
    const r = await runInstaller(host, ['adopt', bundle.bundlePath, '--root', tree.root]);
    expect(r.code).toBe(ExitCode.usage);
    expect(r.stderr).toContain(
      'error USAGE: nothing to adopt: neither /etc/containers/systemd nor /etc/caddy/sites-enabled has a file with the name of a unit or site of bundle demo',
    );
    expect(diffTrees(before, await snapshotTree(tree.root))).toEqual([]);
  });
});

describe.skipIf(onlyWithQuadlet)('the accounts and paths other tooling made', () => {
  const tmpfiles: FactoryFile = {
    path: 'tmpfiles.d/demo.conf',
    content: 'd /var/lib/demo 0750 demo demo -\n',
  };

  /** A host where Ansible made the service user, its group and its data directory. */
  async function ansibleHost(grant: string) {
    const bundle = await writeSignedBundle((await newTree()).work, hosts.key, {
      version: '1.0.0',
      files: [...demoFiles(false), tmpfiles],
    });
    const foreign = await foreignFiles(bundle, false);
    const tree = await hosts.make({
      users: ['root:x:0:0:root:/root:/bin/sh', 'demo:x:990:990::/var/lib/demo:/usr/sbin/nologin'],
      groups: ['root:x:0:', 'postgres-clients:x:4001:', 'valkey-clients:x:4002:', 'demo:x:990:'],
      grants: { demo: grant },
    });
    await mkdir(join(tree.root, 'var/lib/demo'), { recursive: true, mode: 0o750 });
    await chown(join(tree.root, 'var/lib/demo'), 990, 990);
    await writeForeign(tree, foreign);
    return { bundle, tree };
  }

  it('takes over the user, group and directory the grant names, and records them as the bundle’s', async () => {
    const { bundle, tree } = await ansibleHost(
      'GROUPS=demo postgres-clients 4100\nUSERS=demo 4100\n',
    );
    const host = new FakeHost({ root: tree.root });
    const before = await snapshotTree(tree.root);
    // A plain install is refused for them, and told about adopt.
    const plain = await runInstaller(host, [bundle.bundlePath, '--root', tree.root]);
    expect(plain.code).toBe(ExitCode.invalidBundle);
    expect(plain.stderr).toContain(
      'error BUNDLE_INVALID: bundle demo asks for what is not its own: sysusers.d/demo.conf:1: user demo already exists and was not created by bundle demo',
    );
    expect(plain.stderr).toContain('take them over with `rick-install adopt BUNDLE.tgz`');
    expect(diffTrees(before, await snapshotTree(tree.root))).toEqual([]);

    const r = await runInstaller(host, ['adopt', bundle.bundlePath, '--root', tree.root]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(ExitCode.ok);
    expect(r.stdout).toContain(
      "note: adopts user demo, group demo, /var/lib/demo, which exist and are granted to demo: they are the bundle's from now on",
    );
    const created = JSON.parse(
      await readFile(join(tree.root, 'var/lib/rick/created.json'), 'utf8'),
    );
    expect(created.bundles.demo).toEqual({
      users: ['demo'],
      groups: ['demo'],
      paths: ['/var/lib/demo'],
    });
    expect(await readFile(join(tree.root, 'etc/passwd'), 'utf8')).toContain(
      'demo:x:990:990::/var/lib/demo:/usr/sbin/nologin',
    );
  });

  it('refuses an existing user the grant does not name, changing nothing', async () => {
    const { bundle, tree } = await ansibleHost('GROUPS=postgres-clients 4100\nUSERS=4100\n');
    const host = new FakeHost({ root: tree.root });
    const before = await snapshotTree(tree.root);
    const r = await runInstaller(host, ['adopt', bundle.bundlePath, '--root', tree.root]);
    expect(r.code).toBe(ExitCode.invalidBundle);
    expect(r.stderr).toContain(
      'error BUNDLE_INVALID: bundle demo asks for what is not its own: sysusers.d/demo.conf:1: user demo already exists and was not created by bundle demo; sysusers.d/demo.conf:1: group demo already exists and was not created by bundle demo; tmpfiles.d/demo.conf:1: /var/lib/demo already exists and was not created by bundle demo',
    );
    expect(host.serviceCalls()).toEqual([]);
    expect(diffTrees(before, await snapshotTree(tree.root))).toEqual([]);
  });
});

describe.skipIf(onlyWithQuadlet || !havePrograms('caddy'))('rolling back past an adoption', () => {
  it('puts the adopted units and site back and starts their services', async () => {
    const tree = await newTree();
    // Generation 1: another bundle rick installed before.
    await writeFile(
      join(tree.root, 'etc/rick/policy.d/other.conf'),
      'GROUPS=other postgres-clients\nUSERS=other\n',
    );
    await writeFile(join(tree.root, 'etc/rick/secrets/other.env'), 'db_password=x-secret\n', {
      mode: 0o600,
    });
    const other = await writeSignedBundle(tree.work, hosts.key, {
      name: 'other',
      version: '1.0.0',
      files: sampleFiles('other'),
    });
    const host = new FakeHost({ root: tree.root });
    expect((await runInstaller(host, [other.bundlePath, '--root', tree.root])).code).toBe(0);

    const bundle = await writeSignedBundle(tree.work, hosts.key, {
      version: '1.0.0',
      files: demoFiles(true),
    });
    const foreign = await foreignFiles(bundle, true);
    await writeForeign(tree, foreign);
    const before = await snapshotTree(join(tree.root, 'etc'));
    host.reset();
    const r = await runInstaller(host, ['adopt', bundle.bundlePath, '--root', tree.root]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(
      'adopt   /etc/caddy/sites-enabled/demo.caddy (same site: demo/caddy/demo.caddy)',
    );
    expect(await liveGeneration(tree.root)).toBe('generations/2');
    expect(await readdir(join(tree.root, SITES))).toEqual([]);

    host.reset();
    const back = await runInstaller(host, ['rollback', '--root', tree.root]);
    expect(back.stderr).toBe('');
    expect(back.code).toBe(0);
    expect(back.stdout).toContain(
      "the live generation is older than generation 2, which adopted demo's files: putting them back",
    );
    expect(await liveGeneration(tree.root)).toBe('generations/1');
    const after = await snapshotTree(join(tree.root, 'etc'));
    // Only what the adoption made stays: the bundle's user (systemd-sysusers) and rick's Caddy link.
    expect(diffTrees(before, after)).toEqual([
      '+ caddy/rick (symlink)',
      '~ group: size, sha256',
      '~ passwd: size, sha256',
    ]);
    for (const [name, text] of foreign.units) {
      expect(await readFile(join(tree.root, UNITS, name), 'utf8')).toBe(text);
    }
    expect(await readFile(join(tree.root, SITES, 'demo.caddy'), 'utf8')).toBe(
      foreign.sites.get('demo.caddy'),
    );
    // Kept, never deleted.
    const dir = await adoptedDir(tree.root);
    expect(await readdir(join(dir, 'files', UNITS))).toEqual([...foreign.units.keys()].sort());
    expect(await record(tree.root)).toMatchObject({ state: 'restored', generation: 2 });
    expect(host.serviceCalls().slice(-3)).toEqual([
      { op: 'daemon-reload' },
      { op: 'start', units: ['demo-app.service', 'demo-pod.service', 'demo-worker.service'] },
      { op: 'reload', units: ['caddy.service'] },
    ]);
    expect(await readlink(join(tree.root, 'var/lib/rick/current'))).toBe('generations/1');
  });

  it('rollback from a first generation that adopted puts the units and site back and leaves nothing live', async () => {
    const tree = await newTree();
    const bundle = await writeSignedBundle(tree.work, hosts.key, {
      version: '1.0.0',
      files: demoFiles(true),
    });
    const foreign = await foreignFiles(bundle, true);
    await writeForeign(tree, foreign);
    const before = await snapshotTree(join(tree.root, 'etc'));
    const host = liveHost(tree);
    const adopted = await runInstaller(host, ['adopt', bundle.bundlePath, '--root', tree.root]);
    expect(adopted.stderr).toBe('');
    expect(adopted.code).toBe(0);
    expect(await liveGeneration(tree.root)).toBe('generations/1');

    // status lists the adoption: its time, the bundle, the files kept.
    const dir = await adoptedDir(tree.root);
    const kept = `/var/lib/rick/adopted/${dir.split('/').at(-1)}`;
    const status = await runInstaller(host, ['status', '--root', tree.root]);
    expect(status.stdout).toContain(
      `adopted 2026-01-01T00:00:00.000Z: demo 1.0.0 (generation 1) took over /etc/containers/systemd/demo.pod, /etc/containers/systemd/demo-app.container, /etc/containers/systemd/demo-worker.container, /etc/caddy/sites-enabled/demo.caddy; kept in ${kept}/files`,
    );
    const json = JSON.parse(
      (await runInstaller(host, ['status', '--json', '--root', tree.root])).stdout,
    );
    expect(json.adoptions).toEqual([
      expect.objectContaining({
        dir: kept,
        time: '2026-01-01T00:00:00.000Z',
        bundle: 'demo',
        version: '1.0.0',
        generation: 1,
        state: 'done',
      }),
    ]);

    // The dry run says what would happen and changes nothing.
    host.reset();
    const whole = await snapshotTree(tree.root);
    const dry = await runInstaller(host, ['rollback', '--dry-run', '--root', tree.root]);
    expect(dry.stderr).toBe('');
    expect(dry.stdout).toContain(
      `dry run: would leave generation 1 (no generation was live before it), stop demo-app.service demo-pod.service demo-worker.service, and put back the files it adopted from ${kept}: /etc/containers/systemd/demo.pod, /etc/containers/systemd/demo-app.container, /etc/containers/systemd/demo-worker.container, /etc/caddy/sites-enabled/demo.caddy; nothing was changed`,
    );
    expect(host.calls).toEqual([]);
    expect(diffTrees(whole, await snapshotTree(tree.root))).toEqual([]);

    const back = await runInstaller(host, ['rollback', '--root', tree.root]);
    expect(back.stderr).toBe('');
    expect(back.code).toBe(0);
    expect(back.stdout).toContain('no generation is live');
    expect(back.stdout).toContain(
      "the live generation is older than generation 1, which adopted demo's files: putting them back",
    );
    expect(back.stdout).toContain(
      "rolled back from generation 1 to none: no generation is live, the host's own files are back",
    );
    expect(await liveGeneration(tree.root)).toBeUndefined();
    for (const [name, text] of foreign.units) {
      expect(await readFile(join(tree.root, UNITS, name), 'utf8')).toBe(text);
    }
    expect(await readFile(join(tree.root, SITES, 'demo.caddy'), 'utf8')).toBe(
      foreign.sites.get('demo.caddy'),
    );
    // Only what the adoption made stays: the bundle's user and rick's host
    // links, made once, which lead through the absent `current` to nothing
    // (as after a first install whose gate failed).
    expect(diffTrees(before, await snapshotTree(join(tree.root, 'etc')))).toEqual([
      '+ caddy/rick (symlink)',
      '+ containers/systemd/rick (symlink)',
      '+ sysusers.d (dir)',
      '+ sysusers.d/rick.conf (symlink)',
      '+ tmpfiles.d (dir)',
      '+ tmpfiles.d/rick.conf (symlink)',
      '~ group: size, sha256',
      '~ passwd: size, sha256',
    ]);
    // The bundle's services stop with its generation; the restored files' start again.
    const calls = host.serviceCalls();
    expect(calls).toContainEqual({
      op: 'stop',
      units: ['demo-app.service', 'demo-pod.service', 'demo-worker.service'],
    });
    expect(calls.slice(-3)).toEqual([
      { op: 'daemon-reload' },
      { op: 'start', units: ['demo-app.service', 'demo-pod.service', 'demo-worker.service'] },
      { op: 'reload', units: ['caddy.service'] },
    ]);
    const state = await readState(join(tree.root, 'var/lib/rick/state.json'));
    expect(state.live).toBeUndefined();
    expect(state.bundles.demo?.installed).toBeUndefined();
    expect(await record(tree.root)).toMatchObject({ state: 'restored', generation: 1 });

    // Consistent afterwards: status warns of nothing, and the adoption reads as put back.
    const after = await runInstaller(host, ['status', '--root', tree.root]);
    expect(after.stdout).toContain('live generation: none (nothing installed)');
    expect(after.stdout).not.toContain('warning:');
    expect(after.stdout).toContain('; put back in place');
    const again = await runInstaller(host, ['rollback', '--root', tree.root]);
    expect(again.code).toBe(ExitCode.usage);
    expect(again.stderr).toContain('nothing is installed');
  });
});

/**
 * SIGKILL at each step boundary from the adoption record to the end of the
 * run (the built CLI, RICK_FAULT_KILL_AT, as crash-consistency.test.ts),
 * then the next run: the host ends with either the adopted files in place
 * (nothing of the bundle live) or the new generation live (the files kept
 * in /var/lib/rick/adopted), never neither.
 */
describe.skipIf(onlyWithQuadlet)('a crash while adopting', () => {
  const env = quadletPath ? { RICK_QUADLET: quadletPath } : {};
  /** Killed here, the generation never stays live: the files go back. */
  const filesBack = ['adopt-moved', 'flipped'];
  /** Killed here, the outcome was recorded: the adoption stands. */
  const adopted = ['state-written', 'intent-cleared'];

  it('killed at adopt-recorded: nothing moved yet; the next adopt settles the record and adopts', async () => {
    requireBuiltCli();
    const bundle = await writeSignedBundle((await newTree()).work, hosts.key, {
      version: '1.0.0',
      files: demoFiles(false),
    });
    const foreign = await foreignFiles(bundle, false);
    const tree = await newTree();
    await writeForeign(tree, foreign);
    const killed = await runCli(['adopt', bundle.bundlePath, '--root', tree.root], {
      ...env,
      [FAULT_ENV]: 'adopt-recorded',
    });
    expect(killed.signal).toBe('SIGKILL');
    for (const [name, text] of foreign.units) {
      expect(await readFile(join(tree.root, UNITS, name), 'utf8')).toBe(text);
    }
    expect(await record(tree.root)).toMatchObject({ state: 'moving' });
    const first = await adoptedDir(tree.root);

    const again = await runCli(['adopt', bundle.bundlePath, '--root', tree.root], env);
    expect(again.stderr).toBe('');
    expect(again.code).toBe(ExitCode.ok);
    expect(again.stdout).toContain(
      "generation 1, which adopted demo's files, is not live: putting them back",
    );
    expect(await liveGeneration(tree.root)).toBe('generations/1');
    expect(await readdir(join(tree.root, UNITS))).toEqual(['rick']);
    const dirs = (await readdir(join(tree.root, 'var/lib/rick/adopted'))).sort();
    expect(dirs).toHaveLength(2);
    const states = [];
    for (const d of dirs) {
      const r = JSON.parse(
        await readFile(join(tree.root, 'var/lib/rick/adopted', d, 'record.json'), 'utf8'),
      );
      states.push([join(tree.root, 'var/lib/rick/adopted', d) === first, r.state]);
    }
    expect(states).toEqual([
      [true, 'restored'],
      [false, 'done'],
    ]);
  });

  for (const step of ['flipped', 'state-written']) {
    it(`killed at ${step} while rolling back from the first generation, which adopted`, async () => {
      requireBuiltCli();
      const bundle = await writeSignedBundle((await newTree()).work, hosts.key, {
        version: '1.0.0',
        files: demoFiles(false),
      });
      const foreign = await foreignFiles(bundle, false);
      const tree = await newTree();
      await writeForeign(tree, foreign);
      expect((await runCli(['adopt', bundle.bundlePath, '--root', tree.root], env)).code).toBe(0);
      const killed = await runCli(['rollback', '--root', tree.root], {
        ...env,
        [FAULT_ENV]: step,
      });
      expect(killed.signal).toBe('SIGKILL');
      expect(await liveGeneration(tree.root)).toBeUndefined();
      if (step === 'flipped') {
        // state.json still confirms generation 1: the next run refuses and names the repair.
        const next = await runCli(['rollback', '--root', tree.root], env);
        expect(next.code).toBe(ExitCode.rollbackFailed);
        expect(next.stderr).toContain(
          'nothing is live (no current), but state.json confirms generation 1',
        );
        expect(next.stderr).toContain('rick-install rollback --to 1');
        const repaired = await runCli(['rollback', '--to', '1', '--root', tree.root], env);
        expect(repaired.stderr).toBe('');
        expect(repaired.code).toBe(0);
        expect(await liveGeneration(tree.root)).toBe('generations/1');
        expect(await readdir(join(tree.root, UNITS))).toEqual(['rick']);
      }
      // Then (or at once) the files go back and nothing is live.
      const last = await runCli(
        step === 'flipped' ? ['rollback', '--root', tree.root] : ['status', '--root', tree.root],
        env,
      );
      if (step === 'state-written') {
        // status changes nothing; the next run that takes the lock settles the record.
        expect(last.stdout).toContain('live generation: none');
        const settled = await runCli([bundle.bundlePath, '--root', tree.root], env);
        expect(settled.stdout).toContain(
          "the live generation is older than generation 1, which adopted demo's files: putting them back",
        );
      } else {
        expect(last.stderr).toBe('');
        expect(last.stdout).toContain('rolled back from generation 1 to none');
      }
      expect(await liveGeneration(tree.root)).toBeUndefined();
      for (const [name, text] of foreign.units) {
        expect(await readFile(join(tree.root, UNITS, name), 'utf8')).toBe(text);
      }
      expect(await record(tree.root)).toMatchObject({ state: 'restored' });
    });
  }

  for (const step of [...filesBack, ...adopted]) {
    it(`killed at ${step}`, async () => {
      requireBuiltCli();
      const bundle = await writeSignedBundle((await newTree()).work, hosts.key, {
        version: '1.0.0',
        files: demoFiles(false),
      });
      const foreign = await foreignFiles(bundle, false);
      const tree = await newTree();
      await writeForeign(tree, foreign);
      const killed = await runCli(['adopt', bundle.bundlePath, '--root', tree.root], {
        ...env,
        [FAULT_ENV]: step,
      });
      expect(killed.signal).toBe('SIGKILL');

      // The next run recovers first, whatever it was asked to do.
      const next = await runCli([bundle.bundlePath, '--root', tree.root], env);
      const units = await readdir(join(tree.root, UNITS));
      if (filesBack.includes(step)) {
        expect(next.stdout).toContain(
          "generation 1, which adopted demo's files, is not live: putting them back",
        );
        // Back where they were, and so a plain install is refused as before.
        expect(next.code).toBe(ExitCode.invalidBundle);
        expect(next.stderr).toContain('rick-install adopt BUNDLE.tgz');
        expect(await liveGeneration(tree.root)).toBeUndefined();
        for (const [name, text] of foreign.units) {
          expect(await readFile(join(tree.root, UNITS, name), 'utf8')).toBe(text);
        }
        expect(await record(tree.root)).toMatchObject({ state: 'restored' });
      } else {
        expect(next.stderr).toBe('');
        expect(next.code).toBe(ExitCode.ok);
        expect(next.stdout).toContain('nothing to do');
        expect(await liveGeneration(tree.root)).toBe('generations/1');
        expect(units).toEqual(['rick']);
        expect(await record(tree.root)).toMatchObject({ state: 'done' });
      }
      // Kept either way.
      const dir = await adoptedDir(tree.root);
      for (const [name, text] of foreign.units) {
        expect(await readFile(join(dir, 'files', UNITS, name), 'utf8')).toBe(text);
      }
    });
  }
});
