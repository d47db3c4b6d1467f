/**
 * The commander adapter of `rick-install unquarantine NAME@VERSION`: parses
 * arguments and calls src/host/unquarantine.ts, where the work is done.
 */
import { Command } from 'commander';
import type { InstallerDeps } from '../host/install.js';
import { liftQuarantine, parseUnquarantineArgument } from '../host/unquarantine.js';
import { addCommonOptions, rootOf } from './install.js';

export function unquarantineCommand(deps: InstallerDeps): Command {
  const command = new Command('unquarantine')
    .description(
      'lift the quarantine of a bundle version, so that an install or the update timer takes it again',
    )
    .argument('<NAME@VERSION>', 'the quarantined version, such as authentik@1.2.0');
  addCommonOptions(command);
  command.action(async (spec: string, opts: Record<string, unknown>) => {
    const target = parseUnquarantineArgument(spec);
    const root = rootOf(opts.root as string | undefined);
    await liftQuarantine(
      target,
      { root },
      { host: deps.host(root), log: (line) => deps.output.stdout(`${line}\n`) },
    );
  });
  return command;
}
