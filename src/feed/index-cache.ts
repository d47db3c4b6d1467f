/**
 * /var/lib/rick/index-cache.json: what the last carried-out decision on a
 * signed release index depended on (rick.conf and state.json, verbatim), the
 * ETag of the index it was made on, and what a no-op tick reports without
 * reading the index (installed and yanked versions, serial, expiry), plus
 * when the decision may change while the index does not (a wave this host
 * waits for starts, the index expires). Anything missing or of another
 * shape is no cache: the next tick then decides again.
 */
import { join } from 'node:path';
import { type WarningLog, warn } from './journal.js';
import { hasTickCacheFields, isRecord, readCacheFields, type TickCache } from './tick-cache.js';

export const INDEX_CACHE_VERSION = 1;

/**
 * What a no-op tick needs, and the inputs the cached decision depended on:
 * the shared fields (tick-cache.ts; the URL is the index's, its ETag null
 * when the server gave none), and the index's own.
 */
export interface IndexCache extends TickCache {
  version: typeof INDEX_CACHE_VERSION;
  /** Installed versions the index yanks: bundle → version and reason. */
  yanked: Record<string, { version: string; reason: string }>;
  /** sha256 of the accepted index (/var/lib/rick/release-index.json). */
  indexSha256: string;
  /**
   * sha256 of the trusted keys (/etc/rick/keys) that verified it. While they
   * are the same, deciding again on the kept index after a 304 does not run
   * gpgv again (docs/release-index.md); absent in caches of older releases.
   */
  keys?: string;
  serial: number;
  /** Seconds since the epoch: the index expires. */
  expires: number;
  /** Seconds since the epoch: a wave this host waits for starts; null: none. */
  recheckAt: number | null;
}

export function indexCachePath(stateDir: string): string {
  return join(stateDir, 'index-cache.json');
}

/** The cache, or undefined when missing, unreadable or of another shape (then the tick decides again). */
export function readIndexCache(file: string): IndexCache | undefined {
  const c = readCacheFields(file, INDEX_CACHE_VERSION);
  const ok =
    c !== undefined &&
    hasTickCacheFields(c, true) &&
    isRecord(c.yanked) &&
    Object.values(c.yanked as object).every(
      (v) => isRecord(v) && typeof v.version === 'string' && typeof v.reason === 'string',
    ) &&
    typeof c.indexSha256 === 'string' &&
    (c.keys === undefined || typeof c.keys === 'string') &&
    typeof c.serial === 'number' &&
    typeof c.expires === 'number' &&
    (c.recheckAt === null || typeof c.recheckAt === 'number');
  return ok ? (c as unknown as IndexCache) : undefined;
}

export function versionsOf(yanked: IndexCache['yanked']): Record<string, string> {
  return Object.fromEntries(Object.entries(yanked).map(([b, y]) => [b, y.version]));
}

export function warnYanked(yanked: IndexCache['yanked'], deps: WarningLog): void {
  for (const [bundle, y] of Object.entries(yanked)) {
    warn(
      deps,
      `${bundle}: the installed version ${y.version} is yanked (${y.reason}); rick does not roll back by itself: install a fixed release or roll back by hand (docs/release-index.md)`,
    );
  }
}
