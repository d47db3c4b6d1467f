/**
 * `rick-install plan <bundle.tgz>`: everything an install does up to the
 * write (verify, version policy, prerequisites, facts, substitution), then
 * the services that would restart, start and stop, and a unified diff of
 * every unit and env file against the live generation, secrets masked.
 * Changes nothing: no lock file, no sysusers, no state.
 */
import { basename, resolve } from 'node:path';
import { Command } from 'commander';
import { type ActivationPlan, formatPlan } from '../host/activation/plan.js';
import { readLiveGenerationNumber } from '../host/generations.js';
import {
  addCommonOptions,
  type InstallerDeps,
  type InstallOptions,
  prepareInstall,
  rootOf,
} from '../host/install.js';
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

export function planCommand(deps: InstallerDeps): Command {
  const command = new Command('plan')
    .description('show what installing a bundle would change, without changing anything')
    .argument('<bundle>', 'the bundle tarball')
    .option('--signature <file>', 'detached signature (default: <bundle>.sig)')
    .option('--keyring <path>', 'trusted public key file or directory (default: /etc/rick/keys)')
    .option('--secrets <file>', 'secrets file (default: /etc/rick/secrets/<bundle>.env)')
    .option('--allow-downgrade', 'plan a version lower than the highest ever installed');
  addCommonOptions(command);
  command.action(async (bundle: string, opts: Record<string, unknown>) => {
    const out = deps.output.stdout;
    const root = rootOf(opts.root as string | undefined);
    const result = await planBundle(
      {
        bundlePath: resolve(bundle),
        signaturePath: opts.signature ? resolve(opts.signature as string) : undefined,
        keyringPath: opts.keyring ? resolve(opts.keyring as string) : undefined,
        secretsPath: opts.secrets ? resolve(opts.secrets as string) : undefined,
        allowDowngrade: Boolean(opts.allowDowngrade),
        root,
      },
      { host: deps.host, log: (line) => out(`${line}\n`) },
    );
    if (result.outcome === 'noop') {
      out(
        `${result.bundle} ${result.version}: ${result.reason}; installing ${basename(bundle)} would do nothing\n`,
      );
      return;
    }
    for (const note of result.notes) out(`note: ${note}\n`);
    out(
      `plan: ${result.bundle} ${result.version} over generation ${result.liveGeneration ?? '(none)'}\n`,
    );
    out(formatPlan(result.plan));
    out(result.diff ? `\n${result.diff}` : '\nno unit or env file changes\n');
  });
  return command;
}
