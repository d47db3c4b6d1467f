/**
 * The restricted profile on the build side: the rendered units may use
 * nothing beyond bundle.yaml's `needs`. One named test per rule, each a
 * template whose unit breaks it: the build fails (exit 3, NEEDS_UNDECLARED,
 * naming the need and the line) and writes no output file. Then
 * `--policy FILE` judges a bundle as a host with that grant will.
 */
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ExitCode } from '../../src/errors.js';
import { useBuildWorkspace } from '../helpers/build-workspace.js';
import { repoRoot } from '../helpers/quadlet.js';
import { writeBundleDir } from '../helpers/rick-bundle.js';

const ws = useBuildWorkspace('rick-build-needs-');
const { build, expectNoOutput: noOutput } = ws;

const base = '[Container]\nImage=docker.io/library/app:1\nUser={{ uid("app") }}\n';

function bundle(unit: string, needs = '', extraUnits: Record<string, string> = {}) {
  const names = ['quadlet/app.container.j2', ...Object.keys(extraUnits)];
  return {
    'bundle.yaml': `name: app\n${needs ? `needs:\n${needs}` : ''}files:\n  quadlet: [${names.join(', ')}]\n  sysusers: [sysusers.d/app.conf]\n`,
    'quadlet/app.container.j2': unit,
    'sysusers.d/app.conf': 'u app - "App" /var/lib/app /usr/sbin/nologin\n',
    ...extraUnits,
  };
}

const cases: Array<[rule: string, unit: string, need: string]> = [
  ['privileged', `${base}PodmanArgs=--privileged\n`, 'privileged'],
  ['capabilities', `${base}AddCapability=NET_ADMIN\n`, 'capability NET_ADMIN'],
  ['host-namespaces', `${base}Network=host\n`, 'host namespace network'],
  ['host-paths', `${base}Volume=/srv/app:/data\n`, 'path /srv/app:rw'],
  [
    'sensitive-paths',
    `${base}Volume=/var/run/docker.sock:/var/run/docker.sock\n`,
    'path /var/run/docker.sock:rw',
  ],
  ['devices', `${base}AddDevice=/dev/kvm\n`, 'device /dev/kvm'],
  ['host-ports', `${base}PublishPort=0.0.0.0:443:8443\n`, 'port 0.0.0.0:443/tcp'],
  ['selinux', `${base}SecurityLabelType=spc_t\n`, 'unconfined selinux'],
  ['apparmor', `${base}PodmanArgs=--security-opt=apparmor=unconfined\n`, 'unconfined apparmor'],
  ['seccomp', `${base}PodmanArgs=--security-opt seccomp=unconfined\n`, 'unconfined seccomp'],
  ['proc-mount', `${base}PodmanArgs=--security-opt unmask=/proc/kcore\n`, 'unconfined proc'],
  ['sysctls', `${base}Sysctl=kernel.msgmax=65536\n`, 'sysctl kernel.msgmax'],
  ['run-as-non-root', '[Container]\nImage=docker.io/library/app:1\n', 'user root'],
  [
    'host-users',
    '[Container]\nImage=docker.io/library/app:1\nUser={{ uid("www-data") }}\n',
    'user www-data',
  ],
  ['host-groups', `${base}GroupAdd={{ gid("valkey-clients") }}\n`, 'group valkey-clients'],
  [
    'service-directives',
    `${base}\n[Service]\nExecStartPost=/usr/bin/touch /etc/nologin\n`,
    'service directive ExecStartPost',
  ],
  ['unknown-flags', `${base}PodmanArgs=--no-such-flag\n`, 'privileged'],
  ['shared-namespaces', `${base}Network=container:gitea\n`, 'privileged'],
  ['shared-namespaces', `${base}PodmanArgs=--pid=container:gitea\n`, 'privileged'],
  ['shared-namespaces', `${base}PodmanArgs=--pod gitea\n`, 'privileged'],
  ['secrets', `${base}Secret=gitea_token,type=env,target=TOKEN\n`, 'podman secret gitea_token'],
  ['volumes', `${base}Volume=systemd-gitea-data:/d\n`, 'volume systemd-gitea-data'],
  [
    'image-sources',
    `[Container]\nImage=oci-archive:/root/x.tar\nUser={{ uid("app") }}\n`,
    'path /root/x.tar:ro',
  ],
  ['unjudged', `${base}Volume=%H:/h\n`, 'privileged'],
];

describe('rick-bundle build refuses units beyond bundle.yaml needs, writing nothing', () => {
  it.each(cases)('rule %s', async (rule, unit, need) => {
    const dir = await writeBundleDir(join(ws.work, 'app'), bundle(unit));
    const r = await build(dir);
    expect(r.code).toBe(ExitCode.invalidBundle);
    expect(r.stderr).toMatch(
      /^error NEEDS_UNDECLARED: the rendered units use what bundle\.yaml does not declare: /,
    );
    expect(r.stderr).toContain(`${need} (app.container:`);
    expect(r.stderr).toContain(`[${rule}]`);
    await noOutput();
  });

  it('rule host-commands: a plain systemd unit runs its ExecStart= on the host', async () => {
    const dir = await writeBundleDir(join(ws.work, 'app'), {
      ...bundle(base),
      'bundle.yaml': `name: app\nfiles:\n  quadlet: [quadlet/app.container.j2]\n  systemd: [systemd/app-fix.service]\n  sysusers: [sysusers.d/app.conf]\n`,
      'systemd/app-fix.service':
        '[Unit]\nDescription=app fix\n\n[Service]\nType=oneshot\nExecStart=/bin/chmod 0666 /etc/shadow\n',
    });
    const r = await build(dir, ['--no-systemd-check']);
    expect(r.code).toBe(ExitCode.invalidBundle);
    expect(r.stderr).toMatch(
      /^error NEEDS_UNDECLARED: the rendered units use what bundle\.yaml does not declare: /m,
    );
    expect(r.stderr).toContain(
      'service directive ExecStart (app-fix.service:6 ExecStart=/bin/chmod 0666 /etc/shadow',
    );
    expect(r.stderr).toContain('[host-commands]');
    await noOutput();
  });

  it('rule sockets: a plain .socket unit listening on 0.0.0.0:23 that activates podman.service', async () => {
    const dir = await writeBundleDir(join(ws.work, 'app'), {
      ...bundle(base),
      'bundle.yaml': `name: app\nfiles:\n  quadlet: [quadlet/app.container.j2]\n  systemd: [systemd/app-api.socket]\n  sysusers: [sysusers.d/app.conf]\n`,
      'systemd/app-api.socket':
        '[Unit]\nDescription=api\n\n[Socket]\nListenStream=0.0.0.0:23\nListenStream=/var/lib/app/api.sock\nSocketMode=0666\nService=podman.service\n',
    });
    const r = await build(dir, ['--no-systemd-check']);
    expect(r.code).toBe(ExitCode.invalidBundle);
    expect(r.stderr).toMatch(
      /^error NEEDS_UNDECLARED: the rendered units use what bundle\.yaml does not declare: /m,
    );
    expect(r.stderr).toContain(
      'port 0.0.0.0:23/tcp (app-api.socket:5 ListenStream=0.0.0.0:23 (systemd listens on this port of the host) [sockets])',
    );
    expect(r.stderr).toContain(
      'path /var/lib/app/api.sock:rw (app-api.socket:6 ListenStream=/var/lib/app/api.sock (systemd creates this socket file on the host) [sockets])',
    );
    expect(r.stderr).toContain(
      "unit podman.service (app-api.socket:8 Service=podman.service (activates podman.service, which is not one of app's units) [sockets])",
    );
    await noOutput();
  });

  it('rule unit-references: a dependency on a unit the bundle does not own, until declared', async () => {
    const unit = `${base}\n[Unit]\nOnFailure=gitea.service\nConflicts=authentik-server.service\n`;
    const dir = await writeBundleDir(join(ws.work, 'app'), bundle(unit));
    const r = await build(dir, ['--no-systemd-check']);
    expect(r.code).toBe(ExitCode.invalidBundle);
    expect(r.stderr).toContain(
      "unit gitea.service (app.container:6 OnFailure=gitea.service (OnFailure= names gitea.service, which is not one of app's units) [unit-references])",
    );
    expect(r.stderr).toContain('unit authentik-server.service (app.container:7 Conflicts=');
    await noOutput();
    const declared = await writeBundleDir(
      join(ws.work, 'app2'),
      bundle(unit, '  units: [gitea.service, authentik-server.service]\n'),
    );
    const ok = await build(declared, ['--no-systemd-check']);
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain('unit authentik-server.service, unit gitea.service');
  });

  it('rule host-paths: a bundle_path() mounted read-write (the generation must stay unchanged)', async () => {
    const dir = await writeBundleDir(join(ws.work, 'app'), {
      ...bundle(`${base}Volume={{ bundle_path("env/app.env") }}:/app.env\n`),
      'bundle.yaml': `name: app\nfiles:\n  quadlet: [quadlet/app.container.j2]\n  env: [env/app.env]\n  sysusers: [sysusers.d/app.conf]\n`,
      'env/app.env': 'A=1\n',
    });
    const r = await build(dir);
    expect(r.code).toBe(ExitCode.invalidBundle);
    expect(r.stderr).toContain(
      'privileged (app.container:4 Volume=@@rick:path:env/app.env@@:/app.env (a bundle file mounted read-write could change its own generation; mount it with ro) [host-paths])',
    );
    await noOutput();
    // Read-only, it builds.
    await writeFile(
      join(dir, 'quadlet/app.container.j2'),
      `${base}Volume={{ bundle_path("env/app.env") }}:/app.env:ro\n`,
    );
    const ok = await build(dir);
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
  });

  it('a container may join, mount and read what its own bundle makes', async () => {
    const dir = await writeBundleDir(
      join(ws.work, 'app'),
      bundle(`${base}Pod=app.pod\nVolume=app-cache:/cache\nVolume=app-data.volume:/data\n`, '', {
        'quadlet/app.pod.j2': '[Pod]\nPodName=app\n',
        'quadlet/app-data.volume.j2': '[Volume]\n',
        'quadlet/side.container.j2': `${base}Network=app.container\nPodmanArgs=--pid=container:systemd-app --pod app\nVolume=systemd-app-data:/data\n`,
      }),
    );
    const r = await build(dir);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  it('a template mistake: a variable that renders a host path into PodmanArgs', async () => {
    const dir = await writeBundleDir(join(ws.work, 'app'), {
      ...bundle(`${base}PodmanArgs=--volume={{ data_dir }}:/data\n`),
      'bundle.yaml': `name: app\nvariables:\n  data_dir: /\nfiles:\n  quadlet: [quadlet/app.container.j2]\n  sysusers: [sysusers.d/app.conf]\n`,
    });
    const r = await build(dir);
    expect(r.code).toBe(ExitCode.invalidBundle);
    expect(r.stderr).toContain('path /:rw (app.container:4 PodmanArgs: --volume=/:/data');
    await noOutput();
  });

  it('a second unit smuggled in beside the declared one is judged too', async () => {
    const dir = await writeBundleDir(
      join(ws.work, 'app'),
      bundle(base, '', { 'quadlet/helper.container.j2': `${base}PodmanArgs=-v/etc:/host-etc\n` }),
    );
    const r = await build(dir);
    expect(r.code).toBe(ExitCode.invalidBundle);
    expect(r.stderr).toContain('path /etc:rw (helper.container:4 PodmanArgs: -v/etc:/host-etc');
    await noOutput();
  });

  it('builds what is declared, recording the needs in the manifest', async () => {
    const dir = await writeBundleDir(
      join(ws.work, 'app'),
      bundle(
        `${base}Volume=/srv/app/data:/data\nGroupAdd={{ gid("valkey-clients") }}\n`,
        '  paths: ["/srv/app:rw"]\n  groups: [valkey-clients]\n  ports: ["127.0.0.1:80/tcp"]\n',
      ),
    );
    const r = await build(dir);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('  needs: group valkey-clients, path /srv/app:rw\n');
  });

  it('warns about a declared need no unit uses', async () => {
    const dir = await writeBundleDir(
      join(ws.work, 'app'),
      bundle(base, '  devices: [/dev/fuse]\n'),
    );
    const r = await build(dir);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('warning: bundle.yaml declares device /dev/fuse, which no unit uses\n');
  });

  it('refuses a malformed declaration', async () => {
    const dir = await writeBundleDir(
      join(ws.work, 'app'),
      bundle(base, '  paths: [relative/dir]\n'),
    );
    const r = await build(dir);
    expect(r.code).toBe(ExitCode.invalidBundle);
    expect(r.stderr).toContain(
      'error DEFINITION_INVALID: bundle.yaml needs: paths.0: must be PATH:ro or PATH:rw',
    );
    await noOutput();
  });
});

describe('rick-bundle build --policy FILE', () => {
  it('refuses, writing nothing, a bundle a host with this grant would hold (exit 14)', async () => {
    const dir = await writeBundleDir(
      join(ws.work, 'app'),
      bundle(`${base}Volume=/srv/app:/data\n`, '  paths: ["/srv/app:rw"]\n'),
    );
    const policy = join(ws.work, 'app.conf');
    await writeFile(policy, 'PATHS=/srv/app:ro\n');
    const r = await build(dir, ['--policy', policy]);
    expect(r.code).toBe(ExitCode.policy);
    expect(r.stderr).toContain(
      `error POLICY_REFUSED: app 1.0.0 needs what ${policy} does not grant: path /srv/app:rw (declared; app.container:4 Volume=/srv/app:/data`,
    );
    await noOutput();
  });

  it('the Authentik bundle passes restricted with exactly its grant, which docs/feeds.md shows', async () => {
    const grant = await readFile(join(repoRoot, 'bundles/authentik/policy.conf'), 'utf8');
    const lines = grant.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
    expect(lines).toEqual([
      'GROUPS=postgres-clients valkey-clients',
      'PATHS=/var/lib/authentik:rw /var/run/postgresql:rw /var/run/valkey:rw',
    ]);
    const firstHost = await readFile(join(repoRoot, 'docs/feeds.md'), 'utf8');
    for (const line of lines) expect(firstHost).toContain(line);
    const policy = join(ws.work, 'authentik.conf');
    await writeFile(policy, grant);
    const r = await build(join(repoRoot, 'bundles/authentik'), ['--policy', policy]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(
      '  needs: group postgres-clients, group valkey-clients, path /var/lib/authentik:rw, path /var/run/postgresql:rw, path /var/run/valkey:rw\n',
    );
    expect(r.stdout).toContain('  policy: ');
    // One path less and a host would hold it.
    await writeFile(
      policy,
      'GROUPS=postgres-clients valkey-clients\nPATHS=/var/lib/authentik:rw /var/run/postgresql:rw\n',
    );
    await rm(ws.out, { recursive: true, force: true });
    const held = await build(join(repoRoot, 'bundles/authentik'), ['--policy', policy]);
    expect(held.code).toBe(ExitCode.policy);
    expect(held.stderr).toMatch(
      /does not grant: path \/var\/run\/valkey:rw \(declared; authentik-server\.container:\d+ Volume=\/var\/run\/valkey:\/var\/run\/valkey:Z/,
    );
    await noOutput();
  });
  it('the Gitea bundle passes restricted with exactly bundles/gitea/policy.conf', async () => {
    const grant = await readFile(join(repoRoot, 'bundles/gitea/policy.conf'), 'utf8');
    expect(grant.split('\n').filter((l) => l !== '' && !l.startsWith('#'))).toEqual([
      'GROUPS=postgres-clients',
      'PATHS=/var/lib/gitea:rw /var/run/postgresql:rw',
      'PORTS=0.0.0.0:2222/tcp',
      'DATABASES=postgresql:gitea',
    ]);
    const policy = join(ws.work, 'gitea.conf');
    await writeFile(policy, grant);
    const r = await build(join(repoRoot, 'bundles/gitea'), ['--policy', policy]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(
      '  needs: group postgres-clients, path /var/lib/gitea:rw, path /var/run/postgresql:rw, port 0.0.0.0:2222/tcp, database postgresql:gitea\n',
    );
    // Without the SSH port a host would hold it.
    await writeFile(
      policy,
      'GROUPS=postgres-clients\nPATHS=/var/lib/gitea:rw /var/run/postgresql:rw\nDATABASES=postgresql:gitea\n',
    );
    await rm(ws.out, { recursive: true, force: true });
    const held = await build(join(repoRoot, 'bundles/gitea'), ['--policy', policy]);
    expect(held.code).toBe(ExitCode.policy);
    expect(held.stderr).toMatch(
      /does not grant: port 0\.0\.0\.0:2222\/tcp \(declared; gitea\.container:\d+ PublishPort=0\.0\.0\.0:2222:2222/,
    );
    await noOutput();
  });
});
