/**
 * When the declared databases are made, and made back:
 *
 * - an install makes the installed bundle's databases as its new generation
 *   declares them (role, password, database, privileges) before the flip,
 *   then runs the pre-flight as its containers; when the pre-flight refuses,
 *   the live generation's passwords are put back before the refusal;
 * - putting a generation back (a failed health gate, `rick-install
 *   rollback`, recovery after a crash) makes its databases again, so the
 *   role's password is the one that generation's services were rendered
 *   with (recorded in its secrets.json) before they restart.
 *
 * Nothing is dropped or renamed: a removed bundle's database stays. An
 * offline tree (`--root`) has no PostgreSQL to ask: skipped, with a note.
 */
import type { CommandRunner } from '../../io/exec.js';
import type { StoredGeneration } from '../generations.js';
import type { HostPaths } from '../paths.js';
import { preflight, socketContainers } from '../preflight.js';
import type { Host } from '../system.js';
import { databaseTargets, ensureDatabases } from './postgresql.js';
import { readSocketConfig } from './sockets.js';

export interface DatabaseContext {
  host: Host;
  paths: HostPaths;
  log: (line: string) => void;
}

/** The runner for psql and setpriv, or undefined (with a note) where none may run. */
function clientsOf(ctx: DatabaseContext, what: string): CommandRunner | undefined {
  if (!ctx.host.systemctl) {
    ctx.log(`note: offline tree (--root): ${what} skipped`);
    return undefined;
  }
  return ctx.host.databaseClients;
}

/**
 * Before the flip of an install: the bundle's databases as `next` declares
 * them, then the pre-flight of its containers. Throws DATABASE_FAILED or
 * PREFLIGHT_FAILED; nothing is live yet.
 */
export async function prepareDatabases(
  ctx: DatabaseContext,
  live: StoredGeneration | undefined,
  next: StoredGeneration,
  bundle: string,
): Promise<void> {
  const installed = next.bundles.get(bundle);
  if (!installed) return;
  const targets = databaseTargets(next, [bundle]);
  const sockets = await readSocketConfig(ctx.paths.config);
  if (targets.length === 0 && socketContainers(installed.files, sockets).length === 0) return;
  const runner = clientsOf(
    ctx,
    targets.length ? 'PostgreSQL databases and the pre-flight' : 'the pre-flight',
  );
  if (!runner) return;
  const admin = { runner, socketDir: sockets.postgresqlSocketDir };
  // Other bundles' declarations too: a database or role belongs to one bundle.
  const others = databaseTargets(next).filter((t) => t.bundle !== bundle);
  const conflicting = others.filter((o) =>
    targets.some((t) => t.database === o.database || t.owner === o.owner),
  );
  for (const line of await ensureDatabases(admin, [...targets, ...conflicting])) {
    ctx.log(`database: ${line}`);
  }
  try {
    await preflight({
      runner,
      sockets,
      root: ctx.paths.root,
      bundle,
      files: installed.files,
      databases: installed.manifest.databases ?? [],
      secrets: installed.secrets,
      log: ctx.log,
    });
  } catch (error) {
    // The live generation's services keep their password.
    const back = databaseTargets(live, [bundle]);
    if (back.length) {
      for (const line of await ensureDatabases(admin, back))
        ctx.log(`database (put back): ${line}`);
    }
    throw error;
  }
}

/** Before `back` goes live again: its databases as it declared them (its passwords). */
export async function restoreDatabases(
  ctx: DatabaseContext,
  back: StoredGeneration | undefined,
): Promise<void> {
  const targets = databaseTargets(back);
  if (targets.length === 0) return;
  const runner = clientsOf(ctx, 'PostgreSQL databases');
  if (!runner) return;
  const sockets = await readSocketConfig(ctx.paths.config);
  for (const line of await ensureDatabases(
    { runner, socketDir: sockets.postgresqlSocketDir },
    targets,
    `generation ${back?.generation} is not live`,
  )) {
    ctx.log(`database: ${line}`);
  }
}
