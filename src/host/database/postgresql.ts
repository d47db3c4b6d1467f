/**
 * The declared PostgreSQL databases of a generation, created or updated on
 * the host's own PostgreSQL: over its unix socket, with peer authentication
 * as the `postgres` system user, by `psql` run under `setpriv`.
 *
 * Why psql and not a protocol library in the installer: peer authentication
 * is the kernel's word on the connecting process's uid, so the client must
 * run as `postgres`, which the installer (root, one process) is not; psql
 * under setpriv is exactly that, it is on every host that runs PostgreSQL
 * (postgresql-client), and the single-file installer gains no dependency.
 * The SQL goes on psql's stdin, never in its arguments, and a password only
 * as a SCRAM verifier (scram.ts): the password itself reaches neither the
 * server, its log, nor any output.
 *
 * Plan, then do: `planDatabase` (pure) turns what the catalog says into
 * statements; nothing is ever dropped or renamed. A role that exists keeps
 * everything but its password and LOGIN; a database that exists must
 * already belong to its declared owner, or the install is refused.
 */
import type { DatabaseDeclaration } from '../../bundle/databases.js';
import { RickError } from '../../errors.js';
import type { CommandRunner, RunResult } from '../../io/exec.js';
import type { StoredGeneration } from '../generations.js';
import { redactVerifiers, scramVerifier, verifierMatches } from './scram.js';
import { POSTGRESQL_PORT } from './sockets.js';

/** One database to make as declared: the bundle's declaration and its password's value. */
export interface DatabaseTarget {
  bundle: string;
  database: string;
  owner: string;
  /** The secret's name, for messages. */
  secret: string;
  password: string;
}

/** What the catalog says about one target's role and database. */
export interface CatalogState {
  role?: { password: string | undefined; canLogin: boolean; superuser: boolean };
  database?: { owner: string };
}

export interface DatabasePlan {
  /** Why the target cannot be made here (nothing is run when there is any). */
  problems: string[];
  /** Role statements, run in one transaction. */
  role: string[];
  /** CREATE DATABASE and its grants (CREATE DATABASE cannot run in a transaction). */
  database: string[];
  /** Statements run inside the database itself. */
  inside: string[];
  /** What changes, for the log: `created role gitea`, `changed the password of role gitea`. */
  changes: string[];
}

/** The declared databases of the generation's bundles (all, or those named), with their passwords. */
export function databaseTargets(
  generation: Pick<StoredGeneration, 'bundles'> | undefined,
  only?: readonly string[],
): DatabaseTarget[] {
  const out: DatabaseTarget[] = [];
  for (const bundle of generation?.bundles.values() ?? []) {
    if (only && !only.includes(bundle.name)) continue;
    for (const d of (bundle.manifest.databases ?? []) as DatabaseDeclaration[]) {
      const password = bundle.secrets.get(d.password);
      if (password === undefined) {
        throw new RickError(
          'DATABASE_FAILED',
          `${bundle.name}: the password of role ${d.owner} (secret ${d.password}) is not recorded in its generation`,
          { hint: 'install the bundle again with its secrets file in place' },
        );
      }
      out.push({
        bundle: bundle.name,
        database: d.postgresql,
        owner: d.owner,
        secret: d.password,
        password,
      });
    }
  }
  return out;
}

/** Two bundles may not declare the same database or role: each would take it from the other. */
export function targetConflicts(targets: readonly DatabaseTarget[]): string[] {
  const problems: string[] = [];
  const byDatabase = new Map<string, string>();
  const byRole = new Map<string, string>();
  for (const t of targets) {
    const db = byDatabase.get(t.database);
    if (db !== undefined && db !== t.bundle)
      problems.push(`database ${t.database} is declared by ${db} and ${t.bundle}`);
    byDatabase.set(t.database, t.bundle);
    const role = byRole.get(t.owner);
    if (role !== undefined && role !== t.bundle)
      problems.push(`role ${t.owner} is declared by ${role} and ${t.bundle}`);
    byRole.set(t.owner, t.bundle);
  }
  return problems;
}

/** Identifiers are validated (src/bundle/databases.ts): quoted only as PostgreSQL prints them. */
const ident = (name: string) => `"${name}"`;

/** What to run for one target, given the catalog. Pure (the verifier's salt aside). */
export function planDatabase(
  target: DatabaseTarget,
  state: CatalogState,
  verifier: (password: string) => string = scramVerifier,
): DatabasePlan {
  const plan: DatabasePlan = { problems: [], role: [], database: [], inside: [], changes: [] };
  const { database, owner } = target;
  if (state.role?.superuser) {
    plan.problems.push(
      `role ${owner} is a superuser here: rick manages only roles of ordinary privilege`,
    );
  }
  if (state.database && state.database.owner !== owner) {
    plan.problems.push(
      `database ${database} belongs to role ${state.database.owner}, not ${owner}`,
    );
  }
  if (plan.problems.length) return plan;
  if (!state.role) {
    plan.role.push(
      `CREATE ROLE ${ident(owner)} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD '${verifier(target.password)}';`,
    );
    plan.changes.push(`created role ${owner}`);
  } else {
    if (!state.role.canLogin) {
      plan.role.push(`ALTER ROLE ${ident(owner)} LOGIN;`);
      plan.changes.push(`allowed role ${owner} to log in`);
    }
    if (!verifierMatches(state.role.password, target.password)) {
      plan.role.push(`ALTER ROLE ${ident(owner)} PASSWORD '${verifier(target.password)}';`);
      plan.changes.push(`set the password of role ${owner} (secret ${target.secret})`);
    }
  }
  if (!state.database) {
    // The pattern's privileges: the role owns its database and everything in its public schema.
    plan.database.push(
      `CREATE DATABASE ${ident(database)} OWNER ${ident(owner)};`,
      `GRANT ALL PRIVILEGES ON DATABASE ${ident(database)} TO ${ident(owner)};`,
    );
    plan.inside.push(`GRANT ALL ON SCHEMA public TO ${ident(owner)};`);
    plan.changes.push(`created database ${database} owned by ${owner}`);
  }
  return plan;
}

/** The psql script of a plan: role changes in one transaction, then the database. */
export function planScript(plan: DatabasePlan, database: string): string {
  const lines: string[] = [];
  if (plan.role.length) lines.push('BEGIN;', ...plan.role, 'COMMIT;');
  lines.push(...plan.database);
  if (plan.inside.length) lines.push(`\\connect ${database}`, ...plan.inside);
  return lines.length ? `${lines.join('\n')}\n` : '';
}

/** The catalog query for the targets' roles and databases; names are validated identifiers. */
export function catalogQuery(targets: readonly DatabaseTarget[]): string {
  const list = (names: string[]) => [...new Set(names)].map((n) => `'${n}'`).join(', ');
  return [
    `SELECT 'role', rolname, coalesce(rolpassword, ''), rolcanlogin, rolsuper FROM pg_authid WHERE rolname IN (${list(targets.map((t) => t.owner))})`,
    'UNION ALL',
    `SELECT 'database', datname, pg_get_userbyid(datdba), false, false FROM pg_database WHERE datname IN (${list(targets.map((t) => t.database))});`,
    '',
  ].join('\n');
}

export function parseCatalog(stdout: string): {
  roles: Map<string, NonNullable<CatalogState['role']>>;
  databases: Map<string, string>;
} {
  const roles = new Map<string, NonNullable<CatalogState['role']>>();
  const databases = new Map<string, string>();
  for (const line of stdout.split('\n')) {
    const [kind, name, value = '', login, superuser] = line.split('\t');
    if (kind === 'role' && name) {
      roles.set(name, {
        password: value === '' ? undefined : value,
        canLogin: login === 't',
        superuser: superuser === 't',
      });
    } else if (kind === 'database' && name) databases.set(name, value);
  }
  return { roles, databases };
}

export interface PostgresAdmin {
  runner: CommandRunner;
  socketDir: string;
  /** The system user peer authentication admits as PostgreSQL's superuser. */
  systemUser?: string;
}

/** psql as the postgres system user, the script on stdin; nothing from the caller's environment. */
export function runAsPostgres(admin: PostgresAdmin, script: string): Promise<RunResult> {
  const user = admin.systemUser ?? 'postgres';
  return admin.runner.run(
    'setpriv',
    [
      `--reuid=${user}`,
      `--regid=${user}`,
      '--init-groups',
      '--',
      'psql',
      '-X',
      '-q',
      '-A',
      '-t',
      '-F',
      '\t',
      '-v',
      'ON_ERROR_STOP=1',
      '-h',
      admin.socketDir,
      '-p',
      String(POSTGRESQL_PORT),
      '-d',
      'postgres',
      '-f',
      '-',
    ],
    {
      input: script,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C', PGCONNECT_TIMEOUT: '10' },
      timeoutMs: 120_000,
    },
  );
}

/** PostgreSQL's (or psql's) own words, without any verifier. */
export function psqlMessage(result: RunResult): string {
  if (result.code === 127 && result.startError)
    return `setpriv or psql cannot be run (${result.startError})`;
  const text = redactVerifiers(`${result.stderr}\n${result.stdout}`)
    .split('\n')
    .map((l) =>
      l
        .trim()
        .replace(/^psql:<stdin>:\d+: /, '')
        .replace(/^psql: error: /, ''),
    )
    .filter((l) => l.length > 0);
  return (
    text.slice(0, 4).join(' | ') ||
    (result.signal ? `killed by ${result.signal}` : `exit ${result.code}`)
  );
}

function failed(what: string, detail: string, hint: string): RickError {
  return new RickError('DATABASE_FAILED', `${what}: ${detail}`, { hint });
}

/**
 * Creates or updates every target: reads the catalog once, plans each,
 * refuses before running anything when a plan has problems, then runs
 * each target's script. Returns what changed, one line each.
 */
export async function ensureDatabases(
  admin: PostgresAdmin,
  targets: readonly DatabaseTarget[],
  hint = 'nothing went live',
): Promise<string[]> {
  if (targets.length === 0) return [];
  const conflicts = targetConflicts(targets);
  if (conflicts.length) {
    throw failed(
      'PostgreSQL databases declared twice',
      conflicts.join('; '),
      `${hint}; a database and its role belong to one bundle`,
    );
  }
  const read = await runAsPostgres(admin, catalogQuery(targets));
  if (read.code !== 0) {
    throw failed(
      `PostgreSQL on ${admin.socketDir} refused the installer (as the ${admin.systemUser ?? 'postgres'} system user)`,
      psqlMessage(read),
      `${hint}; PostgreSQL must admit its system user by peer authentication on its socket (pg_hba.conf: local all postgres peer); POSTGRESQL_SOCKET_DIR in rick.conf names the socket directory`,
    );
  }
  const catalog = parseCatalog(read.stdout);
  const plans = targets.map((t) => ({
    target: t,
    plan: planDatabase(t, {
      ...(catalog.roles.has(t.owner) ? { role: catalog.roles.get(t.owner)! } : {}),
      ...(catalog.databases.has(t.database)
        ? { database: { owner: catalog.databases.get(t.database)! } }
        : {}),
    }),
  }));
  const problems = plans.flatMap(({ target, plan }) =>
    plan.problems.map((p) => `${target.bundle}: ${p}`),
  );
  if (problems.length) {
    throw failed(
      'cannot make the declared PostgreSQL databases',
      problems.join('; '),
      `${hint}; rick never drops, renames or takes over a database or role: change the declaration or the database by hand`,
    );
  }
  const changes: string[] = [];
  for (const { target, plan } of plans) {
    const script = planScript(plan, target.database);
    if (script === '') continue;
    const result = await runAsPostgres(admin, script);
    if (result.code !== 0) {
      throw failed(
        `PostgreSQL refused database ${target.database} of ${target.bundle}`,
        psqlMessage(result),
        hint,
      );
    }
    changes.push(...plan.changes.map((c) => `${target.bundle}: ${c}`));
  }
  return changes;
}
