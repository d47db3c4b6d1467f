/**
 * /var/lib/rick/state.json: what this host has installed, the highest version
 * of each bundle ever installed (the downgrade floor), quarantined versions,
 * the generation last activated successfully, and a bounded history.
 *
 * Written atomically (temp file, fsync, rename, fsync of the directory), so a
 * crash leaves the old or the new state, never a torn one.
 */
import { constants } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import * as z from 'zod';
import { bundleNamePattern } from '../bundle/manifest.js';
import '../bundle/zod.js';
import { describe, RickError, wrapError } from '../errors.js';
import { checkpoint } from './fault.js';

export const STATE_SCHEMA_VERSION = 1;
export const DEFAULT_KEEP_GENERATIONS = 3;
export const HISTORY_LIMIT = 200;

export const historyOutcomes = [
  'installed',
  'rolled-back',
  'rollback-failed',
  'rollback',
  'recovered',
  'adopted',
] as const;
export type HistoryOutcome = (typeof historyOutcomes)[number];

/**
 * Why a version is quarantined: its health gate failed on this host, or the
 * operator said so (`rollback --quarantine`). A quarantine recorded before
 * rick kept reasons has none and reads as `unknown`: both could write it.
 */
export const quarantineReasons = ['health-gate', 'operator'] as const;
export type QuarantineReason = (typeof quarantineReasons)[number] | 'unknown';

const quarantineWhySchema = z.strictObject({
  reason: z.enum(quarantineReasons),
  time: z.string(),
  /** The failure the gate saw, or the rollback that quarantined it. */
  detail: z.string().optional(),
});
export type QuarantineWhy = z.infer<typeof quarantineWhySchema>;

const bundleStateSchema = z.strictObject({
  installed: z.string().optional(),
  highest: z.string().optional(),
  /** The versions refused on this host (the list `update` and installs read). */
  quarantined: z.array(z.string()).default([]),
  /** Why each of them is: keyed by version; absent in files written before reasons were kept. */
  quarantineReasons: z.record(z.string(), quarantineWhySchema).optional(),
});
export type BundleState = z.infer<typeof bundleStateSchema>;

const historyEntrySchema = z.strictObject({
  generation: z.number().int().positive(),
  bundle: z.string(),
  version: z.string(),
  time: z.string(),
  outcome: z.enum(historyOutcomes),
  /** Why it failed, or what was rolled back from. */
  detail: z.string().optional(),
});
export type HistoryEntry = z.infer<typeof historyEntrySchema>;

export const stateSchema = z.strictObject({
  schemaVersion: z.literal(STATE_SCHEMA_VERSION),
  /** The generation last activated and confirmed healthy (what recovery returns to). */
  live: z.number().int().positive().optional(),
  /** Highest generation number ever allocated; numbers are never reused. */
  lastGeneration: z.number().int().nonnegative().default(0),
  keepGenerations: z.number().int().min(1).max(100).default(DEFAULT_KEEP_GENERATIONS),
  /** Keyed by bundle name, which names directories: the manifest's own rule. */
  bundles: z
    .record(z.string().regex(bundleNamePattern, 'must be a bundle name'), bundleStateSchema)
    .default({}),
  history: z.array(historyEntrySchema).default([]),
});
export type HostState = z.infer<typeof stateSchema>;

export function emptyState(): HostState {
  return {
    schemaVersion: STATE_SCHEMA_VERSION,
    lastGeneration: 0,
    keepGenerations: DEFAULT_KEEP_GENERATIONS,
    bundles: {},
    history: [],
  };
}

/**
 * What to do about a state.json that rick cannot read. rick writes it
 * atomically, so it was changed outside rick; whichever file takes its place
 * is checked against the live generation before anything is done with it.
 */
const STATE_REPAIR_HINT =
  'rick never writes it partially, so it was changed by hand: put back a copy, or remove it to have the live generation adopted (quarantines and history are then lost); rick checks either against the live generation before trusting it';

/**
 * Reads a small file of rick's own state without following a link at its
 * path; undefined when it does not exist. A link or anything but a regular
 * file there is refused: rick never makes one.
 */
export async function readStateFile(file: string): Promise<string | undefined> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'ELOOP') {
      throw new RickError('STATE_INCONSISTENT', `${file} is a symbolic link`, {
        hint: `rick writes it as a regular file and never follows a link there: remove the link (rm ${file}) after checking what it pointed at`,
      });
    }
    throw wrapError(error, 'IO_ERROR', `cannot read ${file}`);
  }
  try {
    if (!(await handle.stat()).isFile()) {
      throw new RickError('STATE_INCONSISTENT', `${file} is not a regular file`, {
        hint: `rick writes it as a regular file: move what is there away`,
      });
    }
    return await handle.readFile('utf8');
  } catch (error) {
    throw wrapError(error, 'IO_ERROR', `cannot read ${file}`);
  } finally {
    await handle.close();
  }
}

/** Reads state.json; a host that never installed anything has the empty state. */
export async function readState(file: string): Promise<HostState> {
  const text = await readStateFile(file);
  if (text === undefined) return emptyState();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new RickError('STATE_INCONSISTENT', `${file} is not valid JSON: ${describe(error)}`, {
      cause: error,
      hint: STATE_REPAIR_HINT,
    });
  }
  const parsed = stateSchema.safeParse(json);
  if (!parsed.success) {
    const problems = parsed.error.issues
      .map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`)
      .join('; ');
    throw new RickError('STATE_INCONSISTENT', `${file} is not a rick state file: ${problems}`, {
      hint: STATE_REPAIR_HINT,
    });
  }
  return parsed.data;
}

export async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Writes a file so that a crash leaves the old or the new content: temp, fsync, rename, fsync dir. */
export async function writeFileAtomic(
  file: string,
  data: string | Buffer,
  mode = 0o644,
): Promise<void> {
  const dir = dirname(file);
  const tmp = join(dir, `.${basename(file)}.tmp-${process.pid}`);
  try {
    // A fresh file: a link or file planted at the temporary name is replaced, never followed.
    await rm(tmp, { force: true });
    const handle = await open(
      tmp,
      constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
      mode,
    );
    try {
      await handle.writeFile(data);
      await handle.chmod(mode);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, file);
    await fsyncDir(dir);
  } catch (error) {
    await rm(tmp, { force: true });
    throw wrapError(error, 'IO_ERROR', `cannot write ${file}`);
  }
}

export async function writeState(file: string, state: HostState): Promise<void> {
  const valid = stateSchema.parse({
    ...state,
    history: state.history.slice(-HISTORY_LIMIT),
  });
  await checkpoint('state-write');
  await writeFileAtomic(file, `${JSON.stringify(valid, null, 2)}\n`, 0o644);
}

export function bundleState(state: HostState, bundle: string): BundleState {
  return state.bundles[bundle] ?? { quarantined: [] };
}

export function quarantine(
  state: HostState,
  bundle: string,
  version: string,
  why: QuarantineWhy,
): void {
  const entry = bundleState(state, bundle);
  if (!entry.quarantined.includes(version)) entry.quarantined.push(version);
  entry.quarantineReasons = { ...entry.quarantineReasons, [version]: why };
  state.bundles[bundle] = entry;
}

/** Lifts a quarantine; false when the version was not quarantined. */
export function unquarantine(state: HostState, bundle: string, version: string): boolean {
  const entry = state.bundles[bundle];
  if (!entry?.quarantined.includes(version)) return false;
  entry.quarantined = entry.quarantined.filter((v) => v !== version);
  if (entry.quarantineReasons) {
    const { [version]: _lifted, ...rest } = entry.quarantineReasons;
    entry.quarantineReasons = Object.keys(rest).length ? rest : undefined;
    if (!entry.quarantineReasons) delete entry.quarantineReasons;
  }
  return true;
}

/** Why `version` is quarantined, as recorded; `unknown` for a quarantine recorded before reasons were. */
export function quarantineWhy(
  entry: BundleState | undefined,
  version: string,
): { reason: QuarantineReason; time?: string; detail?: string } {
  return entry?.quarantineReasons?.[version] ?? { reason: 'unknown' };
}

/** The reason in words, for status and refusals. */
export function describeQuarantine(why: { reason: QuarantineReason; detail?: string }): string {
  const detail = why.detail ? ` (${why.detail})` : '';
  switch (why.reason) {
    case 'health-gate':
      return `it failed its health gate on this host${detail}`;
    case 'operator':
      return `the operator quarantined it${detail}`;
    case 'unknown':
      return 'recorded before rick kept reasons (a failed health gate or rollback --quarantine)';
  }
}
