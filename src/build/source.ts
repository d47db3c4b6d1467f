/**
 * Reads what a build starts from: the bundle directory's bundle.yaml, the
 * --vars files, and where the sources came from (commit and time).
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { Toolchain } from '../bundle/build-record.js';
import { describe, RickError } from '../errors.js';
import type { CommandRunner } from '../io/exec.js';
import {
  BUNDLE_DEFINITION_FILE,
  type BundleDefinition,
  formatDefinitionProblems,
  mergeVariables,
  parseBundleDefinition,
  parseVariablesFile,
} from './definition.js';

export interface BundleSource {
  /** Absolute path of the bundle directory. */
  dir: string;
  definition: BundleDefinition;
  /** Defaults overridden by the vars files, not yet resolved. */
  variables: Record<string, unknown>;
}

async function readYaml(path: string, what: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new RickError('INPUT_NOT_FOUND', `cannot read ${what} ${path}: ${describe(error)}`);
  }
  try {
    return parseYaml(text, { prettyErrors: true, uniqueKeys: true });
  } catch (error) {
    throw new RickError(
      'DEFINITION_INVALID',
      `${path}: not valid YAML: ${describe(error).split('\n')[0]}`,
    );
  }
}

export async function readBundleSource(
  bundleDir: string,
  varsFiles: readonly string[] = [],
): Promise<BundleSource> {
  const dir = resolve(bundleDir);
  const definitionPath = join(dir, BUNDLE_DEFINITION_FILE);
  const parsed = parseBundleDefinition(await readYaml(definitionPath, 'bundle definition'));
  if (!parsed.ok) {
    throw new RickError(
      'DEFINITION_INVALID',
      `${definitionPath}: ${formatDefinitionProblems(parsed.problems)}`,
    );
  }
  const overrides: Record<string, unknown>[] = [];
  for (const file of varsFiles) {
    const vars = parseVariablesFile(await readYaml(file, 'vars file'));
    if (!vars.ok) {
      throw new RickError(
        'DEFINITION_INVALID',
        `${file}: ${formatDefinitionProblems(vars.problems)}`,
      );
    }
    overrides.push(vars.variables);
  }
  return {
    dir,
    definition: parsed.definition,
    variables: mergeVariables(parsed.definition.variables, overrides),
  };
}

export interface SourceInfoOptions {
  bundleDir: string;
  env: NodeJS.ProcessEnv;
  runner: CommandRunner;
  /** --source-commit, when given. */
  sourceCommit?: string;
}

export interface SourceInfo {
  commit: string | null;
  /** Seconds since the epoch: the bundle's createdAt and every tar entry's mtime. */
  epoch: number;
  /** Where the time came from, for the build's report. */
  epochFrom: 'SOURCE_DATE_EPOCH' | 'commit' | 'none';
}

const commitPattern = /^[0-9a-f]{7,64}$/;

async function git(
  runner: CommandRunner,
  dir: string,
  args: string[],
): Promise<string | undefined> {
  const result = await runner.run('git', ['-C', dir, ...args], { timeoutMs: 10_000 });
  return result.code === 0 ? result.stdout.trim() : undefined;
}

/**
 * The source commit: --source-commit, else GITHUB_SHA, else the checkout's
 * HEAD, else null. The time: SOURCE_DATE_EPOCH, else that commit's committer
 * time, else 0 (1970-01-01) when there is no commit, so that a build never
 * depends on the clock. A commit whose time git cannot give is refused.
 */
export async function readSourceInfo(options: SourceInfoOptions): Promise<SourceInfo> {
  const given = options.sourceCommit ?? options.env.GITHUB_SHA;
  let commit: string | null = null;
  if (given !== undefined && given !== '') {
    const lower = given.toLowerCase();
    if (!commitPattern.test(lower)) {
      throw new RickError(
        'USAGE',
        `source commit ${JSON.stringify(given)} is not a hex commit id (7 to 64 digits)`,
      );
    }
    commit = lower;
  } else {
    const head = await git(options.runner, options.bundleDir, ['rev-parse', 'HEAD']);
    commit = head && commitPattern.test(head) ? head : null;
  }

  const sde = options.env.SOURCE_DATE_EPOCH;
  if (sde !== undefined && sde !== '') {
    if (!/^\d{1,12}$/.test(sde)) {
      throw new RickError(
        'USAGE',
        `SOURCE_DATE_EPOCH must be whole seconds since 1970, not ${JSON.stringify(sde)}`,
      );
    }
    return { commit, epoch: Number(sde), epochFrom: 'SOURCE_DATE_EPOCH' };
  }
  if (commit !== null) {
    const result = await options.runner.run(
      'git',
      ['-C', options.bundleDir, 'show', '-s', '--format=%ct', `${commit}^{commit}`],
      { timeoutMs: 10_000 },
    );
    const time = result.code === 0 ? result.stdout.trim() : '';
    if (/^\d+$/.test(time)) return { commit, epoch: Number(time), epochFrom: 'commit' };
    // A release whose commit is known must carry that commit's time: falling
    // back to 1970 here (git refusing a checkout owned by another user, a
    // shallow clone without the commit) would publish bytes nobody can
    // rebuild from the tag.
    const said = `${result.stderr}${result.stdout}`.trim().split('\n')[0] ?? '';
    throw new RickError(
      'PREREQUISITE_MISSING',
      `cannot read the time of source commit ${commit} with git in ${options.bundleDir}${said ? `: ${said}` : ''}`,
      {
        hint: 'set SOURCE_DATE_EPOCH to the commit time (git log -1 --format=%ct), or let git read the checkout (git config --global --add safe.directory DIR; a full clone for an older commit)',
      },
    );
  }
  return { commit, epoch: 0, epochFrom: 'none' };
}

/**
 * What this build runs on: the Node.js running it, rick's version, and the
 * esbuild installed beside rick in `repoRoot` (the one `npm run build`
 * builds the single-file installer with), null when rick has none (an
 * install without dev dependencies).
 */
export async function readToolchain(repoRoot: string, rick: string): Promise<Toolchain> {
  let esbuild: string | null = null;
  try {
    const path = createRequire(join(repoRoot, 'package.json')).resolve('esbuild/package.json');
    esbuild = (JSON.parse(await readFile(path, 'utf8')) as { version: string }).version;
  } catch {
    esbuild = null;
  }
  return { node: process.versions.node, rick, esbuild };
}
