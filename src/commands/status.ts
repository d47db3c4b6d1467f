/**
 * The commander adapter of `rick-install status`: parses
 * arguments and calls src/host/status.ts, where the work is done.
 */
import { Command } from 'commander';
import type { InstallerDeps } from '../host/install.js';
import { formatStatus, readStatus } from '../host/status.js';
import { addCommonOptions, rootOf } from './install.js';

export function statusCommand(deps: InstallerDeps): Command {
  const command = new Command('status')
    .description('show the live generation, services, quarantined versions and history')
    .option('--json', 'print JSON');
  addCommonOptions(command);
  command.action(async (opts: Record<string, unknown>) => {
    const root = rootOf(opts.root as string | undefined);
    const status = await readStatus(root, deps.host(root));
    deps.output.stdout(opts.json ? `${JSON.stringify(status, null, 2)}\n` : formatStatus(status));
  });
  return command;
}
