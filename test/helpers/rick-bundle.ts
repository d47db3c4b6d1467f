/**
 * Runs rick-bundle in-process through its real program and top-level
 * handler, capturing what it prints.
 */
import { cp, mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createProgram } from '../../src/cli/rick-bundle.js';
import { runProgram } from '../../src/cli/run.js';
import { realCommandRunner } from '../../src/io/exec.js';
import { repoRoot } from './quadlet.js';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export async function runBundleCli(
  args: string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string; now?: () => Date } = {},
): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const output = {
    stdout: (t: string) => {
      stdout += t;
    },
    stderr: (t: string) => {
      stderr += t;
    },
  };
  const program = createProgram({
    output,
    env: options.env ?? { PATH: process.env.PATH, SOURCE_DATE_EPOCH: '1700000000' },
    cwd: options.cwd ?? process.cwd(),
    runner: realCommandRunner,
    repoRoot,
    ...(options.now ? { now: options.now } : {}),
  });
  const code = await runProgram(program, args, output);
  return { code, stdout, stderr };
}

export async function makeTempDir(prefix = 'rick-test-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

/** A small installer stand-in: the builder only packs its bytes. */
export async function writeTestInstaller(dir: string): Promise<string> {
  const path = join(dir, 'rick-install.cjs');
  await writeFile(path, '#!/usr/bin/env node\nconsole.log("rick-install test stand-in");\n');
  return path;
}

/** Writes a bundle directory from a map of relative paths to contents. */
export async function writeBundleDir(dir: string, files: Record<string, string>): Promise<string> {
  for (const [path, content] of Object.entries(files)) {
    const full = join(dir, path);
    await mkdir(join(full, '..'), { recursive: true });
    await writeFile(full, content);
  }
  return dir;
}

/** A copy of bundles/authentik (and templates/) in a temp tree, to break on purpose. */
export async function copyAuthentik(root: string): Promise<string> {
  await cp(join(repoRoot, 'bundles/authentik'), join(root, 'bundles/authentik'), {
    recursive: true,
  });
  await cp(join(repoRoot, 'templates'), join(root, 'templates'), { recursive: true });
  return join(root, 'bundles/authentik');
}
