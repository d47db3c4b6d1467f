/**
 * Test-only fault injection for the crash-consistency test: with
 * RICK_FAULT_KILL_AT=<step>, the installer kills itself with SIGKILL when it
 * reaches that step boundary, exactly as a power cut or the OOM killer would
 * stop it (no finally blocks, no exit handlers). Unset, a checkpoint is a
 * no-op.
 */
import { existsSync } from 'node:fs';
import { interruption, throwIfInterrupted } from './interrupt.js';

/** Every step boundary of an install, in order. The crash test kills at each one. */
export const installSteps = [
  'locked',
  'cleaned',
  'verified',
  'sysusers-applied',
  'intent-written',
  'generation-partial',
  'generation-synced',
  'generation-renamed',
  'links-created',
  'flip-link-created',
  'flipped',
  'daemon-reloaded',
  'restarted',
  'health-checked',
  'state-write',
  'state-written',
  'intent-cleared',
  'pruned',
] as const;
export type InstallStep = (typeof installSteps)[number];

/**
 * Boundaries inside a step that not every install reaches: `prune-renamed`,
 * after pruned generations were renamed out of the numbered names and before
 * they are deleted, is reached only when an install prunes.
 */
export const innerSteps = ['prune-renamed'] as const;
export type InnerStep = (typeof innerSteps)[number];

/**
 * The step boundaries `adopt` adds between `links-created` and `flipped`:
 * its record written, and the foreign files moved.
 */
export const adoptSteps = ['adopt-recorded', 'adopt-moved'] as const;
export type AdoptStep = (typeof adoptSteps)[number];

export const FAULT_ENV = 'RICK_FAULT_KILL_AT';
/**
 * With RICK_FAULT_WAIT_AT=<step>:<file>, the installer waits at that step
 * until the file exists: how the lock test holds one install in the middle
 * while it starts another.
 */
export const WAIT_ENV = 'RICK_FAULT_WAIT_AT';

/**
 * The boundaries where a stop signal (src/host/interrupt.ts) ends the run.
 * Not the ones inside what puts the host back or records it (the flip's
 * link, which a restore makes too; the state and intent writes): those
 * finish.
 */
const interruptible: ReadonlySet<string> = new Set<InstallStep>([
  'locked',
  'cleaned',
  'verified',
  'sysusers-applied',
  'generation-renamed',
  'links-created',
  'flipped',
  'daemon-reloaded',
  'restarted',
  'health-checked',
]);

/**
 * A step boundary: where the fault injection of the tests kills or holds the
 * run, and where a received stop signal ends it (INTERRUPTED), for the
 * install or rollback to put the host back.
 */
export async function checkpoint(step: InstallStep | InnerStep | AdoptStep): Promise<void> {
  const wait = process.env[WAIT_ENV];
  if (wait?.startsWith(`${step}:`)) {
    const file = wait.slice(step.length + 1);
    // A held run that is told to stop stops waiting.
    while (!existsSync(file) && interruption() === undefined) {
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  if (interruptible.has(step)) throwIfInterrupted(`at step ${step}`);
  if (process.env[FAULT_ENV] !== step) return;
  process.kill(process.pid, 'SIGKILL');
  // SIGKILL is delivered asynchronously; never get past the boundary.
  await new Promise(() => {});
}
