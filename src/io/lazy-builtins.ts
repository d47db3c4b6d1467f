/**
 * Node modules that only some command lines need, loaded on first use
 * instead of when the program starts. The timer's no-op tick and the
 * signature check share the single-file installer's front part; the tick
 * spawns no process, so loading node:child_process (and the dgram and
 * socket machinery it pulls in) for it is pure start-up cost. A plain
 * `await import()` would do the same, but the signature check must start
 * gpgv synchronously (src/host/intake/signature.ts), so these are synchronous.
 */
import { createRequire } from 'node:module';

const load = createRequire(import.meta.url);

export const childProcess = (): typeof import('node:child_process') => load('node:child_process');
export const os = (): typeof import('node:os') => load('node:os');
