/**
 * rick-bundle build with Caddy sites and plain systemd units: rendered with
 * the shared templates (templates/caddy.j2's forward-auth site), judged by
 * the real `caddy validate` and `systemd-analyze verify`, and nothing is
 * written when either refuses. Skipped without caddy and systemd-analyze,
 * except under CI=true.
 */
import { cp, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseBundleArchive } from '../../src/bundle/archive.js';
import { ExitCode } from '../../src/errors.js';
import { havePrograms } from '../helpers/programs.js';
import { repoRoot } from '../helpers/quadlet.js';
import {
  makeTempDir,
  runBundleCli,
  writeBundleDir,
  writeTestInstaller,
} from '../helpers/rick-bundle.js';

const tools = havePrograms('caddy', 'systemd-analyze');

const env = { PATH: process.env.PATH, SOURCE_DATE_EPOCH: '1700000000' };
let work: string;
let out: string;
let installer: string;

beforeEach(async () => {
  work = await makeTempDir('rick-build-sites-');
  out = join(work, 'out');
  installer = await writeTestInstaller(work);
  await cp(join(repoRoot, 'templates'), join(work, 'templates'), { recursive: true });
});
afterEach(async () => {
  await rm(work, { recursive: true, force: true });
});

const definition = `name: demo
variables:
  demo_domain: demo.example.org
  demo_group: demo-users
files:
  systemd: [systemd/demo-fix.service.j2, systemd/demo-sweep.timer, systemd/demo-sweep.service]
  caddy: [caddy/demo.caddy.j2]
services:
  - unit: demo-sweep.timer
  - unit: demo-fix.service
    checks:
      - { type: http, url: "http://127.0.0.1:80/", host: "{{ demo_domain }}", timeoutSec: 30 }
# Plain units run their commands on the host: beyond the restricted profile.
needs:
  service: [ExecStart]
`;

const fixUnit = (execStart = '/bin/true') =>
  `[Unit]\nDescription=demo fix\n\n[Service]\nType=oneshot\nExecStart=${execStart}\nRemainAfterExit=yes\n\n[Install]\nWantedBy=multi-user.target\n`;

function demoBundle(overrides: Record<string, string> = {}): Record<string, string> {
  return {
    'bundle.yaml': definition,
    'systemd/demo-fix.service.j2': fixUnit(),
    'systemd/demo-sweep.timer': '[Timer]\nOnCalendar=daily\n\n[Install]\nWantedBy=timers.target\n',
    'systemd/demo-sweep.service': '[Service]\nType=oneshot\nExecStart=/bin/true\n',
    'caddy/demo.caddy.j2':
      '{% import "caddy.j2" as caddy %}\n{{ caddy.forward_auth_site(demo_domain, "127.0.0.1:3000", group=demo_group) }}\n',
    ...overrides,
  };
}

async function build(files: Record<string, string>, ...extra: string[]) {
  const dir = await writeBundleDir(join(work, 'bundles/demo'), files);
  return runBundleCli(
    ['build', dir, '--version', '1.0.0', '--out', out, '--installer', installer, ...extra],
    { env },
  );
}

const written = () => readdir(out).catch(() => [] as string[]);

describe.skipIf(!tools)('rick-bundle build: Caddy sites and plain units', () => {
  it('renders the forward-auth site and the units, and records them in the manifest', async () => {
    const r = await build(demoBundle());
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const { manifest, files } = parseBundleArchive(await readFile(join(out, 'demo-1.0.0.tgz')));
    expect(manifest.files.map((f) => [f.path, f.kind, f.mode.toString(8)])).toEqual([
      ['caddy/demo.caddy', 'caddy', '644'],
      ['installer/build-record.json', 'installer', '644'],
      ['installer/rick-install.cjs', 'installer', '755'],
      ['systemd/demo-fix.service', 'systemd', '644'],
      ['systemd/demo-sweep.service', 'systemd', '644'],
      ['systemd/demo-sweep.timer', 'systemd', '644'],
    ]);
    expect(manifest.services).toEqual([
      { unit: 'demo-sweep.timer', service: 'demo-sweep.timer', activeTimeoutSec: 120, checks: [] },
      {
        unit: 'demo-fix.service',
        service: 'demo-fix.service',
        activeTimeoutSec: 120,
        checks: [
          {
            type: 'http',
            url: 'http://127.0.0.1:80/',
            host: 'demo.example.org',
            timeoutSec: 30,
            intervalSec: 2,
          },
        ],
      },
    ]);
    const site = files.get('caddy/demo.caddy')?.toString('utf8') ?? '';
    expect(site).toMatch(/^demo\.example\.org \{$/m);
    expect(site).toContain('\t\treverse_proxy /outpost.goauthentik.io/* 127.0.0.1:9000\n');
    expect(site).toContain('\t\trequest_header -Remote-User\n');
    expect(site).toContain('\t\tforward_auth 127.0.0.1:9000 {\n');
    expect(site).toContain('\t\t\turi /outpost.goauthentik.io/auth/caddy\n');
    expect(site).toContain(
      '\t\t\tcopy_headers X-Authentik-Username>Remote-User X-Authentik-Name>Remote-Name X-Authentik-Email>Remote-Email X-Authentik-Groups>Remote-Groups\n',
    );
    expect(site).toContain(
      '\t\t@outside_group not header_regexp Remote-Groups "(^|[|,])\\s*demo-users\\s*($|[|,])"\n',
    );
    expect(site).toContain('\t\trespond @outside_group "Forbidden: demo-users only" 403\n');
    expect(site).toContain('\t\treverse_proxy 127.0.0.1:3000\n');
  });

  it('leaves the group rule out when no group is required', async () => {
    const r = await build(
      demoBundle({
        'caddy/demo.caddy.j2':
          '{% import "caddy.j2" as caddy %}\n{{ caddy.forward_auth_site(demo_domain, "127.0.0.1:3000") }}\n',
      }),
    );
    expect(r.code).toBe(0);
    const { files } = parseBundleArchive(await readFile(join(out, 'demo-1.0.0.tgz')));
    const site = files.get('caddy/demo.caddy')?.toString('utf8') ?? '';
    expect(site).not.toContain('outside_group');
    expect(site).toContain('forward_auth 127.0.0.1:9000');
  });

  it('refuses a site Caddy rejects, with Caddy’s message, writing nothing', async () => {
    const r = await build(
      demoBundle({
        'caddy/demo.caddy.j2': 'demo.example.org {\n\treverse_prox 127.0.0.1:3000\n}\n',
      }),
    );
    expect(r.code).toBe(ExitCode.invalidBundle);
    expect(r.stderr).toContain(
      'error SITE_REJECTED: Caddy rejects the rendered sites: adapting config using caddyfile: <bundle>/caddy/demo.caddy:2: unrecognized directive: reverse_prox',
    );
    expect(await written()).toEqual([]);
  });

  it('refuses a unit systemd-analyze rejects, with its message, writing nothing', async () => {
    const r = await build(
      demoBundle({ 'systemd/demo-sweep.timer': '[Timer]\nOnCalendar=someday\n' }),
    );
    expect(r.code).toBe(ExitCode.invalidBundle);
    expect(r.stderr).toContain(
      'error UNITS_REJECTED: systemd-analyze rejects the rendered systemd units:',
    );
    expect(r.stderr).toContain(
      '<bundle>/systemd/demo-sweep.timer:2: Failed to parse calendar specification, ignoring: someday; demo-sweep.timer: Timer unit lacks value setting. Refusing.',
    );
    expect(await written()).toEqual([]);
  });

  it('only warns about a program the builder lacks: the host judges that', async () => {
    const r = await build(
      demoBundle({ 'systemd/demo-fix.service.j2': fixUnit('/usr/bin/rick-no-such-program') }),
    );
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(
      'systemd-analyze: demo-fix.service: Command /usr/bin/rick-no-such-program is not executable',
    );
    expect(r.stderr).toContain('(on this machine; the host checks again)');
  });

  it('refuses a secret in a site: sites are world-readable', async () => {
    const r = await build(
      demoBundle({
        'caddy/demo.caddy.j2':
          'demo.example.org {\n\tbasicauth {\n\t\tadmin {{ secret("demo_hash") }}\n\t}\n}\n',
      }),
    );
    expect(r.code).toBe(ExitCode.invalidBundle);
    expect(r.stderr).toContain(
      'error DEFINITION_INVALID: caddy/demo.caddy.j2: secrets belong in env files, not in a caddy file (demo_hash)',
    );
    expect(await written()).toEqual([]);
  });

  it('refuses a plain unit and a Quadlet unit that become the same systemd unit', async () => {
    const r = await build({
      ...demoBundle(),
      'bundle.yaml': definition.replace(
        'files:\n',
        'files:\n  quadlet: [quadlet/demo-fix.container]\n',
      ),
      'quadlet/demo-fix.container': '[Container]\nImage=docker.io/library/demo:1\n',
    });
    expect(r.code).toBe(ExitCode.invalidBundle);
    expect(r.stderr).toContain(
      'error BUNDLE_INVALID: bundle demo: systemd/demo-fix.service and quadlet/demo-fix.container both make demo-fix.service',
    );
    expect(await written()).toEqual([]);
  });

  it('--no-caddy-check and --no-systemd-check skip the judges, and say so', async () => {
    const r = await build(
      demoBundle({
        'caddy/demo.caddy.j2': 'demo.example.org {\n\treverse_prox 127.0.0.1:3000\n}\n',
      }),
      '--no-caddy-check',
      '--no-systemd-check',
    );
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('warning: Caddy check skipped (--no-caddy-check)');
    expect(r.stderr).toContain('warning: systemd-analyze check skipped (--no-systemd-check)');
  });
});
