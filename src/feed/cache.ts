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
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type CachedHold, isCachedHolds } from './hold.js';

export const FEED_CACHE_VERSION = 1;

export interface FeedCache {
  version: typeof FEED_CACHE_VERSION;
  /** The releases URL the ETag belongs to. */
  url: string;
  etag: string;
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
  try {
    const body = readFileSync(file, 'utf8');
    return (await sha256(body)) === cache.bodySha256 ? body : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Reads the cache; anything missing, unreadable or of another shape is no
 * cache (the next request is then unconditional), never an error.
 */
export function readFeedCache(file: string): FeedCache | undefined {
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return undefined;
  }
  // Checked by hand rather than with a schema: this runs on every tick and
  // must stay cheap, and a wrong shape merely costs one full fetch.
  if (typeof value !== 'object' || value === null) return undefined;
  const c = value as Record<string, unknown>;
  const installed = c.installed;
  const ok =
    c.version === FEED_CACHE_VERSION &&
    typeof c.url === 'string' &&
    typeof c.etag === 'string' &&
    typeof c.config === 'string' &&
    typeof c.state === 'string' &&
    typeof c.feed === 'string' &&
    (c.metricsFile === null || typeof c.metricsFile === 'string') &&
    typeof c.feedTimeoutSec === 'number' &&
    typeof c.bodySha256 === 'string' &&
    (c.truncated === undefined || typeof c.truncated === 'boolean') &&
    typeof installed === 'object' &&
    installed !== null &&
    Object.values(installed).every((v) => typeof v === 'string') &&
    isCachedHolds(c.held);
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
  await writeFileAtomic(feedCachePath(stateDir), `${JSON.stringify(full)}\n`, 0o644);
}
