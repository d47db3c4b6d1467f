/**
 * The conditional-request cache both feed sources keep (the GitHub releases
 * list in feed-cache.json, cache.ts; the signed index in index-cache.json,
 * index-cache.ts): the ETag of what the last carried-out decision was made
 * on, the inputs that decision depended on (rick.conf and state.json
 * verbatim, the grant files of the releases it held), and what a no-op tick
 * reports without reading anything else. While the inputs are the same and
 * the feed answers 304, the decision stands and the tick writes nothing.
 * Each source adds its own fields; the two files keep their names and
 * formats.
 *
 * Anything missing, unreadable or of another shape is no cache (the next
 * request is then unconditional, or the tick decides again), never an error.
 * The fields are checked by hand rather than with a schema: this runs on
 * every tick and must stay cheap, and a wrong shape merely costs a fetch.
 */
import { type CachedHold, heldGrantsUnchanged, isCachedHolds } from './hold.js';
import { readKept } from './small-file.js';

/** The most one page of the GitHub releases list may weigh. */
export const FEED_MAX_BYTES = 8 * 1024 * 1024;
/** The most a signed release index may weigh. */
export const INDEX_MAX_BYTES = 8 * 1024 * 1024;
/** The most a detached signature may weigh. */
export const SIGNATURE_MAX_BYTES = 64 * 1024;

/** The fields both caches share. */
export interface TickCache {
  /** The feed URL the ETag belongs to. */
  url: string;
  /** The ETag of what was decided on; null when the server gave none (an index only). */
  etag: string | null;
  /** rick.conf as it was when the decision was carried out. */
  config: string;
  /** state.json (empty when absent) as it was after the decision was carried out. */
  state: string;
  /** What the no-op tick needs without parsing rick.conf again. */
  feed: string;
  metricsFile: string | null;
  feedTimeoutSec: number;
  installed: Record<string, string>;
  /**
   * Releases held for want of a grant, with each grant file's text as the
   * hold found it: a grant written since makes the next tick decide again.
   */
  held?: Record<string, CachedHold>;
}

/** A cache file's fields, or undefined when it is missing, unreadable, not JSON or of another version. */
export function readCacheFields(
  file: string,
  version: number,
): Record<string, unknown> | undefined {
  const bytes = readKept(file);
  if (bytes === undefined) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch {
    return undefined;
  }
  if (!isRecord(value) || value.version !== version) return undefined;
  return value;
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

/** Whether the shared fields have their types; `etag` may be null only where `nullEtag` says so. */
export function hasTickCacheFields(c: Record<string, unknown>, nullEtag: boolean): boolean {
  return (
    typeof c.url === 'string' &&
    (typeof c.etag === 'string' || (nullEtag && c.etag === null)) &&
    typeof c.config === 'string' &&
    typeof c.state === 'string' &&
    typeof c.feed === 'string' &&
    (c.metricsFile === null || typeof c.metricsFile === 'string') &&
    typeof c.feedTimeoutSec === 'number' &&
    isRecord(c.installed) &&
    Object.values(c.installed).every((v) => typeof v === 'string') &&
    isCachedHolds(c.held)
  );
}

/**
 * Whether the decision a cache records was made on these very inputs: the
 * same rick.conf and state.json, and every held release's grant file as the
 * hold found it.
 */
export function sameInputs(
  cache: TickCache | undefined,
  configText: string,
  stateText: string,
  root: string,
): cache is TickCache {
  return (
    cache !== undefined &&
    cache.config === configText &&
    cache.state === stateText &&
    heldGrantsUnchanged(cache.held, root)
  );
}

/** The cache as written: one line of JSON, atomically (temp file, fsync, rename) with the state file's writer. */
export async function writeCacheFile(
  file: string,
  cache: object,
  writeFileAtomic: (file: string, data: string, mode: number) => Promise<void>,
): Promise<void> {
  await writeFileAtomic(file, `${JSON.stringify(cache)}\n`, 0o644);
}
