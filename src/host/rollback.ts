import { RickError } from '../errors.js';
import { type CheckUnits, readGenerationGraph } from '../host/activation/graph.js';
import { pullImages } from '../host/activation/images.js';
import { formatPlan, planActivation } from '../host/activation/plan.js';
import { activate, describeFailure } from '../host/activation/run.js';
import { checkpoint } from '../host/fault.js';
import { generationDir, listGenerations, readGeneration } from '../host/generations.js';
import { checkRoot, defaultValidateUnits, recoverAfterCrash } from '../host/install.js';
import { acquireLock } from '../host/lock.js';
import { hostPaths } from '../host/paths.js';
import { type HostState, quarantine, readState, writeState } from '../host/state.js';
import type { Host } from '../host/system.js';

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
  outcome: 'rolled-back' | 'noop';
  from?: number;
  to: number;
}

const healthyOutcomes = new Set(['installed', 'rollback', 'recovered']);

/** The newest generation below `live` that was live and healthy once and is still on disk. */
function previousGood(
  state: HostState,
  live: number,
  onDisk: readonly number[],
): number | undefined {
  const healthy = new Set(
    state.history
      .filter((h) => healthyOutcomes.has(h.outcome) && h.outcome !== 'recovered')
      .map((h) => h.generation),
  );
  return [...onDisk].reverse().find((n) => n < live && healthy.has(n));
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
    await recoverAfterCrash(paths, host, state, log, check);
    const live = state.live;
    if (live === undefined) {
      throw new RickError(
        'USAGE',
        'nothing is installed: there is no generation to roll back from',
      );
    }
    const onDisk = await listGenerations(paths);
    const target = options.to ?? previousGood(state, live, onDisk);
    if (target === undefined) {
      throw new RickError(
        'USAGE',
        `no earlier healthy generation than ${live} is kept on this host`,
        {
          hint: `generations on disk: ${onDisk.join(', ')}; name one with --to`,
        },
      );
    }
    if (!onDisk.includes(target)) {
      throw new RickError('USAGE', `generation ${target} is not on this host`, {
        hint: `generations on disk: ${onDisk.join(', ')}`,
      });
    }
    if (target === live) {
      log(`generation ${target} is already live; nothing to do`);
      return { outcome: 'noop', to: target };
    }
    const from = await readGeneration(paths, live);
    const to = await readGeneration(paths, target);
    const offline = !host.systemctl;
    const [fromGraph, toGraph] = await Promise.all([
      readGenerationGraph(generationDir(paths, live), check, offline),
      readGenerationGraph(generationDir(paths, target), check, offline),
    ]);
    const graphs = { live: fromGraph, next: toGraph };
    const plan = planActivation(from, to, graphs);
    // An image the old generation ran may have been pruned since: fetch it
    // before anything changes, so that a registry out of reach refuses the
    // rollback rather than breaking the services.
    if (!offline) await pullImages(host, plan.images, log);
    const outcome = await activate({ host, paths, log }, from, to, graphs, plan);
    const time = host.clock.now().toISOString();
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
    if (options.quarantine) {
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
      state.history.push({
        generation: target,
        bundle: b.name,
        version: b.version,
        time,
        outcome: 'rollback',
        detail: `from generation ${live}`,
      });
    }
    await writeState(paths.stateFile, state);
    await checkpoint('state-written');
    log(`rolled back from generation ${live} to ${target}`);
    log(formatPlan(outcome.plan, { offline: !host.systemctl }).trimEnd());
    return { outcome: 'rolled-back', from: live, to: target };
  } finally {
    await lock.release();
  }
}
