/**
 * Recovery: what a run finds when it takes the lock, and what it may do
 * about it.
 *
 * rick's local state is written at three moments: the generations on disk,
 * `current`, and state.json (what rick confirmed healthy). A run that
 * switches `current` first writes an intent record, /var/lib/rick/intent.json
 * (durably: temp file, fsync, rename, fsync of the directory), naming the
 * generation live before it (`from`) and the one it makes live (`to`), and
 * removes it only once state.json holds the outcome. After a crash the next
 * run acts on that record alone:
 *
 *   - state.json confirms `to`: the run finished; the record is dropped.
 *   - state.json confirms `from` and `current` is `to`: the run died after
 *     the flip. `from` is restored (its services too), and `to` is removed
 *     when the run had written it and no outcome of it was recorded.
 *   - state.json confirms `from` and `current` is `from`: either `to` never
 *     went live (phase `prepared`), and it is removed on the same condition;
 *     or it did, and the run (or its rollback) died after flipping back but
 *     before `from`'s services were back, or that rollback failed (phase
 *     `live` or `restoring`): the reverse activation (daemon-reload, the
 *     restart plan from `to` to `from`, its gate) is done again before
 *     anything is removed. A record without a phase (written by an older
 *     rick) cannot tell, so it is taken as live while `to` is on disk.
 *
 * The record's phase is written durably right after each flip: `live` once
 * `to` is live, `restoring` once `from` is back.
 *
 * Anything else is an inconsistency: a state.json restored from a backup,
 * reset or edited, `current` moved by hand, generations newer than any
 * state.json records, bundle versions that differ between state.json and the
 * live generation. Nothing is undone and no generation is deleted on a
 * guess: the run refuses, saying what disagrees, and
 * `rick-install rollback --to <n>` records which generation is meant to be
 * live. A state.json that is missing altogether beside generations (removed
 * by hand) is rebuilt from the live generation, undoing nothing.
 */
import { lstat, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import semver from 'semver';
import * as z from 'zod';
import '../bundle/zod.js';
import { describe, RickError } from '../errors.js';
import { type CheckUnits, readGenerationGraph } from './activation/graph.js';
import { restore } from './activation/run.js';
import { settleAdoptions } from './adopt-record.js';
import { restoreDatabases } from './database/provision.js';
import { damagedGenerationError, generationDamage } from './drift.js';
import { checkpoint } from './fault.js';
import {
  flipCurrent,
  generationDir,
  listGenerations,
  readGeneration,
  readGenerationRecord,
  readLiveGenerationNumber,
  removeGeneration,
  removeStrays,
  type StoredGeneration,
} from './generations.js';
import type { HostPaths } from './paths.js';
import {
  fsyncDir,
  type HostState,
  readState,
  readStateFile,
  writeFileAtomic,
  writeState,
} from './state.js';
import type { Host } from './system.js';

export type Log = (line: string) => void;

const intentSchema = z.strictObject({
  schemaVersion: z.literal(1),
  operation: z.enum(['install', 'rollback']),
  /** What the run was doing, for the operator: `install demo 2.0.0`. */
  reason: z.string(),
  /** The generation live before the run; absent on a first install. */
  from: z.number().int().positive().optional(),
  /** The generation the run makes live. */
  to: z.number().int().positive(),
  /** The run writes `to` itself (an install); a rollback returns to an existing one. */
  created: z.boolean(),
  /**
   * How far the run got: `prepared` (nothing went live yet), `live` (`to`
   * went live), `restoring` (`from` is back, its services maybe not yet).
   * Absent in records of older versions.
   */
  phase: z.enum(['prepared', 'live', 'restoring']).optional(),
  pid: z.number().int(),
  time: z.string(),
});
export type Intent = z.infer<typeof intentSchema>;

export async function readIntent(paths: HostPaths): Promise<Intent | undefined> {
  const text = await readStateFile(paths.intentFile);
  if (text === undefined) return undefined;
  let parsed: ReturnType<typeof intentSchema.safeParse>;
  try {
    parsed = intentSchema.safeParse(JSON.parse(text));
  } catch {
    parsed = intentSchema.safeParse(undefined);
  }
  if (!parsed.success) {
    throw new RickError(
      'STATE_INCONSISTENT',
      `${paths.intentFile} is not an intent record rick wrote`,
      {
        hint: `rick writes it atomically, so it was changed by hand; nothing was changed. Name the generation that should be live with rick-install rollback --to <n>, which replaces it`,
      },
    );
  }
  return parsed.data;
}

/** Records, durably, that `to` is about to replace `from` as the live generation. */
export async function writeIntent(
  paths: HostPaths,
  intent: Omit<Intent, 'schemaVersion' | 'pid' | 'phase'>,
): Promise<void> {
  const record: Intent = { schemaVersion: 1, ...intent, phase: 'prepared', pid: process.pid };
  await writeFileAtomic(paths.intentFile, `${JSON.stringify(record, null, 2)}\n`, 0o644);
  await checkpoint('intent-written');
}

/** Records, durably, how far the run got: called right after each flip (activation/run.ts). */
export async function markIntent(paths: HostPaths, phase: 'live' | 'restoring'): Promise<void> {
  const intent = await readIntent(paths);
  if (!intent) return;
  const record: Intent = { ...intent, phase };
  await writeFileAtomic(paths.intentFile, `${JSON.stringify(record, null, 2)}\n`, 0o644);
}

/** The hook that keeps the intent record's phase (ActivationContext.onFlip). */
export function intentPhases(paths: HostPaths): (phase: 'live' | 'restoring') => Promise<void> {
  return (phase) => markIntent(paths, phase);
}

/** Drops the intent record once state.json holds the outcome (or nothing went live). */
export async function clearIntent(paths: HostPaths): Promise<void> {
  await rm(paths.intentFile, { force: true });
  await fsyncDir(dirname(paths.intentFile));
  await checkpoint('intent-cleared');
}

// ---------------------------------------------------------------------------
// What the host holds, and what recovery makes of it (pure)

export interface HostView {
  stateExists: boolean;
  state: HostState;
  intent?: Intent;
  /** The generation `current` points at. */
  current?: number;
  onDisk: readonly number[];
  /** Bundle versions of the generation state.json confirms, when it is on disk. */
  confirmedVersions?: Readonly<Record<string, string>>;
}

export type RecoveryPlan =
  | { action: 'none' }
  /** state.json is missing beside generations: rebuild it from what is live. */
  | { action: 'adopt' }
  /** The recorded run finished (or its outcome is recorded): drop the record. */
  | { action: 'finish'; intent: Intent }
  /**
   * The recorded run died after its flip: restore `from`, services included.
   * `flippedBack`: `current` is at `from` already, its services maybe not.
   */
  | { action: 'undo'; intent: Intent; removeTo: boolean; flippedBack: boolean }
  /** The recorded run's generation never went live (or was flipped back). */
  | { action: 'discard'; intent: Intent; removeTo: boolean }
  | { action: 'refuse'; problems: string[] };

const gen = (n: number | undefined) => (n === undefined ? 'none' : `generation ${n}`);

/**
 * Whether the recorded run's generation may be removed: it wrote it, and no
 * outcome of it was ever recorded (recording one raises lastGeneration to it).
 */
function removable(view: HostView, intent: Intent): boolean {
  return intent.created && view.state.lastGeneration < intent.to;
}

/**
 * Whether `to` went live before `current` came back to `from`, so that the
 * services may run `to`'s units (or none): the phase says so. An older
 * record has no phase; `to` on disk may have gone live.
 */
function wentLive(view: HostView, intent: Intent): boolean {
  if (intent.phase === undefined) return view.onDisk.includes(intent.to);
  return intent.phase !== 'prepared';
}

export function planRecovery(view: HostView): RecoveryPlan {
  const { intent, state, current } = view;
  if (intent) {
    if (state.live === intent.to && current === intent.to) return { action: 'finish', intent };
    if (state.live === intent.from) {
      const fromOnDisk = intent.from === undefined || view.onDisk.includes(intent.from);
      if (current === intent.to && fromOnDisk)
        return { action: 'undo', intent, removeTo: removable(view, intent), flippedBack: false };
      if (current === intent.from) {
        if (wentLive(view, intent))
          return { action: 'undo', intent, removeTo: removable(view, intent), flippedBack: true };
        return { action: 'discard', intent, removeTo: removable(view, intent) };
      }
    }
    return {
      action: 'refuse',
      problems: [
        `an interrupted run (${intent.reason}) recorded switching from ${gen(intent.from)} to ${gen(intent.to)}, but current points at ${gen(current)} and state.json confirms ${gen(state.live)}`,
      ],
    };
  }
  if (!view.stateExists && (view.onDisk.length > 0 || current !== undefined)) {
    return current === undefined || view.onDisk.includes(current)
      ? { action: 'adopt' }
      : {
          action: 'refuse',
          problems: [`current points at generation ${current}, which is not on disk`],
        };
  }
  const problems = consistencyProblems(view);
  return problems.length ? { action: 'refuse', problems } : { action: 'none' };
}

/** What disagrees between state.json, `current` and the generations on disk. */
export function consistencyProblems(view: HostView): string[] {
  const { state, current, onDisk } = view;
  const problems: string[] = [];
  if (current !== undefined && !onDisk.includes(current)) {
    problems.push(`current points at generation ${current}, which is not on disk`);
  }
  if (state.live !== undefined && !onDisk.includes(state.live) && state.live !== current) {
    problems.push(`state.json confirms generation ${state.live}, which is not on disk`);
  }
  if (current !== state.live) {
    problems.push(
      current === undefined
        ? `nothing is live (no current), but state.json confirms generation ${state.live}`
        : `current points at generation ${current}, but state.json confirms ${gen(state.live)} and no interrupted run is recorded`,
    );
  }
  const newer = onDisk.filter((n) => n > state.lastGeneration);
  if (newer.length) {
    problems.push(
      `generation${newer.length > 1 ? 's' : ''} ${newer.join(', ')} ${newer.length > 1 ? 'are' : 'is'} newer than any state.json records (it knows generations up to ${state.lastGeneration}): state.json is older than the host`,
    );
  }
  if (view.confirmedVersions && current === state.live) {
    const live = view.confirmedVersions;
    for (const [name, entry] of Object.entries(state.bundles)) {
      if (entry.installed !== undefined && live[name] !== entry.installed) {
        problems.push(
          `state.json records ${name} ${entry.installed} as installed, but generation ${state.live} holds ${live[name] === undefined ? `no ${name}` : `${name} ${live[name]}`}`,
        );
      }
    }
    for (const [name, version] of Object.entries(live)) {
      if (state.bundles[name]?.installed === undefined) {
        problems.push(
          `generation ${state.live} holds ${name} ${version}, which state.json does not record as installed`,
        );
      }
    }
  }
  return problems;
}

/** The refusal for an inconsistent host, with the repairs that apply to it. */
export function inconsistencyError(view: HostView, problems: readonly string[]): RickError {
  const repairs: string[] = [];
  if (view.current !== undefined && view.onDisk.includes(view.current)) {
    repairs.push(
      `keep generation ${view.current}, which current points at, and record it: rick-install rollback --to ${view.current}`,
    );
  }
  const confirmed = view.state.live;
  if (confirmed !== undefined && confirmed !== view.current && view.onDisk.includes(confirmed)) {
    repairs.push(
      `return to generation ${confirmed}, which state.json confirms: rick-install rollback --to ${confirmed}`,
    );
  }
  if (!repairs.length) {
    repairs.push(
      `make a generation on disk live and record it: rick-install rollback --to <n> (on disk: ${view.onDisk.join(', ') || 'none'})`,
    );
  }
  return new RickError(
    'STATE_INCONSISTENT',
    `rick's state contradicts the host, so nothing was changed: ${problems.join('; ')}`,
    { hint: `${repairs.join('; or ')}` },
  );
}

// ---------------------------------------------------------------------------
// Reading the view, and acting on it

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch {
    return false;
  }
}

/** Reads what recovery judges. Changes nothing. */
export async function readHostView(paths: HostPaths, state: HostState): Promise<HostView> {
  const [stateExists, intent, current, onDisk] = await Promise.all([
    exists(paths.stateFile),
    readIntent(paths),
    readLiveGenerationNumber(paths),
    listGenerations(paths),
  ]);
  const view: HostView = { stateExists, state, current, onDisk };
  if (intent) view.intent = intent;
  if (state.live !== undefined && onDisk.includes(state.live)) {
    const record = await readGenerationRecord(paths, state.live);
    view.confirmedVersions = Object.fromEntries(
      Object.entries(record.bundles).map(([name, b]) => [name, b.version]),
    );
  }
  return view;
}

export interface Reconciled {
  /** What disagrees, when the host is inconsistent (then nothing was changed). */
  problems?: string[];
  view: HostView;
}

/**
 * Acts on what an interrupted run recorded, rebuilds a missing state.json,
 * and removes what is never a generation (half-written directories,
 * temporary links). On an inconsistency it changes nothing: it throws
 * STATE_INCONSISTENT, or with `allowInconsistent` (rollback --to, the
 * repair) returns the problems.
 */
export async function reconcile(
  paths: HostPaths,
  host: Host,
  state: HostState,
  log: Log,
  options: {
    /** How a generation's units are checked (podman's quadlet), to restore by their graph. */
    check: CheckUnits;
    allowInconsistent?: boolean;
    /** Why the recorded run did not finish, for the history: default `interrupted run`. */
    why?: string;
  },
): Promise<Reconciled> {
  const view = await readHostView(paths, state);
  const plan = planRecovery(view);
  if (plan.action === 'refuse') {
    if (options.allowInconsistent) return { problems: plan.problems, view };
    throw inconsistencyError(view, plan.problems);
  }
  switch (plan.action) {
    case 'adopt':
      await adoptLiveGeneration(paths, host, state, view, log);
      break;
    case 'finish':
      await clearIntent(paths);
      break;
    case 'undo': {
      // The generation to restore is checked like any made live again: a
      // changed one is not restored, and nothing is changed.
      const from = plan.intent.from;
      const damage = from === undefined ? [] : await generationDamage(paths, from);
      if (from !== undefined && damage.length) {
        const error = damagedGenerationError(
          from,
          damage,
          `an interrupted run (${plan.intent.reason}) left generation ${plan.intent.to} live, unconfirmed; keep it with rick-install rollback --to ${plan.intent.to}, or name another generation with --to (on disk: ${view.onDisk.join(', ')})`,
        );
        if (options.allowInconsistent) return { problems: [error.message], view };
        throw error;
      }
      await undoInterruptedRun(paths, host, state, plan, log, options);
      break;
    }
    case 'discard':
      // The run may have set its roles' passwords before it died: the live ones again.
      if (plan.intent.from !== undefined && host.systemctl && host.databaseClients) {
        await restoreDatabases({ host, paths, log }, await readGeneration(paths, plan.intent.from));
      }
      if (plan.removeTo && (await removeGeneration(paths, plan.intent.to))) {
        log(
          `removed generation ${plan.intent.to}, written by an interrupted run (${plan.intent.reason}) and never confirmed`,
        );
      }
      await clearIntent(paths);
      break;
    case 'none':
      break;
  }
  for (const path of await removeStrays(paths)) log(`removed ${path} left by an interrupted run`);
  if (plan.action === 'none') {
    await settleAdoptions(paths, host, state, log);
    return { view };
  }
  // Whatever the record explained is settled; what is left must agree.
  const after = await readHostView(paths, state);
  const problems = consistencyProblems(after);
  if (problems.length) {
    if (options.allowInconsistent) return { problems, view: after };
    throw inconsistencyError(after, problems);
  }
  // With `current` settled, adopted files go back where their generation is not live.
  await settleAdoptions(paths, host, state, log);
  return { view: after };
}

async function undoInterruptedRun(
  paths: HostPaths,
  host: Host,
  state: HostState,
  plan: Extract<RecoveryPlan, { action: 'undo' }>,
  log: Log,
  { check, why }: { check: CheckUnits; why?: string },
): Promise<void> {
  const { intent, removeTo } = plan;
  log(
    plan.flippedBack
      ? `generation ${intent.to} went live in a run that did not finish (${intent.reason}); current is back at ${intent.from ?? 'none'}, but its services may not be: restoring them (daemon-reload, restarts, health gate) before anything is removed`
      : `generation ${intent.to} went live in a run that did not finish (${intent.reason}): restoring ${intent.from ?? 'none'}`,
  );
  let failed: StoredGeneration | undefined;
  try {
    failed = await readGeneration(paths, intent.to);
  } catch {
    failed = undefined;
  }
  const back = intent.from === undefined ? undefined : await readGeneration(paths, intent.from);
  if (failed) {
    const offline = !host.systemctl;
    const [failedGraph, backGraph] = await Promise.all([
      readGenerationGraph(generationDir(paths, intent.to), check, offline),
      back ? readGenerationGraph(generationDir(paths, back.generation), check, offline) : undefined,
    ]);
    await restore({ host, paths, log, onFlip: intentPhases(paths) }, failed, back, {
      live: failedGraph,
      next: backGraph,
    });
  } else await flipCurrent(paths, intent.from);
  for (const b of failed?.bundles.values() ?? []) {
    state.history.push({
      generation: intent.to,
      bundle: b.name,
      version: b.version,
      time: host.clock.now().toISOString(),
      outcome: 'recovered',
      detail: `${why ?? 'interrupted run'}; ${gen(intent.from)} restored`,
    });
  }
  if (removeTo) await removeGeneration(paths, intent.to);
  else state.lastGeneration = Math.max(state.lastGeneration, intent.to);
  await writeState(paths.stateFile, state);
  await clearIntent(paths);
}

/**
 * state.json was removed by hand (an install writes its intent record before
 * anything else, so a crash leaves one): adopt what is live rather than
 * undo it. Quarantines and history before it are lost.
 */
async function adoptLiveGeneration(
  paths: HostPaths,
  host: Host,
  state: HostState,
  view: HostView,
  log: Log,
): Promise<void> {
  state.lastGeneration = Math.max(state.lastGeneration, ...view.onDisk);
  state.live = view.current;
  if (view.current !== undefined) {
    recordAdopted(
      state,
      await readGeneration(paths, view.current),
      host,
      `${paths.stateFile} was missing: adopted the live generation`,
    );
  }
  log(
    `${paths.stateFile} is missing: adopted generation ${view.current ?? 'none'} as live; quarantines and history before it are lost`,
  );
  await writeState(paths.stateFile, state);
}

/**
 * Records generation `live` as what is installed: each of its bundles'
 * versions installed (the downgrade floor raised to it), bundles it does not
 * hold no longer installed.
 */
export function recordAdopted(
  state: HostState,
  live: StoredGeneration,
  host: Host,
  detail: string,
): void {
  const time = host.clock.now().toISOString();
  for (const [name, entry] of Object.entries(state.bundles)) {
    if (!live.bundles.has(name)) delete entry.installed;
  }
  for (const b of live.bundles.values()) {
    const entry = state.bundles[b.name] ?? { quarantined: [] };
    entry.installed = b.version;
    if (!entry.highest || semver.gt(b.version, entry.highest)) entry.highest = b.version;
    state.bundles[b.name] = entry;
    state.history.push({
      generation: live.generation,
      bundle: b.name,
      version: b.version,
      time,
      outcome: 'adopted',
      detail,
    });
  }
}

// ---------------------------------------------------------------------------
// A run stopped by a signal (src/host/interrupt.ts)

/**
 * Puts the host back after a run holding the lock was stopped by a signal
 * (`stopped`, its INTERRUPTED error): what its intent record says, undone by
 * the same recovery the next run would do, now, under the same lock. Returns
 * the error to end the run with: INTERRUPTED saying what was put back, or,
 * when that failed, the failure (the intent record stays for the next run).
 */
export async function recoverFromInterruption(
  paths: HostPaths,
  host: Host,
  log: Log,
  check: CheckUnits,
  stopped: RickError,
): Promise<RickError> {
  try {
    const state = await readState(paths.stateFile);
    const plan = planRecovery(await readHostView(paths, state));
    let done: string;
    if (plan.action === 'undo') {
      log(
        `${stopped.message}, after generation ${plan.intent.to} went live: restoring ${gen(plan.intent.from)} before stopping`,
      );
      done = `after generation ${plan.intent.to} went live; ${gen(plan.intent.from)} is live again${host.systemctl ? ', its services restored' : ''}`;
    } else if (plan.action === 'discard') {
      log(
        `${stopped.message}, before generation ${plan.intent.to} went live: removing it before stopping`,
      );
      done = `before generation ${plan.intent.to} went live; it was removed and nothing live changed`;
    } else {
      log(`${stopped.message}, before anything went live`);
      done = 'before anything went live; nothing live changed';
    }
    await reconcile(paths, host, state, log, { check, why: stopped.message });
    return new RickError('INTERRUPTED', `${stopped.message} ${done}`, {
      hint: `the run was not completed: run it again (the update timer does at its next tick)`,
    });
  } catch (error) {
    log(`${stopped.message}, and putting the host back failed: ${describe(error)}`);
    if (error instanceof RickError) return error;
    return new RickError(
      'ROLLBACK_FAILED',
      `${stopped.message}, and putting the host back failed: ${describe(error)}`,
      {
        hint: `the intent record stays: the next run (the update timer's too) restores ${paths.intentFile}'s generation; see rick-install status`,
        cause: error,
      },
    );
  }
}
