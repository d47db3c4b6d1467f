import semver from 'semver';
import { RickError } from '../errors.js';
import { type CheckUnits, readGenerationGraph } from '../host/activation/graph.js';
import { pullImages } from '../host/activation/images.js';
import { formatPlan, planActivation } from '../host/activation/plan.js';
import { activate, describeFailure, restore } from '../host/activation/run.js';
import { damagedGenerationError, generationDamage } from '../host/drift.js';
import { checkpoint } from '../host/fault.js';
import {
  confirmedLiveOrder,
  generationDir,
  listGenerations,
  readGeneration,
  readGenerationRecord,
  type StoredGeneration,
} from '../host/generations.js';
import { checkRoot, defaultValidateUnits } from '../host/install.js';
import { acquireLock } from '../host/lock.js';
import { type HostPaths, hostPaths } from '../host/paths.js';
import { type HostState, quarantine, readState, writeState } from '../host/state.js';
import type { Host } from '../host/system.js';
import { type AdoptionRecord, readAdoptions, settleAdoptions } from './adopt-record.js';
import { restoreDatabases } from './database/provision.js';
import { isInterruption } from './interrupt.js';
import {
  clearIntent,
  intentPhases,
  planRecovery,
  readHostView,
  reconcile,
  recordAdopted,
  recoverFromInterruption,
  writeIntent,
} from './recovery.js';

export interface RollbackOptions {
  root?: string;
  to?: number;
  /**
   * Quarantine the versions rolled back from, so that `update` does not
   * install them again at its next tick.
   */
  quarantine?: boolean;
  /** Print what would happen and change nothing. */
  dryRun?: boolean;
  /** Roll back even though the live generation's files differ from its record. */
  force?: boolean;
}

export interface RollbackResult {
  /**
   * `adopted`: the generation `current` points at was recorded as confirmed
   * (a repair); `unadopted`: the first generation, which adopted the host's
   * files, was left and the files put back (nothing of rick's is live);
   * `planned`: a dry run.
   */
  outcome: 'rolled-back' | 'noop' | 'adopted' | 'unadopted' | 'planned';
  from?: number;
  /** Absent when no generation is live afterwards (`unadopted`). */
  to?: number;
}

/** A generation plain `rollback` passed over, and why. */
export interface SkippedTarget {
  generation: number;
  why: string;
}

/**
 * The generation plain `rollback` returns to: the one that was live before
 * the current one, as state.json's history records it (the generations
 * confirmed live after their gate, by `installed`, `rollback` or `adopted`
 * entries, most recently live first). Never the live one or a newer one:
 * a plain rollback steps back, never forward (`--to` goes anywhere). Passed
 * over, and reported: one no longer on disk, one whose record cannot be
 * read, and one holding a version quarantined on this host (unless the live
 * generation runs that same version, so returning does not bring it back). `versions` holds the
 * bundle versions of each generation on disk, or why its record cannot be
 * read.
 */
export function chooseRollbackTarget(
  state: Pick<HostState, 'history' | 'bundles'>,
  live: number,
  versions: ReadonlyMap<number, HeldVersions>,
): { target?: number; skipped: SkippedTarget[] } {
  const skipped: SkippedTarget[] = [];
  const liveVersions = versions.get(live)?.versions ?? {};
  for (const n of confirmedLiveOrder(state.history)) {
    if (n >= live) continue;
    const on = versions.get(n);
    if (!on) {
      skipped.push({ generation: n, why: 'no longer on this host' });
      continue;
    }
    if (!on.versions) {
      skipped.push({ generation: n, why: on.unreadable ?? 'unreadable' });
      continue;
    }
    const quarantined = Object.entries(on.versions).filter(
      ([name, version]) =>
        liveVersions[name] !== version && state.bundles[name]?.quarantined.includes(version),
    );
    if (quarantined.length) {
      skipped.push({
        generation: n,
        why: `${quarantined.map(([name, version]) => `${name} ${version}`).join(', ')} quarantined`,
      });
      continue;
    }
    return { target: n, skipped };
  }
  return { skipped };
}

/** A generation on disk: its bundles' versions, or why its record cannot be read. */
export interface HeldVersions {
  versions?: Readonly<Record<string, string>>;
  unreadable?: string;
}

/** Bundle versions of each generation on disk, from their records. */
async function readVersions(
  paths: HostPaths,
  onDisk: readonly number[],
): Promise<Map<number, HeldVersions>> {
  const out = new Map<number, HeldVersions>();
  for (const n of onDisk) {
    try {
      const record = await readGenerationRecord(paths, n);
      const versions = Object.entries(record.bundles).map(([name, b]) => [name, b.version]);
      out.set(n, { versions: Object.fromEntries(versions) });
    } catch (error) {
      if (!(error instanceof RickError)) throw error;
      out.set(n, { unreadable: error.message });
    }
  }
  return out;
}

export async function rollbackTo(
  options: RollbackOptions,
  ctx: { host: Host; log: (line: string) => void; validateUnits?: CheckUnits },
): Promise<RollbackResult> {
  const { host, log } = ctx;
  const check = ctx.validateUnits ?? defaultValidateUnits;
  await checkRoot(options.root);
  const paths = hostPaths(options.root ?? '/');
  const lock = await acquireLock(paths.lockFile, {
    purpose: `rollback${options.to ? ` --to ${options.to}` : ''}`,
    now: () => host.clock.now(),
  });
  try {
    const state = await readState(paths.stateFile);
    if (options.dryRun) await refusePendingRecovery(paths, state);
    // An inconsistent host is repaired here, and only by naming the generation.
    const { problems, view } = await reconcile(paths, host, state, log, {
      check,
      allowInconsistent: options.to !== undefined,
    });
    const onDisk = await listGenerations(paths);
    // What runs is what `current` points at; on a consistent host that is what state.json confirms.
    const live = problems ? view.current : state.live;
    if (problems) {
      log(`rick's state contradicts the host: ${problems.join('; ')}`);
    } else if (live === undefined) {
      throw new RickError(
        'USAGE',
        'nothing is installed: there is no generation to roll back from',
      );
    }
    let target = options.to;
    if (target === undefined) {
      const chosen = chooseRollbackTarget(state, live!, await readVersions(paths, onDisk));
      const passed = chosen.skipped.map((s) => `generation ${s.generation} (${s.why})`);
      if (chosen.target === undefined && !problems) {
        // The first generation adopted the host's files: rolling back past it puts them back.
        const adoption = (await readAdoptions(paths)).find(
          (a) => a.generation === live && a.from === undefined && a.state === 'done',
        );
        if (adoption) {
          return await rollbackPastAdoption(
            { paths, host, log, check, state, live: live!, adoption, options, passed },
            host.clock.now().toISOString(),
          );
        }
      }
      if (chosen.target === undefined) {
        throw new RickError(
          'USAGE',
          `no generation that was live before generation ${live} can be returned to on this host${passed.length ? `: passed over ${passed.join(', ')}` : ''}`,
          {
            hint: `generations on disk: ${onDisk.join(', ')}; name one with --to`,
          },
        );
      }
      if (passed.length) log(`passed over ${passed.join(', ')}`);
      target = chosen.target;
    }
    if (!onDisk.includes(target)) {
      throw new RickError('USAGE', `generation ${target} is not on this host`, {
        hint: `generations on disk: ${onDisk.join(', ') || 'none'}`,
      });
    }
    if (target !== live) {
      // Checked before anything changes: a generation whose files were
      // altered or removed since it was written never goes live.
      if (live !== undefined && onDisk.includes(live)) {
        await checkLiveDrift(paths, live, options, log);
      }
      const damage = await generationDamage(paths, target);
      if (damage.length) {
        throw damagedGenerationError(
          target,
          damage,
          `rick never edits a generation or makes a changed one live: name another with --to (generations on disk: ${onDisk.join(', ')}), or install the bundle again`,
        );
      }
    }
    const to = await readGeneration(paths, target);
    const time = host.clock.now().toISOString();
    if (target === live) {
      if (options.dryRun) {
        // A dry run never gets here with problems: refusePendingRecovery refused it.
        log(`dry run: generation ${target} is already live; nothing to do`);
        return { outcome: 'planned', to: target };
      }
      if (!problems) {
        log(`generation ${target} is already live; nothing to do`);
        return { outcome: 'noop', to: target };
      }
      // The repair that keeps what runs: record it as confirmed, nothing restarted.
      const confirmed = state.live;
      state.live = target;
      state.lastGeneration = Math.max(state.lastGeneration, ...onDisk);
      recordAdopted(
        state,
        to,
        host,
        `recorded by rollback --to ${target}; state.json had confirmed ${confirmed === undefined ? 'none' : `generation ${confirmed}`}`,
      );
      await writeState(paths.stateFile, state);
      await clearIntent(paths);
      log(`recorded generation ${target}, which is live, as confirmed; nothing restarted`);
      return { outcome: 'adopted', to: target };
    }
    const from = live === undefined ? undefined : await readGeneration(paths, live);
    const offline = !host.systemctl;
    const [fromGraph, toGraph] = await Promise.all([
      live === undefined
        ? undefined
        : readGenerationGraph(generationDir(paths, live), check, offline),
      readGenerationGraph(generationDir(paths, target), check, offline),
    ]);
    const graphs = { live: fromGraph, next: toGraph };
    const plan = planActivation(from, to, graphs);
    const verb = live !== undefined && target > live ? 'switch' : 'roll back';
    if (options.dryRun) {
      log(
        `dry run: would ${verb} from generation ${live ?? 'none'} to ${target}; nothing was changed`,
      );
      if (options.quarantine) log(quarantineLine(planQuarantine(from, to), true));
      log(formatPlan(plan, { offline: !host.systemctl }).trimEnd());
      return { outcome: 'planned', from: live, to: target };
    }
    // An image the old generation ran may have been pruned since: fetch it
    // before anything changes, so that a registry out of reach refuses the
    // rollback rather than breaking the services.
    if (!offline) await pullImages(host, plan.images, log);
    // So are its databases: its roles' passwords as it was rendered with.
    await restoreDatabases({ host, paths, log }, to);
    await writeIntent(paths, {
      operation: 'rollback',
      reason: `rollback to generation ${target}`,
      ...(live === undefined ? {} : { from: live }),
      to: target,
      created: false,
      time,
    });
    const outcome = await activate(
      { host, paths, log, onFlip: intentPhases(paths) },
      from,
      to,
      graphs,
      plan,
    );
    if (!outcome.ok) {
      state.history.push({
        generation: target,
        bundle: [...to.bundles.keys()].join(',') || '(none)',
        version: [...to.bundles.values()].map((b) => b.version).join(',') || '-',
        time,
        outcome: outcome.restored ? 'rolled-back' : 'rollback-failed',
        detail: describeFailure(outcome.failure),
      });
      await writeState(paths.stateFile, state);
      if (outcome.restored) await clearIntent(paths);
      if (!outcome.restored) {
        throw new RickError(
          'ROLLBACK_FAILED',
          `generation ${target} failed its health gate (${describeFailure(outcome.failure)}) and restoring generation ${live} failed too: ${outcome.restoreError}`,
          { hint: "the host needs attention: see `rick-install status` and the units' journals" },
        );
      }
      throw new RickError(
        'ROLLED_BACK',
        `generation ${target} failed its health gate: ${describeFailure(outcome.failure)}; generation ${live} is live again`,
      );
    }
    state.live = target;
    if (problems) {
      // What ran before the repair was installed, whatever state.json says:
      // the downgrade floor rises to it.
      state.lastGeneration = Math.max(state.lastGeneration, ...onDisk);
      for (const b of from?.bundles.values() ?? []) {
        const entry = state.bundles[b.name] ?? { quarantined: [] };
        if (!entry.highest || semver.gt(b.version, entry.highest)) entry.highest = b.version;
        state.bundles[b.name] = entry;
      }
    }
    if (options.quarantine) {
      const left = planQuarantine(from, to);
      for (const b of left) {
        quarantine(state, b.name, b.version, {
          reason: 'operator',
          time,
          detail: `rollback --quarantine from generation ${live ?? 'none'} to ${target}`,
        });
      }
      log(quarantineLine(left, false));
    }
    for (const name of Object.keys(state.bundles)) {
      const entry = state.bundles[name]!;
      const b = to.bundles.get(name);
      if (b) entry.installed = b.version;
      else delete entry.installed;
    }
    for (const b of to.bundles.values()) {
      // A state.json that did not know the bundle (the repair) learns it here.
      const entry = state.bundles[b.name] ?? { quarantined: [] };
      entry.installed = b.version;
      entry.highest ??= b.version;
      state.bundles[b.name] = entry;
      state.history.push({
        generation: target,
        bundle: b.name,
        version: b.version,
        time,
        outcome: 'rollback',
        detail: `from generation ${live ?? 'none'}`,
      });
    }
    await writeState(paths.stateFile, state);
    await checkpoint('state-written');
    await clearIntent(paths);
    // Rolled back past an adoption, the host's own files come back.
    await settleAdoptions(paths, host, state, log);
    log(
      verb === 'switch'
        ? `switched from generation ${live ?? 'none'} to ${target}`
        : `rolled back from generation ${live ?? 'none'} to ${target}`,
    );
    log(formatPlan(outcome.plan, { offline: !host.systemctl }).trimEnd());
    return { outcome: 'rolled-back', from: live, to: target };
  } catch (error) {
    // Stopped by a signal: put back what this run changed before the lock goes.
    if (isInterruption(error)) throw await recoverFromInterruption(paths, host, log, check, error);
    throw error;
  } finally {
    await lock.release();
  }
}

/** The versions `--quarantine` takes: those of the live generation that the target does not run. */
function planQuarantine(
  from: StoredGeneration | undefined,
  to: StoredGeneration | undefined,
): Array<{ name: string; version: string }> {
  return [...(from?.bundles.values() ?? [])]
    .filter((b) => to?.bundles.get(b.name)?.version !== b.version)
    .map((b) => ({ name: b.name, version: b.version }));
}

function quarantineLine(
  left: ReadonlyArray<{ name: string; version: string }>,
  dry: boolean,
): string {
  if (!left.length) {
    return `--quarantine: nothing to quarantine, the generation returned to runs the same versions`;
  }
  return `${dry ? 'would quarantine' : 'quarantined'} ${left.map((b) => `${b.name} ${b.version}`).join(', ')}`;
}

/**
 * A dry run changes nothing, so it does not settle an interrupted run or an
 * inconsistent state first: it refuses, naming what the next real run does.
 */
async function refusePendingRecovery(paths: HostPaths, state: HostState): Promise<void> {
  const view = await readHostView(paths, state);
  const recovery = planRecovery(view);
  if (recovery.action === 'none') return;
  const what =
    recovery.action === 'refuse'
      ? recovery.problems.join('; ')
      : recovery.action === 'adopt'
        ? `${paths.stateFile} is missing`
        : `an interrupted run (${recovery.intent.reason}) is not settled yet`;
  throw new RickError('USAGE', `rollback --dry-run plans only on a settled host: ${what}`, {
    hint: 'run rick-install status to see what the next run does first; nothing was changed',
  });
}

/**
 * The live generation's files differ from its record (edited by hand):
 * rolling back from it is refused unless forced, since a failed gate of the
 * target would make that generation live again, and the operator should
 * know what changed before it is left behind.
 */
async function checkLiveDrift(
  paths: HostPaths,
  live: number,
  options: RollbackOptions,
  log: (line: string) => void,
): Promise<void> {
  const damage = await generationDamage(paths, live);
  if (!damage.length) return;
  const what = damage.map((e) => `${e.file} (${e.problem})`).join('; ');
  if (options.force) {
    log(
      `warning: live generation ${live} differs from what it recorded: ${what}; going on (--force)`,
    );
    return;
  }
  throw new RickError(
    'DRIFT',
    `live generation ${live} differs from what it recorded: ${what}; nothing was changed`,
    {
      hint: `a failed gate would make these files live again: see rick-install verify, or pass --force to roll back anyway`,
    },
  );
}

interface PastAdoption {
  paths: HostPaths;
  host: Host;
  log: (line: string) => void;
  check: CheckUnits;
  state: HostState;
  live: number;
  adoption: AdoptionRecord & { dir: string };
  options: RollbackOptions;
  passed: string[];
}

/**
 * Plain `rollback` from a first generation that adopted the host's files:
 * there is no generation to return to, so none stays live (`current` is
 * removed, the bundle's services stopped, its sites gone from Caddy), and
 * the adopted files go back where they were, their services started
 * (settleAdoptions). A crash between the flip and state.json leaves `current`
 * absent while state.json confirms the generation: the next run refuses and
 * names `rollback --to <n>`, which puts the generation back.
 */
async function rollbackPastAdoption(p: PastAdoption, time: string): Promise<RollbackResult> {
  const { paths, host, log, state, live, adoption, options } = p;
  const files = adoption.files.map((f) => f.path).join(', ');
  await checkLiveDrift(paths, live, options, log);
  const from = await readGeneration(paths, live);
  if (options.dryRun) {
    log(
      `dry run: would leave generation ${live} (no generation was live before it), stop ${
        [...from.bundles.values()]
          .flatMap((b) => b.services.map((s) => s.service))
          .sort()
          .join(' ') || 'nothing'
      }, and put back the files it adopted from ${adoption.dir}: ${files}; nothing was changed`,
    );
    if (options.quarantine) log(quarantineLine(planQuarantine(from, undefined), true));
    return { outcome: 'planned', from: live };
  }
  if (p.passed.length) log(`passed over ${p.passed.join(', ')}`);
  const graph = await readGenerationGraph(generationDir(paths, live), p.check, !host.systemctl);
  await restore({ host, paths, log }, from, undefined, { live: graph });
  await checkpoint('flipped');
  delete state.live;
  for (const b of from.bundles.values()) {
    const entry = state.bundles[b.name];
    if (entry) delete entry.installed;
    state.history.push({
      generation: live,
      bundle: b.name,
      version: b.version,
      time,
      outcome: 'rollback',
      detail: `from generation ${live} to none: the files it adopted are put back`,
    });
  }
  if (options.quarantine) {
    const left = planQuarantine(from, undefined);
    for (const b of left) {
      quarantine(state, b.name, b.version, {
        reason: 'operator',
        time,
        detail: `rollback --quarantine from generation ${live} to none`,
      });
    }
    log(quarantineLine(left, false));
  }
  await writeState(paths.stateFile, state);
  await checkpoint('state-written');
  await settleAdoptions(paths, host, state, log);
  log(
    `rolled back from generation ${live} to none: no generation is live, the host's own files are back (${files})`,
  );
  return { outcome: 'unadopted', from: live };
}
