/**
 * The index cache as a tick reads it: the digest of the trusted keys that
 * verified the kept index is optional (caches written before it existed
 * still count), and anything else in its place makes no cache at all, so
 * the next tick decides again and verifies.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { INDEX_CACHE_VERSION, readIndexCache } from '../../src/feed/index-cache.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function cacheFile(fields: Record<string, unknown>): string {
  const dir = mkdtempSync(join(tmpdir(), 'rick-index-cache-'));
  dirs.push(dir);
  const file = join(dir, 'index-cache.json');
  writeFileSync(
    file,
    JSON.stringify({
      version: INDEX_CACHE_VERSION,
      url: 'https://example.org/index.json',
      etag: '"abc"',
      config: 'FEED=https://example.org/index.json\n',
      state: '{}',
      feed: 'https://example.org/index.json',
      metricsFile: null,
      feedTimeoutSec: 30,
      installed: { demo: '1.0.0' },
      yanked: {},
      indexSha256: 'a'.repeat(64),
      serial: 7,
      expires: 1_800_000_000,
      recheckAt: null,
      ...fields,
    }),
  );
  return file;
}

describe('readIndexCache', () => {
  it('keeps the digest of the keys that verified the index', () => {
    expect(readIndexCache(cacheFile({ keys: 'b'.repeat(64) }))?.keys).toBe('b'.repeat(64));
  });

  it('reads a cache without the digest, as an older release wrote it', () => {
    const cache = readIndexCache(cacheFile({}));
    expect(cache?.serial).toBe(7);
    expect(cache?.keys).toBeUndefined();
  });

  it('refuses a digest that is not a string', () => {
    expect(readIndexCache(cacheFile({ keys: 42 }))).toBeUndefined();
  });
});
