/**
 * The manual pages and bash completions rendered from the two programs'
 * definitions: linted by a real man toolchain (mandoc, groff), read back as
 * text, and the completion functions driven in a real bash. Every command and
 * option is taken from the commander program itself, so an option added to a
 * program is checked here without this file changing.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Command, Option } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { completionFunction, renderBashCompletion } from '../../src/cli/completion.js';
import { renderManPage } from '../../src/cli/man-page.js';
import { describeProgram } from '../../src/cli/reference.js';
import {
  bundleExitCodes,
  createProgram as createBundleProgram,
} from '../../src/cli/rick-bundle.js';
import { createProgram as createInstallProgram } from '../../src/cli/rick-install.js';
import { exitCodeHelp } from '../../src/errors.js';
import { repoRoot } from '../helpers/host-tree.js';

const run = promisify(execFile);

const programs: { name: string; create: () => Command }[] = [
  { name: 'rick-install', create: () => createInstallProgram() },
  { name: 'rick-bundle', create: () => createBundleProgram() },
];

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rick-manuals-'));
  // Files to complete: bundles, another file, a name with a space, a directory.
  await mkdir(join(dir, 'files/releases'), { recursive: true });
  for (const f of [
    'authentik-1.2.0.tgz',
    'authentik-1.2.0.tgz.sig',
    'notes.txt',
    'my bundle.tgz',
  ]) {
    await writeFile(join(dir, 'files', f), '');
  }
}, 30_000);
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function render(create: () => Command): { page: string; completion: string } {
  const reference = describeProgram(create());
  return {
    page: renderManPage(reference, { date: '2026-01-02', version: '1.2.3' }),
    completion: renderBashCompletion(reference),
  };
}

/** A tool the tests need: required under CI (scripts/setup.sh installs it), skipped elsewhere. */
async function need(tool: string, ctx: { skip: () => void }): Promise<void> {
  const found = await run('sh', ['-c', `command -v ${tool}`]).catch(() => undefined);
  if (!found) {
    expect(process.env.CI, `${tool} is missing; run scripts/setup.sh`).not.toBe('true');
    ctx.skip();
  }
}

/** The page as man shows it, plain text (mandoc's overstrike removed). */
async function pageText(page: string, name: string): Promise<string> {
  const file = join(dir, `${name}.1`);
  await writeFile(file, page);
  const { stdout } = await run('mandoc', ['-T', 'utf8', '-O', 'width=200', file]);
  return stdout.replace(new RegExp(`.${String.fromCharCode(8)}`, 'g'), '');
}

/**
 * COMPREPLY of the program's completion function for `words` (the last one
 * is the word being completed), run by a real bash in `cwd`.
 */
function complete(
  completion: string,
  program: string,
  words: string[],
  cwd: string,
): Promise<string[]> {
  const script = [
    'source "$1"',
    'shift',
    'COMP_WORDS=("$@")',
    'COMP_CWORD=$(($# - 1))',
    `${completionFunction(program)}`,
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a bash array expansion
    'printf "%s\\n" "${COMPREPLY[@]}"',
  ].join('\n');
  return new Promise((resolve, reject) => {
    const file = join(dir, `${program}.bash`);
    writeFile(file, completion).then(() => {
      const child = spawn(
        'bash',
        ['--norc', '--noprofile', '-c', script, 'bash', file, program, ...words],
        {
          cwd,
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let out = '';
      let err = '';
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
      });
      child.stderr.on('data', (d: Buffer) => {
        err += d.toString();
      });
      child.on('close', (code) => {
        if (code !== 0 || err !== '') reject(new Error(`bash exited ${code}: ${err}`));
        else resolve(out.split('\n').filter((l) => l !== ''));
      });
    }, reject);
  });
}

/** Every option name of a commander command, as --help lists them (the help option included). */
function optionNames(command: Command): string[] {
  return command
    .createHelp()
    .visibleOptions(command)
    .flatMap((o) => [o.short, o.long].filter((n): n is string => n !== undefined));
}

describe.each(programs)('$name', ({ name, create }) => {
  it('has a page that mandoc and groff lint clean', async (ctx) => {
    await need('mandoc', ctx);
    const { page } = render(create);
    const file = join(dir, `lint-${name}.1`);
    await writeFile(file, page);
    // -W style: the strictest level, style hints included.
    const lint = await run('mandoc', ['-T', 'lint', '-W', 'style', file]).then(
      (r) => ({ code: 0, out: r.stdout + r.stderr }),
      (e: { code: number; stdout: string; stderr: string }) => ({
        code: e.code,
        out: e.stdout + e.stderr,
      }),
    );
    expect(lint.out).toBe('');
    expect(lint.code).toBe(0);
    const groff = await run('groff', ['-man', '-ww', '-z', file]);
    expect(groff.stderr).toBe('');
    expect(page).toMatch(
      /^\.TH RICK\\-(INSTALL|BUNDLE) 1 2026-01-02 "rick 1\.2\.3" "rick manual"$/m,
    );
    for (const section of [
      'NAME',
      'SYNOPSIS',
      'DESCRIPTION',
      'COMMANDS',
      'OPTIONS',
      'EXIT STATUS',
      'FILES',
      'SEE ALSO',
    ]) {
      expect(page).toMatch(new RegExp(`^\\.SH "?${section}"?$`, 'm'));
    }
  });

  it('documents every command, argument and option under its command, and the exit codes the program lists', async (ctx) => {
    await need('mandoc', ctx);
    const program = create();
    const text = await pageText(render(create).page, name);
    const commandsAt = text.indexOf('\nCOMMANDS\n');
    const optionsAt = text.indexOf('\nOPTIONS\n');
    expect(commandsAt).toBeGreaterThan(0);
    expect(optionsAt).toBeGreaterThan(commandsAt);
    const sections = text.slice(commandsAt, optionsAt).split(/\n {3}(?=\S)/);
    const commands = program.createHelp().visibleCommands(program);
    expect(commands.length).toBeGreaterThan(5);
    for (const command of commands) {
      const section = sections.find((s) => s.startsWith(`${command.name()}\n`));
      expect(section, `${name} ${command.name()} has no section`).toBeDefined();
      for (const option of optionNames(command)) {
        expect(section, `${name} ${command.name()} ${option}`).toMatch(
          new RegExp(`\\n {7}(.*, )?${option.replace(/[-]/g, '\\-')}[ ,\\n]`),
        );
      }
      for (const argument of command.registeredArguments) {
        expect(section, `${name} ${command.name()} <${argument.name()}>`).toContain(
          argument.name(),
        );
      }
      // Each option's description, as --help gives it, defaults and marks included.
      for (const option of command.createHelp().visibleOptions(command)) {
        const description = command.createHelp().optionDescription(option);
        expect(
          description,
          `${name} ${command.name()} ${option.flags} has no description`,
        ).not.toBe('');
        expect(section?.replace(/\s+/g, ' ')).toContain(
          description.replace(/\s+/g, ' ').replaceAll('`', ''),
        );
      }
    }
    const globals = text.slice(optionsAt, text.indexOf('\nEXIT STATUS\n'));
    for (const option of optionNames(program)) expect(globals).toContain(option);
    const exitStatus = text.slice(text.indexOf('\nEXIT STATUS\n'), text.indexOf('\nFILES\n'));
    const listed = name === 'rick-bundle' ? bundleExitCodes : exitCodeHelp.map(([c]) => c);
    const shown = [...exitStatus.matchAll(/^ {7}(\d+)\s/gm)].map((m) => Number(m[1]));
    expect(shown).toEqual(listed);
    if (name === 'rick-bundle') expect(shown).not.toContain(9);
  });

  it('has an identical page and completion for the same program, date and version', () => {
    const a = render(create);
    const b = render(create);
    expect(a.page).toBe(b.page);
    expect(a.completion).toBe(b.completion);
  });

  it('completes every command, and every option of each command', async () => {
    const program = create();
    const { completion } = render(create);
    const commands = program
      .createHelp()
      .visibleCommands(program)
      .map((c) => c.name());
    const first = await complete(completion, name, [''], join(dir, 'files/releases'));
    expect(first).toEqual(expect.arrayContaining(commands));
    for (const command of program.createHelp().visibleCommands(program)) {
      const options = optionNames(command);
      if (options.length === 0) continue;
      const got = await complete(completion, name, [command.name(), '-'], dir);
      expect(got.sort(), `${name} ${command.name()} -`).toEqual(options.sort());
    }
    expect((await complete(completion, name, ['-'], dir)).sort()).toEqual(
      optionNames(program).sort(),
    );
  });

  it('passes shellcheck as bash', async (ctx) => {
    await need('shellcheck', ctx);
    const file = join(dir, `sc-${name}.bash`);
    await writeFile(file, render(create).completion);
    const r = await run('shellcheck', ['-s', 'bash', file]).catch((e: { stdout: string }) => ({
      stdout: e.stdout,
    }));
    expect(r.stdout).toBe('');
  });
});

describe('completion of values', () => {
  const install = () => render(() => createInstallProgram()).completion;
  const bundle = () => render(() => createBundleProgram()).completion;
  const files = () => join(dir, 'files');

  it('offers bundle tarballs and directories for a bundle argument, also for the default command', async () => {
    const tgzs = ['authentik-1.2.0.tgz', 'my bundle.tgz', 'releases'];
    expect((await complete(install(), 'rick-install', ['install', ''], files())).sort()).toEqual(
      tgzs,
    );
    expect(
      (await complete(install(), 'rick-install', ['plan', '--json', ''], files())).sort(),
    ).toEqual(tgzs);
    // `rick-install <bundle.tgz>` runs install: the first word offers commands and bundles.
    const first = await complete(install(), 'rick-install', ['a'], files());
    expect(first.sort()).toEqual(['adopt', 'authentik-1.2.0.tgz']);
    // After a bundle given without a command, install's options follow.
    expect(
      await complete(install(), 'rick-install', ['authentik-1.2.0.tgz', '--ro'], files()),
    ).toEqual(['--root']);
    expect((await complete(bundle(), 'rick-bundle', ['sign', ''], files())).sort()).toEqual(tgzs);
    expect(
      (await complete(bundle(), 'rick-bundle', ['index', '--add', ''], files())).sort(),
    ).toEqual(tgzs);
  });

  it('offers directories for a directory and any file for a file', async () => {
    expect(await complete(install(), 'rick-install', ['status', '--root', ''], files())).toEqual([
      'releases',
    ]);
    // --root=DIR: bash splits the word at "=".
    expect(
      await complete(install(), 'rick-install', ['status', '--root', '=', 're'], files()),
    ).toEqual(['releases']);
    expect(await complete(bundle(), 'rick-bundle', ['build', ''], files())).toEqual(['releases']);
    expect(
      (
        await complete(
          install(),
          'rick-install',
          ['install', 'authentik-1.2.0.tgz', '--signature', ''],
          files(),
        )
      ).sort(),
    ).toEqual([
      'authentik-1.2.0.tgz',
      'authentik-1.2.0.tgz.sig',
      'my bundle.tgz',
      'notes.txt',
      'releases',
    ]);
  });

  it('offers nothing for a word value, nor past the last argument', async () => {
    expect(await complete(install(), 'rick-install', ['rollback', '--to', ''], files())).toEqual(
      [],
    );
    expect(await complete(install(), 'rick-install', ['status', ''], files())).toEqual([]);
    expect(
      await complete(install(), 'rick-install', ['install', 'authentik-1.2.0.tgz', ''], files()),
    ).toEqual([]);
    // The value of --signature is not the bundle argument: the bundle is still to come.
    expect(
      (await complete(install(), 'rick-install', ['install', '--signature', 'x.sig', ''], files()))
        .length,
    ).toBe(3);
  });

  it('offers the choices of a value, and paths for every word of a variadic argument', async () => {
    // A program of its own: neither rick program has choices or a variadic argument yet.
    const demo = () => {
      const program = new Command('demo-prog').description('a demo');
      program
        .command('pack')
        .description('pack files')
        .argument('<dirs...>', 'directories to pack')
        .addOption(new Option('--mode <mode>', 'how').choices(['fast', 'small']))
        .option('--out <file>', 'where');
      return program;
    };
    const { completion } = render(demo);
    expect(await complete(completion, 'demo-prog', ['pack', '--mode', ''], files())).toEqual([
      'fast',
      'small',
    ]);
    expect(await complete(completion, 'demo-prog', ['pack', '--mode', 's'], files())).toEqual([
      'small',
    ]);
    expect(
      await complete(completion, 'demo-prog', ['pack', 'a', 'b', '--out', 'x', ''], files()),
    ).toEqual(['releases']);
  });

  it('offers the commands after help', async () => {
    expect(await complete(bundle(), 'rick-bundle', ['help', 'in'], files())).toEqual([
      'index',
      'init',
    ]);
  });

  it('is loaded by bash-completion from /usr/local/share/bash-completion/completions', async (ctx) => {
    const loader = '/usr/share/bash-completion/bash_completion';
    if (!existsSync(loader)) {
      expect(process.env.CI, 'bash-completion is missing; run scripts/setup.sh').not.toBe('true');
      ctx.skip();
    }
    const share = join(dir, 'usr/local/share');
    await mkdir(join(share, 'bash-completion/completions'), { recursive: true });
    await writeFile(join(share, 'bash-completion/completions/rick-install'), install());
    const { stdout } = await run(
      'bash',
      [
        '--norc',
        '--noprofile',
        '-c',
        `source ${loader}; __load_completion rick-install && complete -p rick-install`,
      ],
      {
        env: { ...process.env, XDG_DATA_DIRS: share, BASH_COMPLETION_USER_DIR: join(dir, 'none') },
      },
    );
    expect(stdout.trim()).toBe('complete -F _rick_install rick-install');
  });
});

describe('the build', () => {
  it('wrote the pages and completions of the programs as they are now (npm run build)', async () => {
    for (const { name, create } of programs) {
      const built = await readFile(join(repoRoot, 'dist/man/man1', `${name}.1`), 'utf8');
      const th = /^\.TH \S+ 1 (\S+) "rick (\S+)"/m.exec(built);
      expect(th, `${name}.1 has no .TH line`).not.toBeNull();
      const reference = describeProgram(create());
      expect(built).toBe(renderManPage(reference, { date: th?.[1] ?? '', version: th?.[2] ?? '' }));
      expect(await readFile(join(repoRoot, 'dist/bash-completion/completions', name), 'utf8')).toBe(
        renderBashCompletion(reference),
      );
    }
    // Beside the single-file installer, for the bundles that carry it.
    expect(await readFile(join(repoRoot, 'dist/installer/rick-install.1'), 'utf8')).toBe(
      await readFile(join(repoRoot, 'dist/man/man1/rick-install.1'), 'utf8'),
    );
    expect(await readFile(join(repoRoot, 'dist/installer/rick-install.bash'), 'utf8')).toBe(
      await readFile(join(repoRoot, 'dist/bash-completion/completions/rick-install'), 'utf8'),
    );
  });
});
