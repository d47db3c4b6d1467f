/**
 * The stop-signal handler's choices (src/cli/signals.ts), the signals
 * emitted to this process's listeners: holding no lock it ends the run at
 * once; holding the lock it defers to the run the first time and ends it at
 * once the second.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { handleStopSignals } from '../../src/cli/signals.js';
import { ExitCode } from '../../src/errors.js';
import {
  clearInterruption,
  interruption,
  lockReleased,
  lockTaken,
} from '../../src/host/interrupt.js';

let dispose: (() => void) | undefined;
afterEach(() => {
  dispose?.();
  clearInterruption();
});

function handled() {
  const lines: string[] = [];
  const exits: number[] = [];
  dispose = handleStopSignals(
    (t) => lines.push(t),
    (c) => exits.push(c),
  );
  return { lines, exits };
}

describe('stop signals', () => {
  it('without the lock, SIGTERM ends the run at once with exit 16: nothing was changed', () => {
    const { lines, exits } = handled();
    process.emit('SIGTERM', 'SIGTERM');
    expect(exits).toEqual([ExitCode.interrupted]);
    expect(lines).toEqual(['error INTERRUPTED: stopped by SIGTERM before anything was changed\n']);
  });

  it('holding the lock, the first SIGHUP is left to the run, a second SIGTERM ends it at once', () => {
    const { lines, exits } = handled();
    lockTaken();
    try {
      process.emit('SIGHUP', 'SIGHUP');
      expect(exits).toEqual([]);
      expect(interruption()).toBe('SIGHUP');
      expect(lines).toEqual([
        'received SIGHUP: stopping at the next step, once what this run made live is put back\n',
      ]);
      process.emit('SIGTERM', 'SIGTERM');
      expect(exits).toEqual([ExitCode.interrupted]);
      expect(lines[1]).toBe(
        "error INTERRUPTED: received SIGTERM, a second stop signal: stopping at once; the next run (the update timer's included) completes the restore from its intent record (intent.json)\n",
      );
      // The run reports the first signal, the one it stopped for.
      expect(interruption()).toBe('SIGHUP');
    } finally {
      lockReleased();
    }
  });
});
