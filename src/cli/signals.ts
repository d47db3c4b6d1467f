/**
 * Stop signals: SIGTERM (systemd stopping rick-update.service at its
 * timeout, or at shutdown), SIGHUP (a dropped SSH session) and SIGINT
 * (Ctrl-C). Node's default ends the process at once, which after the flip
 * would leave a generation live that never passed its gate. Instead:
 *
 * - holding no lock, the run has changed nothing: it ends at once;
 * - holding the lock, the first signal is recorded (src/host/interrupt.ts)
 *   and the run stops at its next step boundary, after putting back what it
 *   made live (recovery.ts), then exits with INTERRUPTED;
 * - a second signal ends it at once; its intent record is left, and the
 *   next run (the update timer's next tick included) completes the restore.
 */
import { ExitCode } from '../errors.js';
import { holdsLock, noteSignal } from '../host/interrupt.js';

export const STOP_SIGNALS = ['SIGTERM', 'SIGHUP', 'SIGINT'] as const;

function writeStderr(text: string): void {
  try {
    process.stderr.write(text);
  } catch {
    // The terminal may be gone (SIGHUP); the run goes on without it.
  }
}

/** Installs the handlers; returns what removes them again. */
export function handleStopSignals(
  write: (text: string) => void = writeStderr,
  exit: (code: number) => void = (code) => process.exit(code),
): () => void {
  const handlers = STOP_SIGNALS.map((signal) => {
    const handler = () => {
      const holding = holdsLock();
      if (noteSignal(signal) === 'defer') {
        write(
          `received ${signal}: stopping at the next step, once what this run made live is put back\n`,
        );
        return;
      }
      write(
        holding
          ? `error INTERRUPTED: received ${signal}, a second stop signal: stopping at once; the next run (the update timer's included) completes the restore from its intent record (intent.json)\n`
          : `error INTERRUPTED: stopped by ${signal} before anything was changed\n`,
      );
      exit(ExitCode.interrupted);
    };
    process.on(signal, handler);
    return [signal, handler] as const;
  });
  return () => {
    for (const [signal, handler] of handlers) process.off(signal, handler);
  };
}
