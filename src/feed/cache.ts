/**
 * /var/lib/rick/feed-cache.json: the ETag of the last releases list rick
 * acted on (of its first page: a new release is always listed first, so its
 * ETag changes with every release), and the inputs the decision depended on
 * (rick.conf, state.json and the grant files of releases it held, kept verbatim: comparing them needs no hashing,
 * and they are small). The list itself, every page read, is kept beside it in
 * feed-releases.json (only the fields rick reads), read only when it has to
 * be decided on again. When the feed answers 304 and the inputs still match, the
 * decision is the same as last time and the tick ends without reading
 * anything else or writing anything. When the inputs changed (a new range,
 * a rollback, a quarantine) the cached list is decided on again.
 *
 * The cache is written only after a tick whose decision was carried out, so
 * a failed download or install is retried at the next tick even though the
 * feed itself has not changed.
 */
import { join } from 'node:path';
import { readKept } from './small-file.js';
import {
  hasTickCacheFields,
  readCacheFields,
  type TickCache,
  writeCacheFile,
} from './tick-cache.js';

export const FEED_CACHE_VERSION = 1;

/** The shared fields (tick-cache.ts; the URL is the releases list's), and the list decided on. */
export interface FeedCache extends TickCache {
  version: typeof FEED_CACHE_VERSION;
  /** A GitHub feed's cache is written only when the list came with an ETag. */
  etag: string;
  /** sha256 of feed-releases.json, the releases list as decided on. */
  bodySha256: string;
  /** The list stopped at FEED_MAX_PAGES: older releases were not read. */
  truncated?: boolean;
}

export function feedCachePath(stateDir: string): string {
  return join(stateDir, 'feed-cache.json');
}

export function feedBodyPath(stateDir: string): string {
  return join(stateDir, 'feed-releases.json');
}

async function sha256(text: string): Promise<string> {
  // node:crypto is loaded only off the no-op path.
  const { createHash } = await import('node:crypto');
  return createHash('sha256').update(text).digest('hex');
}

/** The cached releases list, or undefined when it is missing or not the one the cache names. */
export async function readCachedBody(file: string, cache: FeedCache): Promise<string | undefined> {
  const body = readKept(file)?.toString('utf8');
  if (body === undefined) return undefined;
  return (await sha256(body)) === cache.bodySha256 ? body : undefined;
}

/**
 * Reads the cache; anything missing, unreadable or of another shape is no
 * cache (the next request is then unconditional), never an error.
 */
export function readFeedCache(file: string): FeedCache | undefined {
  const c = readCacheFields(file, FEED_CACHE_VERSION);
  const ok =
    c !== undefined &&
    hasTickCacheFields(c, false) &&
    typeof c.bodySha256 === 'string' &&
    (c.truncated === undefined || typeof c.truncated === 'boolean');
  return ok ? (c as unknown as FeedCache) : undefined;
}

/**
 * Writes the list, then the cache that names it, each atomically (temp file,
 * fsync, rename) with the state file's writer: a crash in between leaves a
 * cache whose list does not match, which is no cache.
 */
export async function writeFeedCache(
  stateDir: string,
  cache: Omit<FeedCache, 'bodySha256'>,
  body: string,
  writeFileAtomic: (file: string, data: string, mode: number) => Promise<void>,
): Promise<void> {
  await writeFileAtomic(feedBodyPath(stateDir), body, 0o644);
  const full: FeedCache = { ...cache, bodySha256: await sha256(body) };
  await writeCacheFile(feedCachePath(stateDir), full, writeFileAtomic);
}
