// biome-ignore-all lint/suspicious/noTemplateCurlyInString: the strings are bash, whose parameter expansions are ${…}
/**
 * A program's bash completion, rendered from its reference
 * (src/cli/reference.ts): the commands, each command's options, the values
 * of options and arguments that are paths (bundle tarballs, files,
 * directories) and their choices. The script needs bash alone (compgen,
 * compopt), not the bash-completion package's helpers, so that it also
 * works when sourced by hand. Pure and deterministic.
 */
import type {
  CommandReference,
  OptionReference,
  ProgramReference,
  ValueKind,
} from './reference.js';

/** The shell function's name: `_rick_install` for rick-install. */
export function completionFunction(program: string): string {
  return `_${program.replace(/[^A-Za-z0-9]/g, '_')}`;
}

/** Renders the completion script of `program`. */
export function renderBashCompletion(program: ProgramReference): string {
  const fn = completionFunction(program.name);
  const commandNames = program.commands.flatMap((c) => [c.name, ...c.aliases]);
  const lines: string[] = [
    `# bash completion for ${program.name}(1), generated from the program's definition`,
    '# by scripts/generate-manuals.mjs; do not edit.',
    '',
    `# Adds to COMPREPLY the words compgen "$@" gives for "$cur", one per line`,
    '# (so file names may hold spaces).',
    `${fn}_add() {`,
    '  mapfile -t -O "${#COMPREPLY[@]}" COMPREPLY < <(compgen "$@" -- "$cur")',
    '}',
    '',
    `# Adds to COMPREPLY what completes "$cur" as a value of kind $1.`,
    `${fn}_value() {`,
    '  case $1 in',
    `    bundle) compopt -o filenames 2>/dev/null; ${fn}_add -d; ${fn}_add -f -X '!*.tgz' ;;`,
    `    file) compopt -o filenames 2>/dev/null; ${fn}_add -f ;;`,
    `    dir) compopt -o filenames 2>/dev/null; ${fn}_add -d ;;`,
    `    command) ${fn}_add -W ${shellWord(commandNames.join(' '))} ;;`,
    `    choices:*) local list=\${1#choices:}; ${fn}_add -W "\${list//,/ }" ;;`,
    '  esac',
    '}',
    '',
    `${fn}() {`,
    '  local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}',
    '  COMPREPLY=()',
    '  # --opt=value: bash splits at "=" (COMP_WORDBREAKS), the option is before it.',
    '  if [[ $cur == = ]]; then cur=; prev=${COMP_WORDS[COMP_CWORD-1]}; fi',
    '  if [[ $prev == = && $COMP_CWORD -ge 2 ]]; then prev=${COMP_WORDS[COMP_CWORD-2]}; fi',
    "  local cmd='' opts='' values='' args=''",
    '  # The options of the program and of each command: all of them, those that',
    '  # take a value (with its kind), and the kinds of the positional arguments.',
    `  local program_opts=${shellWord(optionNames(program.options))}`,
    `  local program_values=${shellWord(valueTable(program.options))}`,
    '  local i=1 w',
    '  # The command: the first word that is not a program option (or its value).',
    '  while [[ $i -lt $COMP_CWORD ]]; do',
    '    w=${COMP_WORDS[i]}',
    '    if [[ " $program_values " == *" $w="* ]]; then i=$((i + 2)); continue; fi',
    '    if [[ $w != -* ]]; then cmd=$w; break; fi',
    '    i=$((i + 1))',
    '  done',
    '  case $cmd in',
  ];
  for (const command of program.commands) {
    lines.push(...commandCase(command));
  }
  const fallback = program.commands.find((c) => c.name === program.defaultCommand);
  lines.push('    "")');
  lines.push('      if [[ $cur == -* ]]; then');
  lines.push(`        ${fn}_add -W "$program_opts"`);
  lines.push('        return 0');
  lines.push('      fi');
  lines.push(`      ${fn}_value command`);
  const first = fallback?.arguments[0];
  if (fallback && first) {
    lines.push(`      # \`${program.name} <${first.name}>\` runs ${fallback.name}.`);
    lines.push(`      ${fn}_value ${kindWord(first.kind, first.choices)}`);
  }
  lines.push('      return 0');
  lines.push('      ;;');
  if (fallback) {
    lines.push(`    *)`);
    lines.push(
      `      # Not a command: the first argument of ${fallback.name}, the default command.`,
    );
    lines.push('      i=$((i - 1))');
    lines.push(...commandSettings(fallback, '      '));
    lines.push('      ;;');
  } else {
    lines.push('    *) return 0 ;;');
  }
  lines.push(
    '  esac',
    '  # An option that takes a value: complete the value.',
    '  local entry',
    '  for entry in $values; do',
    '    if [[ ${entry%%=*} == "$prev" ]]; then',
    `      ${fn}_value "\${entry#*=}"`,
    '      return 0',
    '    fi',
    '  done',
    '  if [[ $cur == -* ]]; then',
    `    ${fn}_add -W "$opts"`,
    '    return 0',
    '  fi',
    '  # Which positional argument this is: the words after the command that are',
    '  # neither options nor their values.',
    '  local n=0 j=$((i + 1))',
    '  while [[ $j -lt $COMP_CWORD ]]; do',
    '    w=${COMP_WORDS[j]}',
    '    if [[ $w == -* ]]; then',
    '      for entry in $values; do [[ ${entry%%=*} == "$w" ]] && j=$((j + 1)); done',
    '    elif [[ $w != = && ${COMP_WORDS[j-1]} != = ]]; then',
    '      n=$((n + 1))',
    '    fi',
    '    j=$((j + 1))',
    '  done',
    '  local -a kinds',
    '  read -ra kinds <<<"$args"',
    '  local kind=${kinds[n]}',
    '  # A variadic last argument (kind...) takes every word after it.',
    '  if [[ -z $kind && ${#kinds[@]} -gt 0 && ${kinds[-1]} == *... ]]; then kind=${kinds[-1]}; fi',
    `  [[ -n $kind ]] && ${fn}_value "\${kind%...}"`,
    '  return 0',
    '}',
    '',
    `complete -F ${fn} ${program.name}`,
    '',
  );
  return lines.join('\n');
}

function commandCase(command: CommandReference): string[] {
  const pattern = [command.name, ...command.aliases].join('|');
  return [`    ${pattern})`, ...commandSettings(command, '      '), '      ;;'];
}

function commandSettings(command: CommandReference, indent: string): string[] {
  const args = command.arguments.map(
    (a) => `${kindWord(a.kind, a.choices)}${a.variadic ? '...' : ''}`,
  );
  return [
    `${indent}opts=${shellWord(optionNames(command.options))}`,
    `${indent}values=${shellWord(valueTable(command.options))}`,
    `${indent}args=${shellWord(args.join(' '))}`,
  ];
}

function optionNames(options: readonly OptionReference[]): string {
  return options.flatMap((o) => o.names).join(' ');
}

/** `--root=dir --expect=word`: each option that takes a value, with the value's kind. */
function valueTable(options: readonly OptionReference[]): string {
  return options
    .filter((o) => o.valueKind !== undefined)
    .flatMap((o) => o.names.map((n) => `${n}=${kindWord(o.valueKind ?? 'word', o.choices)}`))
    .join(' ');
}

/** A kind as the script's `_value` takes it: choices listed after `choices:`, comma-separated. */
function kindWord(kind: ValueKind, choices?: readonly string[]): string {
  if (choices && choices.length > 0) return `choices:${choices.join(',')}`;
  return kind;
}

/** Single-quoted for the shell. */
function shellWord(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}
