/**
 * A real Caddy on loopback serving a bundle's site: installs reload it, the
 * health gate goes through it with a Host header, a site that answers 503
 * is rolled back and Caddy serves the previous one again, and `rollback`
 * does the same by hand. Caddy reads the host tree's Caddyfile, which
 * imports the live sites exactly as on a host; the fake service manager's
 * `systemctl reload caddy.service` is `caddy reload` against its admin port,
 * as Debian's caddy.service does it. Skipped without caddy, except under CI=true.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CADDY_IMPORT_LINE, CADDY_SITES_ENV } from '../../src/bundle/caddy.js';
import { ExitCode } from '../../src/errors.js';
import { httpStatus } from '../../src/host/system.js';
import { realCommandRunner } from '../../src/io/exec.js';
import {
  makeTestKey,
  sampleFiles,
  type TestKey,
  writeSignedBundle,
} from '../helpers/bundle-factory.js';
import { FakeHost } from '../helpers/fake-host.js';
import { type HostTree, liveGeneration, makeHostTree, runInstaller } from '../helpers/host-tree.js';
import { havePrograms } from '../helpers/programs.js';

const caddy = havePrograms('caddy', 'systemd-analyze');

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address
          ? resolve(address.port)
          : reject(new Error('no port')),
      );
    });
  });
}

/** GET through Caddy with a Host header: status and body. */
function get(port: number, host: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/', headers: { host } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        body += d;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

let key: TestKey;
let tree: HostTree;
let server: ChildProcess | undefined;
let home: string;
beforeAll(async () => {
  key = await makeTestKey();
});
afterEach(async () => {
  if (server?.pid !== undefined && server.exitCode === null) {
    const exited = new Promise((resolve) => server?.once('exit', resolve));
    server.kill('SIGTERM');
    await exited;
  }
  server = undefined;
  await tree?.cleanup();
  await rm(home, { recursive: true, force: true });
});

describe.skipIf(!caddy)('a real Caddy serving the live generation’s sites', () => {
  it('reloads on install, gates through Caddy, and serves the old site again after a rollback', async () => {
    tree = await makeHostTree(key);
    home = await mkdtemp(join(tmpdir(), 'rick-caddy-home-'));
    const [port, admin] = [await freePort(), await freePort()];
    const caddyfile = join(tree.root, 'etc/caddy/Caddyfile');
    await mkdir(join(tree.root, 'etc/caddy'), { recursive: true });
    await writeFile(caddyfile, `{\n\tadmin 127.0.0.1:${admin}\n}\n\n${CADDY_IMPORT_LINE}\n`);
    // On a host, /etc/caddy/rick leads to the live sites; here the tree's own `current` does.
    const env = {
      ...process.env,
      HOME: home,
      [CADDY_SITES_ENV]: join(tree.root, 'var/lib/rick/current/caddy'),
    };
    server = spawn('caddy', ['run', '--adapter', 'caddyfile', '--config', caddyfile], {
      env,
      stdio: 'ignore',
    });
    const args = [
      '--adapter',
      'caddyfile',
      '--config',
      caddyfile,
      '--address',
      `127.0.0.1:${admin}`,
    ];
    // Caddy answers on its admin port once it runs.
    for (let i = 0; ; i++) {
      const r = await realCommandRunner.run('caddy', ['adapt', '--config', caddyfile], { env });
      const up = await httpStatus(`http://127.0.0.1:${admin}/config/`, 1000);
      if (r.code === 0 && up === 200) break;
      if (i > 100) throw new Error('caddy did not start');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }

    const host = new FakeHost({ root: tree.root });
    host.onReload = async () => {
      const r = await realCommandRunner.run('caddy', ['reload', ...args], {
        env,
        timeoutMs: 30_000,
      });
      if (r.code !== 0) throw new Error(`caddy reload: ${r.stderr.trim().split('\n').at(-1)}`);
    };
    // The gate's probe goes to the real Caddy.
    host.httpStatus = (url, timeoutMs, name) => httpStatus(url, timeoutMs, name);

    const release = (version: string, response: string) =>
      writeSignedBundle(tree.work, key, {
        version,
        files: [
          ...sampleFiles('demo', `v${version}`),
          {
            path: 'caddy/demo.caddy',
            content: `http://demo.test:${port} {\n\trespond ${response}\n}\n`,
          },
        ],
        services: [
          { unit: 'demo.pod', service: 'demo-pod.service', activeTimeoutSec: 30, checks: [] },
          {
            unit: 'demo-app.container',
            service: 'demo-app.service',
            activeTimeoutSec: 30,
            checks: [
              {
                type: 'http',
                url: `http://127.0.0.1:${port}/`,
                host: 'demo.test',
                timeoutSec: 3,
                intervalSec: 1,
              },
            ],
          },
        ],
      });

    const v1 = await release('1.0.0', '"demo one" 200');
    const r1 = await runInstaller(host, [v1.bundlePath, '--root', tree.root]);
    expect(r1.stderr).toBe('');
    expect(r1.code).toBe(0);
    expect(await get(port, 'demo.test')).toEqual({ status: 200, body: 'demo one' });

    // A release whose site Caddy accepts but which answers 503: the gate, through Caddy, fails.
    const v2 = await release('2.0.0', '"demo two is broken" 503');
    const r2 = await runInstaller(host, [v2.bundlePath, '--root', tree.root]);
    expect(r2.code).toBe(ExitCode.rolledBack);
    expect(r2.stderr).toContain(
      `demo-app.service: http://127.0.0.1:${port}/ (Host: demo.test) did not answer 2xx within 3s (last: 503)`,
    );
    expect(await liveGeneration(tree.root)).toBe('generations/1');
    expect(await get(port, 'demo.test')).toEqual({ status: 200, body: 'demo one' });

    const v3 = await release('3.0.0', '"demo three" 200');
    expect((await runInstaller(host, [v3.bundlePath, '--root', tree.root])).code).toBe(0);
    expect(await get(port, 'demo.test')).toEqual({ status: 200, body: 'demo three' });

    const back = await runInstaller(host, ['rollback', '--root', tree.root]);
    expect(back.stderr).toBe('');
    expect(back.code).toBe(0);
    expect(await get(port, 'demo.test')).toEqual({ status: 200, body: 'demo one' });
  });
});
