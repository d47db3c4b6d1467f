/**
 * Host prerequisites a bundle needs, decided from what the host reports.
 * Pure: the caller runs `podman --version` and hands the output over.
 */
import semver from 'semver';
import type { Manifest } from '../bundle/manifest.js';
import { RickError } from '../errors.js';

export interface PodmanRequirement {
  version: string;
  reason: string;
}

/** Quadlet reads a symlinked subdirectory of /etc/containers/systemd from this release. */
export const PODMAN_SYMLINKED_UNIT_DIR = '5.3.0';
/** Quadlet understands `.pod` units from this release. */
export const PODMAN_POD_UNITS = '5.0.0';

/**
 * Parses `podman --version` output (`podman version 5.4.2`, also
 * `podman-remote version 5.3.1-dev`). Returns `major.minor.patch` without any
 * pre-release or build suffix, or undefined when the output is not a version.
 */
export function parsePodmanVersion(output: string): string | undefined {
  const match = /^podman(?:-remote)? version (\d+)\.(\d+)(?:\.(\d+))?\S*\s*$/m.exec(output.trim());
  if (!match) return undefined;
  const [, major, minor, patch] = match;
  return `${Number(major)}.${Number(minor)}.${Number(patch ?? 0)}`;
}

/** Everything that sets a lower bound on podman for this bundle, with why. */
export function podmanRequirements(manifest: Manifest): PodmanRequirement[] {
  const needs: PodmanRequirement[] = [
    {
      version: PODMAN_SYMLINKED_UNIT_DIR,
      reason: 'quadlet reads the symlinked unit directory /etc/containers/systemd/rick',
    },
    { version: manifest.requires.podman, reason: `bundle ${manifest.name} requires it` },
  ];
  if (manifest.files.some((f) => f.kind === 'quadlet' && f.path.endsWith('.pod'))) {
    needs.push({ version: PODMAN_POD_UNITS, reason: 'the bundle ships .pod units' });
  }
  return needs;
}

/**
 * Refuses with PREREQUISITE_MISSING when podman is absent or older than any
 * requirement. `found` is the version as parsePodmanVersion returns it (a
 * pre-release of a needed version counts as that version: 5.3.0-dev has the
 * 5.3 quadlet).
 */
export function checkPodmanVersion(found: string | undefined, manifest: Manifest): void {
  const needs = podmanRequirements(manifest);
  const highest = needs.reduce((a, b) => (semver.gt(b.version, a.version) ? b : a));
  if (found === undefined) {
    throw new RickError(
      'PREREQUISITE_MISSING',
      `podman not found; bundle ${manifest.name} needs podman ${highest.version} or later (${highest.reason})`,
      { hint: 'install podman from your distribution' },
    );
  }
  const core = semver.coerce(found)?.version;
  if (core === undefined) {
    throw new RickError(
      'PREREQUISITE_MISSING',
      `cannot read the podman version ${JSON.stringify(found)}`,
    );
  }
  const unmet = needs.filter((n) => semver.lt(core, n.version));
  if (unmet.length) {
    const why = unmet.map((n) => `${n.version} because ${n.reason}`).join('; ');
    const needed = unmet.reduce((a, b) => (semver.gt(b.version, a.version) ? b : a)).version;
    throw new RickError(
      'PREREQUISITE_MISSING',
      `podman ${found} is too old: bundle ${manifest.name} needs podman ${needed} or later (${why})`,
      { hint: `upgrade podman to ${needed} or later` },
    );
  }
}
