/**
 * The one top-level handler of both programs: parses argv, runs the command,
 * prints `error CODE: message` and the hint on stderr, and sets the exit code.
 * A stack is printed only for unexpected errors or with --debug.
 */
import { type Command, CommanderError } from 'commander';
import { ExitCode, isRickError } from '../errors.js';
import { dropOutputOnClosedPipe } from './closed-pipe.js';

export interface Output {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

export const processOutput: Output = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
};

/** Runs a program and returns its exit code; never throws. */
export async function runProgram(
  program: Command,
  argv: readonly string[],
  output: Output = processOutput,
): Promise<number> {
  if (output === processOutput) dropOutputOnClosedPipe();
  // Subcommands copy these settings only when created, so apply them to every command.
  const configure = (command: Command): void => {
    command.exitOverride();
    // Commander's own errors in rick's format: `error USAGE: …` and a hint, not the whole help.
    command.configureOutput({
      writeOut: output.stdout,
      writeErr: output.stderr,
      outputError: (text, write) => write(text.replace(/^error: /, 'error USAGE: ')),
    });
    command.showHelpAfterError(`hint: see \`${commandPath(command)} --help\``);
    for (const sub of command.commands) configure(sub);
  };
  configure(program);
  const debug = argv.includes('--debug');
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return ExitCode.ok;
  } catch (error) {
    return reportError(error, debug, output);
  }
}

/** `rick-install plan`: the command's name under its program's. */
function commandPath(command: Command): string {
  const names: string[] = [];
  for (let c: Command | null = command; c; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

export function reportError(error: unknown, debug: boolean, output: Output): number {
  if (error instanceof CommanderError) {
    // Commander has already printed its message (or the help text).
    if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version')
      return ExitCode.ok;
    if (error.code === 'commander.help') return ExitCode.ok;
    return error.exitCode === 0 ? ExitCode.ok : ExitCode.usage;
  }
  if (isRickError(error)) {
    output.stderr(`error ${error.code}: ${error.message}\n`);
    if (error.hint) output.stderr(`hint: ${error.hint}\n`);
    if (debug)
      output.stderr(
        `${error.stack ?? ''}\n${error.cause ? `cause: ${String(error.cause)}\n` : ''}`,
      );
    return error.exitCode;
  }
  const message = error instanceof Error ? error.message : String(error);
  output.stderr(`error INTERNAL: ${message}\n`);
  output.stderr(`${error instanceof Error ? (error.stack ?? '') : ''}\n`);
  return ExitCode.internal;
}
