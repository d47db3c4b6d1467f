/**
 * A stop signal (SIGTERM from systemd stopping rick-update.service or
 * shutting down, SIGHUP from a dropped SSH session, SIGINT from a terminal)
 * must not leave a generation live that never passed its gate.
 *
 * The process's signal handler (src/cli/signals.ts) records the signal
 * here. A run that holds the lock does not stop at once: at its next step
 * boundary (`checkpoint`, src/host/fault.ts) it throws INTERRUPTED, and the
 * install or rollback turns that into a restore of the generation that was
 * live before it (recovery.ts), before it releases the lock. A run that
 * holds no lock has changed nothing and may end at once.
 */
import { RickError } from '../errors.js';

interface Shared {
  received?: NodeJS.Signals;
  /** How many locks this process holds. */
  locked: number;
}
// On globalThis: the single-file installer evaluates this module twice, in
// its front part (the signal handler) and in the rest it loads on demand
// (the install and its lock), see installer/build.mjs.
const key = Symbol.for('rick.interrupt');
const store = globalThis as Record<symbol, unknown>;
if (store[key] === undefined) store[key] = { locked: 0 } satisfies Shared;
const shared = store[key] as Shared;

/** The stop signal this process received, if any. */
export function interruption(): NodeJS.Signals | undefined {
  return shared.received;
}

/**
 * Records a stop signal. Returns what the handler should do: `defer` while
 * a run holds the lock the first time, `exit` otherwise (nothing is held,
 * or this is a second signal: the intent record is left to the next run).
 */
export function noteSignal(signal: NodeJS.Signals): 'defer' | 'exit' {
  const again = shared.received !== undefined;
  shared.received ??= signal;
  return shared.locked > 0 && !again ? 'defer' : 'exit';
}

/** Forgets a recorded signal: for tests, which run many commands in one process. */
export function clearInterruption(): void {
  delete shared.received;
}

/** Whether this process holds the install lock now. */
export function holdsLock(): boolean {
  return shared.locked > 0;
}

/** Called by the lock (src/host/lock.ts) when it is taken and released. */
export function lockTaken(): void {
  shared.locked++;
}
export function lockReleased(): void {
  shared.locked = Math.max(0, shared.locked - 1);
}

/** Marks the INTERRUPTED thrown at a step boundary: the host is not yet put back. */
const atBoundary = Symbol.for('rick.interrupt.boundary');

/** Whether the run was stopped at a step boundary and has not put the host back yet. */
export function isInterruption(error: unknown): error is RickError {
  return error instanceof RickError && atBoundary in error;
}

/** Throws INTERRUPTED when a stop signal was received. */
export function throwIfInterrupted(where: string): void {
  if (shared.received === undefined) return;
  const error = new RickError('INTERRUPTED', `stopped by ${shared.received} ${where}`);
  Object.defineProperty(error, atBoundary, { value: true });
  throw error;
}
