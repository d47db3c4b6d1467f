/**
 * The addresses of Caddy sites on a host: every spelling of one host name is
 * one claim (Caddy 2.6 merges them into one route, and whichever site sorts
 * first serves the domain), so two bundles, or a bundle and the operator's
 * own Caddyfile, cannot both claim it; catch-all and path-prefixed addresses
 * need a `SITES=` grant; `import` and `{$ENV}` are refused in a bundle's
 * sites; `root` + `file_server` and `unix/` upstreams are host paths. Real
 * `caddy adapt`/`caddy validate`, a fake service manager. Each refusal
 * proves its message and that the host tree did not change.
 */
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CADDY_IMPORT_LINE } from '../../src/bundle/caddy.js';
import { ExitCode } from '../../src/errors.js';
import {
  makeTestKey,
  sampleFiles,
  type TestKey,
  writeSignedBundle,
} from '../helpers/bundle-factory.js';
import { FakeHost } from '../helpers/fake-host.js';
import { DEMO_GRANT, type HostTree, makeHostTree, runInstaller } from '../helpers/host-tree.js';
import { havePrograms } from '../helpers/programs.js';
import { diffTrees, snapshotTree } from '../helpers/tree-snapshot.js';

const tools = havePrograms('caddy');

let key: TestKey;
let tree: HostTree;
beforeAll(async () => {
  key = await makeTestKey();
});
afterEach(async () => {
  await tree?.cleanup();
});

const CADDYFILE = `{\n\tadmin off\n}\n\n${CADDY_IMPORT_LINE}\n`;
const OTHER_GRANT = 'GROUPS=other postgres-clients\nUSERS=other\n';

async function hostWithCaddy(
  options: { caddyfile?: string; offline?: boolean; grants?: Record<string, string> } = {},
): Promise<FakeHost> {
  tree = await makeHostTree(key, { grants: { demo: DEMO_GRANT, ...options.grants } });
  await mkdir(join(tree.root, 'etc/caddy'), { recursive: true });
  await writeFile(join(tree.root, 'etc/caddy/Caddyfile'), options.caddyfile ?? CADDYFILE);
  const secrets = join(tree.root, 'etc/rick/secrets/other.env');
  await writeFile(secrets, 'db_password=other-secret\n', { mode: 0o600 });
  await chmod(secrets, 0o600);
  return new FakeHost({ root: tree.root, ...(options.offline ? { offline: true } : {}) });
}

/** A bundle (demo or other) of the sample units and one site `caddy/<name>.caddy`. */
function siteBundle(
  name: 'demo' | 'other',
  address: string,
  body = 'reverse_proxy 127.0.0.1:8080',
  needs?: Record<string, string[]>,
) {
  return writeSignedBundle(tree.work, key, {
    name,
    version: '1.0.0',
    files: [
      ...sampleFiles(name),
      { path: `caddy/${name}.caddy`, content: `# ${name}\n${address} {\n\t${body}\n}\n` },
    ],
    ...(needs ? { needs } : {}),
  });
}

async function install(host: FakeHost, bundlePath: string) {
  return runInstaller(host, [bundlePath, '--root', tree.root]);
}

/** Installs `address` for demo, then tries `other` at `otherAddress`: refused, nothing changed. */
async function expectClash(address: string, otherAddress: string, message: string) {
  const host = await hostWithCaddy({ grants: { other: OTHER_GRANT } });
  const first = await install(host, (await siteBundle('demo', address)).bundlePath);
  expect(first.stderr).toBe('');
  expect(first.code).toBe(0);
  host.reset();
  const other = await siteBundle('other', otherAddress);
  const before = await snapshotTree(tree.root);
  const r = await install(host, other.bundlePath);
  expect(r.code).toBe(ExitCode.invalidBundle);
  expect(r.stderr).toMatch(
    /^error SITE_REJECTED: demo\/caddy\/demo\.caddy:2 https:\/\/gitea\.localhost:443 /,
  );
  expect(r.stderr).toContain(message);
  expect(diffTrees(before, await snapshotTree(tree.root))).toEqual([]);
  expect(host.serviceCalls()).toEqual([]);
}

describe.skipIf(!tools)('site addresses on a host', () => {
  it('refuses https://gitea.localhost in one bundle beside gitea.localhost in another', async () => {
    await expectClash(
      'gitea.localhost',
      'https://gitea.localhost',
      'demo/caddy/demo.caddy:2 https://gitea.localhost:443 (written gitea.localhost) and other/caddy/other.caddy:2 https://gitea.localhost:443 (written https://gitea.localhost) both claim the host gitea.localhost',
    );
  });

  it('refuses GITEA.localhost:443 beside gitea.localhost', async () => {
    await expectClash(
      'gitea.localhost',
      'GITEA.localhost:443',
      'and other/caddy/other.caddy:2 https://gitea.localhost:443 (written GITEA.localhost:443) both claim the host gitea.localhost',
    );
  });

  it('refuses http://gitea.localhost beside gitea.localhost: plain HTTP would skip the other site', async () => {
    await expectClash(
      'gitea.localhost',
      'http://gitea.localhost',
      'and other/caddy/other.caddy:2 http://gitea.localhost:80 (written http://gitea.localhost) both claim the host gitea.localhost',
    );
  });

  it('refuses a path-prefixed address on another bundle’s domain even when SITES= grants it', async () => {
    const host = await hostWithCaddy({
      grants: { other: `${OTHER_GRANT}SITES=https://gitea.localhost:443/user/login*\n` },
    });
    expect(
      (await install(host, (await siteBundle('demo', 'gitea.localhost')).bundlePath)).code,
    ).toBe(0);
    const other = await siteBundle('other', 'gitea.localhost/user/login*', undefined, {
      sites: ['https://gitea.localhost:443/user/login*'],
    });
    const before = await snapshotTree(tree.root);
    const r = await install(host, other.bundlePath);
    expect(r.code).toBe(ExitCode.invalidBundle);
    expect(r.stderr).toContain(
      'error SITE_REJECTED: demo/caddy/demo.caddy:2 https://gitea.localhost:443 (written gitea.localhost) and other/caddy/other.caddy:2 https://gitea.localhost:443/user/login* (written gitea.localhost/user/login*) both claim the host gitea.localhost',
    );
    expect(diffTrees(before, await snapshotTree(tree.root))).toEqual([]);
  });

  it('refuses a site on a host name of the operator’s own Caddyfile, naming both', async () => {
    const caddyfile = `{\n\tadmin off\n}\n\nshop.example.org {\n\trespond "the operator's shop"\n}\n\n${CADDY_IMPORT_LINE}\n`;
    const host = await hostWithCaddy({
      caddyfile,
      grants: { demo: `${DEMO_GRANT}SITES=https://shop.example.org:443/checkout*\n` },
    });
    const b = await siteBundle('demo', 'shop.example.org/checkout*', undefined, {
      sites: ['https://shop.example.org:443/checkout*'],
    });
    const before = await snapshotTree(tree.root);
    const r = await install(host, b.bundlePath);
    expect(r.code).toBe(ExitCode.invalidBundle);
    expect(r.stderr).toContain(
      `error SITE_REJECTED: ${join(tree.root, 'etc/caddy/Caddyfile')} https://shop.example.org:443 and demo/caddy/demo.caddy:2 https://shop.example.org:443/checkout* (written shop.example.org/checkout*) both claim the host shop.example.org`,
    );
    expect(diffTrees(before, await snapshotTree(tree.root))).toEqual([]);
    expect(host.calls).toEqual([]);
  });

  it('refuses a path-prefixed address without a SITES= grant, naming the grant line', async () => {
    const host = await hostWithCaddy();
    const b = await siteBundle('demo', 'gitea.localhost/user/login*');
    const before = await snapshotTree(tree.root);
    const r = await install(host, b.bundlePath);
    expect(r.code).toBe(ExitCode.policy);
    expect(r.stderr).toContain(
      'site address https://gitea.localhost:443/user/login* (demo.caddy:2 gitea.localhost/user/login* (takes /user/login* of gitea.localhost over) [site-addresses])',
    );
    expect(r.stderr).toContain('\nSITES=https://gitea.localhost:443/user/login*\n');
    expect(diffTrees(before, await snapshotTree(tree.root))).toEqual([]);
  });

  it('installs a path-prefixed address the host grants, on a domain no one else claims', async () => {
    const host = await hostWithCaddy({
      grants: { demo: `${DEMO_GRANT}SITES=https://shop.example.org:443/checkout*\n` },
    });
    const b = await siteBundle('demo', 'shop.example.org/checkout*', undefined, {
      sites: ['https://shop.example.org:443/checkout*'],
    });
    const r = await install(host, b.bundlePath);
    expect(r.code).toBe(0);
    expect(
      await readFile(join(tree.root, 'var/lib/rick/current/caddy/demo/demo.caddy'), 'utf8'),
    ).toContain('shop.example.org/checkout*');
  });

  it.each([
    ['http://', 'http://:80'],
    [':80', 'http://:80'],
    ['*', 'https://:443'],
  ])('refuses the catch-all address %s without a grant, as %s', async (written, normal) => {
    const host = await hostWithCaddy();
    const b = await siteBundle('demo', written);
    const before = await snapshotTree(tree.root);
    const r = await install(host, b.bundlePath);
    expect(r.code).toBe(ExitCode.policy);
    expect(r.stderr).toContain(`site address ${normal} (demo.caddy:2 ${written} (a catch-all`);
    expect(r.stderr).toContain(`\nSITES=${normal}\n`);
    expect(diffTrees(before, await snapshotTree(tree.root))).toEqual([]);
  });

  it('installs a catch-all the host grants', async () => {
    const host = await hostWithCaddy({ grants: { demo: `${DEMO_GRANT}SITES=http://:80\n` } });
    const b = await siteBundle('demo', ':80', undefined, { sites: ['http://:80'] });
    const r = await install(host, b.bundlePath);
    expect(r.stderr).not.toContain('error');
    expect(r.code).toBe(0);
  });

  it('refuses import in a bundle’s site, naming file and line', async () => {
    const host = await hostWithCaddy();
    const b = await siteBundle('demo', 'demo.test', 'import /etc/rick/secrets/*');
    const before = await snapshotTree(tree.root);
    const r = await install(host, b.bundlePath);
    expect(r.code).toBe(ExitCode.invalidBundle);
    expect(r.stderr).toContain(
      'error SITE_REJECTED: demo/caddy/demo.caddy:3: import imports files from outside the bundle',
    );
    expect(diffTrees(before, await snapshotTree(tree.root))).toEqual([]);
    expect(host.calls).toEqual([]);
  });

  it('refuses import in an offline tree too, where Caddy only warned', async () => {
    const host = await hostWithCaddy({ offline: true });
    const b = await siteBundle('demo', 'demo.test', 'import /etc/rick/secrets/*');
    const before = await snapshotTree(tree.root);
    const r = await install(host, b.bundlePath);
    expect(r.code).toBe(ExitCode.invalidBundle);
    expect(r.stderr).toContain('error SITE_REJECTED: demo/caddy/demo.caddy:3: import imports');
    expect(diffTrees(before, await snapshotTree(tree.root))).toEqual([]);
  });

  it('refuses an {$ENV} placeholder in a bundle’s site', async () => {
    const host = await hostWithCaddy();
    const b = await siteBundle('demo', 'demo.test', 'reverse_proxy {$BACKEND}');
    const before = await snapshotTree(tree.root);
    const r = await install(host, b.bundlePath);
    expect(r.code).toBe(ExitCode.invalidBundle);
    expect(r.stderr).toContain(
      'error SITE_REJECTED: demo/caddy/demo.caddy:3: {$BACKEND} is an environment placeholder',
    );
    expect(diffTrees(before, await snapshotTree(tree.root))).toEqual([]);
  });

  it('refuses root + file_server of a host path without a PATHS grant', async () => {
    const host = await hostWithCaddy();
    const b = await siteBundle('demo', 'demo.test', 'root * /srv/www\n\tfile_server');
    const before = await snapshotTree(tree.root);
    const r = await install(host, b.bundlePath);
    expect(r.code).toBe(ExitCode.policy);
    expect(r.stderr).toContain(
      'path /srv/www:ro (demo.caddy:3 root * /srv/www (file_server serves this host directory) [site-paths])',
    );
    expect(r.stderr).toContain('\nPATHS=/srv/www:ro\n');
    expect(diffTrees(before, await snapshotTree(tree.root))).toEqual([]);
  });

  it('refuses reverse_proxy to a unix socket without a PATHS grant for the socket', async () => {
    const host = await hostWithCaddy();
    const b = await siteBundle('demo', 'demo.test', 'reverse_proxy unix//run/app/app.sock');
    const before = await snapshotTree(tree.root);
    const r = await install(host, b.bundlePath);
    expect(r.code).toBe(ExitCode.policy);
    expect(r.stderr).toContain(
      'path /run/app/app.sock:rw (demo.caddy:3 unix//run/app/app.sock (Caddy connects to this host socket) [site-paths])',
    );
    expect(diffTrees(before, await snapshotTree(tree.root))).toEqual([]);
  });
});
