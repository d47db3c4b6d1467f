/**
 * What both programs' `--help` share: required options marked as such
 * (commander does not say it), and the version option.
 */
import type { Command } from 'commander';
import { rickVersion } from '../version.js';

/** Marks each required option of `command` and its subcommands `(required)` in its help. */
export function markRequiredOptions(command: Command): void {
  for (const option of command.options) {
    if (option.mandatory && !option.description.startsWith('(required)')) {
      option.description = `(required) ${option.description}`;
    }
  }
  for (const sub of command.commands) markRequiredOptions(sub);
}

/** `PROGRAM --version`: the package version, exit 0. */
export function addVersionOption(program: Command): Command {
  return program.version(rickVersion(), '--version', 'print the version and exit');
}
