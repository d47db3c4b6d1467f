/**
 * Test-only fault injection for the crash-consistency test: with
 * RICK_FAULT_KILL_AT=<step>, the installer kills itself with SIGKILL when it
 * reaches that step boundary, exactly as a power cut or the OOM killer would
 * stop it (no finally blocks, no exit handlers). Unset, a checkpoint is a
 * no-op.
 */

/** Every step boundary of an install, in order. The crash test kills at each one. */
export const installSteps = [
  'locked',
  'cleaned',
  'verified',
  'sysusers-applied',
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
  'pruned',
] as const;
export type InstallStep = (typeof installSteps)[number];

export const FAULT_ENV = 'RICK_FAULT_KILL_AT';

export async function checkpoint(step: InstallStep): Promise<void> {
  if (process.env[FAULT_ENV] !== step) return;
  process.kill(process.pid, 'SIGKILL');
  // SIGKILL is delivered asynchronously; never get past the boundary.
  await new Promise(() => {});
}
