/**
 * The commander adapter of `rick-install rollback`: parses
 * arguments and calls src/host/rollback.ts, where the work is done.
 */
import { Command, Option } from 'commander';
import { RickError } from '../errors.js';
import type { InstallerDeps } from '../host/install.js';
import { rollbackTo } from '../host/rollback.js';
import { addCommonOptions, rootOf } from './install.js';

export function rollbackCommand(deps: InstallerDeps): Command {
  const command = new Command('rollback')
    .description('make the previous (or a named) generation live again, with the health gate')
    .addOption(
      new Option(
        '--to <generation>',
        "the generation to return to; when rick's state contradicts the host, the one to record as live (the one current points at is recorded without a restart)",
      ).argParser((v) => {
        if (!/^[1-9][0-9]*$/.test(v)) {
          throw new RickError('USAGE', `--to takes a generation number, not ${JSON.stringify(v)}`);
        }
        return Number(v);
      }),
    );
  command.option(
    '--quarantine',
    'also quarantine the versions rolled back from, so that `update` does not install them again',
  );
  command.option('--dry-run', 'print what would switch and restart, and change nothing');
  command.option(
    '--force',
    "roll back even though the live generation's files differ from its record (what differs is printed)",
  );
  addCommonOptions(command);
  command.action(async (opts: Record<string, unknown>) => {
    const root = rootOf(opts.root as string | undefined);
    await rollbackTo(
      {
        root,
        to: opts.to as number | undefined,
        quarantine: Boolean(opts.quarantine),
        dryRun: Boolean(opts.dryRun),
        force: Boolean(opts.force),
      },
      {
        host: deps.host(root),
        log: (line) => deps.output.stdout(`${line}\n`),
        validateUnits: deps.validateUnits,
      },
    );
  });
  return command;
}
