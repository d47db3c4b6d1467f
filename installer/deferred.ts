/**
 * The part of the single-file installer that is evaluated only on demand
 * (see installer/build.mjs): the full rick-install program, and what the
 * update command defers until a tick has something to decide or install.
 * (undici, which the feed client loads on demand, travels apart: see
 * installer/build.mjs.)
 */

export { createProgram } from '../src/cli/rick-install.js';
export { processOutput, reportError, runProgram } from '../src/cli/run.js';
export * as deferred from '../src/feed/update-deferred.js';
