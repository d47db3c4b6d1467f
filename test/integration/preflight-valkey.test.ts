/**
 * The pre-flight's PING as the service, against a real server on a real
 * socket directory. redis-server stands in for Valkey (Debian 12 has no
 * valkey package; scripts/setup.sh installs redis-server): both answer the
 * same PING on a unix socket, and with a password set both answer it
 * (NOAUTH) before AUTH, which is all the pre-flight asks: that the
 * container's user and groups reach the socket.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chmod, chown, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ExitCode } from '../../src/errors.js';
import { type CommandRunner, realCommandRunner } from '../../src/io/exec.js';
import { makeTestKey, type TestKey, writeSignedBundle } from '../helpers/bundle-factory.js';
import { FakeHost } from '../helpers/fake-host.js';
import { type HostTree, liveGeneration, makeHostTree, runInstaller } from '../helpers/host-tree.js';
import { havePrograms } from '../helpers/programs.js';
import { diffTrees, snapshotTree } from '../helpers/tree-snapshot.js';

const haveRedis = havePrograms('redis-server', 'redis-cli');

class ClientsHost extends FakeHost {
  readonly clientCalls: string[][] = [];
  readonly databaseClients: CommandRunner = {
    run: (command, args, options) => {
      this.clientCalls.push([command, ...args]);
      return realCommandRunner.run(command, args, options);
    },
  };
}

let key: TestKey;
let base: string;
let socketDir: string;
let socket: string;
let server: ChildProcess | undefined;
let tree: HostTree;

beforeAll(async () => {
  key = await makeTestKey();
  if (!haveRedis) return;
  base = await mkdtemp(join(tmpdir(), 'rick-valkey-'));
  await chmod(base, 0o755);
  socketDir = join(base, 'valkey');
  socket = join(socketDir, 'valkey.sock');
  await mkdir(socketDir);
  // As on the pattern's hosts: the directory is the client group's, mode 0770
  // (setgid, so that the socket the server creates is the group's too).
  await chown(socketDir, 0, 4002);
  await chmod(socketDir, 0o2770);
  server = spawn(
    'redis-server',
    [
      '--port',
      '0',
      '--unixsocket',
      socket,
      '--unixsocketperm',
      '770',
      '--requirepass',
      'shared-valkey-password',
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      base,
    ],
    { stdio: 'ignore' },
  );
  // Ready when it answers (redis-cli retries nothing by itself).
  for (let i = 0; i < 200; i++) {
    try {
      execFileSync('redis-cli', ['-s', socket, 'ping'], { stdio: 'pipe' });
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}, 30_000);
afterAll(async () => {
  server?.kill('SIGTERM');
  if (base) await rm(base, { recursive: true, force: true });
});
afterEach(async () => {
  await tree?.cleanup();
});

function valkeyBundle(groups: string[], version: string) {
  return writeSignedBundle(tree.work, key, {
    version,
    files: [
      {
        path: 'quadlet/demo-app.container',
        content: [
          '[Container]',
          'Image=registry.example.org/demo:1',
          'User=@@rick:uid:demo@@:@@rick:gid:demo@@',
          `PodmanArgs=${groups.map((g) => `--group-add @@rick:gid:${g}@@`).join(' ')}`,
          `Volume=${socketDir}:/var/run/valkey`,
          '',
          '[Install]',
          'WantedBy=multi-user.target',
          '',
        ].join('\n'),
      },
      { path: 'sysusers.d/demo.conf', content: 'u demo - "demo" /var/lib/demo\n' },
    ],
    needs: { groups, paths: [`${socketDir}:rw`] },
  });
}

async function newTree(): Promise<ClientsHost> {
  tree = await makeHostTree(key, {
    grants: {
      demo: `GROUPS=demo postgres-clients valkey-clients\nUSERS=demo\nPATHS=${socketDir}:rw\n`,
    },
  });
  await writeFile(
    join(tree.root, 'etc/rick/rick.conf'),
    `POSTGRESQL_SOCKET_DIR=${tree.root}/run/postgresql\nVALKEY_SOCKET=${socket}\n`,
  );
  return new ClientsHost({ root: tree.root });
}

describe.skipIf(!haveRedis)(
  'pre-flight: Valkey PING as the service (redis-server as its stand-in)',
  () => {
    it('passes when the container carries valkey-clients', async () => {
      const host = await newTree();
      const b = await valkeyBundle(['valkey-clients'], '1.0.0');
      const r = await runInstaller(host, [b.bundlePath, '--root', tree.root]);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(ExitCode.ok);
      expect(r.stdout).toContain('pre-flight: 1 socket check(s) passed');
      const ping = host.clientCalls.find((c) => c.includes(socket));
      expect(ping?.slice(0, 5)).toEqual([
        'setpriv',
        '--reuid=999',
        '--regid=999',
        '--groups=4002',
        '--',
      ]);
    });

    it('refuses one without it before the flip, naming the socket, owner, mode and group', async () => {
      const host = await newTree();
      const v1 = await valkeyBundle(['valkey-clients'], '1.0.0');
      expect((await runInstaller(host, [v1.bundlePath, '--root', tree.root])).code).toBe(
        ExitCode.ok,
      );
      const v2 = await valkeyBundle(['postgres-clients'], '1.1.0');
      const before = await snapshotTree(tree.root);
      host.calls.length = 0;
      const r = await runInstaller(host, [v2.bundlePath, '--root', tree.root]);
      expect(r.code).toBe(ExitCode.missingPrerequisite);
      expect(r.stderr).toContain(
        `error PREFLIGHT_FAILED: pre-flight of demo: demo-app.container (uid 999 demo, groups 999 demo, 4001 postgres-clients) cannot reach ${socket}: permission denied: ${socketDir} is root:valkey-clients mode 2770, and the container is not in group valkey-clients (gid 4002)`,
      );
      expect(r.stderr).toContain(`valkey-cli -s ${socket} ping`);
      expect(await liveGeneration(tree.root)).toBe('generations/1');
      expect(host.serviceCalls()).toEqual([]);
      expect(diffTrees(before, await snapshotTree(tree.root))).toEqual([]);
    });

    it('refuses one that joins no client group at all (the group-add forgotten), as docs/databases.md shows', async () => {
      const host = await newTree();
      const v1 = await valkeyBundle(['valkey-clients'], '1.0.0');
      expect((await runInstaller(host, [v1.bundlePath, '--root', tree.root])).code).toBe(
        ExitCode.ok,
      );
      const v2 = await valkeyBundle([], '1.1.0');
      const before = await snapshotTree(tree.root);
      host.calls.length = 0;
      host.clientCalls.length = 0;
      const r = await runInstaller(host, [v2.bundlePath, '--root', tree.root]);
      expect(r.code).toBe(ExitCode.missingPrerequisite);
      expect(r.stderr).toContain(
        `error PREFLIGHT_FAILED: pre-flight of demo: demo-app.container (uid 999 demo, groups 999 demo) cannot reach ${socket}: permission denied: ${socketDir} is root:valkey-clients mode 2770, and the container is not in group valkey-clients (gid 4002)`,
      );
      // The test it names runs as the container would: no supplementary groups.
      expect(r.stderr).toContain(
        `test as the service user: setpriv --reuid=999 --regid=999 --clear-groups valkey-cli -s ${socket} ping`,
      );
      expect(await liveGeneration(tree.root)).toBe('generations/1');
      expect(host.serviceCalls()).toEqual([]);
      expect(diffTrees(before, await snapshotTree(tree.root))).toEqual([]);
    });
  },
);
