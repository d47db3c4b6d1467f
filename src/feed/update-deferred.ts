/**
 * Everything `rick-install update` loads only when a tick has something to
 * decide or install: the config, releases and release index schemas (zod),
 * the state file, the key list, the decision on either feed (decide.ts, with
 * github-source.ts or index-decide.ts), the index's signature check and
 * downloads, and the install pipeline (tar, gpgv). The update command reaches them
 * through this one module, imported dynamically, so that the no-op tick
 * (feed answers 304) evaluates none of it; the single-file installer build
 * defers exactly this module (see installer/build.mjs).
 */

export { completeInterruptedRun, installBundle } from '../host/install.js';
export { writeFileAtomic } from '../host/state.js';
export { realHost } from '../host/system.js';
export { parseConfig, type RickConfig } from './config.js';
export { explainRefusal, nextPageUrl } from './github-api.js';
export { decideOnReleases } from './github-source.js';
export { readAcceptedIndex } from './index-client.js';
export { decideOnIndex } from './index-decide.js';
