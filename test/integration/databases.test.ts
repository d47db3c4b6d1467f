/**
 * Declared databases against a real PostgreSQL (test/helpers/postgres-cluster.ts):
 * created before the flip over the socket as the postgres system user, a
 * rerun changes nothing, a changed secret changes the role's password in
 * the same install, a rollback puts the old one back; a missing grant, a
 * refusal by PostgreSQL and hostile names change nothing. Then the
 * pre-flight: a container without the socket directory's group is refused
 * before the flip, with the group it passes.
 *
 * Only the process edge of systemd and podman is faked (FakeHost); psql and
 * setpriv run for real.
 */
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ExitCode } from '../../src/errors.js';
import { verifierMatches } from '../../src/host/database/scram.js';
import { hostPaths } from '../../src/host/paths.js';
import { writeIntent } from '../../src/host/recovery.js';
import { type CommandRunner, realCommandRunner } from '../../src/io/exec.js';
import {
  type FactoryFile,
  makeTestKey,
  type TestKey,
  writeSignedBundle,
} from '../helpers/bundle-factory.js';
import { FakeHost } from '../helpers/fake-host.js';
import { type HostTree, liveGeneration, makeHostTree, runInstaller } from '../helpers/host-tree.js';
import {
  type Cluster,
  PEER_AND_SCRAM,
  postgresBin,
  startCluster,
} from '../helpers/postgres-cluster.js';
import { diffTrees, snapshotTree } from '../helpers/tree-snapshot.js';

const PASSWORD_A = "first 'pass' $word";
const PASSWORD_B = 'second-pass\\word"';

/**
 * A FakeHost whose psql and setpriv are the real programs, every call
 * recorded; with `noNewPrivs`, each runs with the no_new_privs bit set, as
 * under rick-update.service's NoNewPrivileges=yes.
 */
class DatabaseHost extends FakeHost {
  readonly clientCalls: { command: string; args: string[] }[] = [];
  noNewPrivs = false;
  readonly databaseClients: CommandRunner = {
    run: (command, args, options) => {
      this.clientCalls.push({ command, args: [...args] });
      return this.noNewPrivs
        ? realCommandRunner.run('setpriv', ['--no-new-privs', '--', command, ...args], options)
        : realCommandRunner.run(command, args, options);
    },
  };
}

function appFiles(socketDir: string, groups: string[], marker = 'v1'): FactoryFile[] {
  return [
    {
      path: 'quadlet/demo-app.container',
      content: [
        '[Container]',
        'ContainerName=demo-app',
        'Image=registry.example.org/demo:1',
        'EnvironmentFile=@@rick:path:env/demo.env@@',
        'User=@@rick:uid:demo@@:@@rick:gid:demo@@',
        `PodmanArgs=${groups.map((g) => `--group-add @@rick:gid:${g}@@`).join(' ')}`,
        `Volume=${socketDir}:/var/run/postgresql`,
        '',
        '[Install]',
        'WantedBy=multi-user.target',
        '',
      ].join('\n'),
    },
    {
      path: 'env/demo.env',
      content: `MARKER=${marker}\nDB_PASSWORD=@@rick:secret:db_password@@\n`,
      mode: 0o600,
    },
    { path: 'sysusers.d/demo.conf', content: 'u demo - "demo" /var/lib/demo\n' },
  ];
}

interface DbSpec {
  version: string;
  database?: string;
  owner?: string;
  groups?: string[];
  marker?: string;
}

async function writeDbBundle(spec: DbSpec) {
  const database = spec.database ?? 'demo_db';
  const owner = spec.owner ?? 'demo_role';
  return writeSignedBundle(tree.work, key, {
    version: spec.version,
    files: appFiles(cluster.socketDir, spec.groups ?? ['postgres-clients'], spec.marker),
    needs: {
      groups: [...(spec.groups ?? ['postgres-clients'])],
      paths: [`${cluster.socketDir}:rw`],
      databases: [`postgresql:${database}`],
    },
    manifestPatch: (m) => ({
      ...m,
      databases: [{ postgresql: database, owner, password: 'db_password' }],
    }),
  });
}

const GRANT = (socketDir: string) =>
  `GROUPS=demo postgres-clients valkey-clients\nUSERS=demo\nPATHS=${socketDir}:rw\nDATABASES=postgresql:demo_db\n`;

let key: TestKey;
let cluster: Cluster;
let tree: HostTree;

async function newTree(grant: string): Promise<DatabaseHost> {
  const postgresLine = `postgres:x:${cluster.postgresUid}:${cluster.postgresUid}::/var/lib/postgresql:/bin/sh`;
  tree = await makeHostTree(key, {
    secrets: `db_password=${PASSWORD_A}\n`,
    users: ['root:x:0:0:root:/root:/bin/sh', postgresLine],
    grants: { demo: grant },
  });
  await writeFile(
    join(tree.root, 'etc/rick/rick.conf'),
    `POSTGRESQL_SOCKET_DIR=${cluster.socketDir}\nVALKEY_SOCKET=${tree.root}/run/valkey/valkey.sock\n`,
  );
  return new DatabaseHost({ root: tree.root });
}

async function setSecret(password: string): Promise<void> {
  const file = join(tree.root, 'etc/rick/secrets/demo.env');
  await writeFile(file, `db_password=${password}\n`);
  await chmod(file, 0o600);
}

function catalog(): string {
  return cluster.sql(
    "SELECT r.rolname || ' ' || r.rolcanlogin || ' ' || coalesce(d.datname, '-') || ' ' || coalesce(pg_get_userbyid(d.datdba), '-') FROM pg_roles r LEFT JOIN pg_database d ON d.datdba = r.oid WHERE r.rolname NOT LIKE 'pg\\_%' ORDER BY 1",
  );
}

beforeAll(async () => {
  key = await makeTestKey();
  if (postgresBin) cluster = await startCluster({ socketGroup: 4001 });
}, 60_000);
afterAll(async () => {
  await cluster?.stop();
});
afterEach(async () => {
  // Each test starts from a cluster with no bundle's role or database.
  if (cluster) {
    cluster.setHba(PEER_AND_SCRAM);
    for (const db of cluster
      .sql("SELECT datname FROM pg_database WHERE datname LIKE 'demo%'")
      .split('\n')
      .filter(Boolean))
      cluster.sql(`DROP DATABASE "${db}"`);
    for (const role of cluster
      .sql("SELECT rolname FROM pg_roles WHERE rolname LIKE 'demo%'")
      .split('\n')
      .filter(Boolean))
      cluster.sql(`DROP ROLE "${role}"`);
  }
  await tree?.cleanup();
});

describe.skipIf(!postgresBin)('databases as declared needs (real PostgreSQL)', () => {
  it('creates the role and database before the flip, then a rerun changes nothing', async () => {
    const host = await newTree(GRANT(cluster.socketDir));
    const b = await writeDbBundle({ version: '1.0.0' });
    const r = await runInstaller(host, [b.bundlePath, '--root', tree.root]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(ExitCode.ok);
    expect(r.stdout).toContain('database: demo: created role demo_role');
    expect(r.stdout).toContain('database: demo: created database demo_db owned by demo_role');
    expect(r.stdout).toContain('pre-flight: 1 socket check(s) passed');
    expect(catalog()).toContain('demo_role true demo_db demo_role');
    expect(cluster.login('demo_role', 'demo_db', PASSWORD_A).ok).toBe(true);
    // The role may create tables in its database's public schema.
    expect(
      cluster.sql("SELECT has_schema_privilege('demo_role', 'public', 'CREATE')", 'demo_db'),
    ).toBe('t');
    // Stored as a SCRAM verifier; the password is in no argument and no output.
    expect(cluster.sql("SELECT rolpassword FROM pg_authid WHERE rolname = 'demo_role'")).toMatch(
      /^SCRAM-SHA-256\$4096:/,
    );
    expect(host.clientCalls.length).toBeGreaterThan(0);
    for (const call of host.clientCalls) expect(call.args.join(' ')).not.toContain('pass');
    expect(r.stdout).not.toContain(PASSWORD_A);

    // The same release with a repaired file is a rerun: nothing to change in PostgreSQL.
    const verifier = cluster.sql("SELECT rolpassword FROM pg_authid WHERE rolname = 'demo_role'");
    const b2 = await writeDbBundle({ version: '1.0.1' });
    const again = await runInstaller(host, [b2.bundlePath, '--root', tree.root]);
    expect(again.code).toBe(ExitCode.ok);
    expect(again.stdout).not.toContain('database:');
    expect(cluster.sql("SELECT rolpassword FROM pg_authid WHERE rolname = 'demo_role'")).toBe(
      verifier,
    );
  });

  it('rotates the password with the secret, and a rollback puts the old one back', async () => {
    const host = await newTree(GRANT(cluster.socketDir));
    const v1 = await writeDbBundle({ version: '1.0.0' });
    expect((await runInstaller(host, [v1.bundlePath, '--root', tree.root])).code).toBe(ExitCode.ok);
    await setSecret(PASSWORD_B);
    const v2 = await writeDbBundle({ version: '1.1.0', marker: 'v2' });
    const r = await runInstaller(host, [v2.bundlePath, '--root', tree.root]);
    expect(r.code).toBe(ExitCode.ok);
    expect(r.stdout).toContain(
      'database: demo: set the password of role demo_role (secret db_password)',
    );
    expect(r.stdout).not.toContain(PASSWORD_B);
    expect(cluster.login('demo_role', 'demo_db', PASSWORD_B).ok).toBe(true);
    expect(cluster.login('demo_role', 'demo_db', PASSWORD_A).message).toContain(
      'password authentication failed',
    );

    const back = await runInstaller(host, ['rollback', '--root', tree.root]);
    expect(back.stderr).toBe('');
    expect(back.code).toBe(ExitCode.ok);
    expect(back.stdout).toContain('database: demo: set the password of role demo_role');
    expect(await liveGeneration(tree.root)).toBe('generations/1');
    expect(cluster.login('demo_role', 'demo_db', PASSWORD_A).ok).toBe(true);
    expect(cluster.login('demo_role', 'demo_db', PASSWORD_B).ok).toBe(false);
  });

  it('puts the old password back when the new generation fails its health gate', async () => {
    const host = await newTree(GRANT(cluster.socketDir));
    const v1 = await writeDbBundle({ version: '1.0.0' });
    expect((await runInstaller(host, [v1.bundlePath, '--root', tree.root])).code).toBe(ExitCode.ok);
    await setSecret(PASSWORD_B);
    // Generation 2's service never becomes active.
    host.failingUnits.set('demo-app.service', 2);
    const v2 = await writeDbBundle({ version: '1.1.0', marker: 'v2' });
    const r = await runInstaller(host, [v2.bundlePath, '--root', tree.root]);
    expect(r.code).toBe(ExitCode.rolledBack);
    expect(r.stderr).toContain('failed its health gate: demo-app.service failed');
    // Set for generation 2 before its flip, then back for generation 1 before its restart.
    const log = r.stdout.split('\n');
    const set = log.findIndex((l) =>
      l.includes('database: demo: set the password of role demo_role'),
    );
    const again = log.findIndex((l) => l.includes('generation 1 is live again'));
    expect(set).toBeGreaterThanOrEqual(0);
    expect(
      log
        .slice(again)
        .some((l) => l.includes('database: demo: set the password of role demo_role')),
    ).toBe(true);
    expect(await liveGeneration(tree.root)).toBe('generations/1');
    expect(cluster.login('demo_role', 'demo_db', PASSWORD_A).ok).toBe(true);
    expect(cluster.login('demo_role', 'demo_db', PASSWORD_B).ok).toBe(false);
  });

  it("compares a password with PostgreSQL's own verifier as PostgreSQL hashes it (SASLprep)", () => {
    for (const password of [
      PASSWORD_A,
      'pässwörd\u00A0mit\u00ADmehr',
      'ｆｕｌｌ-width',
      'tab\there',
    ]) {
      cluster.sql(`CREATE ROLE demo_probe PASSWORD '${password.replaceAll("'", "''")}'`);
      const stored = cluster.sql("SELECT rolpassword FROM pg_authid WHERE rolname = 'demo_probe'");
      cluster.sql('DROP ROLE demo_probe');
      expect(verifierMatches(stored, password), password).toBe(true);
      expect(verifierMatches(stored, `${password}x`)).toBe(false);
    }
  });

  it("recovery after a run that died before its flip puts the live generation's password back", async () => {
    const host = await newTree(GRANT(cluster.socketDir));
    const v1 = await writeDbBundle({ version: '1.0.0' });
    expect((await runInstaller(host, [v1.bundlePath, '--root', tree.root])).code).toBe(ExitCode.ok);
    // What an install of 1.1.0 with a new secret leaves when it is killed after
    // setting the password, before its generation was renamed into place.
    await writeIntent(hostPaths(tree.root), {
      operation: 'install',
      reason: 'install demo 1.1.0',
      from: 1,
      to: 2,
      created: true,
      time: '2024-01-01T00:00:00.000Z',
    });
    cluster.sql(`ALTER ROLE demo_role PASSWORD '${PASSWORD_B}'`);
    expect(cluster.login('demo_role', 'demo_db', PASSWORD_A).ok).toBe(false);
    const r = await runInstaller(host, [v1.bundlePath, '--root', tree.root]);
    expect(r.code).toBe(ExitCode.ok);
    expect(r.stdout).toContain('database: demo: set the password of role demo_role');
    expect(await liveGeneration(tree.root)).toBe('generations/1');
    expect(cluster.login('demo_role', 'demo_db', PASSWORD_A).ok).toBe(true);
  });

  it('refuses a database the host has not granted (exit 14): nothing changed', async () => {
    const host = await newTree(
      `GROUPS=demo postgres-clients\nUSERS=demo\nPATHS=${cluster.socketDir}:rw\n`,
    );
    const b = await writeDbBundle({ version: '1.0.0' });
    const before = await snapshotTree(tree.root);
    const catalogBefore = catalog();
    const r = await runInstaller(host, [b.bundlePath, '--root', tree.root]);
    expect(r.code).toBe(ExitCode.policy);
    expect(r.stderr).toContain('database postgresql:demo_db (declared)');
    expect(r.stderr).toContain('DATABASES=postgresql:demo_db');
    expect(diffTrees(before, await snapshotTree(tree.root))).toEqual([]);
    expect(catalog()).toBe(catalogBefore);
    expect(host.clientCalls).toEqual([]);
  });

  it("fails with its own exit code and PostgreSQL's message when PostgreSQL refuses: nothing changed", async () => {
    const host = await newTree(GRANT(cluster.socketDir));
    const v1 = await writeDbBundle({ version: '1.0.0' });
    expect((await runInstaller(host, [v1.bundlePath, '--root', tree.root])).code).toBe(ExitCode.ok);
    await setSecret(PASSWORD_B);
    const v2 = await writeDbBundle({ version: '1.1.0', marker: 'v2' });
    cluster.setHba('local all postgres reject\nlocal all all scram-sha-256\n');
    const before = await snapshotTree(tree.root);
    host.calls.length = 0;
    const r = await runInstaller(host, [v2.bundlePath, '--root', tree.root]);
    expect(r.code).toBe(ExitCode.database);
    expect(r.stderr).toContain('error DATABASE_FAILED');
    expect(r.stderr).toContain(
      'pg_hba.conf rejects connection for host "[local]", user "postgres", database "postgres"',
    );
    expect(await liveGeneration(tree.root)).toBe('generations/1');
    expect(diffTrees(before, await snapshotTree(tree.root))).toEqual([]);
    expect(host.serviceCalls()).toEqual([]);
    // The role still has the live generation's password.
    expect(cluster.login('demo_role', 'demo_db', PASSWORD_A).ok).toBe(true);
  });

  it('refuses hostile database and role names before anything runs', async () => {
    const host = await newTree(GRANT(cluster.socketDir));
    const before = await snapshotTree(tree.root);
    const catalogBefore = catalog();
    for (const [database, owner] of [
      ['demo_db', 'x"; DROP ROLE postgres; --'],
      ['demo_db', 'postgres'],
      ['Demo_DB', 'demo_role'],
    ] as const) {
      const b = await writeDbBundle({ version: '1.0.0', database, owner });
      const r = await runInstaller(host, [b.bundlePath, '--root', tree.root]);
      expect(r.code).toBe(ExitCode.invalidBundle);
      expect(r.stderr).toContain('MANIFEST_INVALID');
      expect(r.stderr).toMatch(/must be lowercase letters, digits and _|is PostgreSQL's own/);
    }
    expect(diffTrees(before, await snapshotTree(tree.root))).toEqual([]);
    expect(catalog()).toBe(catalogBefore);
    expect(host.clientCalls).toEqual([]);
  });
});

describe.skipIf(!postgresBin)('pre-flight as the service (real socket directory)', () => {
  it('refuses a container without the socket directory group before the flip, naming socket, owner, mode and group', async () => {
    const host = await newTree(GRANT(cluster.socketDir));
    const v1 = await writeDbBundle({ version: '1.0.0' });
    expect((await runInstaller(host, [v1.bundlePath, '--root', tree.root])).code).toBe(ExitCode.ok);
    // The next release joins valkey-clients only, and comes with a new password;
    // the socket directory is postgres:postgres-clients 0770.
    await setSecret(PASSWORD_B);
    const v2 = await writeDbBundle({ version: '1.1.0', groups: ['valkey-clients'] });
    const before = await snapshotTree(tree.root);
    host.calls.length = 0;
    const r = await runInstaller(host, [v2.bundlePath, '--root', tree.root]);
    expect(r.code).toBe(ExitCode.missingPrerequisite);
    expect(r.stderr).toContain('error PREFLIGHT_FAILED');
    expect(r.stderr).toContain(
      `cannot reach ${cluster.socketDir}/.s.PGSQL.5432: permission denied: ${cluster.socketDir} is postgres:postgres-clients mode 0770, and the container is not in group postgres-clients (gid 4001)`,
    );
    expect(r.stderr).toContain('--group-add {{ gid("postgres-clients") }}');
    expect(await liveGeneration(tree.root)).toBe('generations/1');
    expect(host.serviceCalls()).toEqual([]);
    expect(diffTrees(before, await snapshotTree(tree.root))).toEqual([]);
    // The password the new release set was put back: the live services still connect.
    expect(r.stdout).toContain('database (put back): demo: set the password of role demo_role');
    expect(cluster.login('demo_role', 'demo_db', PASSWORD_A).ok).toBe(true);
  });

  it('passes with the group, logging in as the role through the socket as uid 999', async () => {
    const host = await newTree(GRANT(cluster.socketDir));
    const b = await writeDbBundle({ version: '1.0.0' });
    const r = await runInstaller(host, [b.bundlePath, '--root', tree.root]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(ExitCode.ok);
    const probe = host.clientCalls.find((c) => c.args.includes('-U'));
    expect(probe?.args.slice(0, 3)).toEqual(['--reuid=999', '--regid=999', '--groups=4001']);
    expect(r.stdout).toContain('pre-flight: 1 socket check(s) passed');
  });

  it('runs under NoNewPrivileges, as rick-update.service runs it: setpriv only drops privileges', async () => {
    const host = await newTree(GRANT(cluster.socketDir));
    host.noNewPrivs = true;
    const b = await writeDbBundle({ version: '1.0.0' });
    const r = await runInstaller(host, [b.bundlePath, '--root', tree.root]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(ExitCode.ok);
    expect(r.stdout).toContain('database: demo: created role demo_role');
    expect(r.stdout).toContain('pre-flight: 1 socket check(s) passed');
    expect(cluster.login('demo_role', 'demo_db', PASSWORD_A).ok).toBe(true);
  });

  it('is skipped offline, and says so', async () => {
    await newTree(GRANT(cluster.socketDir));
    const host = new DatabaseHost({ root: tree.root, offline: true });
    const b = await writeDbBundle({ version: '1.0.0' });
    const r = await runInstaller(host, [b.bundlePath, '--root', tree.root]);
    expect(r.code).toBe(ExitCode.ok);
    expect(r.stdout).toContain(
      'note: offline tree (--root): PostgreSQL databases and the pre-flight skipped',
    );
    expect(host.clientCalls).toEqual([]);
    expect(catalog()).not.toContain('demo_role');
    expect(await readFile(join(tree.root, 'etc/rick/rick.conf'), 'utf8')).toContain(
      'POSTGRESQL_SOCKET_DIR',
    );
  });
});
