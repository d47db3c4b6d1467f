/**
 * A program's reference read from its commander definition: its commands,
 * their arguments and options with the descriptions `--help` shows
 * (defaults and `(required)` included), the notes after a command's help,
 * and the exit codes the program lists. The manual pages and the bash
 * completion are rendered from it (src/cli/man-page.ts,
 * src/cli/completion.ts), so a new command or option is documented and
 * completed without anything written by hand. Pure: nothing is parsed or run.
 */
import type { EventEmitter } from 'node:events';
import type { Argument, Command, Option } from 'commander';
import { exitCodeHelp } from '../errors.js';
import { exitCodesOf, isExitCodeListener } from './help.js';

/** What the value of an option or an argument is, for completion. */
export type ValueKind =
  /** a bundle tarball: `*.tgz` files (and directories, to reach them) */
  | 'bundle'
  /** any file (or a directory where a file or a directory is taken) */
  | 'file'
  /** a directory */
  | 'dir'
  /** a command of the program (`help [command]`) */
  | 'command'
  /** a word: nothing to offer but its choices, if any */
  | 'word';

export interface OptionReference {
  /** As written in the definition: `-h, --help`, `--root <dir>`. */
  flags: string;
  /** Every name that selects it: `-h`, `--help`. */
  names: string[];
  /** The value's name (`dir` of `<dir>`), absent for a flag. */
  valueName?: string;
  valueKind?: ValueKind;
  choices?: string[];
  /** As `--help` shows it: `(required)` first, the default last. */
  description: string;
  required: boolean;
}

export interface ArgumentReference {
  name: string;
  required: boolean;
  variadic: boolean;
  kind: ValueKind;
  choices?: string[];
  description: string;
}

export interface CommandReference {
  name: string;
  aliases: string[];
  /** `[options] <bundle>`, as the help's usage line has it. */
  usage: string;
  /** The description's first line. */
  summary: string;
  description: string;
  arguments: ArgumentReference[];
  options: OptionReference[];
  /** Text the command's help shows after its options. */
  notes: string;
}

export interface ProgramReference {
  name: string;
  description: string;
  /** The options taken before a command (`--debug`, `--version`, `--help`). */
  options: OptionReference[];
  commands: CommandReference[];
  /** The command run when the first word names none (`rick-install <bundle.tgz>`). */
  defaultCommand?: string;
  exitCodes: { code: number; text: string }[];
}

/**
 * What a value is, from the name its definition gives it: `<bundle.tgz>`
 * and `<bundle>` are bundle tarballs, `<dir>` and `<bundle-dir>`
 * directories, `<file>` and `<path>` files (and their plurals); anything
 * else a word.
 */
export function valueKindOf(valueName: string): ValueKind {
  // A variadic argument's name is plural: <dirs...>, <files...>.
  const name = valueName.toLowerCase().replace(/s$/, '');
  if (name.endsWith('.tgz') || name === 'bundle') return 'bundle';
  if (name === 'dir' || name.endsWith('-dir')) return 'dir';
  if (name === 'file' || name === 'path') return 'file';
  return 'word';
}

/** Reads the reference of `program` (fresh from its `createProgram`). */
export function describeProgram(program: Command): ProgramReference {
  const help = program.createHelp();
  const commands = help
    .visibleCommands(program)
    .map((command) => describeCommand(command, program));
  const listed = exitCodesOf(program);
  const exitCodes = listed.listed
    ? exitCodeHelp
        .filter(([code]) => listed.only === undefined || listed.only.includes(code))
        .map(([code, text]) => ({ code, text }))
    : [];
  // commander keeps the default command's name only in a private field.
  const defaultCommand = (program as unknown as { _defaultCommandName?: string | null })
    ._defaultCommandName;
  return {
    name: program.name(),
    description: program.description(),
    options: help.visibleOptions(program).map((o) => describeOption(o, help)),
    commands,
    ...(defaultCommand ? { defaultCommand } : {}),
    exitCodes,
  };
}

function describeCommand(command: Command, program: Command): CommandReference {
  const help = command.createHelp();
  const description = command.description();
  // Every argument, described or not: the help lists them only when one is
  // described, and the implicit `help [command]` describes none.
  const args = command.registeredArguments.map((a) => describeArgument(a, help, program));
  return {
    name: command.name(),
    aliases: command.aliases(),
    usage: command.usage(),
    summary: command.summary() || description.split('\n')[0] || '',
    description,
    arguments: args,
    options: help.visibleOptions(command).map((o) => describeOption(o, help)),
    notes: notesOf(command),
  };
}

function describeOption(option: Option, help: ReturnType<Command['createHelp']>): OptionReference {
  const names = [option.short, option.long].filter((n): n is string => n !== undefined);
  const value = /[<[]([^>\]]+)[>\]]/.exec(option.flags)?.[1];
  return {
    flags: option.flags,
    names,
    ...(value === undefined ? {} : { valueName: value, valueKind: valueKindOf(value) }),
    ...(option.argChoices ? { choices: [...option.argChoices] } : {}),
    description: help.optionDescription(option),
    required: option.mandatory,
  };
}

function describeArgument(
  argument: Argument,
  help: ReturnType<Command['createHelp']>,
  program: Command,
): ArgumentReference {
  const name = argument.name();
  // `help [command]` takes a command of the program.
  const kind: ValueKind =
    name === 'command' && program.commands.length > 0 ? 'command' : valueKindOf(name);
  return {
    name,
    required: argument.required,
    variadic: argument.variadic,
    kind,
    ...(argument.argChoices ? { choices: [...argument.argChoices] } : {}),
    description:
      help.argumentDescription(argument) || (kind === 'command' ? 'the command to describe' : ''),
  };
}

/** What `addHelpText('after', …)` added to a command's help (not the exit-code table). */
function notesOf(command: Command): string {
  let text = '';
  const context = {
    error: false,
    command,
    write: (s: string) => {
      text += s;
    },
  };
  // A commander Command is an EventEmitter; its typings do not say so.
  for (const listener of (command as unknown as EventEmitter).listeners('afterHelp')) {
    const fn = listener as (...args: unknown[]) => void;
    if (!isExitCodeListener(fn)) fn(context);
  }
  return text.trim();
}
