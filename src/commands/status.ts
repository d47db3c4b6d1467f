/**
 * The commander adapter of `rick-install status`: parses arguments and calls
 * src/host/status.ts, where the work is done, and src/feed/index-status.ts
 * for a host that follows a signed release index.
 */
import { Command } from 'commander';
import { formatIndexStatus, readIndexStatus } from '../feed/index-status.js';
import { checkRoot, type InstallerDeps } from '../host/install.js';
import { formatStatus, readStatus } from '../host/status.js';
import { addCommonOptions, rootOf } from './install.js';

export function statusCommand(deps: InstallerDeps): Command {
  const command = new Command('status')
    .description(
      'show the live generation, services, quarantined versions and history, and for a release index its rollout',
    )
    .option('--json', 'print JSON');
  addCommonOptions(command);
  command.action(async (opts: Record<string, unknown>) => {
    const root = rootOf(opts.root as string | undefined);
    // A mistyped --root would otherwise read as a host with nothing installed.
    await checkRoot(root);
    const host = deps.host(root);
    const status = await readStatus(root, host);
    const releaseIndex = await readIndexStatus(root ?? '/', host.clock.now());
    if (opts.json) {
      const json = releaseIndex === undefined ? status : { ...status, releaseIndex };
      deps.output.stdout(`${JSON.stringify(json, null, 2)}\n`);
    } else {
      deps.output.stdout(
        formatStatus(status) + (releaseIndex === undefined ? '' : formatIndexStatus(releaseIndex)),
      );
    }
  });
  return command;
}
