/**
 * Cleaning up generations (src/host/generations.ts describes the store):
 * what an interrupted run leaves that is never a generation, one generation
 * recovery removes, and pruning down to the generations kept, never the live
 * one nor the last confirmed ones a rollback would go back to.
 */
import { readdir, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { HostPaths } from './paths.js';
import '../bundle/zod.js';
import { wrapError } from '../errors.js';
import { checkpoint } from './fault.js';
import { generationDir } from './generation-layout.js';
import { hostLinks } from './generation-links.js';
import { checkGenerationDir, checkGenerationsDir, listGenerations } from './generation-read.js';
import { pathExists } from './generation-write.js';
import { fsyncDir, type HistoryEntry, type HistoryOutcome } from './state.js';

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
