/**
 * Generations on disk: write one completely before it can go live, read one
 * back, flip `current`, clean up after a crashed run, prune old ones.
 *
 * A generation is written under generations/<n>.tmp-<pid>, made durable
 * (one syncfs of its filesystem, or an fsync per file where that is not
 * available; then every directory fsynced), then renamed to generations/<n>:
 * a directory named by a bare number is always complete. `generation.json`
 * (written last) records the sha256 of every file it holds, for `verify` and
 * for the check that guards carrying a bundle on.
 *
 * Each bundle keeps, besides its rendered files:
 *   bundles/<b>/manifest.json   the verified manifest, byte for byte
 *   bundles/<b>/facts.json      GIDs and UIDs resolved at install, secret NAMES only
 *   bundles/<b>/source.json     its files as shipped, tokens unsubstituted (no secrets),
 *                               in one file: one fsync instead of one per unit
 *   bundles/<b>/secrets.json    the secret values it was rendered with (0600), when it has any
 * which is enough to render the bundle again, for a later generation, without
 * its secrets file: a bundle carried into a new generation is rendered from
 * its source and facts by the same substitution as its install, never edited.
 *
 * Everything read back is untrusted local state: nothing is followed through
 * a symbolic link (O_NOFOLLOW, lstat, and every directory on the way checked
 * to be the generation's own), names and paths must pass the manifest's own
 * rules, and the files must be the ones generation.json recorded.
 *
 * This module is the store's one entry point: its parts, one concern each,
 * are generation-layout.ts (what a generation holds and where),
 * generation-read.ts (reading back, carrying a bundle on),
 * generation-write.ts (the durable write), generation-links.ts (`current`
 * and the host's links) and generation-prune.ts (strays and pruning).
 */
import '../bundle/zod.js';

export type {
  GenerationContent,
  GenerationRecord,
  StoredBundle,
  StoredGeneration,
} from './generation-layout.js';
export {
  FRAGMENT_FILES,
  generationDir,
  hasPlainUnits,
  hasSites,
  INSTALLER_FILE,
  parseSources,
  renderedLocation,
  renderedMode,
  renderFragments,
  SECRETS_FILE,
  SOURCE_FILE,
  serializeSources,
} from './generation-layout.js';
export type { HostNeeds } from './generation-links.js';
export {
  checkQuadletLink,
  ensureHostLinks,
  flipCurrent,
  hostLinks,
  hostNeedsOf,
  sitesLink,
} from './generation-links.js';
export {
  confirmedLiveOrder,
  planPrune,
  pruneGenerations,
  pruningName,
  removeGeneration,
  removeStrays,
} from './generation-prune.js';
export type {
  BundleReadResult,
  FileProblem,
} from './generation-read.js';
export {
  carryBundle,
  GenerationReader,
  listGenerations,
  readGeneration,
  readGenerationRecord,
  readLiveGenerationNumber,
  readStoredBundle,
} from './generation-read.js';
export type { WriteGenerationOptions } from './generation-write.js';
export {
  PER_FILE_SYNC_MAX,
  writeGeneration,
} from './generation-write.js';
