/**
 * `rick-install <bundle.tgz>`: the install pipeline, also what `update`
 * calls for each release it takes.
 *
 *   verify signature, read bundle → lock → recover from a crashed run
 *   (src/host/recovery.ts) → version policy → the unit link, drift of what
 *   is carried → what the bundle may have here (groups, users, paths, unit
 *   names) → what the operator provides, judged in one pass (groups and
 *   users, secrets, grant: intake/readiness.ts) → podman → record what the
 *   fragments create → systemd-sysusers → resolve facts →
 *   substitute → systemd-tmpfiles → intent record → write generation,
 *   quadlet dry-run → plan on the generated units → pull images →
 *   databases and pre-flight (src/host/database/provision.ts) → flip →
 *   daemon-reload → stop removed, restart changed → health gate (or roll
 *   back and quarantine) → record state → drop the intent → prune
 *
 * `prepareInstall` (install-prepare.ts) is everything up to the write,
 * shared with `plan`, which changes nothing on the host; the checks that
 * refuse a bundle for what it is here are in install-checks.ts, the options
 * in install-options.ts. This module runs the rest, and re-exports those.
 */
import { lstat, rmdir, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import semver from 'semver';
import { runQuadletDryRun } from '../bundle/quadlet.js';
import { RickError } from '../errors.js';
import {
  type CheckUnits,
  graphOf,
  plainUnitsOf,
  readGenerationGraph,
  type UnitCheck,
} from './activation/graph.js';
import { pullImages } from './activation/images.js';
import { formatPlan, planActivation, type UnitGraphs } from './activation/plan.js';
import { activate, describeFailure } from './activation/run.js';
import { type AdoptionPlan, type AdoptOptions, planAdoption, readForeignFiles } from './adopt.js';
import { moveAdoptedFiles, settleAdoptions } from './adopt-record.js';
import { prepareDatabases } from './database/provision.js';
import { checkpoint } from './fault.js';
import {
  ensureHostLinks,
  generationDir,
  hostNeedsOf,
  pruneGenerations,
  writeGeneration,
} from './generations.js';
import { refuseUngranted } from './install-checks.js';
import type { InstallerDeps, InstallOptions, InstallResult } from './install-options.js';
import {
  applyFragments,
  type PreparedInstall,
  prepareInstall,
  readBundleFor,
} from './install-prepare.js';
import type { VerifiedBundle } from './intake/trust.js';
import { isInterruption } from './interrupt.js';
import { acquireLock } from './lock.js';
import { type HostPaths, hostPaths } from './paths.js';
import {
  clearIntent,
  intentPhases,
  type Log,
  reconcile,
  recoverFromInterruption,
  writeIntent,
} from './recovery.js';
import { bundleState, quarantine, readState, readStateFile, writeState } from './state.js';
import type { Host } from './system.js';

export { readHostReadiness } from './install-checks.js';
export type {
  InstallerDeps,
  InstallOptions,
  InstallResult,
} from './install-options.js';
export type {
  Preparation,
  PreparedInstall,
} from './install-prepare.js';
export {
  prepareInstall,
  readBundleFor,
} from './install-prepare.js';

export type { Log };

/**
 * podman's quadlet judges the units. `repoRoot`: a rick checkout whose
 * .cache holds the generator (scripts/fetch-quadlet.sh), looked at as
 * rick-bundle does, before the system's.
 */
export async function defaultValidateUnits(
  unitDir: string,
  offline: boolean,
  repoRoot?: string,
): Promise<UnitCheck> {
  let result: Awaited<ReturnType<typeof runQuadletDryRun>>;
  try {
    result = await runQuadletDryRun(unitDir, repoRoot === undefined ? {} : { repoRoot });
  } catch (error) {
    // An offline image may be built on a machine without podman; a live host must have it.
    if (offline && error instanceof RickError && error.code === 'PREREQUISITE_MISSING') {
      return { skipped: `quadlet dry-run skipped: ${error.message}` };
    }
    throw error;
  }
  if (!result.ok) {
    throw new RickError(
      'QUADLET_REJECTED',
      `podman's quadlet rejects the new generation's units: ${result.output.join(' | ')}`,
      { hint: 'the bundle does not suit this podman; nothing was changed' },
    );
  }
  return { generated: result.generated };
}

// ---------------------------------------------------------------------------
// Install

export interface InstallContext {
  host: Host;
  log: Log;
  validateUnits?: InstallerDeps['validateUnits'];
  /** The bundle, already verified (`rick-install --grant` verified it to show its needs). */
  verified?: VerifiedBundle;
}

/** `--root DIR` must name an existing directory: a typo must not grow a tree. */
export async function checkRoot(root: string | undefined): Promise<void> {
  if (root === undefined) return;
  const st = await stat(root).catch(() => undefined);
  if (!st?.isDirectory()) {
    throw new RickError('USAGE', `--root ${root} is not a directory`, {
      hint: 'create the image or test tree first',
    });
  }
}

async function pathExists(path: string): Promise<boolean> {
  return lstat(path).then(
    () => true,
    () => false,
  );
}

/** What the adopted files are against the prepared generation (src/host/adopt.ts). */
export async function adoptionFor(
  adopt: AdoptOptions,
  paths: HostPaths,
  prepared: PreparedInstall,
  check: CheckUnits,
  offline: boolean,
): Promise<AdoptionPlan> {
  return planAdoption({
    root: paths.root,
    live: prepared.live,
    next: prepared.next,
    bundle: prepared.manifest.name,
    foreign: await readForeignFiles(paths.root, prepared.manifest, adopt.caddySites),
    secrets: prepared.bundle.secrets.values(),
    check,
    offline,
  });
}

/** Installs one bundle. Throws RickError (ROLLED_BACK, ROLLBACK_FAILED, …) on failure. */
export async function installBundle(
  options: InstallOptions,
  ctx: InstallContext,
): Promise<InstallResult> {
  const { host, log } = ctx;
  await checkRoot(options.root);
  const paths = hostPaths(options.root ?? '/');
  const validate = ctx.validateUnits ?? defaultValidateUnits;
  // A bundle that is untrusted or malformed is refused before the lock, so
  // that such a refusal leaves even a fresh host without a trace.
  const verified = ctx.verified ?? (await readBundleFor(options, paths));
  // Judged before the lock too (what it may own here, then what this host
  // granted), so that such a refusal leaves no trace at all; under the lock
  // the policy judgment is confirmed, not made again.
  const judged = await refuseUngranted(options, paths, host, verified);
  const lock = await acquireLock(paths.lockFile, {
    purpose: `install ${basename(options.bundlePath)}`,
    now: () => host.clock.now(),
  });
  try {
    await checkpoint('locked');
    const state = await readState(paths.stateFile);
    await reconcile(paths, host, state, log, { check: validate });
    await checkpoint('cleaned');
    if (options.keepGenerations !== undefined) state.keepGenerations = options.keepGenerations;

    const prepared = await prepareInstall(
      options,
      { paths, host, state, log, dryRun: false, ...(judged ? { judged } : {}) },
      verified,
    );
    if (prepared.kind === 'noop') {
      log(
        `${prepared.manifest.name} ${prepared.manifest.version}: ${prepared.reason}; nothing to do`,
      );
      return {
        outcome: 'noop',
        bundle: prepared.manifest.name,
        version: prepared.manifest.version,
        generation: state.live,
        notes: [],
      };
    }
    const { manifest, live, next, notes } = prepared;
    let plan = prepared.plan;
    let graphs: UnitGraphs = {};
    const offline = !host.systemctl;
    // Adopting, the host's files stand for the bundle in the live generation.
    const adoption = options.adopt
      ? await adoptionFor(options.adopt, paths, prepared, validate, offline)
      : undefined;
    if (adoption) {
      log(adoption.report.trimEnd());
      notes.push(...adoption.notes);
    }
    const planLive = adoption?.view ?? live;
    // The live generation's units as quadlet generates them, read while the
    // next generation is written. An offline tree starts nothing: its plan
    // is only printed, and reads the live pods from the next generation.
    const liveGraph = adoption
      ? Promise.resolve(adoption.liveGraph)
      : live && !offline
        ? readGenerationGraph(generationDir(paths, live.generation), validate, offline)
        : Promise.resolve(undefined);
    const liveGraphSettled = liveGraph.then(
      () => undefined,
      () => undefined,
    );
    // tmpfiles.d needs only the accounts systemd-sysusers made, and the
    // generation does not need what tmpfiles.d creates: it runs while the
    // generation is written, and both end before anything goes live.
    const tmpfiles = applyFragments(paths, host, manifest.name, prepared.tmpfiles, (f) =>
      host.applyTmpfiles(f),
    );
    const tmpfilesSettled = tmpfiles.then(
      () => undefined,
      () => undefined,
    );
    await checkpoint('sysusers-applied');
    for (const note of notes) log(`note: ${note}`);

    // The intent record comes first: whatever this run leaves from here on,
    // the next run knows what it was and undoes only that.
    const hadGenerations = await pathExists(paths.generationsDir);
    await writeIntent(paths, {
      operation: 'install',
      reason: next.record.reason,
      ...(live ? { from: live.generation } : {}),
      to: next.generation,
      created: true,
      time: next.record.createdAt,
    });
    try {
      await writeGeneration(
        paths,
        {
          generation: next.generation,
          createdAt: next.record.createdAt,
          reason: next.record.reason,
          bundles: next.bundles,
          installer: next.installer,
        },
        {
          // podman's quadlet checks the units before anything goes live, and
          // the plan follows the units it generates. The images they need
          // are pulled here too: a pull that fails leaves no generation.
          check: async (dir) => {
            const [checked, tmpNote, liveUnits] = await Promise.all([
              validate(join(dir, 'quadlet'), offline),
              tmpfiles,
              liveGraph,
            ]);
            if (tmpNote) log(`note: ${tmpNote}`);
            if ('skipped' in checked) log(`note: ${checked.skipped}`);
            graphs = { live: liveUnits, next: graphOf(checked, plainUnitsOf(next)) };
            plan = planActivation(planLive, next, graphs);
            log(
              formatPlan(plan, {
                offline,
                ...(adoption ? { adopted: new Set(adoption.services) } : {}),
              }).trimEnd(),
            );
            if (offline) {
              if (plan.images.length) log('note: offline tree (--root): no images pulled');
            } else {
              await pullImages(host, plan.images, log);
            }
            // The bundle's databases, then its containers as they will connect:
            // a refusal here leaves no generation and the live one as it was.
            await prepareDatabases({ host, paths, log }, live, next, manifest.name);
          },
        },
      );
    } catch (error) {
      // Refused before anything went live (writeGeneration removed what it
      // wrote): leave the host as this run found it, once tmpfiles.d and the
      // live graph are done.
      await Promise.all([tmpfilesSettled, liveGraphSettled]);
      if (!hadGenerations) await rmdir(paths.generationsDir).catch(() => {});
      await clearIntent(paths);
      throw error;
    }
    await checkpoint('generation-renamed');
    for (const note of await ensureHostLinks(paths, hostNeedsOf(next))) log(`note: ${note}`);
    await checkpoint('links-created');
    let adoptedInto: string | undefined;
    if (adoption) {
      // Moved last, just before the flip: a crash from here on is settled by
      // the next run (adopt-record.ts), which puts them back unless this
      // generation was confirmed.
      adoptedInto = await moveAdoptedFiles(paths, {
        bundle: manifest.name,
        version: manifest.version,
        generation: next.generation,
        ...(live ? { from: live.generation } : {}),
        time: next.record.createdAt,
        services: adoption.services,
        files: adoption.foreign,
      });
      log(`moved ${adoption.foreign.map((f) => f.hostPath).join(', ')} to ${adoptedInto}`);
    }

    // A stop signal before the gate's verdict ends activate at a step
    // boundary (checkpoint, INTERRUPTED), handled below; one that comes
    // later lets the run record the verdict it has.
    const outcome = await activate(
      { host, paths, log, onFlip: intentPhases(paths) },
      live,
      next,
      graphs,
      plan,
    );
    const now = host.clock.now().toISOString();
    state.lastGeneration = Math.max(state.lastGeneration, next.generation);
    const entry = bundleState(state, manifest.name);
    if (!outcome.ok) {
      // Installed again to repair hand changes, the version is not to blame for a failed gate.
      if (!prepared.repair) {
        quarantine(state, manifest.name, manifest.version, {
          reason: 'health-gate',
          time: host.clock.now().toISOString(),
          detail: describeFailure(outcome.failure),
        });
      }
      state.history.push({
        generation: next.generation,
        bundle: manifest.name,
        version: manifest.version,
        time: now,
        outcome: outcome.restored ? 'rolled-back' : 'rollback-failed',
        detail: describeFailure(outcome.failure),
      });
      if (!outcome.restored) {
        // Whatever is live now is not known healthy; recovery must not undo it blindly.
        state.live = live?.generation;
      }
      await writeState(paths.stateFile, state);
      // Restored, nothing is in flight. Otherwise the record stays, so that
      // the next run puts the confirmed generation back again.
      if (outcome.restored) await clearIntent(paths);
      // The adopted files go back with the generation before.
      if (adoption && outcome.restored) await settleAdoptions(paths, host, state, log);
      const back = live ? `generation ${live.generation}` : 'no generation';
      if (!outcome.restored) {
        throw new RickError(
          'ROLLBACK_FAILED',
          `${manifest.name} ${manifest.version} failed its health gate (${describeFailure(outcome.failure)}) and restoring ${back} failed too: ${outcome.restoreError}`,
          { hint: "the host needs attention: see `rick-install status` and the units' journals" },
        );
      }
      throw new RickError(
        'ROLLED_BACK',
        `${manifest.name} ${manifest.version} failed its health gate: ${describeFailure(outcome.failure)}; rolled back to ${back}${prepared.repair ? '' : ` and quarantined ${manifest.version}`}`,
        {
          hint: `fix the bundle and publish a new version; \`rick-install status\` shows the history`,
        },
      );
    }
    entry.installed = manifest.version;
    if (!entry.highest || semver.gt(manifest.version, entry.highest))
      entry.highest = manifest.version;
    state.bundles[manifest.name] = entry;
    state.live = next.generation;
    state.history.push({
      generation: next.generation,
      bundle: manifest.name,
      version: manifest.version,
      time: now,
      outcome: 'installed',
      ...(prepared.repair ? { detail: 'installed again over hand-changed files' } : {}),
      ...(adoptedInto ? { detail: `adopted the host's files, kept in ${adoptedInto}` } : {}),
    });
    await writeState(paths.stateFile, state);
    await checkpoint('state-written');
    if (adoption) await settleAdoptions(paths, host, state, log);
    await clearIntent(paths);
    const pruned = await pruneGenerations(paths, state.keepGenerations, state.live, state.history);
    if (pruned.length) log(`pruned generation(s) ${pruned.join(', ')}`);
    await checkpoint('pruned');
    log(`installed ${manifest.name} ${manifest.version} as generation ${next.generation}`);
    return {
      outcome: 'installed',
      bundle: manifest.name,
      version: manifest.version,
      generation: next.generation,
      previousGeneration: live?.generation,
      plan,
      notes,
    };
  } catch (error) {
    // Stopped by a signal: put back what this run changed before the lock goes.
    if (isInterruption(error))
      throw await recoverFromInterruption(paths, host, log, validate, error);
    throw error;
  } finally {
    await lock.release();
  }
}

/**
 * Completes what an interrupted run left (its intent record), under the
 * lock: what every update tick does first when intent.json exists, even
 * when the feed has nothing new. A run in progress holds the lock and its
 * own record: then there is nothing to complete. Returns whether it acted.
 */
export async function completeInterruptedRun(
  root: string | undefined,
  ctx: { host: Host; log: Log; validateUnits?: CheckUnits },
): Promise<boolean> {
  const { host, log } = ctx;
  const paths = hostPaths(root ?? '/');
  let lock: Awaited<ReturnType<typeof acquireLock>>;
  try {
    lock = await acquireLock(paths.lockFile, {
      purpose: 'complete an interrupted run',
      now: () => host.clock.now(),
    });
  } catch (error) {
    if (error instanceof RickError && error.code === 'LOCK_BUSY') {
      log(`${paths.intentFile} belongs to a run in progress: ${error.message}`);
      return false;
    }
    throw error;
  }
  try {
    const intent = await readStateFile(paths.intentFile);
    if (intent === undefined) return false;
    log(`${paths.intentFile} is left by an interrupted run: completing it`);
    const state = await readState(paths.stateFile);
    await reconcile(paths, host, state, log, { check: ctx.validateUnits ?? defaultValidateUnits });
    return true;
  } finally {
    await lock.release();
  }
}
