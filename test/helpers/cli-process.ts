/**
 * Runs the BUILT rick-install (dist/cli/rick-install.js, from `npm run build`)
 * as a real process, the way the crash and lock tests need it: a SIGKILL must
 * hit a whole process, not a test worker. `builtInstaller` is the
 * single-file installer (dist/installer/rick-install.cjs), what a host runs
 * as /usr/local/bin/rick-install and the update timer starts.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './host-tree.js';

export const builtCli = join(repoRoot, 'dist/cli/rick-install.js');
export const builtInstaller = join(repoRoot, 'dist/installer/rick-install.cjs');

export function requireBuiltCli(): void {
  for (const file of [builtCli, builtInstaller]) {
    if (!existsSync(file)) throw new Error(`${file} is missing: run npm run build first`);
  }
}

export interface ProcessResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface StartedProcess {
  pid: number;
  done: Promise<ProcessResult>;
}

export function startCli(
  args: string[],
  env: NodeJS.ProcessEnv = {},
  program = builtCli,
): StartedProcess {
  const child = spawn(process.execPath, [program, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const done = new Promise<ProcessResult>((resolve) => {
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { pid: child.pid ?? -1, done };
}

export function runCli(
  args: string[],
  env: NodeJS.ProcessEnv = {},
  program = builtCli,
): Promise<ProcessResult> {
  return startCli(args, env, program).done;
}
