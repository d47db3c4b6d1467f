/**
 * What both feed sources choose by, pure: a GitHub releases list
 * (releases.ts) and a signed release index (index-select.ts) offer a bundle
 * releases in different shapes, but a host takes one only if it is in the
 * configured channel and range and above what the host has (newer than the
 * installed version, not below the highest ever installed, which the
 * installer refuses anyway), and says the same when there is none.
 */
import semver from 'semver';
import type { Channel } from './config.js';

/** What the host knows about one bundle (from state.json). */
export interface BundleStatus {
  installed: string | undefined;
  /** Highest version ever installed; the installer refuses anything lower. */
  highest: string | undefined;
  quarantined: readonly string[];
}

export interface SelectionPolicy {
  channel: Channel;
  range: string;
}

/**
 * Whether a release is in the channel and the range: a prerelease (by its
 * version, or as the feed marks it) only on the prerelease channel.
 */
export function inPolicy(version: string, prerelease: boolean, policy: SelectionPolicy): boolean {
  const allowPrerelease = policy.channel === 'prerelease';
  if ((prerelease || semver.prerelease(version) !== null) && !allowPrerelease) return false;
  return semver.satisfies(version, policy.range, { includePrerelease: allowPrerelease });
}

/** Whether a version is newer than the installed one and not below the highest ever installed. */
export function aboveFloor(version: string, status: BundleStatus): boolean {
  if (status.installed !== undefined && semver.lte(version, status.installed)) return false;
  if (status.highest !== undefined && semver.lt(version, status.highest)) return false;
  return true;
}

/** Why nothing is installed when no release is in policy and above the floor. */
export function nothingNewReason(policy: SelectionPolicy, status: BundleStatus): string {
  const floor = status.installed ?? status.highest;
  return floor !== undefined
    ? `nothing newer than ${floor} in range ${policy.range}`
    : `no ${policy.channel === 'prerelease' ? '' : 'stable '}release in range ${policy.range}`;
}
