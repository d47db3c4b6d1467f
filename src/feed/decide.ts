/**
 * The one decision skeleton of an update tick, for either feed source
 * (source.ts): per followed bundle, the source's candidate, then the
 * install, which judges the verified bundle against the host's policy, then
 * the outcome. A refusal by policy holds the release (neither a failure nor
 * quarantined, hold.ts); a rollback has quarantined the version (the
 * installer did), a carried-out decision the caller records before it
 * raises the error; any other failure (a download, a signature, a bundle
 * other than the one named) is the mirror's doing, not the release's, and
 * records nothing, so the next tick tries again. The caller records what is
 * installed and held, and its cache, each source in its own files.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, isRickError } from '../errors.js';
import { hostPaths } from '../host/paths.js';
import type { HeldReleases } from '../host/policy/held.js';
import {
  type BundleState,
  bundleState,
  type QuarantineReason,
  quarantineWhy,
  readState,
} from '../host/state.js';
import type { RickConfig } from './config.js';
import { heldLine, heldRelease, isPolicyRefusal } from './hold.js';
import type { FeedSource, SkippedRelease } from './source.js';
import type { UpdateDeps } from './update-deps.js';

export interface Decided {
  /** Releases held until the operator grants what they need (src/host/policy/held.ts). */
  held: HeldReleases;
  /** The bundles installed by this decision. */
  updated: string[];
  /** The first failure, a rollback included; undefined when every bundle is done. */
  firstError: unknown;
}

/** Whether a decision's failure is a rollback: the decision was carried out, and is recorded. */
export function isRollback(error: unknown): boolean {
  return isRickError(error) && error.code === 'ROLLED_BACK';
}

/** Decides per bundle and installs; an interruption stops the other bundles, any other failure does not. */
export async function decideBundles<R>(
  source: FeedSource<R>,
  config: RickConfig,
  root: string,
  deps: UpdateDeps,
): Promise<Decided> {
  const paths = hostPaths(root);
  let firstError: unknown;
  const held: HeldReleases = {};
  const updated: string[] = [];
  for (const bundle of config.bundles) {
    const status = bundleState(await readState(paths.stateFile), bundle);
    const choice = source.choose(bundle, {
      installed: status.installed,
      highest: status.highest,
      quarantined: status.quarantined,
    });
    for (const s of choice.skipped) deps.log(skippedLine(bundle, s, status));
    for (const note of choice.notes) deps.log(`${bundle}: ${note}`);
    const release = choice.release;
    if (release === undefined) {
      deps.log(`${bundle}: nothing new (${choice.reason})`);
      continue;
    }
    for (const line of choice.waiting) deps.log(`${bundle}: ${line}`);
    const version = source.version(release);
    deps.log(
      `${bundle}: installing ${version} from ${source.origin(release)} (installed: ${status.installed ?? 'none'})`,
    );
    try {
      await installRelease(source, release, bundle, config, root, deps);
      deps.log(`${bundle}: installed ${version}`);
      updated.push(bundle);
    } catch (error) {
      // Stopped by a signal, once the host was put back: the other bundles wait for the next tick.
      if (isRickError(error) && error.code === 'INTERRUPTED') throw error;
      if (isPolicyRefusal(error)) {
        // Not a failure and not quarantined: held until the operator grants it.
        const h = heldRelease(bundle, version, error.message, root);
        held[bundle] = h;
        deps.log(heldLine(bundle, h));
        continue;
      }
      if (isRollback(error)) {
        deps.log(`${bundle}: rolled back ${version} because ${(error as Error).message}`);
      } else {
        deps.log(
          `${bundle}: not installed ${version} because ${isRickError(error) ? `${error.code}: ` : ''}${describe(error)}`,
        );
      }
      firstError ??= error;
    }
  }
  return { held, updated, firstError };
}

/** The installed version of each followed bundle, as state.json has it now. */
export async function readInstalled(
  root: string,
  bundles: readonly string[],
): Promise<Record<string, string>> {
  const state = await readState(hostPaths(root).stateFile);
  const installed: Record<string, string> = {};
  for (const bundle of bundles) {
    const version = state.bundles[bundle]?.installed;
    if (version) installed[bundle] = version;
  }
  return installed;
}

/** The line for a newer release passed over, with the reason its quarantine was recorded for. */
function skippedLine(bundle: string, s: SkippedRelease, status: BundleState): string {
  if (s.why === 'yanked') return `${bundle}: skipping ${s.version}, yanked: ${s.reason}`;
  return `${bundle}: skipping ${s.version}, ${quarantinedFor(quarantineWhy(status, s.version))}`;
}

function quarantinedFor(why: { reason: QuarantineReason; detail?: string }): string {
  switch (why.reason) {
    case 'health-gate':
      return 'quarantined after a failed install';
    case 'operator':
      return `quarantined by the operator${why.detail ? ` (${why.detail})` : ''}`;
    case 'unknown':
      return 'quarantined (recorded before rick kept reasons: a failed install or rollback --quarantine)';
  }
}

/**
 * Downloads the chosen release and installs it through the installer, which
 * verifies it and takes it only if its signed manifest is exactly the bundle
 * and version chosen, in the feed's channel and range.
 */
async function installRelease<R>(
  source: FeedSource<R>,
  release: R,
  bundle: string,
  config: RickConfig,
  root: string,
  deps: UpdateDeps,
): Promise<void> {
  const file = await source.fetchBundle(release);
  const dir = await mkdtemp(join(tmpdir(), 'rick-update-'));
  try {
    const bundlePath = join(dir, file.name);
    const signaturePath = join(dir, file.signature.name);
    await writeFile(bundlePath, file.bytes, { mode: 0o600 });
    await writeFile(signaturePath, file.signature.bytes, { mode: 0o600 });
    await deps.install({
      bundle,
      bundlePath,
      signaturePath,
      root,
      expect: {
        bundle,
        version: source.version(release),
        source: source.expectSource(release),
        policy: { channel: config.channel, range: config.range },
      },
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
