import { existsSync, statSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ExitCode, formatExitCodesMarkdown } from '../../src/errors.js';
import { formatRulesMarkdown } from '../../src/host/policy/restricted/rule-docs.js';
import { builtCli, requireBuiltCli, runCli } from '../helpers/cli-process.js';

const repo = join(import.meta.dirname, '../..');

/** README.md and every page of docs/, by path relative to the repository. */
async function pages(): Promise<string[]> {
  const docs = (await readdir(join(repo, 'docs'))).filter((f) => f.endsWith('.md')).sort();
  return ['README.md', ...docs.map((f) => `docs/${f}`)];
}

/** The text outside fenced code blocks, where Markdown links are links. */
function prose(text: string): string {
  return text.replace(/^```[\s\S]*?^```/gm, '');
}

/** GitHub's anchor for a heading: lowercased, punctuation dropped, spaces to dashes. */
function slugOf(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

function anchorsOf(text: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  for (const match of prose(text).matchAll(/^#{1,6}\s+(.+)$/gm)) {
    const slug = slugOf(match[1]!);
    const n = seen.get(slug) ?? 0;
    anchors.add(n === 0 ? slug : `${slug}-${n}`);
    seen.set(slug, n + 1);
  }
  return anchors;
}

/** Code spans and fenced blocks: where the pages spell commands out. */
function code(text: string): string {
  const blocks = [...text.matchAll(/^```[^\n]*\n([\s\S]*?)^```/gm)].map((m) => m[1]);
  const spans = [...prose(text).matchAll(/`([^`\n]+)`/g)].map((m) => m[1]);
  return [...blocks, ...spans].join('\n');
}

/**
 * Flags of other programs the pages name (caddy, podman, systemctl, gpg,
 * sha256sum, systemd-analyze): not rick's, so not in its help.
 */
const otherProgramsFlags = new Set([
  '--adapter',
  '--config',
  '--exit-policy',
  '--group-add',
  '--ignore-missing',
  '--no-block',
  '--recursive-errors',
  '--show-keys',
  '--homedir',
  '--dearmor',
  '--keyring',
  // npm's
  '--ignore-scripts',
]);

const operatorPages = [
  'README.md',
  'docs/bundles.md',
  'docs/install.md',
  'docs/host-layout.md',
  'docs/recovery.md',
  'docs/caddy-and-units.md',
  'docs/feeds.md',
  'docs/timer.md',
  'docs/releasing.md',
  'docs/exit-codes.md',
  'docs/development.md',
];

/** Every program's and command's --help, bootstrap.sh and release-sign.sh (whose flags the pages name too). */
async function helpTexts(): Promise<{ commands: Record<string, string[]>; text: string }> {
  requireBuiltCli();
  const commands: Record<string, string[]> = {};
  let text = await readFile(join(repo, 'installer/bootstrap.sh'), 'utf8');
  // The release scripts' usage, which docs/releasing.md shows.
  text += await readFile(join(repo, 'scripts/release-sign.sh'), 'utf8');
  for (const program of ['rick-install', 'rick-bundle']) {
    const cli = builtCli.replace('rick-install.js', `${program}.js`);
    const top = (await runCli(['--help'], {}, cli)).stdout;
    text += top;
    const names = [...(top.split('Commands:\n')[1] ?? '').matchAll(/^ {2}([a-z]+)/gm)]
      .map((m) => m[1]!)
      .filter((c) => c !== 'help');
    commands[program] = names;
    for (const name of names) text += (await runCli([name, '--help'], {}, cli)).stdout;
  }
  return { commands, text };
}

describe('docs', () => {
  it('names only commands, flags and exit codes the programs have', async () => {
    const { commands, text } = await helpTexts();
    expect(commands['rick-install']).toContain('rollback');
    expect(commands['rick-bundle']).toContain('index');
    const wrong: string[] = [];
    // The README and the operator's pages it leads to; the reference pages
    // (policy.md, databases.md) quote podman's and setpriv's flags at length.
    for (const page of operatorPages) {
      const source = await readFile(join(repo, page), 'utf8');
      const spelled = code(source);
      for (const m of spelled.matchAll(/\b(rick-install|rick-bundle) ([a-z][a-z-]*)\b/g)) {
        if (!commands[m[1]!]!.includes(m[2]!)) wrong.push(`${page}: ${m[0]} (no such command)`);
      }
      for (const m of spelled.matchAll(/(?<![\w-])--[a-z][a-z-]*/g)) {
        if (!otherProgramsFlags.has(m[0]) && !text.includes(m[0])) {
          wrong.push(`${page}: ${m[0]} (in no --help, nor bootstrap.sh)`);
        }
      }
      const codes = new Set<number>(Object.values(ExitCode));
      for (const m of source.matchAll(/\bexit(?:s| with)? (\d+)\b/g)) {
        if (!codes.has(Number(m[1]))) wrong.push(`${page}: ${m[0]} (no such exit code)`);
      }
    }
    expect(wrong).toEqual([]);
  }, 60_000);

  it('docs/exit-codes.md shows the exit-code table that --help prints (npm run docs writes it)', async () => {
    const page = await readFile(join(repo, 'docs/exit-codes.md'), 'utf8');
    const table = page.match(
      /<!-- exit-codes: written by `npm run docs` from src\/errors\.ts -->\n([\s\S]*?)\n<!-- \/exit-codes -->/,
    );
    expect(table, 'docs/exit-codes.md lost its exit-code markers').not.toBeNull();
    expect(table?.[1]).toBe(formatExitCodesMarkdown());
  });

  it('docs/policy.md shows the rules of restricted as their modules register them (npm run docs writes it)', async () => {
    const page = await readFile(join(repo, 'docs/policy.md'), 'utf8');
    const table = page.match(
      /<!-- rules: written by `npm run docs` from src\/host\/policy\/restricted\/rule-docs\.ts -->\n([\s\S]*?)\n<!-- \/rules -->/,
    );
    expect(table, 'docs/policy.md lost its rule table markers').not.toBeNull();
    expect(table?.[1]).toBe(formatRulesMarkdown());
    expect(table?.[1]).toContain(
      '| `host-paths` | HostPath Volumes (Baseline); Volume Types (Restricted) |',
    );
  });

  it('the README starts with the two commands CI runs, and stays short', async () => {
    const readme = await readFile(join(repo, 'README.md'), 'utf8');
    expect(readme.split('\n').length).toBeLessThanOrEqual(300);
    const first = readme.match(/^```sh\n([\s\S]*?)\n```/m)?.[1] ?? '';
    const commands = first.split('\n').map((l) => l.replace(/\s+#.*$/, ''));
    expect(commands).toEqual([
      'scripts/setup.sh && npm run example',
      'scripts/setup.sh && npm run check && npm run test:e2e',
    ]);
    // Nothing but the title and the tagline before them.
    expect(readme.indexOf('```sh')).toBeLessThan(readme.indexOf('\n## '));
    const ci = await readFile(join(repo, '.ci/run'), 'utf8');
    expect(ci).toContain('scripts/setup.sh && npm run example\n');
    expect(ci).toContain('npm run check\n');
    expect(ci).toContain('npm run test:e2e\n');
  });

  it('every relative link of README.md and docs/*.md points at a file, and an anchor there', async () => {
    const broken: string[] = [];
    let links = 0;
    for (const page of await pages()) {
      const text = await readFile(join(repo, page), 'utf8');
      for (const match of prose(text).matchAll(/\]\(([^)\s]+)\)/g)) {
        const target = match[1]!;
        if (/^[a-z]+:/i.test(target)) continue;
        links++;
        const [path, anchor] = target.split('#') as [string, string | undefined];
        const file = path === '' ? join(repo, page) : resolve(dirname(join(repo, page)), path);
        if (!existsSync(file)) {
          broken.push(`${page}: ${target} (no ${relative(repo, file)})`);
          continue;
        }
        if (anchor === undefined) continue;
        if (!file.endsWith('.md') || statSync(file).isDirectory()) {
          broken.push(`${page}: ${target} (an anchor into a file that is not Markdown)`);
          continue;
        }
        if (!anchorsOf(await readFile(file, 'utf8')).has(anchor)) {
          broken.push(`${page}: ${target} (no heading #${anchor} in ${relative(repo, file)})`);
        }
      }
    }
    expect(broken).toEqual([]);
    expect(links).toBeGreaterThan(20);
  });

  it('computes anchors as GitHub does', () => {
    expect(slugOf('Building bundles: `rick-bundle`')).toBe('building-bundles-rick-bundle');
    expect(slugOf('`/etc/rick/rick.conf`')).toBe('etcrickrickconf');
    expect(slugOf('Local state: never destroy on a guess')).toBe(
      'local-state-never-destroy-on-a-guess',
    );
  });
});
