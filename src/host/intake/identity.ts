/**
 * What was asked for is what is installed. Every install states which
 * bundle and version it expects, and the verified manifest must be exactly
 * that; a file name, a release asset or a mirror cannot make the host
 * install anything else, even a bundle signed by the trusted key.
 *
 * The expectation comes from, in this order:
 *   - `rick-install update`: the bundle and version it chose from the feed,
 *     with the feed's channel and range, which are judged again here on the
 *     verified manifest (the asset's name is only a claim);
 *   - `--expect NAME@VERSION` (what bootstrap.sh passes);
 *   - the file name, `<name>-<version>.tgz` as `rick-bundle build` writes it.
 * A file whose name says neither is refused unless `--expect` is given.
 *
 * Pure: the caller reads the bundle; this only compares.
 */
import semver from 'semver';
import { bundleNamePattern } from '../../bundle/manifest.js';
import { RickError } from '../../errors.js';

/** The feed's policy, judged on the verified manifest (update only). */
export interface FeedPolicy {
  channel: 'stable' | 'prerelease';
  range: string;
}

export interface Expectation {
  bundle: string;
  version: string;
  /** Who says so, for messages: `its file name`, `--expect`, `release v1.2.0 of acme/releases`. */
  source: string;
  /** Set by `update`: the channel and range the verified manifest must satisfy. */
  policy?: FeedPolicy;
}

export interface Identity {
  bundle: string;
  version: string;
}

/** Splits `NAME@VERSION`; anything else is a usage error. */
export function parseExpectArgument(value: string): Identity {
  const at = value.lastIndexOf('@');
  const bundle = value.slice(0, at);
  const version = value.slice(at + 1);
  if (at <= 0 || !bundleNamePattern.test(bundle) || semver.valid(version) !== version) {
    throw new RickError(
      'USAGE',
      `--expect must be NAME@VERSION, such as authentik@1.2.0, not ${JSON.stringify(value)}`,
    );
  }
  return { bundle, version };
}

/**
 * The bundle and version a file name states (`<name>-<version>.tgz`), or
 * undefined when it states none. Bundle names hold no dots and versions
 * start with `MAJOR.`, so the name ends at the last dash before the first dot.
 */
export function identityFromFileName(fileName: string): Identity | undefined {
  if (!fileName.endsWith('.tgz')) return undefined;
  const stem = fileName.slice(0, -'.tgz'.length);
  const firstDot = stem.indexOf('.');
  if (firstDot < 0) return undefined;
  const dash = stem.lastIndexOf('-', firstDot);
  if (dash <= 0) return undefined;
  const bundle = stem.slice(0, dash);
  const version = stem.slice(dash + 1);
  if (!bundleNamePattern.test(bundle) || semver.valid(version) !== version) return undefined;
  return { bundle, version };
}

/**
 * The expectation of an install by hand: `--expect` when given, else the
 * file name. Refused (before anything is read) when neither says what the
 * file should hold.
 */
export function expectationFor(fileName: string, expect: Identity | undefined): Expectation {
  if (expect) return { ...expect, source: '--expect' };
  const named = identityFromFileName(fileName);
  if (!named) {
    throw new RickError(
      'USAGE',
      `${fileName} does not say which bundle and version it holds: its name is not <name>-<version>.tgz`,
      {
        hint: 'keep the name the release published, or state it with --expect NAME@VERSION',
      },
    );
  }
  return { ...named, source: 'its file name' };
}

/**
 * Checks the verified manifest against the expectation: the bundle name
 * first, then (for `update`) the channel and range on the manifest's own
 * version, then the exact version. Throws BUNDLE_MISMATCH or
 * VERSION_REFUSED naming what was expected and what was found.
 */
export function checkIdentity(
  manifest: Identity,
  expectation: Expectation,
  fileName: string,
): void {
  const found = `${manifest.bundle} ${manifest.version}`;
  const expected = `${expectation.bundle} ${expectation.version}`;
  const fromFeed = expectation.policy !== undefined;
  const mismatch = () =>
    new RickError(
      'BUNDLE_MISMATCH',
      `${fileName} holds ${found} (its signed manifest), not ${expected} as ${expectation.source} says`,
      {
        hint: fromFeed
          ? 'the release serves another bundle under this name; nothing was installed or quarantined, and the next tick tries again'
          : expectation.source === '--expect'
            ? 'nothing was installed; check which file you meant'
            : `nothing was installed; if ${found} is what you mean to install, pass --expect ${manifest.bundle}@${manifest.version}`,
      },
    );
  if (manifest.bundle !== expectation.bundle) throw mismatch();
  const policy = expectation.policy;
  if (policy) {
    const prerelease = semver.prerelease(manifest.version) !== null;
    if (prerelease && policy.channel !== 'prerelease') {
      throw new RickError(
        'VERSION_REFUSED',
        `${fileName} holds ${found} (its signed manifest), a prerelease, and CHANNEL=${policy.channel} takes none`,
        {
          hint: 'nothing was installed or quarantined; set CHANNEL=prerelease in rick.conf to take prereleases',
        },
      );
    }
    const includePrerelease = policy.channel === 'prerelease';
    if (!semver.satisfies(manifest.version, policy.range, { includePrerelease })) {
      throw new RickError(
        'VERSION_REFUSED',
        `${fileName} holds ${found} (its signed manifest), outside RANGE=${policy.range}`,
        { hint: 'nothing was installed or quarantined; widen RANGE in rick.conf to take it' },
      );
    }
  }
  if (manifest.version !== expectation.version) throw mismatch();
}
