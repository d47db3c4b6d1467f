/**
 * `rick-install update`: the commander adapter of the update tick
 * (update-tick.ts), with the real deps of the full program.
 */
import { resolve } from 'node:path';
import { Command } from 'commander';
import { processOutput } from '../cli/run.js';
import { createHttpClient } from '../feed/client.js';
import { isJournalStream, warningLine } from '../feed/journal.js';
import {
  completeThroughPipeline,
  installThroughPipeline,
  runUpdate,
  type UpdateDeps,
} from '../feed/update-tick.js';
import type { InstallerDeps } from '../host/install.js';
import { hostPaths } from '../host/paths.js';
import { readState } from '../host/state.js';
import { formatJson, updateJson } from './json-output.js';

/** The real UpdateDeps on top of the installer's deps. */
export function updateDepsFrom(
  deps: InstallerDeps,
  root: string | undefined,
  options: { json?: boolean } = {},
): UpdateDeps {
  const host = deps.host(root);
  // With --json, stdout holds the JSON alone.
  const progress = options.json ? deps.output.stderr : deps.output.stdout;
  const log = (line: string) => progress(`${line}\n`);
  const journal = progress === processOutput.stdout && isJournalStream(process.env);
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
export function updateCommandWith(
  makeDeps: (root: string | undefined, options: { json?: boolean }) => UpdateDeps,
  /** Where --json prints; without it, --json is not offered. */
  stdout?: (text: string) => void,
): Command {
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
    .option('--json', 'print what was installed as JSON (docs/json.md); progress goes to stderr')
    .action(async (opts: { root?: string; now?: boolean; json?: boolean }) => {
      const root = opts.root === undefined ? undefined : resolve(opts.root);
      const json = Boolean(opts.json) && stdout !== undefined;
      const stateFile = hostPaths(root ?? '/').stateFile;
      const before = json ? await readState(stateFile) : undefined;
      await runUpdate(
        { ...(root === undefined ? {} : { root }), ...(opts.now ? { now: true } : {}) },
        makeDeps(root, { json }),
      );
      if (before && stdout) stdout(formatJson(updateJson(before, await readState(stateFile))));
    });
}

/** `rick-install update` in the full program. */
export function updateCommand(deps: InstallerDeps): Command {
  return updateCommandWith(
    (root, options) => updateDepsFrom(deps, root, options),
    deps.output.stdout,
  );
}
