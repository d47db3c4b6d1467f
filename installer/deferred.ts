/**
 * The part of the single-file installer that is evaluated only on demand
 * (see installer/build.mjs): the full rick-install program, and what the
 * update command defers until a tick has something to decide or install.
 */

// undici (1 MB) serves only the feed client: evaluated when it asks for it,
// not with the rest (a dynamic import stays lazy in the bundled script).
export const undici = () => import('undici');
export { createProgram } from '../src/cli/rick-install.js';
export { processOutput, reportError, runProgram } from '../src/cli/run.js';
export * as deferred from '../src/commands/update-deferred.js';
