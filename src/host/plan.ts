import { graphOfView, readGenerationGraph } from '../host/activation/graph.js';
import { type ActivationPlan, planActivation } from '../host/activation/plan.js';
import { generationDir } from '../host/generations.js';
import {
  adoptionFor,
  defaultValidateUnits,
  type InstallerDeps,
  type InstallOptions,
  prepareInstall,
} from '../host/install.js';
import { hostPaths } from '../host/paths.js';
import { readState } from '../host/state.js';
import type { PolicyReport } from './policy/judge.js';
import { inconsistencyError, planRecovery, readHostView } from './recovery.js';

export type PlanResult =
  | { outcome: 'noop'; bundle: string; version: string; reason: string }
  | {
      outcome: 'install';
      bundle: string;
      version: string;
      liveGeneration?: number;
      plan: ActivationPlan;
      /** An offline tree (`--root`): nothing runs, nothing is pulled. */
      offline: boolean;
      /** Unified diff of every unit, Caddy site and env file, secrets masked. */
      diff: string;
      notes: string[];
      /** Needs, grant and escalation. */
      policy: PolicyReport;
      /** `plan --adopt`: each file taken over, and its diff against the bundle's rendering. */
      adoption?: string;
      /** `plan --adopt`: the services the adopted units make. */
      adopted?: ReadonlySet<string>;
    };

export async function planBundle(
  options: InstallOptions,
  deps: Pick<InstallerDeps, 'host' | 'validateUnits'> & { log: (line: string) => void },
): Promise<PlanResult> {
  const paths = hostPaths(options.root ?? '/');
  const host = deps.host(options.root);
  const state = await readState(paths.stateFile);
  // The plan is what an install would do: it refuses where an install would.
  const view = await readHostView(paths, state);
  const recovery = planRecovery(view);
  if (recovery.action === 'refuse') throw inconsistencyError(view, recovery.problems);
  const notes: string[] = [];
  if (recovery.action === 'undo') {
    notes.push(
      `generation ${recovery.intent.to} is live but was never confirmed; the next install restores generation ${recovery.intent.from ?? 'none'} first`,
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
  // The same plan as the install's: on the units quadlet generates from
  // both generations (the next one's written to a scratch directory).
  const check = deps.validateUnits ?? defaultValidateUnits;
  const offline = !host.systemctl;
  if (options.adopt) {
    // The same comparison and plan as `adopt` makes (src/host/adopt.ts).
    const adoption = await adoptionFor(options.adopt, paths, prepared, check, offline);
    const plan = planActivation(adoption.view, prepared.next, {
      live: adoption.liveGraph,
      next: adoption.nextGraph,
    });
    return {
      outcome: 'install',
      diff: '',
      bundle: prepared.manifest.name,
      version: prepared.manifest.version,
      liveGeneration: prepared.live?.generation,
      plan,
      offline,
      notes: [...notes, ...adoption.notes, ...prepared.notes],
      policy: prepared.policy,
      adoption: adoption.report,
      adopted: new Set(adoption.services),
    };
  }
  const [liveGraph, nextGraph] = await Promise.all([
    prepared.live
      ? readGenerationGraph(generationDir(paths, prepared.live.generation), check, offline)
      : undefined,
    graphOfView(prepared.next, check, offline),
  ]);
  const plan = planActivation(prepared.live, prepared.next, { live: liveGraph, next: nextGraph });
  if (offline && plan.images.length)
    notes.push('offline tree (--root): the install pulls no images');
  if (nextGraph === undefined) {
    notes.push(
      "quadlet not available: restarts planned per service, without the units' dependencies",
    );
  }
  const { diffGenerations } = await import('../host/activation/plan-diff.js');
  return {
    outcome: 'install',
    diff: diffGenerations(prepared.live, prepared.next),
    bundle: prepared.manifest.name,
    version: prepared.manifest.version,
    liveGeneration: prepared.live?.generation,
    plan,
    offline,
    notes: [...notes, ...prepared.notes],
    policy: prepared.policy,
  };
}
