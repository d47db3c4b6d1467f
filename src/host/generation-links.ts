/**
 * Making a generation live on the host (src/host/generations.ts describes
 * the store): `current` flipped with one rename, and the links rick keeps on
 * the host, each pointing through `current` (the quadlet unit directory, the
 * installer, the combined fragments, Caddy's sites, the rick-units
 * generator), so that they are made once and never change again.
 */
import { mkdir, readlink, rename, rm, symlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { type HostPaths, RICK_STATE_DIR } from './paths.js';
import '../bundle/zod.js';
import { wrapError } from '../errors.js';
import { checkpoint } from './fault.js';
import { FRAGMENT_FILES, hasPlainUnits, hasSites, INSTALLER_FILE } from './generation-layout.js';
import type { FileProblem } from './generation-read.js';
import { fsyncDir } from './state.js';
import { readGeneratorState, writeUnitGenerator } from './unit-generator.js';

/**
 * Points `current` at generation n (or removes it, for undefined) with one
 * rename(2) of a new symlink, then fsyncs the directory.
 */
export async function flipCurrent(paths: HostPaths, n: number | undefined): Promise<void> {
  const tmp = `${paths.current}.tmp-${process.pid}`;
  try {
    if (n === undefined) {
      await rm(paths.current, { force: true });
    } else {
      await rm(tmp, { force: true });
      await symlink(`generations/${n}`, tmp);
      await checkpoint('flip-link-created');
      await rename(tmp, paths.current);
    }
    await fsyncDir(dirname(paths.current));
  } catch (error) {
    await rm(tmp, { force: true });
    throw wrapError(error, 'IO_ERROR', `cannot point ${paths.current} at generation ${n}`);
  }
}

/** /etc/caddy/rick and its target through `current`. */
export function sitesLink(paths: HostPaths): [string, string] {
  return [paths.caddySitesLink, `${RICK_STATE_DIR}/current/caddy`];
}

/** What a generation needs on the host besides the links every host has. */
export interface HostNeeds {
  /** A bundle ships Caddy sites: /etc/caddy/rick. */
  sites: boolean;
  /** A bundle ships plain systemd units: the rick-units generator. */
  units: boolean;
}

export function hostNeedsOf(generation: {
  bundles: ReadonlyMap<string, { files: ReadonlyMap<string, Buffer> }>;
}): HostNeeds {
  const bundles = [...generation.bundles.values()];
  return { sites: bundles.some(hasSites), units: bundles.some(hasPlainUnits) };
}

/**
 * The links rick keeps on the host, each to its target through `current`:
 * the quadlet unit directory, the installer, and the combined fragments
 * systemd reads at boot.
 */
export function hostLinks(
  paths: HostPaths,
  needs: HostNeeds = { sites: false, units: false },
): Array<[string, string]> {
  return [
    [paths.quadletLink, `${RICK_STATE_DIR}/current/quadlet`],
    [paths.installerLink, `${RICK_STATE_DIR}/current/${INSTALLER_FILE}`],
    // Relative, so that systemd-tmpfiles and systemd-sysusers with --root
    // (an offline image) follow them inside the image too.
    [paths.tmpfilesLink, `../..${RICK_STATE_DIR}/current/${FRAGMENT_FILES.tmpfiles}`],
    [paths.sysusersLink, `../..${RICK_STATE_DIR}/current/${FRAGMENT_FILES.sysusers}`],
    // With the first Caddy site: what the host's Caddyfile imports.
    ...(needs.sites ? [sitesLink(paths)] : []),
  ];
}

/**
 * Refuses, before anything changes, a `/etc/containers/systemd/rick` that is
 * not rick's link: podman would load whatever it leads to, not the
 * generation rick writes and gates. Returns the path and what it is.
 */
export async function checkQuadletLink(paths: HostPaths): Promise<FileProblem | undefined> {
  const [link, target] = hostLinks(paths)[0]!;
  let existing: string;
  try {
    existing = await readlink(link);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'EINVAL')
      return { file: link, problem: `is not a symbolic link, expected one to ${target}` };
    throw wrapError(error, 'IO_ERROR', `cannot read ${link}`);
  }
  return existing === target
    ? undefined
    : { file: link, problem: `points at ${existing}, expected ${target}` };
}

/**
 * Creates the host links (hostLinks) once, /etc/caddy/rick with the first
 * Caddy site, and writes the rick-units generator with the first plain unit.
 * The links point through `current`, so they never change again. An
 * existing path that is not ours is left alone and reported (the unit link
 * was checked before anything changed: checkQuadletLink).
 */
export async function ensureHostLinks(
  paths: HostPaths,
  needs: HostNeeds = { sites: false, units: false },
): Promise<string[]> {
  const notes: string[] = [];
  const links = hostLinks(paths, needs);
  for (const [link, target] of links) {
    let existing: string | undefined;
    try {
      existing = await readlink(link);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EINVAL') {
        notes.push(`${link} exists and is not a symlink: left alone`);
        continue;
      }
      if (code !== 'ENOENT') throw wrapError(error, 'IO_ERROR', `cannot read ${link}`);
    }
    if (existing === target) continue;
    if (existing !== undefined) {
      notes.push(`${link} points at ${existing}, not ${target}: left alone`);
      continue;
    }
    try {
      await mkdir(dirname(link), { recursive: true, mode: 0o755 });
      const tmp = `${link}.tmp-${process.pid}`;
      await rm(tmp, { force: true });
      await symlink(target, tmp);
      await rename(tmp, link);
      await fsyncDir(dirname(link));
    } catch (error) {
      throw wrapError(error, 'IO_ERROR', `cannot create ${link}`);
    }
  }
  if (needs.units) {
    const state = await readGeneratorState(paths);
    if (state === 'foreign')
      notes.push(`${paths.unitGenerator} is not rick's generator: left alone`);
    else if (state !== 'current') await writeUnitGenerator(paths);
  }
  return notes;
}
