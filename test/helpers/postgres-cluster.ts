/**
 * A real PostgreSQL cluster of the test's own (Debian's `postgresql`
 * package, scripts/setup.sh): initdb and pg_ctl run as the postgres system
 * user (initdb refuses root), listening only on a unix socket in a temporary
 * directory, never on the system's /var/run/postgresql nor its service.
 * Authentication as a host of the pattern has it: the postgres system user
 * by peer, every other role by SCRAM password.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

function findBin(): string | undefined {
  const base = '/usr/lib/postgresql';
  if (!existsSync(base)) return undefined;
  const versions = readdirSync(base)
    .filter((v) => existsSync(join(base, v, 'bin/initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] === undefined ? undefined : join(base, versions[0], 'bin');
}

/**
 * PostgreSQL's server programs, or undefined where the package is not
 * installed (the tests skip; under CI=true, where scripts/setup.sh installs
 * it, they fail instead).
 */
export const postgresBin = findBin();
if (postgresBin === undefined && process.env.CI === 'true') {
  throw new Error('PostgreSQL required under CI=true (scripts/setup.sh installs it)');
}

function postgresIds(): { uid: number; gid: number } {
  const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
  return { uid, gid };
}

export const PEER_AND_SCRAM = 'local all postgres peer\nlocal all all scram-sha-256\n';

export interface Cluster {
  /** The socket directory (POSTGRESQL_SOCKET_DIR). */
  socketDir: string;
  postgresUid: number;
  /** Runs SQL as postgres (peer), returns psql's unaligned output. */
  sql(query: string, database?: string): string;
  /** Whether `role` logs in to `database` with `password` through the socket. */
  login(role: string, database: string, password: string): { ok: boolean; message: string };
  /** Replaces pg_hba.conf and restarts the server (a reload would take effect at some later moment). */
  setHba(text: string): void;
  stop(): Promise<void>;
}

export async function startCluster(options: { socketGroup?: number } = {}): Promise<Cluster> {
  if (!postgresBin) throw new Error('PostgreSQL is not installed (scripts/setup.sh installs it)');
  const ids = postgresIds();
  const base = await mkdtemp(join(tmpdir(), 'rick-pg-'));
  await chmod(base, 0o755);
  const data = join(base, 'data');
  const socketDir = join(base, 'run');
  await mkdir(data, { mode: 0o700 });
  await mkdir(socketDir);
  await chown(data, ids.uid, ids.gid);
  // As on the pattern's hosts: the socket directory is the server's, mode
  // 0770, its group the client group (or postgres' own group).
  await chown(socketDir, ids.uid, options.socketGroup ?? ids.gid);
  await chmod(socketDir, 0o770);
  const asPostgres = (program: string, args: string[]) =>
    execFileSync(
      'setpriv',
      ['--reuid=postgres', '--regid=postgres', '--init-groups', '--', program, ...args],
      {
        encoding: 'utf8',
        stdio: ['pipe', 'pipe', 'pipe'],
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C' },
      },
    );
  asPostgres(join(postgresBin, 'initdb'), [
    '-D',
    data,
    '-U',
    'postgres',
    '--auth-local=peer',
    '--auth-host=reject',
    '-E',
    'UTF8',
    '--no-instructions',
  ]);
  const hba = join(data, 'pg_hba.conf');
  await writeFile(hba, PEER_AND_SCRAM);
  await writeFile(
    join(data, 'postgresql.auto.conf'),
    `listen_addresses = ''\nunix_socket_directories = '${socketDir}'\nport = 5432\nfsync = off\n`,
  );
  asPostgres(join(postgresBin, 'pg_ctl'), [
    '-D',
    data,
    '-l',
    join(data, 'server.log'),
    '-w',
    'start',
  ]);
  const cluster: Cluster = {
    socketDir,
    postgresUid: ids.uid,
    sql: (query, database = 'postgres') =>
      asPostgres('psql', [
        '-X',
        '-q',
        '-A',
        '-t',
        '-h',
        socketDir,
        '-d',
        database,
        '-c',
        query,
      ]).trim(),
    login: (role, database, password) => {
      try {
        execFileSync(
          'psql',
          [
            '-X',
            '-q',
            '-A',
            '-t',
            '-w',
            '-h',
            socketDir,
            '-U',
            role,
            '-d',
            database,
            '-c',
            'SELECT current_user',
          ],
          {
            encoding: 'utf8',
            stdio: ['pipe', 'pipe', 'pipe'],
            env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C', PGPASSWORD: password },
          },
        );
        return { ok: true, message: '' };
      } catch (error) {
        return { ok: false, message: String((error as { stderr?: string }).stderr ?? error) };
      }
    },
    setHba: (text) => {
      execFileSync('sh', ['-c', 'cat > "$1"', 'sh', hba], { input: text });
      asPostgres(join(postgresBin!, 'pg_ctl'), [
        '-D',
        data,
        '-l',
        join(data, 'server.log'),
        '-w',
        'restart',
      ]);
    },
    stop: async () => {
      try {
        asPostgres(join(postgresBin!, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', 'stop']);
      } finally {
        await rm(base, { recursive: true, force: true });
      }
    },
  };
  return cluster;
}
