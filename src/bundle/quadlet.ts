/**
 * Podman's own quadlet generator as the judge of Quadlet units:
 * `QUADLET_UNIT_DIRS=<dir> quadlet -dryrun` converts every unit of a
 * directory and exits non-zero when one is rejected. Used by the builder on
 * rendered units and by the installer on a new generation.
 */
import { accessSync, constants } from 'node:fs';
import { resolve } from 'node:path';
import { RickError } from '../errors.js';
import { type CommandRunner, realCommandRunner } from '../io/exec.js';

/** Where quadlet is looked for, in order, after $RICK_QUADLET. */
export function quadletCandidates(repoRoot?: string): string[] {
  return [
    ...(repoRoot ? [resolve(repoRoot, '.cache/podman/root/usr/libexec/podman/quadlet')] : []),
    '/usr/libexec/podman/quadlet',
    '/usr/lib/podman/quadlet',
  ];
}

export interface FindQuadletOptions {
  env?: NodeJS.ProcessEnv;
  /** The rick checkout, whose .cache holds the generator scripts/fetch-quadlet.sh unpacks. */
  repoRoot?: string;
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The quadlet generator's path: $RICK_QUADLET, else the first candidate present, else undefined. */
export function findQuadlet(options: FindQuadletOptions = {}): string | undefined {
  const fromEnv = (options.env ?? process.env).RICK_QUADLET;
  if (fromEnv) return isExecutable(fromEnv) ? fromEnv : undefined;
  return quadletCandidates(options.repoRoot).find(isExecutable);
}

export interface QuadletDryRunOptions {
  quadletPath?: string;
  runner?: CommandRunner;
  env?: NodeJS.ProcessEnv;
  repoRoot?: string;
}

export interface QuadletDryRunResult {
  ok: boolean;
  /** The generator's messages (its "Loading source unit file" chatter left out). */
  output: string[];
  /** The generated systemd units, as quadlet prints them. */
  generated: string;
  quadletPath: string;
}

/**
 * Runs quadlet in dry-run over the units of one directory. Returns
 * `ok: false` with the generator's lines naming the offending unit when it
 * rejects one; throws only when no generator can be found or started.
 */
export async function runQuadletDryRun(
  unitDir: string,
  options: QuadletDryRunOptions = {},
): Promise<QuadletDryRunResult> {
  const env = options.env ?? process.env;
  const quadletPath =
    options.quadletPath ??
    findQuadlet({ env, ...(options.repoRoot ? { repoRoot: options.repoRoot } : {}) });
  if (!quadletPath) {
    throw new RickError(
      'PREREQUISITE_MISSING',
      `podman's quadlet generator not found (looked at $RICK_QUADLET, ${quadletCandidates(options.repoRoot).join(', ')})`,
      { hint: 'run scripts/fetch-quadlet.sh, install podman 5.3 or newer, or set RICK_QUADLET' },
    );
  }
  const runner = options.runner ?? realCommandRunner;
  const result = await runner.run(quadletPath, ['-dryrun'], {
    env: { ...env, QUADLET_UNIT_DIRS: resolve(unitDir) },
    timeoutMs: 60_000,
  });
  if (result.code === 127 && result.stdout === '') {
    throw new RickError(
      'PREREQUISITE_MISSING',
      `cannot run podman's quadlet generator ${quadletPath}: ${result.stderr.trim()}`,
    );
  }
  const output = result.stderr
    .split('\n')
    .map((line) => line.replace(/^quadlet-generator\[\d+\]: /, '').trimEnd())
    .filter((line) => line !== '' && !line.startsWith('Loading source unit file'));
  return { ok: result.code === 0, output, generated: result.stdout, quadletPath };
}
