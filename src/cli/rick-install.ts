#!/usr/bin/env node
/**
 * rick-install: the host side. Installs signed bundles atomically, plans,
 * reports status, rolls back and checks for drift. `createProgram(deps)`
 * returns a fresh program; nothing parses at import time.
 */
import { realpathSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { adoptCommand } from '../commands/adopt.js';
import { installCommand } from '../commands/install.js';
import { keysCommand } from '../commands/keys-import.js';
import { planCommand } from '../commands/plan.js';
import { rollbackCommand } from '../commands/rollback.js';
import { statusCommand } from '../commands/status.js';
import { unquarantineCommand } from '../commands/unquarantine.js';
import { updateCommand } from '../commands/update.js';
import { verifyDriftCommand } from '../commands/verify-drift.js';
import { defaultValidateUnits, type InstallerDeps } from '../host/install.js';
import { realHost } from '../host/system.js';
import { addExitCodes, addVersionOption, markRequiredOptions } from './help.js';
import { processOutput, runProgram } from './run.js';
import { handleStopSignals } from './signals.js';

export type { InstallerDeps };

export function defaultDeps(): InstallerDeps {
  const checkout = checkoutRoot();
  return {
    output: processOutput,
    host: (root) => realHost(root === undefined ? { pullProgress: terminalProgress() } : { root }),
    // Run from a checkout (node dist/cli/rick-install.js), the quadlet under
    // .cache counts as it does for rick-bundle; on a host the path is absent.
    validateUnits: (unitDir, offline) => defaultValidateUnits(unitDir, offline, checkout),
  };
}

/** The directory two levels above this file: a checkout's root when run from dist/cli/. */
function checkoutRoot(): string | undefined {
  try {
    return resolve(dirname(fileURLToPath(import.meta.url)), '../..');
  } catch {
    return undefined;
  }
}

/** podman's pull output goes to the operator's terminal; the journal gets one line per image. */
function terminalProgress(): ((chunk: Buffer) => void) | undefined {
  return process.stderr.isTTY ? (chunk) => process.stderr.write(chunk) : undefined;
}

export function createProgram(deps: InstallerDeps = defaultDeps()): Command {
  const program = new Command('rick-install')
    .description(
      'Install signed rick bundles of Podman Quadlet services atomically, with health gate and rollback.\n' +
        '`rick-install <bundle.tgz>` is short for `rick-install install <bundle.tgz>`.\n' +
        'Every command takes --root DIR to operate on an offline tree (no systemctl).',
    )
    .option('--debug', 'print stack traces of errors');
  addExitCodes(program);
  program.addCommand(installCommand(deps), { isDefault: true });
  program.addCommand(adoptCommand(deps));
  program.addCommand(planCommand(deps));
  program.addCommand(statusCommand(deps));
  program.addCommand(rollbackCommand(deps));
  program.addCommand(unquarantineCommand(deps));
  program.addCommand(verifyDriftCommand(deps));
  program.addCommand(updateCommand(deps));
  program.addCommand(keysCommand(deps));
  addVersionOption(program);
  markRequiredOptions(program);
  return program;
}

export async function main(argv: readonly string[] = process.argv.slice(2)): Promise<void> {
  handleStopSignals();
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
