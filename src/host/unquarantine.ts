/**
 * `rick-install unquarantine NAME@VERSION`: lifts a quarantine, so that an
 * install or the update timer takes the version again. A gate that failed
 * for a cause outside the bundle (the database was down) must not ban a
 * version forever; lifting is the operator's decision, never automatic.
 */
import semver from 'semver';
import { bundleNamePattern } from '../bundle/manifest.js';
import { RickError } from '../errors.js';
import { checkRoot } from './install.js';
import { acquireLock } from './lock.js';
import { hostPaths } from './paths.js';
import { describeQuarantine, quarantineWhy, readState, unquarantine, writeState } from './state.js';
import type { Host } from './system.js';

export interface Unquarantine {
  bundle: string;
  version: string;
}

/** Splits `NAME@VERSION`; anything else is a usage error. */
export function parseUnquarantineArgument(value: string): Unquarantine {
  const at = value.lastIndexOf('@');
  const bundle = value.slice(0, at);
  const version = value.slice(at + 1);
  if (at <= 0 || !bundleNamePattern.test(bundle) || semver.valid(version) !== version) {
    throw new RickError(
      'USAGE',
      `unquarantine takes NAME@VERSION, such as authentik@1.2.0, not ${JSON.stringify(value)}`,
    );
  }
  return { bundle, version };
}

export async function liftQuarantine(
  target: Unquarantine,
  options: { root?: string },
  ctx: { host: Host; log: (line: string) => void },
): Promise<void> {
  await checkRoot(options.root);
  const paths = hostPaths(options.root ?? '/');
  const lock = await acquireLock(paths.lockFile, {
    purpose: `unquarantine ${target.bundle}@${target.version}`,
    now: () => ctx.host.clock.now(),
  });
  try {
    const state = await readState(paths.stateFile);
    const entry = state.bundles[target.bundle];
    const why = quarantineWhy(entry, target.version);
    if (!unquarantine(state, target.bundle, target.version)) {
      const others = entry?.quarantined ?? [];
      throw new RickError(
        'USAGE',
        `${target.bundle} ${target.version} is not quarantined on this host; nothing was changed`,
        {
          hint: others.length
            ? `quarantined versions of ${target.bundle}: ${others.join(', ')}`
            : `no version of ${target.bundle} is quarantined here (rick-install status lists quarantines)`,
        },
      );
    }
    await writeState(paths.stateFile, state);
    ctx.log(
      `lifted the quarantine of ${target.bundle} ${target.version} (${describeQuarantine(why)}); an install or the update timer may take it again`,
    );
  } finally {
    await lock.release();
  }
}
