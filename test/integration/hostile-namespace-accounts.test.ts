/**
 * Issue 11, classes 2 and 3, through the BUILT rick-install as a process
 * (`--root`, with the real systemd-sysusers, systemd-tmpfiles and podman's
 * quadlet): a bundle signed by the trusted key that reaches for units,
 * accounts or paths that are not its own. Each hostile input is a named
 * case, run as `rick-install <bundle>` and `rick-install plan <bundle>` on
 * a host already running demo 0.9.0; each asserts the exit code, the
 * message, and a host tree unchanged byte for byte.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signDetached } from '../../src/bundle/openpgp.js';
import { ExitCode, exitCodeFor } from '../../src/errors.js';
import {
  buildTestBundle,
  type FactoryBundle,
  type FactoryFile,
  makeTestKey,
  sampleFiles,
  type TestKey,
  writeSignedBundle,
} from '../helpers/bundle-factory.js';
import { requireBuiltCli, runCli } from '../helpers/cli-process.js';
import { makeHostTree, quadletPath } from '../helpers/host-tree.js';
import { expectTreeUnchanged, snapshotTree } from '../helpers/tree-snapshot.js';

const env = quadletPath ? { RICK_QUADLET: quadletPath } : {};
const hasTools = (() => {
  try {
    execFileSync('systemd-sysusers', ['--version'], { stdio: 'ignore' });
    execFileSync('systemd-tmpfiles', ['--version'], { stdio: 'ignore' });
    return process.getuid?.() === 0;
  } catch {
    return false;
  }
})();

let key: TestKey;
/** A host tree running demo 0.9.0, copied for each case. */
let baseline: string;
let work: string;
const cleanups: string[] = [];

beforeAll(async () => {
  requireBuiltCli();
  key = await makeTestKey();
  const tree = await makeHostTree(key);
  cleanups.push(join(tree.root, '..'));
  baseline = tree.root;
  work = tree.work;
  const v0 = await writeSignedBundle(work, key, { version: '0.9.0' });
  const first = await runCli([v0.bundlePath, '--root', baseline], env);
  expect(first.stderr).toBe('');
  expect(first.code).toBe(0);
}, 60_000);

afterAll(async () => {
  for (const dir of cleanups) await rm(dir, { recursive: true, force: true });
});

async function freshHost(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'rick-hostile-host-'));
  cleanups.push(dir);
  execFileSync('cp', ['-a', `${baseline}/.`, dir]);
  return dir;
}

const unitOf = (name: string, extra = '') => ({
  path: `quadlet/${name}`,
  content: `[Container]\nImage=registry.example.org/demo:1\n${extra}`,
});

/** The sample bundle (demo 1.0.0) with files replaced, added or patched. */
async function signed(spec: FactoryBundle & { extra?: FactoryFile[] }): Promise<string> {
  const name = spec.name ?? 'demo';
  const version = spec.version ?? '1.0.0';
  const base = spec.files ?? sampleFiles(name);
  const extra = spec.extra ?? [];
  const files = [...base.filter((f) => !extra.some((e) => e.path === f.path)), ...extra];
  const { tgz } = buildTestBundle({ ...spec, name, version, files });
  // Each bundle in a directory of its own: the file name states its name and version.
  const dir = await mkdtemp(join(work, 'bundle-'));
  const bundlePath = join(dir, `${name}-${version}.tgz`);
  await writeFile(bundlePath, tgz);
  await writeFile(`${bundlePath}.sig`, await signDetached(tgz, key.privateKey));
  return bundlePath;
}

async function addGroup(root: string, line: string): Promise<void> {
  await writeFile(
    join(root, 'etc/group'),
    `${await readFile(join(root, 'etc/group'), 'utf8')}${line}\n`,
  );
}

async function addUser(root: string, line: string): Promise<void> {
  await writeFile(
    join(root, 'etc/passwd'),
    `${await readFile(join(root, 'etc/passwd'), 'utf8')}${line}\n`,
  );
}

async function hostFile(root: string, path: string, content = ''): Promise<void> {
  await mkdir(join(root, path, '..'), { recursive: true });
  await writeFile(join(root, path), content);
}

interface Case {
  name: string;
  setup: (root: string) => Promise<string>;
  code: string;
  message: RegExp;
}

const setUnit = (unit: string, service: string) => (m: Record<string, unknown>) => ({
  ...m,
  services: (m.services as Array<Record<string, unknown>>).map((s) =>
    s.unit === unit ? { ...s, service } : s,
  ),
});

const namespaceCases: Case[] = [
  {
    name: 'a manifest naming ssh.service as the service of its unit',
    setup: () => signed({ manifestPatch: setUnit('demo-app.container', 'ssh.service') }),
    code: 'BUNDLE_INVALID',
    message:
      /services\.\d\.service: ssh\.service is not the service quadlet makes from demo-app\.container \(demo-app\.service\)/,
  },
  {
    name: 'a container.d drop-in (applies to every container on the host)',
    setup: () =>
      signed({
        extra: [
          {
            path: 'quadlet/container.d/evil.conf',
            content: '[Container]\nPodmanArgs=--privileged -v /:/host\n',
          },
        ],
      }),
    code: 'BUNDLE_INVALID',
    message:
      /quadlet\/container\.d\/evil\.conf: drop-in directory container\.d applies to units that are not the bundle's own/,
  },
  {
    name: 'a pod.d drop-in (applies to every pod)',
    setup: () =>
      signed({ extra: [{ path: 'quadlet/pod.d/x.conf', content: '[Pod]\nNetwork=host\n' }] }),
    code: 'BUNDLE_INVALID',
    message:
      /quadlet\/pod\.d\/x\.conf: drop-in directory pod\.d applies to units that are not the bundle's own/,
  },
  {
    name: 'a volume.d and a network.d drop-in',
    setup: () =>
      signed({
        extra: [
          { path: 'quadlet/volume.d/x.conf', content: '[Volume]\nDevice=/dev/sda\n' },
          { path: 'quadlet/network.d/x.conf', content: '[Network]\nDriver=macvlan\n' },
        ],
      }),
    code: 'BUNDLE_INVALID',
    message:
      /(?=.*quadlet\/network\.d\/x\.conf: drop-in directory network\.d applies)(?=.*quadlet\/volume\.d\/x\.conf: drop-in directory volume\.d applies)/,
  },
  {
    name: 'a truncated drop-in (demo-.container.d applies to every demo-* container)',
    setup: () =>
      signed({
        extra: [{ path: 'quadlet/demo-.container.d/x.conf', content: '[Container]\nUser=0\n' }],
      }),
    code: 'BUNDLE_INVALID',
    message:
      /quadlet\/demo-\.container\.d\/x\.conf: drop-in directory demo-\.container\.d applies to units that are not the bundle's own/,
  },
  {
    name: "a drop-in for another bundle's unit",
    setup: () =>
      signed({
        extra: [{ path: 'quadlet/other-app.container.d/x.conf', content: '[Container]\nUser=0\n' }],
      }),
    code: 'BUNDLE_INVALID',
    message:
      /drop-in directory other-app\.container\.d applies to units that are not the bundle's own/,
  },
  {
    name: 'a container.d drop-in hidden in a subdirectory',
    setup: () =>
      signed({
        extra: [{ path: 'quadlet/k8s/container.d/x.conf', content: '[Container]\nUser=0\n' }],
      }),
    code: 'BUNDLE_INVALID',
    message:
      /quadlet\/k8s\/container\.d\/x\.conf: drop-in directory container\.d in a subdirectory applies to units that are not the bundle's own/,
  },
  {
    name: 'a unit in a subdirectory of quadlet/',
    setup: () =>
      signed({
        extra: [unitOf('extra/hidden.container')],
        manifestPatch: (m) => ({
          ...m,
          services: (m.services as Array<{ unit: string }>).filter((s) => !s.unit.includes('/')),
        }),
      }),
    code: 'BUNDLE_INVALID',
    message: /quadlet\/extra\/hidden\.container: units sit directly in quadlet\//,
  },
  {
    name: '[Install] Alias= naming a host unit',
    setup: () =>
      signed({ extra: [unitOf('demo-alias.container', '[Install]\nAlias=ssh.service\n')] }),
    code: 'BUNDLE_INVALID',
    message:
      /quadlet\/demo-alias\.container: \[Install\] Alias=ssh\.service would give its service names of other units/,
  },
  {
    name: 'x-pod.container and x.pod in one bundle (both make x-pod.service)',
    setup: () => signed({ extra: [unitOf('demo-pod.container')] }),
    code: 'BUNDLE_INVALID',
    message:
      /quadlet\/demo-pod\.container and quadlet\/demo\.pod both make demo-pod\.service|quadlet\/demo\.pod and quadlet\/demo-pod\.container both make demo-pod\.service/,
  },
  {
    name: 'ServiceName=ssh shadowing the host ssh.service in /usr/lib/systemd/system',
    setup: async (root) => {
      await hostFile(
        root,
        'usr/lib/systemd/system/ssh.service',
        '[Service]\nExecStart=/usr/sbin/sshd -D\n',
      );
      return signed({
        extra: [unitOf('demo-ssh.container', 'ServiceName=ssh\n')],
        manifestPatch: (m) => ({
          ...m,
          services: [
            ...(m.services as unknown[]).filter(
              (s) => (s as { unit: string }).unit !== 'demo-ssh.container',
            ),
            {
              unit: 'demo-ssh.container',
              service: 'ssh.service',
              activeTimeoutSec: 30,
              checks: [],
            },
          ],
        }),
      });
    },
    code: 'BUNDLE_INVALID',
    message:
      /quadlet\/demo-ssh\.container makes ssh\.service, which the host already has: \/usr\/lib\/systemd\/system\/ssh\.service/,
  },
  {
    name: 'ssh.container shadowing ssh.service in /etc/systemd/system',
    setup: async (root) => {
      await hostFile(
        root,
        'etc/systemd/system/ssh.service',
        '[Service]\nExecStart=/usr/sbin/sshd -D\n',
      );
      return signed({ extra: [unitOf('ssh.container')] });
    },
    code: 'BUNDLE_INVALID',
    message:
      /quadlet\/ssh\.container makes ssh\.service, which the host already has: \/etc\/systemd\/system\/ssh\.service/,
  },
  {
    name: 'a unit shadowing an alias link in /etc/systemd/system',
    setup: async (root) => {
      await mkdir(join(root, 'etc/systemd/system'), { recursive: true });
      await symlink(
        '/lib/systemd/system/ssh.service',
        join(root, 'etc/systemd/system/sshd.service'),
      );
      return signed({ extra: [unitOf('sshd.container')] });
    },
    code: 'BUNDLE_INVALID',
    message:
      /quadlet\/sshd\.container makes sshd\.service, which the host already has: \/etc\/systemd\/system\/sshd\.service/,
  },
  {
    name: 'a unit shadowing an /etc/init.d script',
    setup: async (root) => {
      await hostFile(root, 'etc/init.d/cron', '#!/bin/sh\n');
      return signed({ extra: [unitOf('cron.container')] });
    },
    code: 'BUNDLE_INVALID',
    message:
      /quadlet\/cron\.container makes cron\.service, which the host already has: \/etc\/init\.d\/cron/,
  },
  {
    name: "an instance of the host's template unit",
    setup: async (root) => {
      await hostFile(root, 'usr/lib/systemd/system/getty@.service', '[Service]\n');
      return signed({ extra: [unitOf('getty@tty9.container')] });
    },
    code: 'BUNDLE_INVALID',
    message:
      /quadlet\/getty@tty9\.container makes getty@tty9\.service, which the host already has: \/usr\/lib\/systemd\/system\/getty@\.service/,
  },
  {
    name: 'a non-rick quadlet file of the same name in /etc/containers/systemd',
    setup: async (root) => {
      await hostFile(
        root,
        'etc/containers/systemd/demo-app.container',
        '[Container]\nImage=docker.io/library/x:1\n',
      );
      return signed({});
    },
    code: 'BUNDLE_INVALID',
    message:
      /quadlet\/demo-app\.container has the name of the host's quadlet file \/etc\/containers\/systemd\/demo-app\.container \(quadlet reads only one of them\)/,
  },
  {
    name: 'a non-rick quadlet unit of another kind making the same service (demo-pod.container against demo.pod)',
    setup: async (root) => {
      await hostFile(
        root,
        'usr/share/containers/systemd/demo-pod.container',
        '[Container]\nImage=docker.io/library/x:1\n',
      );
      return signed({});
    },
    code: 'BUNDLE_INVALID',
    message:
      /quadlet\/demo\.pod makes demo-pod\.service, as does the host's quadlet file \/usr\/share\/containers\/systemd\/demo-pod\.container \(demo-pod\.service\)/,
  },
  {
    name: 'a host quadlet unit renamed by ServiceName= to a rick service',
    setup: async (root) => {
      await hostFile(
        root,
        'etc/containers/systemd/web.container',
        '[Container]\nImage=docker.io/library/x:1\n',
      );
      await hostFile(
        root,
        'etc/containers/systemd/web.container.d/name.conf',
        '[Container]\nServiceName=demo-app\n',
      );
      return signed({});
    },
    code: 'BUNDLE_INVALID',
    message:
      /quadlet\/demo-app\.container makes demo-app\.service, as does the host's quadlet file \/etc\/containers\/systemd\/web\.container \(demo-app\.service\)/,
  },
  {
    name: "another bundle whose unit makes a service of demo's, across kinds",
    setup: async () => {
      return signed({
        name: 'other',
        files: [unitOf('demo-pod.container')],
      });
    },
    code: 'BUNDLE_INVALID',
    message:
      /bundle other's units collide with units this host already has: quadlet\/demo-pod\.container makes demo-pod\.service, as does demo\.pod of bundle demo \(demo-pod\.service\)/,
  },
];

const accountCases: Case[] = [
  {
    name: 'u evil 990:disk (a privileged primary group)',
    setup: async (root) => {
      await addGroup(root, 'disk:x:6:');
      return signed({
        extra: [{ path: 'sysusers.d/demo.conf', content: 'u demo -\nu evil 990:disk\n' }],
      });
    },
    code: 'BUNDLE_INVALID',
    message:
      /sysusers\.d\/demo\.conf:2: group disk is neither created by the bundle nor an infrastructure group of this host/,
  },
  {
    name: 'u evil 990:4001 (a numeric GID that is postgres-clients here)',
    setup: () =>
      signed({ extra: [{ path: 'sysusers.d/demo.conf', content: 'u demo -\nu evil 990:4001\n' }] }),
    code: 'BUNDLE_INVALID',
    message:
      /sysusers\.d\/demo\.conf:2: primary group 4001 is a number, which names whatever group holds that GID; name the group/,
  },
  {
    name: 'u evil /root (an id taken from the owner of a path)',
    setup: () =>
      signed({ extra: [{ path: 'sysusers.d/demo.conf', content: 'u demo -\nu evil /root\n' }] }),
    code: 'BUNDLE_INVALID',
    message: /sysusers\.d\/demo\.conf:2: id \/root takes the id of whoever owns that path/,
  },
  {
    name: 'm lines for staff, adm and systemd-journal (groups a deny-list missed)',
    setup: async (root) => {
      for (const g of ['staff:x:50:', 'adm:x:4:', 'systemd-journal:x:101:'])
        await addGroup(root, g);
      return signed({
        extra: [
          {
            path: 'sysusers.d/demo.conf',
            content: 'u demo -\nm demo staff\nm demo adm\nm demo systemd-journal\n',
          },
        ],
      });
    },
    code: 'BUNDLE_INVALID',
    message:
      /demo\.conf:2: group staff is neither.*demo\.conf:3: group adm is neither.*demo\.conf:4: group systemd-journal is neither/,
  },
  {
    name: 'a gid fact for disk (--group-add of a privileged group)',
    setup: async (root) => {
      await addGroup(root, 'disk:x:6:');
      return signed({
        extra: [unitOf('demo-disk.container', 'PodmanArgs=--group-add @@rick:gid:disk@@\n')],
      });
    },
    code: 'BUNDLE_INVALID',
    message:
      /gid fact disk: group disk is neither created by the bundle nor an infrastructure group of this host/,
  },
  {
    name: 'a g line creating a group the bundle needs to exist beforehand (postgres-clients)',
    setup: () =>
      signed({
        extra: [
          {
            path: 'sysusers.d/demo.conf',
            content: 'u demo -\ng postgres-clients -\nm demo postgres-clients\n',
          },
        ],
      }),
    code: 'BUNDLE_INVALID',
    message:
      /sysusers\.d\/demo\.conf:2: creates postgres-clients, an infrastructure group the host must already have/,
  },
  {
    name: 'a g line claiming an existing group (g disk, then m demo disk)',
    setup: async (root) => {
      await addGroup(root, 'disk:x:6:');
      return signed({
        extra: [{ path: 'sysusers.d/demo.conf', content: 'u demo -\ng disk -\nm demo disk\n' }],
      });
    },
    code: 'BUNDLE_INVALID',
    message:
      /sysusers\.d\/demo\.conf:2: group disk already exists and was not created by bundle demo/,
  },
  {
    name: "a u line claiming another service's user (u www-data)",
    setup: async (root) => {
      await addUser(root, 'www-data:x:33:33::/var/www:/usr/sbin/nologin');
      await addGroup(root, 'www-data:x:33:');
      return signed({
        extra: [{ path: 'sysusers.d/demo.conf', content: 'u demo -\nu www-data -\n' }],
      });
    },
    code: 'BUNDLE_INVALID',
    message:
      /sysusers\.d\/demo\.conf:2: user www-data already exists and was not created by bundle demo; sysusers\.d\/demo\.conf:2: group www-data already exists/,
  },
  {
    name: 'an m line adding a user the bundle does not create',
    setup: () =>
      signed({
        extra: [
          { path: 'sysusers.d/demo.conf', content: 'u demo -\nm www-data postgres-clients\n' },
        ],
      }),
    code: 'BUNDLE_INVALID',
    message:
      /sysusers\.d\/demo\.conf:2: m www-data postgres-clients adds a user the bundle does not create with a u line/,
  },
  {
    name: "a uid fact for another service's user",
    setup: async (root) => {
      await addUser(root, 'www-data:x:33:33::/var/www:/usr/sbin/nologin');
      return signed({ extra: [unitOf('demo-www.container', 'User=@@rick:uid:www-data@@\n')] });
    },
    code: 'BUNDLE_INVALID',
    message: /uid fact www-data: user www-data is not created by the bundle/,
  },
  {
    name: 'a bundle named postgresql setting /run/postgresql to 0777',
    setup: async (root) => {
      await mkdir(join(root, 'run/postgresql'), { recursive: true, mode: 0o2775 });
      return signed({
        name: 'postgresql',
        files: [
          unitOf('postgresql.container'),
          { path: 'tmpfiles.d/postgresql.conf', content: 'z /run/postgresql 0777 - -\n' },
        ],
      });
    },
    code: 'BUNDLE_INVALID',
    message:
      /tmpfiles\.d\/postgresql\.conf:1: \/run\/postgresql already exists and was not created by bundle postgresql/,
  },
  {
    name: 'd and e lines on a pre-existing directory of the bundle name',
    setup: async (root) => {
      await mkdir(join(root, 'var/lib/demo'), { recursive: true });
      return signed({
        extra: [
          {
            path: 'tmpfiles.d/demo.conf',
            content: 'd /var/lib/demo 0777 demo demo -\ne /var/lib/demo 0777 - -\n',
          },
        ],
      });
    },
    code: 'BUNDLE_INVALID',
    message:
      /tmpfiles\.d\/demo\.conf:1: \/var\/lib\/demo already exists and was not created by bundle demo; tmpfiles\.d\/demo\.conf:2: \/var\/lib\/demo already exists/,
  },
  {
    name: 'an f line on a pre-existing file',
    setup: async (root) => {
      await hostFile(root, 'var/log/demo-app.log', "not the bundle's\n");
      return signed({
        extra: [
          { path: 'tmpfiles.d/demo.conf', content: 'f /var/log/demo-app.log 0666 demo demo -\n' },
        ],
      });
    },
    code: 'BUNDLE_INVALID',
    message:
      /tmpfiles\.d\/demo\.conf:1: \/var\/log\/demo-app\.log already exists and was not created by bundle demo/,
  },
  {
    name: 'a new directory inside a pre-existing one it did not create',
    setup: async (root) => {
      await mkdir(join(root, 'run/demo'), { recursive: true });
      return signed({
        extra: [{ path: 'tmpfiles.d/demo.conf', content: 'd /run/demo/sock 0755 demo demo -\n' }],
      });
    },
    code: 'BUNDLE_INVALID',
    message:
      /tmpfiles\.d\/demo\.conf:1: \/run\/demo \(on the way to \/run\/demo\/sock\) already exists and was not created by bundle demo/,
  },
  {
    name: 'a path through a symbolic link',
    setup: async (root) => {
      await mkdir(join(root, 'var/lib'), { recursive: true });
      await symlink('/etc', join(root, 'var/lib/demo-data'));
      return signed({
        extra: [
          { path: 'tmpfiles.d/demo.conf', content: 'd /var/lib/demo-data/cron.d 0777 - -\n' },
        ],
      });
    },
    code: 'BUNDLE_INVALID',
    message:
      /tmpfiles\.d\/demo\.conf:1: \/var\/lib\/demo-data \(on the way to \/var\/lib\/demo-data\/cron\.d\) is a symbolic link/,
  },
  {
    name: 'a tmpfiles.d owner group that is not its own',
    setup: async (root) => {
      await addGroup(root, 'shadow:x:42:');
      return signed({
        extra: [{ path: 'tmpfiles.d/demo.conf', content: 'd /var/lib/demo 2770 demo shadow -\n' }],
      });
    },
    code: 'BUNDLE_INVALID',
    message:
      /tmpfiles\.d\/demo\.conf:1: group shadow is neither created by the bundle nor an infrastructure group of this host/,
  },
  {
    name: 'a tmpfiles.d owner given by number',
    setup: () =>
      signed({
        extra: [{ path: 'tmpfiles.d/demo.conf', content: 'd /var/lib/demo 0750 0 42 -\n' }],
      }),
    code: 'BUNDLE_INVALID',
    message:
      /tmpfiles\.d\/demo\.conf:1: user 0 is a number, which names whoever holds that id; name the user/,
  },
  {
    name: 'an infrastructure group the host no longer declares (INFRASTRUCTURE_GROUPS empty)',
    setup: async (root) => {
      await hostFile(root, 'etc/rick/rick.conf', 'INFRASTRUCTURE_GROUPS=\n');
      return signed({});
    },
    code: 'BUNDLE_INVALID',
    message:
      /gid fact postgres-clients: group postgres-clients is neither created by the bundle nor an infrastructure group of this host/,
  },
  {
    name: 'a malformed INFRASTRUCTURE_GROUPS in rick.conf',
    setup: async (root) => {
      await hostFile(root, 'etc/rick/rick.conf', 'INFRASTRUCTURE_GROUPS=postgres-clients 0\n');
      return signed({});
    },
    code: 'CONFIG_INVALID',
    message:
      /etc\/rick\/rick\.conf: line 1: INFRASTRUCTURE_GROUPS: must be group names separated by spaces or commas \(not "0"\)/,
  },
];

describe.skipIf(!hasTools)(
  'hostile units, accounts and paths through the built rick-install',
  () => {
    for (const command of ['install', 'plan'] as const) {
      for (const c of [...namespaceCases, ...accountCases]) {
        it(`${command} refuses ${c.name}: exit ${exitCodeFor(c.code as never)}, ${c.code}, host tree unchanged`, async () => {
          const root = await freshHost();
          const bundlePath = await c.setup(root);
          const before = await snapshotTree(root);
          const argv = [...(command === 'plan' ? ['plan'] : []), bundlePath, '--root', root];
          const r = await runCli(argv, env);
          expect(r.stderr.split('\n')[0]).toMatch(new RegExp(`^error ${c.code}: `));
          expect(r.stderr.split('\n')[0]).toMatch(c.message);
          expect(r.code).toBe(exitCodeFor(c.code as never));
          await expectTreeUnchanged(root, before);
        });
      }
    }
  },
);

describe.skipIf(!hasTools)('what a bundle may do, through the built rick-install', () => {
  it('joins a group the host declares in INFRASTRUCTURE_GROUPS, and not before', async () => {
    const root = await freshHost();
    await addGroup(root, 'redis-clients:x:4003:');
    const bundlePath = await signed({
      extra: [{ path: 'sysusers.d/demo.conf', content: 'u demo -\nm demo redis-clients\n' }],
    });
    const refused = await runCli([bundlePath, '--root', root], env);
    expect(refused.stderr).toMatch(
      /group redis-clients is neither created by the bundle nor an infrastructure group/,
    );
    expect(refused.code).toBe(ExitCode.invalidBundle);
    await hostFile(
      root,
      'etc/rick/rick.conf',
      'INFRASTRUCTURE_GROUPS="postgres-clients valkey-clients redis-clients"\n',
    );
    const r = await runCli([bundlePath, '--root', root], env);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(await readFile(join(root, 'etc/group'), 'utf8')).toMatch(/^redis-clients:x:4003:demo$/m);
  });

  it('ships a drop-in for its own unit, and plan shows a change of it as a restart of that unit', async () => {
    const root = await freshHost();
    const dropin = (v: string) => ({
      path: 'quadlet/demo-app.container.d/10-env.conf',
      content: `[Container]\nEnvironment=LEVEL=${v}\n`,
    });
    const v1 = await signed({ version: '1.0.0', extra: [dropin('a')] });
    const r1 = await runCli([v1, '--root', root], env);
    expect(r1.stderr).toBe('');
    expect(r1.code).toBe(0);
    const v2 = await signed({ version: '1.1.0', extra: [dropin('b')] });
    const plan = await runCli(['plan', v2, '--root', root], env);
    expect(plan.code).toBe(0);
    // The pod's only container changes, so the pod restarts it (activation/plan.ts); the
    // reason named is the drop-in, as the change of the unit it applies to.
    expect(plan.stdout).toMatch(
      /restart demo-pod\.service \(restarts demo-app\.service: quadlet\/demo-app\.container\.d\/10-env\.conf changed;/,
    );
  });

  it('keeps its fragments where systemd reads them at boot, switched with the generation', async () => {
    const root = await freshHost();
    const tmpfiles = {
      path: 'tmpfiles.d/demo.conf',
      content: 'd /run/demo 0750 demo demo -\nd /var/lib/demo 0750 demo demo -\n',
    };
    const v1 = await signed({ version: '1.0.0', extra: [tmpfiles] });
    const r1 = await runCli([v1, '--root', root], env);
    expect(r1.stderr).toBe('');
    expect(r1.code).toBe(0);
    expect(await readlink(join(root, 'etc/tmpfiles.d/rick.conf'))).toBe(
      '../../var/lib/rick/current/tmpfiles.d/rick.conf',
    );
    expect(await readlink(join(root, 'etc/sysusers.d/rick.conf'))).toBe(
      '../../var/lib/rick/current/sysusers.d/rick.conf',
    );
    expect(await readFile(join(root, 'etc/tmpfiles.d/rick.conf'), 'utf8')).toContain(
      '# demo 1.0.0: tmpfiles.d/demo.conf\nd /run/demo 0750 demo demo -\n',
    );
    expect(await readFile(join(root, 'etc/sysusers.d/rick.conf'), 'utf8')).toContain(
      'u demo - "demo" /var/lib/demo\n',
    );
    const created = JSON.parse(await readFile(join(root, 'var/lib/rick/created.json'), 'utf8'));
    expect(created.bundles.demo).toEqual({
      users: ['demo'],
      groups: ['demo'],
      paths: ['/run/demo', '/var/lib/demo'],
    });

    // A reboot empties /run; systemd-tmpfiles at boot reads /etc/tmpfiles.d and brings it back.
    await rm(join(root, 'run/demo'), { recursive: true });
    execFileSync('systemd-tmpfiles', [`--root=${root}`, '--create', '--boot']);
    expect((await readdirSafe(join(root, 'run'))).includes('demo')).toBe(true);

    // The same version's paths are its own on the next install.
    const v2 = await signed({ version: '1.1.0', extra: [tmpfiles] });
    const r2 = await runCli([v2, '--root', root], env);
    expect(r2.stderr).toBe('');
    expect(r2.code).toBe(0);

    // Rolled back to the generation before the bundle had tmpfiles lines: boot no longer makes /run/demo.
    const back = await runCli(['rollback', '--to', '1', '--root', root], env);
    expect(back.code).toBe(0);
    expect(
      await readFile(join(root, 'etc/tmpfiles.d/rick.conf'), 'utf8').catch(() => ''),
    ).not.toContain('/run/demo');
    await rm(join(root, 'run/demo'), { recursive: true });
    execFileSync('systemd-tmpfiles', [`--root=${root}`, '--create', '--boot']);
    expect((await readdirSafe(join(root, 'run'))).includes('demo')).toBe(false);
  });

  it('adopts what the live generation created when created.json is missing', async () => {
    const root = await freshHost();
    const tmpfiles = {
      path: 'tmpfiles.d/demo.conf',
      content: 'd /var/lib/demo 0750 demo demo -\n',
    };
    const v1 = await signed({ version: '1.0.0', extra: [tmpfiles] });
    expect((await runCli([v1, '--root', root], env)).code).toBe(0);
    await rm(join(root, 'var/lib/rick/created.json'));
    const v2 = await signed({ version: '1.1.0', extra: [tmpfiles] });
    const r = await runCli([v2, '--root', root], env);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      /created\.json was missing: the live generation's bundles adopted what their fragments name/,
    );
    const created = JSON.parse(await readFile(join(root, 'var/lib/rick/created.json'), 'utf8'));
    expect(created.bundles.demo).toEqual({
      users: ['demo'],
      groups: ['demo'],
      paths: ['/var/lib/demo'],
    });
  });
});

async function readdirSafe(dir: string): Promise<string[]> {
  const { readdir } = await import('node:fs/promises');
  return readdir(dir).catch(() => []);
}
