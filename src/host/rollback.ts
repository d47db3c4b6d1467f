import semver from 'semver';
import { RickError } from '../errors.js';
import { type CheckUnits, readGenerationGraph } from '../host/activation/graph.js';
import { pullImages } from '../host/activation/images.js';
import { formatPlan, planActivation } from '../host/activation/plan.js';
import { activate, describeFailure } from '../host/activation/run.js';
import { damagedGenerationError, generationDamage } from '../host/drift.js';
import { checkpoint } from '../host/fault.js';
import {
  confirmedLiveOrder,
  generationDir,
  listGenerations,
  readGeneration,
  readGenerationRecord,
} from '../host/generations.js';
import { checkRoot, defaultValidateUnits } from '../host/install.js';
import { acquireLock } from '../host/lock.js';
import { type HostPaths, hostPaths } from '../host/paths.js';
import { type HostState, quarantine, readState, writeState } from '../host/state.js';
import type { Host } from '../host/system.js';
import { settleAdoptions } from './adopt-record.js';
import { restoreDatabases } from './database/provision.js';
import { isInterruption } from './interrupt.js';
import {
  clearIntent,
  intentPhases,
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
}

export interface RollbackResult {
  /** `adopted`: the generation `current` points at was recorded as confirmed (a repair). */
  outcome: 'rolled-back' | 'noop' | 'adopted';
  from?: number;
  to: number;
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
    if (options.quarantine && from) {
      for (const b of from.bundles.values()) {
        if (to.bundles.get(b.name)?.version !== b.version) {
          quarantine(state, b.name, b.version);
          log(`quarantined ${b.name} ${b.version}`);
        }
      }
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
    log(`rolled back from generation ${live ?? 'none'} to ${target}`);
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
