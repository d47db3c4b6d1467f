/**
 * rick-bundle build judges a bundle's site addresses as the hosts do
 * (src/host/policy/sites.ts): `import` and `{$ENV}` are refused, two sites
 * of the bundle cannot claim one host name, a catch-all or path-prefixed
 * address is a `sites` need bundle.yaml declares (and `--policy` judges
 * against `SITES=`), and a served directory or a unix socket is a `paths`
 * need. Nothing is written on a refusal.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ExitCode } from '../../src/errors.js';
import { useBuildWorkspace } from '../helpers/build-workspace.js';
import { havePrograms } from '../helpers/programs.js';
import { writeBundleDir } from '../helpers/rick-bundle.js';

const tools = havePrograms('caddy');

const ws = useBuildWorkspace('rick-build-site-claims-');

const unit =
  '[Unit]\nDescription=demo\n\n[Service]\nType=oneshot\nExecStart=/bin/true\nRemainAfterExit=yes\n\n[Install]\nWantedBy=multi-user.target\n';

function definition(needs = ''): string {
  return `name: demo
files:
  systemd: [systemd/demo-fix.service]
  caddy: [caddy/demo.caddy, caddy/more.caddy]
services:
  - unit: demo-fix.service
needs:
  service: [ExecStart]
${needs}`;
}

function site(address: string, body = 'reverse_proxy 127.0.0.1:3000'): string {
  return `${address} {\n\t${body}\n}\n`;
}

async function build(files: { demo: string; more?: string; needs?: string }, ...extra: string[]) {
  const dir = await writeBundleDir(join(ws.work, 'bundles/demo'), {
    'bundle.yaml': definition(files.needs),
    'systemd/demo-fix.service': unit,
    'caddy/demo.caddy': files.demo,
    'caddy/more.caddy': files.more ?? site('more.example.org'),
  });
  return ws.build(dir, extra);
}

const written = ws.outputFiles;

describe.skipIf(!tools)('rick-bundle build: site addresses', () => {
  it('builds plain host names without any need', async () => {
    const r = await build({ demo: site('demo.example.org') });
    expect(r.stderr).not.toContain('error');
    expect(r.code).toBe(0);
    expect(await written()).toEqual(['demo-1.0.0.tgz']);
  });

  it('refuses two sites of the bundle on one host name, naming both and the normal form', async () => {
    const r = await build({
      demo: site('demo.example.org'),
      more: site('https://DEMO.example.org:443'),
    });
    expect(r.code).toBe(ExitCode.invalidBundle);
    expect(r.stderr).toContain(
      'error SITE_REJECTED: demo/caddy/demo.caddy:1 https://demo.example.org:443 (written demo.example.org) and demo/caddy/more.caddy:1 https://demo.example.org:443 (written https://DEMO.example.org:443) both claim the host demo.example.org',
    );
    expect(await written()).toEqual([]);
  });

  it('refuses import in a site', async () => {
    const r = await build({ demo: site('demo.example.org', 'import /etc/rick/secrets/*') });
    expect(r.code).toBe(ExitCode.invalidBundle);
    expect(r.stderr).toContain(
      'error SITE_REJECTED: demo/caddy/demo.caddy:2: import imports files from outside the bundle',
    );
    expect(await written()).toEqual([]);
  });

  it('refuses an {$ENV} placeholder in a site', async () => {
    const r = await build({ demo: site('demo.example.org', 'reverse_proxy {$BACKEND}') });
    expect(r.code).toBe(ExitCode.invalidBundle);
    expect(r.stderr).toContain(
      'error SITE_REJECTED: demo/caddy/demo.caddy:2: {$BACKEND} is an environment placeholder',
    );
    expect(await written()).toEqual([]);
  });

  it('refuses an undeclared path-prefixed address, naming the need', async () => {
    const r = await build({ demo: site('shop.example.org/checkout*') });
    expect(r.code).toBe(ExitCode.invalidBundle);
    expect(r.stderr).toContain(
      'error NEEDS_UNDECLARED: the rendered units use what bundle.yaml does not declare: site address https://shop.example.org:443/checkout* (demo.caddy:1 shop.example.org/checkout* (takes /checkout* of shop.example.org over) [site-addresses])',
    );
    expect(await written()).toEqual([]);
  });

  it('refuses an undeclared catch-all address', async () => {
    const r = await build({ demo: site(':80') });
    expect(r.code).toBe(ExitCode.invalidBundle);
    expect(r.stderr).toContain('site address http://:80 (demo.caddy:1 :80 (a catch-all');
    expect(await written()).toEqual([]);
  });

  it('refuses a sites need not in its normal form', async () => {
    const r = await build({ demo: site(':80'), needs: '  sites: [":80"]\n' });
    expect(r.code).toBe(ExitCode.invalidBundle);
    expect(r.stderr).toContain('sites.0: must be written in its normal form, http://:80');
    expect(await written()).toEqual([]);
  });

  it('--policy judges a declared path-prefixed address against SITES=, as a host does', async () => {
    const files = {
      demo: site('shop.example.org/checkout*'),
      needs: '  sites: ["https://shop.example.org:443/checkout*"]\n',
    };
    const policy = join(ws.work, 'demo.conf');
    await writeFile(policy, 'SERVICE=ExecStart\n');
    const held = await build(files, '--policy', policy);
    expect(held.code).toBe(ExitCode.policy);
    expect(held.stderr).toContain(
      `error POLICY_REFUSED: demo 1.0.0 needs what ${policy} does not grant: site address https://shop.example.org:443/checkout* (declared; demo.caddy:1`,
    );
    expect(await written()).toEqual([]);
    await writeFile(policy, 'SERVICE=ExecStart\nSITES=https://shop.example.org:443/checkout*\n');
    const r = await build(files, '--policy', policy);
    expect(r.stderr).not.toContain('error');
    expect(r.code).toBe(0);
  });

  it('refuses root + file_server of an undeclared host path', async () => {
    const r = await build({ demo: site('demo.example.org', 'root * /srv/www\n\tfile_server') });
    expect(r.code).toBe(ExitCode.invalidBundle);
    expect(r.stderr).toContain(
      'path /srv/www:ro (demo.caddy:2 root * /srv/www (file_server serves this host directory) [site-paths])',
    );
    expect(await written()).toEqual([]);
  });

  it('refuses reverse_proxy to an undeclared unix socket', async () => {
    const r = await build({
      demo: site('demo.example.org', 'reverse_proxy unix//run/app/app.sock'),
    });
    expect(r.code).toBe(ExitCode.invalidBundle);
    expect(r.stderr).toContain(
      'path /run/app/app.sock:rw (demo.caddy:2 unix//run/app/app.sock (Caddy connects to this host socket) [site-paths])',
    );
    expect(await written()).toEqual([]);
  });
});
