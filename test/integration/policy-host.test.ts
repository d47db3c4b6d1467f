/**
 * The restricted profile on the host: one named test per rule, each a signed
 * bundle whose unit breaks it, refused by `rick-install --root` with exit 14
 * and a message naming exactly what is new, the host tree unchanged; then
 * the grant file, `--grant`, and `plan`.
 */
import { chmod, chown, mkdir, readFile, rename, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ExitCode } from '../../src/errors.js';
import {
  type FactoryFile,
  makeTestKey,
  sampleFiles,
  type TestKey,
  writeSignedBundle,
} from '../helpers/bundle-factory.js';
import { FakeHost } from '../helpers/fake-host.js';
import { DEMO_GRANT, type HostTree, makeHostTree, runInstaller } from '../helpers/host-tree.js';
import { diffTrees, snapshotTree } from '../helpers/tree-snapshot.js';

let key: TestKey;
let tree: HostTree | undefined;
beforeAll(async () => {
  key = await makeTestKey();
});
afterEach(async () => {
  await tree?.cleanup();
  tree = undefined;
});

/** The sample bundle with `extra` appended to its container unit (or another unit added). */
function withUnit(
  extra: string,
  options: { replaceUser?: string; unit?: FactoryFile } = {},
): FactoryFile[] {
  return [
    ...sampleFiles('demo').map((f) => {
      if (!f.path.endsWith('.container')) return f;
      let content = String(f.content);
      if (options.replaceUser !== undefined) {
        content = content.replace(/^User=.*$/m, options.replaceUser);
      }
      return { ...f, content: `${content}${extra}` };
    }),
    ...(options.unit ? [options.unit] : []),
  ];
}

const container = (lines: string) => `\n[Container]\n${lines}\n`;

interface RuleCase {
  rule: string;
  files: FactoryFile[];
  /** What the refusal must name as new. */
  needs: string[];
}

const cases: RuleCase[] = [
  {
    rule: 'privileged',
    files: withUnit(container('PodmanArgs=--privileged')),
    needs: ['privileged'],
  },
  {
    rule: 'capabilities',
    files: withUnit(container('AddCapability=SYS_ADMIN')),
    needs: ['capability SYS_ADMIN'],
  },
  {
    rule: 'host-namespaces',
    files: withUnit(container('Network=host\nPodmanArgs=--pid=host')),
    needs: ['host namespace network', 'host namespace pid'],
  },
  {
    rule: 'host-paths',
    files: withUnit(container('Volume=/srv/data:/data')),
    needs: ['path /srv/data:rw'],
  },
  {
    rule: 'sensitive-paths',
    files: withUnit(
      container('Volume=/:/host:ro\nMount=type=bind,src=/run/podman/podman.sock,dst=/sock'),
    ),
    needs: ['path /:ro', 'path /run/podman/podman.sock:rw'],
  },
  {
    rule: 'devices',
    files: withUnit(container('AddDevice=/dev/fuse')),
    needs: ['device /dev/fuse'],
  },
  {
    rule: 'host-ports',
    files: withUnit('', {
      unit: {
        path: 'quadlet/demo-web.container',
        content: '[Container]\nImage=x\nUser=@@rick:uid:demo@@\nPublishPort=8080:80\n',
      },
    }),
    needs: ['port *:8080/tcp'],
  },
  {
    rule: 'selinux',
    files: withUnit(container('SecurityLabelDisable=true')),
    needs: ['unconfined selinux'],
  },
  {
    rule: 'apparmor',
    files: withUnit(container('PodmanArgs=--security-opt apparmor=unconfined')),
    needs: ['unconfined apparmor'],
  },
  {
    rule: 'seccomp',
    files: withUnit(container('SeccompProfile=unconfined')),
    needs: ['unconfined seccomp'],
  },
  { rule: 'proc-mount', files: withUnit(container('Unmask=ALL')), needs: ['unconfined proc'] },
  {
    rule: 'sysctls',
    files: withUnit(container('Sysctl=net.core.somaxconn=1024')),
    needs: ['sysctl net.core.somaxconn'],
  },
  { rule: 'run-as-non-root', files: withUnit('', { replaceUser: '' }), needs: ['user root'] },
  {
    // A uid() of an account the bundle does not create is refused before the
    // policy, as not its own (BUNDLE_INVALID, hostile-namespace-accounts):
    // what reaches the grant is a literal id, the same user on every host.
    rule: 'host-users',
    files: withUnit('', { replaceUser: 'User=1000' }),
    needs: ['user 1000'],
  },
  {
    rule: 'host-groups',
    files: withUnit(container('GroupAdd=@@rick:gid:valkey-clients@@')),
    needs: ['group valkey-clients'],
  },
  {
    rule: 'service-directives',
    files: withUnit("\n[Service]\nExecStartPre=/bin/sh -c 'chmod 0666 /etc/shadow'\n"),
    needs: ['service directive ExecStartPre'],
  },
  {
    rule: 'host-commands',
    files: withUnit('', {
      unit: {
        path: 'systemd/demo-fix.service',
        content:
          '[Unit]\nDescription=demo fix\n\n[Service]\nType=oneshot\nExecStart=/bin/chmod 0666 /etc/shadow\n',
      },
    }),
    needs: [
      'service directive ExecStart (demo-fix.service:6 ExecStart=/bin/chmod 0666 /etc/shadow',
    ],
  },
  {
    rule: 'unknown-flags',
    files: withUnit(container('PodmanArgs=--frobnicate')),
    needs: ['privileged'],
  },
  {
    rule: 'unjudged',
    files: withUnit(container(`Volume=\${HOME}:/home`)),
    needs: ['privileged'],
  },
];

/** What a unit names of other bundles and of the host itself (issue 21). */
const crossBundle: RuleCase[] = [
  {
    rule: 'shared-namespaces: Network=container: of another bundle',
    files: withUnit(container('Network=container:gitea')),
    needs: [
      "privileged (demo-app.container:17 Network=container:gitea (joins the network namespace of container gitea, which is not one of demo's) [shared-namespaces])",
    ],
  },
  {
    rule: "shared-namespaces: quadlet's Network=NAME.container of another bundle",
    files: withUnit(container('Network=gitea.container')),
    needs: ["joins the network namespace of container gitea.container, which is not one of demo's"],
  },
  {
    rule: 'shared-namespaces: --net, --pid, --ipc, --uts, --userns=container:',
    files: withUnit(
      container(
        'PodmanArgs=--net=container:gitea --pid=container:gitea --ipc container:gitea --uts=container:gitea --userns=container:gitea',
      ),
    ),
    needs: [
      'network namespace of container gitea',
      'pid namespace',
      'ipc namespace',
      'uts namespace',
      'user namespace',
    ],
  },
  {
    rule: 'shared-namespaces: Pod= and --pod of another bundle',
    files: withUnit(container('Pod=gitea.pod\nPodmanArgs=--pod gitea')),
    needs: [
      "joins pod gitea.pod, which is not one of demo's",
      "joins pod gitea, which is not one of demo's",
    ],
  },
  {
    rule: 'secrets: Secret= and --secret',
    files: withUnit(
      container('Secret=gitea_token,type=env,target=T\nPodmanArgs=--secret source=authentik_key'),
    ),
    needs: [
      'podman secret gitea_token (demo-app.container:17 Secret=gitea_token,type=env,target=T (reads podman secret gitea_token, which rick does not create) [secrets])',
      'podman secret authentik_key',
    ],
  },
  {
    rule: 'volumes: a named volume and a .volume unit of another bundle',
    files: withUnit(
      container(
        'Volume=systemd-gitea-data:/d\nMount=type=volume,source=gitea-repos,dst=/r\nVolume=gitea-data.volume:/g',
      ),
    ),
    needs: [
      'volume systemd-gitea-data (demo-app.container:17 Volume=systemd-gitea-data:/d (mounts named volume systemd-gitea-data, which no .volume unit of demo makes',
      'volume gitea-repos',
      'volume gitea-data.volume',
    ],
  },
  {
    rule: "volumes: a .volume unit adopting another bundle's volume by VolumeName=",
    files: withUnit('', {
      unit: {
        path: 'quadlet/demo-data.volume',
        content: '[Volume]\nVolumeName=systemd-gitea-data\n',
      },
    }),
    needs: [
      'volume systemd-gitea-data (demo-data.volume:2 VolumeName=systemd-gitea-data (quadlet reuses volume',
    ],
  },
  {
    rule: 'image-sources: oci-archive:, dir:, docker-archive: read the host',
    files: withUnit(container('Image=oci-archive:/root/x.tar')),
    needs: [
      'path /root/x.tar:ro (demo-app.container:17 Image=oci-archive:/root/x.tar (image transport oci-archive: reads the image from this host path) [image-sources])',
    ],
  },
  {
    rule: 'image-sources: an .image unit from a directory',
    files: withUnit('', {
      unit: { path: 'quadlet/demo-img.image', content: '[Image]\nImage=dir:/srv/images/app\n' },
    }),
    needs: ['path /srv/images/app:ro (demo-img.image:2 Image=dir:/srv/images/app'],
  },
  {
    rule: "image-sources: docker-daemon: talks to the host's Docker",
    files: withUnit('', {
      unit: {
        path: 'quadlet/demo-d.container',
        content: '[Container]\nImage=docker-daemon:app:1\nUser=@@rick:uid:demo@@\n',
      },
    }),
    needs: [
      'path /var/run/docker.sock:rw (demo-d.container:2 Image=docker-daemon:app:1',
      '[sensitive-paths]',
    ],
  },
  {
    rule: 'host-paths: bundle_path() mounted read-write',
    files: withUnit(container('Volume=@@rick:path:env/demo.env@@:/demo.env')),
    needs: [
      'privileged (demo-app.container:17 Volume=@@rick:path:env/demo.env@@:/demo.env (a bundle file mounted read-write could change its own generation; mount it with ro) [host-paths])',
    ],
  },
  {
    rule: 'host-paths: bundle_path() with a relabel, which writes',
    files: withUnit(container('PodmanArgs=-v @@rick:path:env/demo.env@@:/demo.env:ro,Z')),
    needs: ['a bundle file mounted read-write could change its own generation'],
  },
];

const socketUnit = (name: string, lines: string): FactoryFile => ({
  path: `systemd/${name}`,
  content: `[Unit]\nDescription=${name}\n\n[Socket]\n${lines}\n`,
});

/** Plain .socket units: what systemd listens on, as root, and what it activates (issue 21). */
const sockets: RuleCase[] = [
  {
    rule: 'a 0666 socket in a granted directory activating the rootful podman API',
    files: withUnit('', {
      unit: socketUnit(
        'demo-api.socket',
        'ListenStream=/var/lib/demo/api.sock\nSocketMode=0666\nService=podman.service',
      ),
    }),
    needs: [
      "unit podman.service (demo-api.socket:7 Service=podman.service (activates podman.service, which is not one of demo's units) [sockets])",
    ],
  },
  {
    rule: 'a socket on 0.0.0.0:23 activating ssh.service',
    files: withUnit('', {
      unit: socketUnit('demo-telnet.socket', 'ListenStream=0.0.0.0:23\nService=ssh.service'),
    }),
    needs: [
      'port 0.0.0.0:23/tcp (demo-telnet.socket:5 ListenStream=0.0.0.0:23 (systemd listens on this port of the host) [sockets])',
      'unit ssh.service',
    ],
  },
  {
    rule: 'without Service= a socket activates the service of its own name',
    files: withUnit('', { unit: socketUnit('sshd.socket', 'ListenStream=127.0.0.1:2022') }),
    needs: [
      "unit sshd.service (sshd.socket:5 (no Service=) sshd.service (without Service= the socket activates sshd.service, which is not one of demo's units) [sockets])",
    ],
  },
  {
    rule: 'Accept=yes activates the template of its name',
    files: withUnit('', {
      unit: socketUnit('demo-app.socket', 'ListenStream=127.0.0.1:7\nAccept=yes'),
    }),
    needs: ['unit demo-app@.service'],
  },
  {
    rule: 'every kind of listener',
    files: withUnit('', {
      unit: socketUnit(
        'demo-app.socket',
        [
          'ListenDatagram=[::]:53',
          'ListenSequentialPacket=%t/demo/seq.sock',
          'ListenFIFO=/var/lib/demo/fifo',
          'ListenSpecial=/dev/kmsg',
          'ListenSpecial=/proc/kmsg',
          'ListenNetlink=audit 1',
          'ListenMessageQueue=/demo',
          'ListenUSBFunction=/run/usb/demo',
          'ListenStream=@demo',
          'ListenStream=8080',
        ].join('\n'),
      ),
    }),
    needs: [
      'port [::]:53/udp',
      'path /run/demo/seq.sock:rw',
      'path /var/lib/demo/fifo:rw',
      'device /dev/kmsg',
      'path /proc/kmsg:ro',
      "a netlink socket of the host's kernel",
      'host namespace ipc',
      'path /run/usb/demo:rw',
      "an abstract socket lives in the host's network namespace",
      'port *:8080/tcp',
    ],
  },
  {
    rule: 'who owns the socket file, its mode, its links and the options that reach further',
    files: withUnit('', {
      unit: socketUnit(
        'demo-app.socket',
        'ListenStream=127.0.0.1:8080\nSocketUser=www-data\nSocketGroup=postgres-clients\nSocketMode=4777\nSymlinks=/etc/demo.sock\nTransparent=yes\nListenSpecial=/srv/x\nWritable=yes',
      ),
    }),
    needs: [
      'user www-data (demo-app.socket:6 SocketUser=www-data',
      'a mode with set-user-ID',
      'path /etc/demo.sock:rw',
      'IP_TRANSPARENT',
      'path /srv/x:rw',
    ],
  },
];

const plainUnit = (name: string, text: string): FactoryFile => ({
  path: `systemd/${name}`,
  content: text,
});

/** Dependencies and triggers naming units the bundle does not own (issue 21). */
const references: RuleCase[] = [
  {
    rule: "a timer's Unit= of another service",
    files: withUnit('', {
      unit: plainUnit(
        'demo-kick.timer',
        '[Unit]\nDescription=kick\n\n[Timer]\nOnCalendar=daily\nUnit=podman-auto-update.service\n',
      ),
    }),
    needs: [
      "unit podman-auto-update.service (demo-kick.timer:6 Unit=podman-auto-update.service (Unit= names podman-auto-update.service, which is not one of demo's units) [unit-references])",
    ],
  },
  {
    rule: 'a timer without Unit= triggers the service of its name',
    files: withUnit('', {
      unit: plainUnit('sshd-keys.timer', '[Timer]\nOnCalendar=daily\n'),
    }),
    needs: ['unit sshd-keys.service (sshd-keys.timer:2 (no Unit=) sshd-keys.service'],
  },
  {
    rule: 'every dependency of a Quadlet unit naming another service',
    files: withUnit(
      [
        '\n[Unit]',
        'Requires=gitea.service',
        'Requisite=a.service',
        'Wants=b.service',
        'BindsTo=c.service',
        'PartOf=d.service',
        'Upholds=e.service',
        'Conflicts=f.service',
        'OnFailure=g.service',
        'OnSuccess=h.service',
        'PropagatesReloadTo=i.service',
        'ReloadPropagatedFrom=j.service',
        'Before=k.service',
        'After=l.service',
        '[Install]',
        'WantedBy=m.service',
        'RequiredBy=multi-user.target',
        'UpheldBy=o.service',
        '',
      ].join('\n'),
    ),
    needs: [
      'unit gitea.service',
      ...'abcdefghij'.split('').map((c) => `unit ${c}.service`),
      'unit m.service',
      'unit multi-user.target',
      'unit o.service',
    ],
  },
  {
    rule: 'the system-state targets and actions need the privileged profile',
    files: withUnit('\n[Unit]\nOnFailure=reboot.target\nFailureAction=poweroff\n'),
    needs: [
      'does not grant: privileged (',
      'demo-app.container:17 OnFailure=reboot.target (reboot.target changes the state of the whole host) [unit-references]',
      'FailureAction=poweroff (FailureAction=poweroff acts on the whole host) [unit-references]',
    ],
  },
];

/** Quoting edge cases: each hides a privilege that the split must still find. */
const quoting: RuleCase[] = [
  {
    rule: 'a quoted PodmanArgs word',
    files: withUnit(container('PodmanArgs="--volume=/etc:/e"')),
    needs: ['path /etc:rw'],
  },
  {
    rule: 'a short flag with its value attached',
    files: withUnit(container('PodmanArgs=-dv/:/h')),
    needs: ['path /:rw'],
  },
  {
    rule: 'a C escape inside the path',
    files: withUnit(container('PodmanArgs=--volume \\x2fsrv:/s:ro')),
    needs: ['path /srv:ro'],
  },
  {
    rule: 'a continuation line',
    files: withUnit(container('PodmanArgs=--cap-add \\\n  NET_ADMIN')),
    needs: ['capability NET_ADMIN'],
  },
  {
    rule: 'a comma list in a slice flag',
    files: withUnit(container('PodmanArgs=--cap-add=chown,net_raw')),
    needs: ['capability NET_RAW'],
  },
  {
    rule: 'a systemd specifier standing for /etc',
    files: withUnit(container('Volume=%E/ssl:/ssl:ro')),
    needs: ['path /etc/ssl:ro'],
  },
  {
    rule: 'a relative path climbing out of the unit directory',
    files: withUnit(container('Volume=../../../../../root:/r')),
    needs: ['path /root:rw'],
  },
  {
    rule: 'an empty quoted word that would make quadlet drop the rest',
    files: withUnit(container('PodmanArgs=--env "" --privileged')),
    needs: ['privileged'],
  },
  {
    rule: 'a drop-in-style second [Container] section',
    files: withUnit('\n[Container]\nPodmanArgs=--network=host\n'),
    needs: ['host namespace network'],
  },
];

async function expectRefused(c: RuleCase, argv: (bundle: string) => string[]): Promise<string> {
  tree = await makeHostTree(key);
  const host = new FakeHost({ root: tree.root });
  const b = await writeSignedBundle(tree.work, key, { files: c.files });
  const before = await snapshotTree(tree.root);
  const r = await runInstaller(host, argv(b.bundlePath).concat(['--root', tree.root]));
  expect(r.code).toBe(ExitCode.policy);
  expect(r.stderr).toMatch(
    /^error POLICY_REFUSED: demo 1\.0\.0 needs what .*policy\.d\/demo\.conf does not grant: /,
  );
  for (const need of c.needs) expect(r.stderr).toContain(need);
  expect(r.stderr).toContain('hint: nothing was changed');
  expect(diffTrees(before, await snapshotTree(tree.root))).toEqual([]);
  expect(host.calls).toEqual([]);
  return r.stderr;
}

describe('rick-install refuses what the grant does not allow, host tree unchanged', () => {
  it.each(cases.map((c) => [c.rule, c] as const))('rule %s', async (_rule, c) => {
    await expectRefused(c, (b) => [b]);
  });

  it.each(quoting.map((c) => [c.rule, c] as const))('quoting: %s', async (_rule, c) => {
    await expectRefused(c, (b) => [b]);
  });

  it.each(crossBundle.map((c) => [c.rule, c] as const))('rule %s', async (_rule, c) => {
    await expectRefused(c, (b) => [b]);
  });

  it.each(sockets.map((c) => [c.rule, c] as const))('rule sockets: %s', async (_rule, c) => {
    await expectRefused(c, (b) => [b]);
  });

  it.each(references.map((c) => [c.rule, c] as const))(
    'rule unit-references: %s',
    async (_rule, c) => {
      const stderr = await expectRefused(c, (b) => [b]);
      // Ordering alone starts nothing.
      expect(stderr).not.toContain('k.service');
      expect(stderr).not.toContain('l.service');
    },
  );

  it('installs references to its own units and the usual targets, and what UNITS= and the privileged profile grant', async () => {
    tree = await makeHostTree(key, {
      grants: { demo: `${DEMO_GRANT}UNITS=podman-auto-update.service\n` },
    });
    const host = new FakeHost({ root: tree.root });
    const b = await writeSignedBundle(tree.work, key, {
      files: [
        ...withUnit('\n[Unit]\nWants=network-online.target\nPartOf=demo-pod.service\n', {
          unit: plainUnit(
            'demo-kick.timer',
            '[Timer]\nOnCalendar=daily\nUnit=podman-auto-update.service\n\n[Install]\nWantedBy=timers.target\n',
          ),
        }),
      ],
    });
    const r = await runInstaller(host, [b.bundlePath, '--root', tree.root]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    await writeFile(join(tree.root, 'etc/rick/policy.d/demo.conf'), 'PROFILE=privileged\n');
    const p = await writeSignedBundle(tree.work, key, {
      version: '1.1.0',
      files: withUnit('\n[Unit]\nOnFailure=reboot.target\n'),
    });
    const pr = await runInstaller(host, [p.bundlePath, '--root', tree.root]);
    expect(pr.stderr).toBe('');
    expect(pr.code).toBe(0);
  });

  it('installs a socket on loopback that activates its own service, owned by its own user', async () => {
    tree = await makeHostTree(key, { grants: { demo: `${DEMO_GRANT}SERVICE=ExecStart\n` } });
    const host = new FakeHost({ root: tree.root });
    const b = await writeSignedBundle(tree.work, key, {
      files: [
        ...withUnit('', {
          unit: socketUnit(
            'demo-echo.socket',
            'ListenStream=127.0.0.1:9000\nListenStream=[::1]:9000\nSocketUser=demo\nSocketMode=0600',
          ),
        }),
        {
          path: 'systemd/demo-echo.service',
          content:
            '[Unit]\nDescription=echo\n\n[Service]\nExecStart=/bin/cat\nStandardInput=socket\n',
        },
      ],
    });
    const r = await runInstaller(host, [b.bundlePath, '--root', tree.root]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  it("installs what joins, mounts and reads the bundle's own containers, pods and volumes, and a granted secret and volume", async () => {
    tree = await makeHostTree(key, {
      grants: { demo: `${DEMO_GRANT}SECRETS=gitea_token\nVOLUMES=systemd-gitea-data\n` },
    });
    const host = new FakeHost({ root: tree.root });
    const b = await writeSignedBundle(tree.work, key, {
      files: withUnit(
        container(
          'Volume=demo-cache:/cache\nVolume=demo-data.volume:/data\nVolume=@@rick:path:env/demo.env@@:/demo.env:ro\nSecret=gitea_token\nVolume=systemd-gitea-data:/g:ro',
        ),
        {
          unit: {
            path: 'quadlet/demo-data.volume',
            content: '[Volume]\n',
          },
        },
      ),
    });
    const r = await runInstaller(host, [b.bundlePath, '--root', tree.root]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  it('plan refuses the same way, after showing the needs, the grant and the escalation', async () => {
    tree = await makeHostTree(key);
    const host = new FakeHost({ root: tree.root });
    const b = await writeSignedBundle(tree.work, key, {
      files: withUnit(container('Volume=/srv/data:/data:ro')),
    });
    const before = await snapshotTree(tree.root);
    const r = await runInstaller(host, ['plan', b.bundlePath, '--root', tree.root]);
    expect(r.code).toBe(ExitCode.policy);
    expect(r.stdout).toMatch(/policy: .*policy\.d\/demo\.conf \(profile restricted\)/);
    expect(r.stdout).toMatch(
      / {2}granted {2}group postgres-clients \(demo-app\.container:\d+ PodmanArgs: --group-add/,
    );
    expect(r.stdout).toMatch(
      / {2}NEW {4} {2}path \/srv\/data:ro \(demo-app\.container:\d+ Volume=\/srv\/data:\/data:ro/,
    );
    expect(r.stdout).toContain('  escalation: path /srv/data:ro');
    expect(r.stdout).toContain('    PATHS=/srv/data:ro');
    expect(r.stderr).toContain('error POLICY_REFUSED');
    expect(diffTrees(before, await snapshotTree(tree.root))).toEqual([]);
  });

  it('a declaration beyond the grant is refused even when no unit uses it yet', async () => {
    tree = await makeHostTree(key);
    const host = new FakeHost({ root: tree.root });
    const b = await writeSignedBundle(tree.work, key, {
      files: sampleFiles('demo'),
      needs: { users: ['demo'], groups: ['demo', 'postgres-clients'], paths: ['/var/lib/demo:rw'] },
    });
    const before = await snapshotTree(tree.root);
    const r = await runInstaller(host, [b.bundlePath, '--root', tree.root]);
    expect(r.code).toBe(ExitCode.policy);
    expect(r.stderr).toMatch(/does not grant: path \/var\/lib\/demo:rw \(declared\)\n/);
    expect(diffTrees(before, await snapshotTree(tree.root))).toEqual([]);
  });

  it('installs once the grant allows it, and the privileged profile allows everything', async () => {
    tree = await makeHostTree(key, {
      grants: { demo: `${DEMO_GRANT}PATHS=/srv:rw\nCAPABILITIES=SYS_ADMIN\n` },
    });
    const host = new FakeHost({ root: tree.root });
    const b = await writeSignedBundle(tree.work, key, {
      files: withUnit(container('Volume=/srv/data:/data\nAddCapability=sys_admin')),
    });
    expect((await runInstaller(host, [b.bundlePath, '--root', tree.root])).code).toBe(0);
    await writeFile(join(tree.root, 'etc/rick/policy.d/demo.conf'), 'PROFILE=privileged\n');
    const p = await writeSignedBundle(tree.work, key, {
      version: '1.1.0',
      files: withUnit(container('PodmanArgs=--privileged --network=host')),
    });
    const r = await runInstaller(host, [p.bundlePath, '--root', tree.root]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });
});

describe('the grant file', () => {
  async function refusedGrant(text: string, message: RegExp, mode = 0o644): Promise<void> {
    tree = await makeHostTree(key, { grants: { demo: text } });
    await chmod(join(tree.root, 'etc/rick/policy.d/demo.conf'), mode);
    const host = new FakeHost({ root: tree.root });
    const b = await writeSignedBundle(tree.work, key);
    const before = await snapshotTree(tree.root);
    const r = await runInstaller(host, [b.bundlePath, '--root', tree.root]);
    expect(r.code).toBe(ExitCode.usage);
    expect(r.stderr).toMatch(message);
    expect(diffTrees(before, await snapshotTree(tree.root))).toEqual([]);
  }

  it('refuses unknown keys and malformed values, every problem at once', async () => {
    await refusedGrant(
      'GROUPS=demo\nGRANT_ALL=yes\nPATHS=/srv\nPORTS=9000\nPROFILE=baseline\n',
      /error CONFIG_INVALID: .*demo\.conf: line 2: unknown key GRANT_ALL; line 3: PATHS "\/srv" must be PATH:ro or PATH:rw; line 4: PORTS "9000" must be ADDRESS:PORT\/PROTOCOL.*; line 5: PROFILE must be restricted or privileged/,
    );
  });

  it('refuses a grant others may write', async () => {
    await refusedGrant(DEMO_GRANT, /demo\.conf is writable by others/, 0o646);
  });

  /** A grant that is fine itself, below a directory `spoil` makes writable by others. */
  async function refusedDir(spoil: (root: string) => Promise<void>, message: RegExp) {
    tree = await makeHostTree(key, { grants: { demo: DEMO_GRANT } });
    await spoil(tree.root);
    const host = new FakeHost({ root: tree.root });
    const b = await writeSignedBundle(tree.work, key);
    const before = await snapshotTree(tree.root);
    const r = await runInstaller(host, [b.bundlePath, '--root', tree.root]);
    expect(r.code).toBe(ExitCode.usage);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).toContain(
      'hint: whoever can write a directory above a grant can grant anything',
    );
    expect(diffTrees(before, await snapshotTree(tree.root))).toEqual([]);
    expect(host.calls).toEqual([]);
  }

  it('refuses a world-writable /etc/rick/policy.d', async () => {
    await refusedDir(
      (root) => chmod(join(root, 'etc/rick/policy.d'), 0o777),
      /error CONFIG_INVALID: the grant directory is not root's alone: .*\/etc\/rick\/policy\.d is writable by others/,
    );
  });

  it('refuses a group-writable /etc/rick and a user-owned /etc', async () => {
    await refusedDir(async (root) => {
      await chmod(join(root, 'etc/rick'), 0o775);
      await chown(join(root, 'etc'), 1000, 0);
    }, /\/etc belongs to uid 1000, not root, .*\/etc\/rick is writable by its group/);
  });

  it('refuses /etc/rick/policy.d as a link, even to a directory that looks right', async () => {
    await refusedDir(async (root) => {
      const elsewhere = join(root, 'srv/grants');
      await mkdir(join(root, 'srv'), { mode: 0o755 });
      await rename(join(root, 'etc/rick/policy.d'), elsewhere);
      await symlink(elsewhere, join(root, 'etc/rick/policy.d'));
    }, /\/etc\/rick\/policy\.d is a symbolic link/);
  });
});

describe('rick-install --grant', () => {
  async function setup(answer: string | undefined) {
    tree = await makeHostTree(key, { grants: {} });
    const host = new FakeHost({ root: tree.root });
    const b = await writeSignedBundle(tree.work, key);
    const asked: string[] = [];
    const prompt = async (q: string) => {
      asked.push(q);
      return answer;
    };
    return { host, b, asked, prompt, t: tree };
  }

  it('shows the needs, records the grant when the operator accepts, and installs', async () => {
    const s = await setup('y');
    const r = await runInstaller(s.host, [s.b.bundlePath, '--grant', '--root', s.t.root], {
      prompt: s.prompt,
    });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(s.asked).toEqual(['Grant demo what is marked NEW above? [y/N] ']);
    expect(r.stdout).toContain('  NEW      group postgres-clients');
    const grant = await readFile(join(s.t.root, 'etc/rick/policy.d/demo.conf'), 'utf8');
    expect(grant).toMatch(
      /^# What this host grants the bundle beyond the restricted profile \(docs\/policy\.md\)\.\n# granted .* for demo 1\.0\.0 by rick-install --grant\nGROUPS=postgres-clients\n$/,
    );
    expect(r.stdout).toContain('installed demo 1.0.0 as generation 1');
  });

  it('changes nothing when the operator declines', async () => {
    const s = await setup('n');
    const before = await snapshotTree(s.t.root);
    const r = await runInstaller(s.host, [s.b.bundlePath, '--grant', '--root', s.t.root], {
      prompt: s.prompt,
    });
    expect(r.code).toBe(ExitCode.policy);
    expect(r.stdout).toContain('not granted');
    expect(diffTrees(before, await snapshotTree(s.t.root))).toEqual([]);
  });

  it('without a terminal needs --yes, and changes nothing', async () => {
    const s = await setup(undefined);
    const before = await snapshotTree(s.t.root);
    const r = await runInstaller(s.host, [s.b.bundlePath, '--grant', '--root', s.t.root], {
      prompt: s.prompt,
    });
    expect(r.code).toBe(ExitCode.usage);
    expect(r.stderr).toContain('error USAGE: --grant needs a terminal to ask on, or --yes');
    expect(diffTrees(before, await snapshotTree(s.t.root))).toEqual([]);
  });

  it('--yes grants what the bundle needs without asking', async () => {
    const s = await setup(undefined);
    const r = await runInstaller(s.host, [s.b.bundlePath, '--grant', '--yes', '--root', s.t.root], {
      prompt: s.prompt,
    });
    expect(r.code).toBe(0);
    expect(s.asked).toEqual([]);
    expect(await readFile(join(s.t.root, 'etc/rick/policy.d/demo.conf'), 'utf8')).toContain(
      'GROUPS=postgres-clients\n',
    );
  });

  it('--yes writes a declared directory once, not each path below it that the units mount', async () => {
    tree = await makeHostTree(key, { grants: {} });
    const host = new FakeHost({ root: tree.root });
    const b = await writeSignedBundle(tree.work, key, {
      files: withUnit(
        container('Volume=/srv/demo/data:/data\nVolume=/srv/demo/logs/app.log:/app.log'),
      ),
      needs: { groups: ['postgres-clients'], paths: ['/srv/demo:rw'] },
    });
    const r = await runInstaller(host, [b.bundlePath, '--grant', '--yes', '--root', tree.root]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('  NEW      path /srv/demo/data:rw (demo-app.container:');
    const grant = await readFile(join(tree.root, 'etc/rick/policy.d/demo.conf'), 'utf8');
    expect(grant.split('\n').filter((l) => l !== '' && !l.startsWith('#'))).toEqual([
      'GROUPS=postgres-clients',
      'PATHS=/srv/demo:rw',
    ]);
  });

  it('--yes never grants the privileged profile', async () => {
    tree = await makeHostTree(key);
    const host = new FakeHost({ root: tree.root });
    const b = await writeSignedBundle(tree.work, key, {
      files: withUnit(container('PodmanArgs=--privileged')),
    });
    const before = await snapshotTree(tree.root);
    const r = await runInstaller(host, [b.bundlePath, '--grant', '--yes', '--root', tree.root]);
    expect(r.code).toBe(ExitCode.usage);
    expect(r.stderr).toContain('needs the privileged profile, which --yes does not grant');
    expect(diffTrees(before, await snapshotTree(tree.root))).toEqual([]);
  });

  it('checks the signature before showing anything', async () => {
    tree = await makeHostTree(key);
    const host = new FakeHost({ root: tree.root });
    const other = await makeTestKey('not trusted');
    const b = await writeSignedBundle(tree.work, other);
    const before = await snapshotTree(tree.root);
    const r = await runInstaller(host, [b.bundlePath, '--grant', '--yes', '--root', tree.root]);
    expect(r.code).toBe(ExitCode.untrustedSignature);
    expect(r.stdout).toBe('');
    expect(diffTrees(before, await snapshotTree(tree.root))).toEqual([]);
  });
});
