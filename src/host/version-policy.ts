/**
 * Which bundle versions a host accepts. Pure: the caller reads state.json and
 * hands over what this bundle's history says.
 *
 * - No history: install.
 * - A quarantined version (it failed its health gate on this host, or the
 *   operator quarantined it; `rick-install unquarantine` lifts it) is refused
 *   even with `allowDowngrade`: a downgrade flag says "older is fine", not
 *   "the version that broke this host is fine". Only `allowQuarantined` (an
 *   explicit, separate operator decision) lets it through. This is checked
 *   before the no-op rule so that a broken version never looks "installed, ok".
 * - The version already installed (same string): nothing to do.
 * - Lower than the highest version ever installed (semver precedence):
 *   refused unless `allowDowngrade`. Equal precedence is not lower.
 */
import semver from 'semver';

export interface BundleVersionState {
  /** Version live now, if any. */
  installed?: string;
  /** Highest version ever installed on this host. */
  highest?: string;
  /** Versions refused here: their health gate failed, or the operator quarantined them. */
  quarantined: string[];
  /** Why, by version (state.json's record; absent for quarantines recorded before reasons were). */
  quarantineReasons?: Readonly<Record<string, { reason: 'health-gate' | 'operator' }>>;
}

/** Why a version is quarantined, in the words of the refusal. */
function quarantinedBecause(state: BundleVersionState, version: string): string {
  switch (state.quarantineReasons?.[version]?.reason) {
    case 'health-gate':
      return 'it failed its health gate on this host and was rolled back';
    case 'operator':
      return 'the operator quarantined it (rollback --quarantine)';
    default:
      return 'recorded before rick kept reasons (a failed health gate or rollback --quarantine)';
  }
}

export interface VersionPolicyOptions {
  /** `--allow-downgrade`: accept a version lower than the highest ever installed. */
  allowDowngrade: boolean;
  /** Accept a quarantined version (an explicit operator override; off by default). */
  allowQuarantined?: boolean;
  /** The bundle's name, for the pasteable fix in a refusal. */
  bundle?: string;
}

export type VersionDecision =
  | { action: 'install' }
  | { action: 'noop'; reason: string }
  | {
      action: 'refuse';
      code: 'VERSION_REFUSED' | 'VERSION_QUARANTINED';
      message: string;
      hint?: string;
    };

export function decideVersion(
  candidate: string,
  state: BundleVersionState | undefined,
  options: VersionPolicyOptions,
): VersionDecision {
  if (semver.valid(candidate) !== candidate) {
    return {
      action: 'refuse',
      code: 'VERSION_REFUSED',
      message: `${JSON.stringify(candidate)} is not a semantic version`,
    };
  }
  if (!state) return { action: 'install' };
  if (state.quarantined.includes(candidate) && !options.allowQuarantined) {
    return {
      action: 'refuse',
      code: 'VERSION_QUARANTINED',
      message: `version ${candidate} is quarantined: ${quarantinedBecause(state, candidate)}`,
      hint: `publish a fixed version, or lift the quarantine once its cause is gone: rick-install unquarantine ${options.bundle ?? '<bundle>'}@${candidate}; --allow-downgrade does not lift it`,
    };
  }
  if (state.installed === candidate) {
    return { action: 'noop', reason: `version ${candidate} is already installed` };
  }
  if (
    state.highest !== undefined &&
    semver.valid(state.highest) &&
    semver.lt(candidate, state.highest) &&
    !options.allowDowngrade
  ) {
    return {
      action: 'refuse',
      code: 'VERSION_REFUSED',
      message: `version ${candidate} is lower than ${state.highest}, the highest ever installed here`,
      hint: 'pass --allow-downgrade to install an older version on purpose',
    };
  }
  return { action: 'install' };
}
