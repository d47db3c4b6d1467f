/**
 * `rick-install update`: the commander adapter of the update tick
 * (update-tick.ts), with the real deps of the full program.
 */
import { resolve } from 'node:path';
import { Command } from 'commander';
import { processOutput } from '../cli/run.js';
import { formatExitCodes } from '../errors.js';
import { createHttpClient } from '../feed/client.js';
import { isJournalStream, warningLine } from '../feed/journal.js';
import {
  completeThroughPipeline,
  installThroughPipeline,
  runUpdate,
  type UpdateDeps,
} from '../feed/update-tick.js';
import type { InstallerDeps } from '../host/install.js';

/** The real UpdateDeps on top of the installer's deps. */
export function updateDepsFrom(deps: InstallerDeps, root: string | undefined): UpdateDeps {
  const host = deps.host(root);
  const log = (line: string) => deps.output.stdout(`${line}\n`);
  const journal = deps.output.stdout === processOutput.stdout && isJournalStream(process.env);
  return {
    http: createHttpClient(process.env),
    env: process.env,
    now: () => host.clock.now(),
    log,
    warn: (line) => log(warningLine(line, journal)),
    install: (request) => installThroughPipeline(request, host, log, deps.validateUnits),
    completeInterrupted: (root) => completeThroughPipeline(root, host, log, deps.validateUnits),
  };
}

/** `rick-install update`, with the deps made for the `--root` given. */
export function updateCommandWith(makeDeps: (root: string | undefined) => UpdateDeps): Command {
  return new Command('update')
    .description(
      'follow the release feed of /etc/rick/rick.conf: install the newest allowed release of each followed bundle',
    )
    .option('--root <dir>', 'operate on the host tree under DIR (offline: no systemctl)')
    .option(
      '--now',
      'take releases whose staged rollout has not reached this host yet (signed index feeds)',
    )
    .option('--debug', 'print stack traces')
    .addHelpText('after', `\nExit codes:\n${formatExitCodes()}\n`)
    .action(async (opts: { root?: string; now?: boolean }) => {
      const root = opts.root === undefined ? undefined : resolve(opts.root);
      await runUpdate(
        { ...(root === undefined ? {} : { root }), ...(opts.now ? { now: true } : {}) },
        makeDeps(root),
      );
    });
}

/** `rick-install update` in the full program. */
export function updateCommand(deps: InstallerDeps): Command {
  return updateCommandWith((root) => updateDepsFrom(deps, root));
}
