/**
 * What both programs' `--help` share: required options marked as such
 * (commander does not say it), the version option, and the exit-code table.
 */
import type { Command } from 'commander';
import { type ExitCode, formatExitCodes } from '../errors.js';
import { rickVersion } from '../version.js';

/** The codes each program lists, for its manual page (src/cli/reference.ts). */
const exitCodeLists = new WeakMap<Command, readonly ExitCode[] | undefined>();
/** The help listeners that print those tables: not a command's own notes. */
const exitCodeListeners = new WeakSet<(...args: unknown[]) => void>();

/**
 * Lists the codes `program` exits with (all of them without `only`) once, at
 * the end of its top-level help, and records them for its manual page.
 */
export function addExitCodes(program: Command, only?: readonly ExitCode[]): Command {
  const listener = (context: { write: (text: string) => void }): void => {
    context.write(`\nExit codes:\n${formatExitCodes(only)}\n\n`);
  };
  exitCodeListeners.add(listener as (...args: unknown[]) => void);
  exitCodeLists.set(program, only);
  return program.on('afterHelp', listener);
}

/** The codes `program` lists in its help; undefined when it lists none. */
export function exitCodesOf(program: Command): { listed: boolean; only?: readonly ExitCode[] } {
  if (!exitCodeLists.has(program)) return { listed: false };
  const only = exitCodeLists.get(program);
  return only === undefined ? { listed: true } : { listed: true, only };
}

/** Whether a help listener is the exit-code table's (see addExitCodes). */
export function isExitCodeListener(listener: (...args: unknown[]) => void): boolean {
  return exitCodeListeners.has(listener);
}

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
