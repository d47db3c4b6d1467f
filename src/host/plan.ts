import type { ActivationPlan } from '../host/activation/plan.js';
import { readLiveGenerationNumber } from '../host/generations.js';
import { type InstallerDeps, type InstallOptions, prepareInstall } from '../host/install.js';
import { hostPaths } from '../host/paths.js';
import { readState } from '../host/state.js';

export type PlanResult =
  | { outcome: 'noop'; bundle: string; version: string; reason: string }
  | {
      outcome: 'install';
      bundle: string;
      version: string;
      liveGeneration?: number;
      plan: ActivationPlan;
      /** Unified diff of every unit and env file, secrets masked. */
      diff: string;
      notes: string[];
    };

export async function planBundle(
  options: InstallOptions,
  deps: Pick<InstallerDeps, 'host'> & { log: (line: string) => void },
): Promise<PlanResult> {
  const paths = hostPaths(options.root ?? '/');
  const host = deps.host(options.root);
  const state = await readState(paths.stateFile);
  const onDisk = await readLiveGenerationNumber(paths);
  const notes: string[] = [];
  if (onDisk !== state.live) {
    notes.push(
      `generation ${onDisk} is live but was never confirmed; the next install restores generation ${state.live ?? 'none'} first`,
    );
  }
  const prepared = await prepareInstall(options, {
    paths,
    host,
    state,
    log: deps.log,
    dryRun: true,
  });
  if (prepared.kind === 'noop') {
    return {
      outcome: 'noop',
      bundle: prepared.manifest.name,
      version: prepared.manifest.version,
      reason: prepared.reason,
    };
  }
  const { diffGenerations } = await import('../host/activation/plan-diff.js');
  return {
    outcome: 'install',
    diff: diffGenerations(prepared.live, prepared.next),
    bundle: prepared.manifest.name,
    version: prepared.manifest.version,
    liveGeneration: prepared.live?.generation,
    plan: prepared.plan,
    notes: [...notes, ...prepared.notes],
  };
}
