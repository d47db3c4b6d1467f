#!/usr/bin/env node
/**
 * rick-bundle: the build side. Renders bundles, signs and verifies them,
 * and makes signing keys. `createProgram(deps)` returns a fresh program;
 * nothing parses at import time.
 */
import { realpathSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { registerBuild } from '../commands/build.js';
import { registerInit } from '../commands/init.js';
import { registerKeygen } from '../commands/keygen.js';
import { registerKeys } from '../commands/keys.js';
import { registerPin } from '../commands/pin.js';
import { registerIndex } from '../commands/release-index.js';
import { registerSign } from '../commands/sign.js';
import { registerVerify } from '../commands/verify.js';
import { ExitCode } from '../errors.js';
import { type CommandRunner, realCommandRunner } from '../io/exec.js';
import { addExitCodes, addVersionOption, markRequiredOptions } from './help.js';
import { type Output, processOutput, runProgram } from './run.js';

export interface BundleProgramDeps {
  output: Output;
  env: NodeJS.ProcessEnv;
  cwd: string;
  runner: CommandRunner;
  /** The rick checkout (default installer, shared templates, cached quadlet). */
  repoRoot: string;
  /** The clock (`index` issues the index now); default the system clock. */
  now?: () => Date;
}

/** The checkout this file belongs to: src/cli/ or dist/cli/, two levels down. */
export const defaultRepoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

export function defaultDeps(): BundleProgramDeps {
  return {
    output: processOutput,
    env: process.env,
    cwd: process.cwd(),
    runner: realCommandRunner,
    repoRoot: defaultRepoRoot,
  };
}

/** The codes rick-bundle exits with: the build side's refusals, no host's. */
export const bundleExitCodes: readonly ExitCode[] = [
  ExitCode.ok,
  ExitCode.internal,
  ExitCode.usage,
  ExitCode.invalidBundle,
  ExitCode.untrustedSignature,
  ExitCode.missingPrerequisite,
  ExitCode.feed,
  ExitCode.imagePull,
  ExitCode.policy,
];

export function createProgram(deps: BundleProgramDeps = defaultDeps()): Command {
  const program = new Command('rick-bundle')
    .description(
      'Build, sign and verify rick bundles of Podman Quadlet services, and write the signed release index.',
    )
    .option('--debug', 'print stack traces of errors');
  addExitCodes(program, bundleExitCodes);
  // `build --version X` is the bundle's version: the program's own --version
  // is read only before the command name.
  addVersionOption(program).enablePositionalOptions();
  registerBuild(program, deps);
  registerSign(program, deps);
  registerVerify(program, deps);
  registerKeygen(program, deps);
  registerIndex(program, deps);
  registerKeys(program, deps);
  registerInit(program, deps);
  registerPin(program, deps);
  // Read only before the command name, --debug must be each command's too.
  for (const command of program.commands) {
    if (!command.options.some((o) => o.long === '--debug')) {
      command.option('--debug', 'print stack traces of errors');
    }
  }
  markRequiredOptions(program);
  return program;
}

export async function main(argv: readonly string[] = process.argv.slice(2)): Promise<void> {
  process.exitCode = await runProgram(createProgram(), argv);
}

function isEntryPoint(): boolean {
  const script = process.argv[1];
  if (!script) return false;
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntryPoint()) await main();
