/**
 * The commander adapter of `rick-install verify`: parses
 * arguments and calls src/host/drift.ts, where the work is done.
 */
import { Command } from 'commander';
import { RickError } from '../errors.js';
import { checkDrift } from '../host/drift.js';
import type { InstallerDeps } from '../host/install.js';
import { addCommonOptions, rootOf } from './install.js';
import { formatJson, verifyJson } from './json-output.js';

export function verifyDriftCommand(deps: InstallerDeps): Command {
  const command = new Command('verify').description(
    "check the live files against their generation's manifest and facts (drift)",
  );
  command.option('--json', 'print the report as JSON (docs/json.md), also when files drifted');
  addCommonOptions(command);
  command.action(async (opts: Record<string, unknown>) => {
    const report = await checkDrift(rootOf(opts.root as string | undefined));
    if (opts.json) deps.output.stdout(formatJson(verifyJson(report)));
    if (report.generation === undefined) {
      if (opts.json) return;
      deps.output.stdout('nothing installed: no generation to verify\n');
      return;
    }
    if (report.drift.length) {
      if (!opts.json) for (const line of report.drift) deps.output.stderr(`drift: ${line}\n`);
      throw new RickError(
        'DRIFT',
        `${report.drift.length} file(s) of generation ${report.generation} drifted: ${report.drift.map((d) => d.split(':')[0]).join(', ')}`,
        { hint: 'reinstall the bundle or roll back; rick never edits a generation in place' },
      );
    }
    if (opts.json) return;
    deps.output.stdout(
      `generation ${report.generation}: ${report.checked} files checked, no drift\n`,
    );
  });
  return command;
}
