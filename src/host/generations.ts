/**
 * Generations on disk: write one completely before it can go live, read one
 * back, flip `current`, clean up after a crashed run, prune old ones.
 *
 * A generation is written under generations/<n>.tmp-<pid>, made durable
 * (one syncfs of its filesystem, or an fsync per file where that is not
 * available; then every directory fsynced), then renamed to generations/<n>:
 * a directory named by a bare number is always complete. `generation.json`
 * (written last) records the sha256 of every file it holds, for `verify` and
 * for the check that guards carrying a bundle on.
 *
 * Each bundle keeps, besides its rendered files:
 *   bundles/<b>/manifest.json   the verified manifest, byte for byte
 *   bundles/<b>/facts.json      GIDs and UIDs resolved at install, secret NAMES only
 *   bundles/<b>/source.json     its files as shipped, tokens unsubstituted (no secrets),
 *                               in one file: one fsync instead of one per unit
 *   bundles/<b>/secrets.json    the secret values it was rendered with (0600), when it has any
 * which is enough to render the bundle again, for a later generation, without
 * its secrets file: a bundle carried into a new generation is rendered from
 * its source and facts by the same substitution as its install, never edited.
 *
 * Everything read back is untrusted local state: nothing is followed through
 * a symbolic link (O_NOFOLLOW, lstat, and every directory on the way checked
 * to be the generation's own), names and paths must pass the manifest's own
 * rules, and the files must be the ones generation.json recorded.
 *
 * The record's schema, the stored types and where each file lives in a
 * generation are in generation-layout.ts; this module re-exports them.
 */
import { mkdir, readdir, readlink, rename, rm, symlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { type HostPaths, RICK_STATE_DIR } from './paths.js';
import '../bundle/zod.js';
import { wrapError } from '../errors.js';
import { checkpoint } from './fault.js';
import {
  FRAGMENT_FILES,
  generationDir,
  hasPlainUnits,
  hasSites,
  INSTALLER_FILE,
} from './generation-layout.js';
import {
  checkGenerationDir,
  checkGenerationsDir,
  type FileProblem,
  listGenerations,
} from './generation-read.js';
import { pathExists } from './generation-write.js';
import { fsyncDir, type HistoryEntry, type HistoryOutcome } from './state.js';
import { readGeneratorState, writeUnitGenerator } from './unit-generator.js';

export type {
  GenerationContent,
  GenerationRecord,
  StoredBundle,
  StoredGeneration,
} from './generation-layout.js';
export {
  FRAGMENT_FILES,
  generationDir,
  hasPlainUnits,
  hasSites,
  INSTALLER_FILE,
  parseSources,
  renderedLocation,
  renderedMode,
  renderFragments,
  SECRETS_FILE,
  SOURCE_FILE,
  serializeSources,
} from './generation-layout.js';
export type {
  BundleReadResult,
  FileProblem,
} from './generation-read.js';
export {
  carryBundle,
  GenerationReader,
  listGenerations,
  readGeneration,
  readGenerationRecord,
  readLiveGenerationNumber,
  readStoredBundle,
} from './generation-read.js';
export type { WriteGenerationOptions } from './generation-write.js';
export {
  PER_FILE_SYNC_MAX,
  writeGeneration,
} from './generation-write.js';

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

/**
 * Removes what an interrupted run leaves that is never a generation:
 * half-written generation directories (`<n>.tmp-<pid>`, never renamed into
 * place, so never live), generations renamed for pruning (`<n>.pruning`,
 * renamed away after they stopped being kept, so never live either), and temporary links and files of an interrupted
 * flip, link creation, state write or sysusers run. Complete generations are
 * never removed here: only recovery removes one, and only the one an intent
 * record names as written by the interrupted run and never confirmed.
 */
export async function removeStrays(paths: HostPaths): Promise<string[]> {
  const removed: string[] = [];
  const remove = async (path: string) => {
    await rm(path, { recursive: true, force: true });
    removed.push(path);
  };
  // A stray `rick.tmp-*` link in the quadlet directory would make quadlet
  // load every unit twice.
  const strays: Array<[string, RegExp]> = [
    [paths.generationsDir, /^[1-9][0-9]*\.(tmp-[0-9]+|pruning)$/],
    [
      dirname(paths.current),
      /^(current\.tmp-|\.state\.json\.tmp-|\.intent\.json\.tmp-|\.created\.json\.tmp-|\.apply-)/,
    ],
    ...hostLinks(paths, { sites: true, units: true }).map(([link]): [string, RegExp] => [
      dirname(link),
      new RegExp(`^${basename(link).replace(/[.]/g, '\\.')}\\.tmp-`),
    ]),
    [dirname(dirname(paths.unitGenerator)), /^\.rick-units\.tmp-/],
  ];
  if (!(await checkGenerationsDir(paths))) strays.shift();
  for (const [dir, pattern] of strays) {
    let names: string[] = [];
    try {
      names = await readdir(dir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    for (const name of names) if (pattern.test(name)) await remove(join(dir, name));
  }
  if (removed.length) await fsyncDir(paths.generationsDir).catch(() => {});
  return removed;
}

/** Removes generation n, which an intent record names as never confirmed. */
export async function removeGeneration(paths: HostPaths, n: number): Promise<boolean> {
  const dir = generationDir(paths, n);
  if (!(await pathExists(dir))) return false;
  await checkGenerationDir(dir);
  await rm(dir, { recursive: true, force: true });
  await fsyncDir(paths.generationsDir);
  return true;
}

/** History outcomes that record a generation as live after its gate (or adopted as live). */
const CONFIRMED_OUTCOMES: ReadonlySet<HistoryOutcome> = new Set([
  'installed',
  'rollback',
  'adopted',
]);
/** History outcomes that record a generation failing, or undone before it was confirmed. */
const FAILED_OUTCOMES: ReadonlySet<HistoryOutcome> = new Set([
  'rolled-back',
  'rollback-failed',
  'recovered',
]);

/**
 * Generations that were confirmed live, most recently live first, from
 * state.json's history (oldest entry first). A generation counts once, at
 * the last time it was confirmed.
 */
export function confirmedLiveOrder(history: readonly HistoryEntry[]): number[] {
  const order: number[] = [];
  for (let i = history.length - 1; i >= 0; i--) {
    const h = history[i]!;
    if (CONFIRMED_OUTCOMES.has(h.outcome) && !order.includes(h.generation))
      order.push(h.generation);
  }
  return order;
}

/**
 * Which generations on disk to prune, ascending. Kept, up to `keep` in all:
 * the live one, then the generations last confirmed live (most recently live
 * first), then those history says nothing about (newest first), and only
 * then those that failed their gate or were undone (newest first). So a
 * failed generation goes before any that ran, and the one to roll back to
 * survives any number of failed releases.
 */
export function planPrune(
  onDisk: readonly number[],
  keep: number,
  live: number | undefined,
  history: readonly HistoryEntry[],
): number[] {
  const present = new Set(onDisk);
  const confirmed = confirmedLiveOrder(history).filter((n) => present.has(n));
  const failed = new Set(
    history.filter((h) => FAILED_OUTCOMES.has(h.outcome)).map((h) => h.generation),
  );
  const newestFirst = [...onDisk].sort((a, b) => b - a);
  const rest = newestFirst.filter((n) => !confirmed.includes(n));
  const ranked = [
    ...new Set([
      ...(live !== undefined && present.has(live) ? [live] : []),
      ...confirmed,
      ...rest.filter((n) => !failed.has(n)),
      ...rest.filter((n) => failed.has(n)),
    ]),
  ];
  const kept = new Set(ranked.slice(0, Math.max(keep, 1)));
  if (live !== undefined) kept.add(live);
  return [...onDisk].filter((n) => !kept.has(n)).sort((a, b) => a - b);
}

/** The name a generation takes while it is being pruned: never a number, so never a generation. */
export function pruningName(n: number): string {
  return `${n}.pruning`;
}

/**
 * Prunes what planPrune says. Each generation is first renamed out of the
 * numbered names (all of them, then one fsync of the directory), and only
 * then deleted: a run cut in the middle of a deletion leaves a `<n>.pruning`
 * directory, which the next run removes (removeStrays), never a numbered,
 * incomplete generation that `rollback --to` could pick.
 */
export async function pruneGenerations(
  paths: HostPaths,
  keep: number,
  live: number | undefined,
  history: readonly HistoryEntry[],
): Promise<number[]> {
  const removed = planPrune(await listGenerations(paths), keep, live, history);
  if (!removed.length) return removed;
  try {
    for (const n of removed) {
      const renamed = join(paths.generationsDir, pruningName(n));
      await rm(renamed, { recursive: true, force: true });
      await rename(generationDir(paths, n), renamed);
    }
    await fsyncDir(paths.generationsDir);
  } catch (error) {
    throw wrapError(error, 'IO_ERROR', `cannot prune generations in ${paths.generationsDir}`);
  }
  await checkpoint('prune-renamed');
  for (const n of removed) {
    await rm(join(paths.generationsDir, pruningName(n)), { recursive: true, force: true });
  }
  await fsyncDir(paths.generationsDir);
  return removed;
}
