/**
 * A feed source, as the one decision skeleton (decide.ts) sees it: the
 * GitHub releases list (github-source.ts) and the signed release index
 * (index-source.ts) each choose a candidate per bundle by the shared
 * selection (select.ts) and fetch what they chose; the skeleton does the
 * rest the same way for both (install through the policy, hold, record).
 *
 * A source fetches what it hands over as signed files, each a document and
 * its detached signature, downloaded under size caps and verified by the
 * caller, never by the source. Another signed document a source serves
 * beside its releases (a key list, say) is one more method returning a
 * SignedFile.
 */
import type { BundleStatus } from './select.js';

/** A downloaded file and its detached signature; nothing verified yet. */
export interface SignedFile {
  /** The file's name as the feed names it (a bundle's: `<name>-<version>.tgz`). */
  name: string;
  bytes: Buffer;
  signature: { name: string; bytes: Buffer };
}

/** A newer release passed over, and why. */
export interface SkippedRelease {
  version: string;
  why: 'quarantined' | 'yanked';
  /** The yank's reason. */
  reason?: string;
}

/** What a source offers one bundle, and what it says about it on the way (one log line each). */
export interface Choice<R> {
  /** The release to install, if any. */
  release: R | undefined;
  /** Why nothing is installed (when `release` is undefined). */
  reason: string;
  /** Newer releases passed over, highest first. */
  skipped: SkippedRelease[];
  /** Lines said before the verdict (the bundle is prefixed). */
  notes: string[];
  /** Lines said only when a release is installed, before it is (the bundle is prefixed). */
  waiting: string[];
}

export interface FeedSource<R> {
  /** The candidate for one bundle, given what the host has of it. */
  choose(bundle: string, status: BundleStatus): Choice<R>;
  version(release: R): string;
  /** Where the release comes from, as the tick says it: `release v1.2.0`, `release index URL`. */
  origin(release: R): string;
  /** The source the verified manifest is held to (src/host/intake/identity.ts). */
  expectSource(release: R): string;
  /** Downloads the release's bundle and its signature. */
  fetchBundle(release: R): Promise<SignedFile>;
}
