/**
 * A program's manual page, in roff with the man(7) macros, rendered from its
 * reference (src/cli/reference.ts): NAME, SYNOPSIS, DESCRIPTION, COMMANDS,
 * OPTIONS, EXIT STATUS, FILES, SEE ALSO. Pure and deterministic: the same
 * program and date give the same bytes. What a commander definition does not
 * hold (the files a program reads and writes, related pages) is the small
 * table `manualExtras` below.
 */
import type {
  ArgumentReference,
  CommandReference,
  OptionReference,
  ProgramReference,
} from './reference.js';

export interface ManualExtras {
  /** The page's FILES section: path and what it is. */
  files: readonly (readonly [path: string, text: string])[];
  /** The page's SEE ALSO section: `name(section)`. */
  seeAlso: readonly string[];
}

/** What each program's page says beyond its definition. */
export const manualExtras: Readonly<Record<string, ManualExtras>> = {
  'rick-install': {
    files: [
      ['/etc/rick/rick.conf', 'the release feed and the bundles `update` follows'],
      [
        '/etc/rick/keys/',
        'trusted public keys (*.asc, *.gpg); root-owned, not group- or world-writable',
      ],
      ['/etc/rick/secrets/<bundle>.env', "a bundle's host secrets (root, 0600)"],
      [
        '/etc/rick/policy.d/<bundle>.conf',
        "the host's grant to a bundle beyond the restricted profile",
      ],
      [
        '/var/lib/rick/generations/<n>/',
        'the generations: units, env files, manifests, facts, the installer',
      ],
      ['/var/lib/rick/current', 'the link to the live generation, flipped by one rename'],
      ['/var/lib/rick/state.json', 'installed history, highest versions, quarantined versions'],
      ['/usr/local/bin/rick-install', "a link to the live generation's installer"],
    ],
    seeAlso: ['rick-bundle(1)', 'podman-systemd.unit(5)', 'systemd.timer(5)', 'gpgv(1)'],
  },
  'rick-bundle': {
    files: [
      ['<bundle-dir>/bundle.yaml', "a bundle's definition: its files, services, checks and needs"],
      ['templates/', 'the shared templates, beside the bundles directory'],
      ['<name>-<version>.tgz, <name>-<version>.tgz.sig', 'a bundle and its detached signature'],
      ['index.json, index.json.sig', 'the signed release index that fleets follow'],
    ],
    seeAlso: ['rick-install(1)', 'podman-systemd.unit(5)', 'gpg(1)'],
  },
};

/** Renders the page of `program`, dated `date` (YYYY-MM-DD), for `version`. */
export function renderManPage(
  program: ProgramReference,
  options: { date: string; version: string; extras?: ManualExtras },
): string {
  const extras = options.extras ?? manualExtras[program.name] ?? { files: [], seeAlso: [] };
  const name = program.name;
  const [summary = '', ...rest] = program.description.split('\n');
  const lines: string[] = [
    `.\\" ${name}(1), generated from the program's definition`,
    '.\\" by scripts/generate-manuals.mjs; do not edit.',
    `.TH ${quoted(roff(name.toUpperCase()))} 1 ${quoted(options.date)} ${quoted(`rick ${options.version}`)} "rick manual"`,
    // No hyphenation: option names and paths must read as typed.
    '.nh',
    '.SH NAME',
    wrap(`${roff(name)} \\- ${inline(lowerFirst(summary.replace(/\.$/, '')))}`),
    '.SH SYNOPSIS',
  ];
  const synopsis = (words: string[]): void => {
    lines.push('.PP', words.join('\n'));
  };
  synopsis(
    [
      `.B ${roff(name)}`,
      program.options.length > 0 ? '.RI [ options ]' : '',
      '.I command',
      '.RI [ arguments ]',
    ].filter((l) => l !== ''),
  );
  if (program.defaultCommand) {
    const command = program.commands.find((c) => c.name === program.defaultCommand);
    if (command) synopsis([`.B ${roff(name)}`, ...usageWords(command, false)]);
  }
  for (const command of program.commands) {
    synopsis([`.B ${roff(`${name} ${command.name}`)}`, ...usageWords(command, true)]);
  }

  lines.push('.SH DESCRIPTION', ...paragraphs([summary, ...rest].join('\n')));

  lines.push('.SH COMMANDS');
  for (const command of program.commands) {
    const heading = [command.name, ...command.aliases].join(', ');
    lines.push(`.SS ${quoted(roff(heading))}`);
    lines.push(...paragraphs(command.description || command.summary));
    if (command.name === program.defaultCommand) {
      lines.push(
        '.PP',
        `The default command: ${font('B', `${name} `)}${command.arguments.map((a) => font('I', a.name)).join(' ')} runs it.`,
      );
    }
    if (command.arguments.length > 0) {
      lines.push('.PP', 'Arguments:');
      for (const argument of command.arguments) lines.push(...argumentItem(argument));
    }
    if (command.options.length > 0) {
      lines.push('.PP', 'Options:');
      for (const option of command.options) lines.push(...optionItem(option));
    }
    if (command.notes) lines.push(...paragraphs(command.notes));
  }

  if (program.options.length > 0) {
    lines.push('.SH OPTIONS', `Options given before the command:`);
    for (const option of program.options) lines.push(...optionItem(option));
  }

  if (program.exitCodes.length > 0) {
    lines.push('.SH EXIT STATUS');
    for (const { code, text: meaning } of program.exitCodes) {
      lines.push('.TP', `.B ${code}`, text(meaning));
    }
  }

  if (extras.files.length > 0) {
    lines.push('.SH FILES');
    for (const [path, meaning] of extras.files) {
      lines.push('.TP', `.I ${quoted(roff(path))}`, text(meaning));
    }
  }

  if (extras.seeAlso.length > 0) {
    lines.push('.SH SEE ALSO');
    extras.seeAlso.forEach((ref, i) => {
      const m = /^(.+)\((\w+)\)$/.exec(ref);
      const comma = i < extras.seeAlso.length - 1 ? ',' : '';
      lines.push(m ? `.BR ${roff(m[1] ?? '')} (${m[2]})${comma}` : `${text(ref)}${comma}`);
    });
    lines.push(
      '.PP',
      `The project's documentation: ${font('I', 'README.md')} and ${font('I', 'docs/')}.`,
    );
  }
  // A paragraph macro right after a heading is redundant (mandoc warns).
  const out = lines.filter(
    (line, i) => !(line === '.PP' && /^\.S[HS]( |$)/.test(lines[i - 1] ?? '')),
  );
  return `${out.join('\n')}\n`;
}

/** `[options] <bundle>` as roff words: options and optional ones bracketed, names italic. */
function usageWords(command: CommandReference, withOptions: boolean): string[] {
  const words: string[] = [];
  if (withOptions && command.options.length > 0) words.push('.RI [ options ]');
  for (const argument of command.arguments) {
    const dots = argument.variadic ? ' ...' : '';
    words.push(
      argument.required
        ? `.I ${quoted(roff(argument.name + dots))}`
        : `.RI [ ${quoted(roff(argument.name + dots))} ]`,
    );
  }
  return words;
}

function argumentItem(argument: ArgumentReference): string[] {
  const description = [
    argument.description,
    argument.choices ? `One of: ${argument.choices.join(', ')}.` : '',
  ]
    .filter((s) => s !== '')
    .join(' ');
  return ['.TP', `.I ${quoted(roff(argument.name))}`, text(description)];
}

function optionItem(option: OptionReference): string[] {
  // `--root <dir>`: the names bold, the value italic; an optional value in brackets.
  const term = option.flags
    .split(/(\s*[<[][^>\]]+[>\]])/)
    .filter((part) => part !== '')
    .map((part) => {
      const value = /^(\s*)([<[])([^>\]]+)[>\]]$/.exec(part);
      if (!value) return font('B', part);
      const italic = font('I', value[3] ?? '');
      return `${value[1]}${value[2] === '[' ? `[${italic}]` : italic}`;
    })
    .join('');
  return ['.TP', term, text(option.description)];
}

/** Paragraphs of prose: a blank line of the source starts a new one; roff fills the lines of each. */
function paragraphs(source: string): string[] {
  const out: string[] = [];
  for (const block of source.split(/\n\s*\n/)) {
    const lines = block.split('\n').filter((l) => l.trim() !== '');
    if (lines.length === 0) continue;
    out.push('.PP');
    out.push(...lines.map((l) => text(l.trim())));
  }
  return out;
}

/**
 * Prose: roff escapes, `code` in bold, input lines of at most 80 bytes
 * (roff fills them again), never a leading control character.
 */
function text(source: string): string {
  return wrap(inline(source));
}

function inline(source: string): string {
  return source
    .split('`')
    .map((part, i) => (i % 2 === 1 ? font('B', part) : roff(part)))
    .join('');
}

function wrap(rendered: string): string {
  const lines: string[] = [];
  let line = '';
  for (const word of rendered.split(' ')) {
    if (line !== '' && line.length + 1 + word.length > 72) {
      lines.push(line);
      line = word;
    } else {
      line = line === '' ? word : `${line} ${word}`;
    }
  }
  lines.push(line);
  return lines.map((l) => (/^[.']/.test(l) ? `\\&${l}` : l)).join('\n');
}

function font(f: 'B' | 'I', s: string): string {
  return `\\f${f}${roff(s)}\\fR`;
}

/**
 * Escapes roff's escape character, hyphens (minus signs in options and
 * paths) and characters beyond ASCII (as roff's Unicode escapes).
 */
function roff(s: string): string {
  return s
    .replaceAll('\\', '\\e')
    .replaceAll('-', '\\-')
    .replace(
      /[^ -~\n\t]/gu,
      (c) => `\\[u${(c.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0')}]`,
    );
}

function quoted(s: string): string {
  return /[\s"]/.test(s) ? `"${s.replaceAll('"', '\\(dq')}"` : s;
}

function lowerFirst(s: string): string {
  return s.length > 1 && /^[A-Z][a-z]/.test(s) ? s[0]?.toLowerCase() + s.slice(1) : s;
}
