/**
 * The databases a bundle declares (`needs: databases:` in bundle.yaml, the
 * manifest's `databases`): a PostgreSQL database, the role that owns it, and
 * the host secret that is the role's password. The installer creates or
 * updates them before the flip (src/host/database/); the need each one makes,
 * `postgresql:<name>`, is what a host grants with `DATABASES=` in its
 * policy.d file. Pure.
 *
 * Names are PostgreSQL identifiers that need no quoting at all (lowercase
 * letters, digits and `_`, at most 63 bytes, PostgreSQL's NAMEDATALEN - 1),
 * so that what the installer sends is never a quoting game; and never a
 * name PostgreSQL or its administrator owns (`postgres`, the templates,
 * `pg_*`, `public`).
 */
import * as z from 'zod';
import { checkPlaceholderName } from './placeholders.js';
import './zod.js';

export const databaseEngines = ['postgresql'] as const;

const identifier = /^[a-z_][a-z0-9_]{0,62}$/;
const reservedNames = new Set(['postgres', 'template0', 'template1', 'public', 'none', 'all']);

/** Why `name` cannot be a database or role name, or undefined when it can. */
export function postgresNameProblem(name: string): string | undefined {
  if (!identifier.test(name)) {
    return 'must be lowercase letters, digits and _ (not starting with a digit), at most 63 characters';
  }
  if (reservedNames.has(name) || name.startsWith('pg_')) {
    return "is PostgreSQL's own (postgres, template0, template1, public, pg_*)";
  }
  return undefined;
}

/** Problem with a `databases` need (`postgresql:<name>`), or undefined when it is canonical. */
export function databaseNeedProblem(value: string): string | undefined {
  const m = /^([a-z]+):(.*)$/.exec(value);
  if (!m || !(databaseEngines as readonly string[]).includes(m[1]!)) {
    return 'must be postgresql:NAME';
  }
  const problem = postgresNameProblem(m[2]!);
  return problem === undefined ? undefined : `NAME ${problem}`;
}

const postgresName = z.string().superRefine((value, ctx) => {
  const problem = postgresNameProblem(value);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});

/** One declared database, as bundle.yaml (rendered) and the manifest hold it. */
export const databaseSchema = z.strictObject({
  /** The database's name. */
  postgresql: postgresName,
  /** The role that owns it and logs in to it. */
  owner: postgresName,
  /** The host secret (secrets/<bundle>.env) that is the role's password. */
  password: z.string().superRefine((value, ctx) => {
    const problem = checkPlaceholderName('secret', value);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  }),
});
export type DatabaseDeclaration = z.infer<typeof databaseSchema>;

/** The need a declaration makes, as a grant names it. */
export function databaseNeed(d: Pick<DatabaseDeclaration, 'postgresql'>): string {
  return `postgresql:${d.postgresql}`;
}

/**
 * Problems of a bundle's declarations taken together: a database declared
 * twice, a role owning databases of different passwords, a password that
 * is not one of the bundle's secrets (the secret must be used by a template,
 * so that every generation records the value it was rendered with, which is
 * what a rollback restores).
 */
export function databaseDeclarationProblems(
  databases: readonly DatabaseDeclaration[],
  secrets: ReadonlySet<string>,
): string[] {
  const problems: string[] = [];
  const names = new Set<string>();
  const passwordOf = new Map<string, string>();
  databases.forEach((d, i) => {
    const at = `databases.${i}`;
    if (names.has(d.postgresql)) problems.push(`${at}: database ${d.postgresql} is declared twice`);
    names.add(d.postgresql);
    const other = passwordOf.get(d.owner);
    if (other !== undefined && other !== d.password) {
      problems.push(
        `${at}: role ${d.owner} has two passwords (secrets ${other} and ${d.password})`,
      );
    }
    passwordOf.set(d.owner, d.password);
    if (!secrets.has(d.password)) {
      problems.push(
        `${at}: password ${d.password} is not a secret the bundle's templates use (write secret("${d.password}") where the service reads its database password)`,
      );
    }
  });
  return problems;
}
