/**
 * Holds a built rick-install at a step boundary (RICK_FAULT_WAIT_AT,
 * src/host/fault.ts) so that a test can change the host between two points
 * of one run, then lets it go on.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readLockHolder } from '../../src/host/lock.js';
import { type ProcessResult, startCli } from './cli-process.js';

/** Polls `probe` until it returns a value (every 20 ms, for 20 s at the most). */
export async function waitFor<T>(probe: () => Promise<T | undefined>): Promise<T> {
  for (let i = 0; i < 1000; i++) {
    const value = await probe();
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error('timed out waiting');
}

export interface HeldRun {
  pid: number;
  /** Lets the run go on from the boundary; resolves when it has exited. */
  release(): Promise<ProcessResult>;
}

/**
 * Starts `rick-install args` on the tree `root` and resolves once it holds
 * the lock and waits at `locked`: everything it does before the lock is done.
 * `work` is where the file that lets it go on is written.
 */
export async function startHeldAtLock(
  args: string[],
  root: string,
  work: string,
  env: NodeJS.ProcessEnv = {},
): Promise<HeldRun> {
  const go = join(work, `go-${Date.now()}`);
  const run = startCli(args, { ...env, RICK_FAULT_WAIT_AT: `locked:${go}` });
  const holder = await waitFor(async () => {
    const h = await readLockHolder(join(root, 'var/lib/rick/lock'));
    if (h !== undefined) return h;
    // A run that ended before the lock (a refusal) would be waited for in vain.
    const ended = await Promise.race([
      run.done,
      new Promise<undefined>((r) => setTimeout(() => r(undefined), 0)),
    ]);
    if (ended) throw new Error(`rick-install ended before the lock: ${ended.stderr}`);
    return undefined;
  });
  if (holder.pid !== run.pid) throw new Error(`the lock is held by pid ${holder.pid}`);
  return {
    pid: run.pid,
    release: async () => {
      await writeFile(go, '');
      return run.done;
    },
  };
}
