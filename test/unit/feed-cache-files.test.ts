/**
 * The two feed caches as hosts have them on disk: feed-cache.json (a GitHub
 * feed, with feed-releases.json beside it) and index-cache.json (a signed
 * index), byte for byte as releases before the shared cache wrote them. Both
 * still read as the decision they record, and a file of the other kind, or
 * with a shared field of the wrong type, is no cache.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { feedBodyPath, readCachedBody, readFeedCache } from '../../src/feed/cache.js';
import { readIndexCache } from '../../src/feed/index-cache.js';

const releases = '[{"tag_name":"v1.0.0","draft":false,"prerelease":false,"assets":[]}]\n';

const feedCache =
  '{"version":1,"url":"https://api.github.com/repos/acme/deploy/releases?per_page=100","etag":"W/\\"e1\\"","config":"FEED=acme/deploy\\nBUNDLES=demo\\n","state":"{}\\n","feed":"acme/deploy","metricsFile":null,"feedTimeoutSec":30,"installed":{"demo":"1.0.0"},"truncated":false,"held":{"web":{"version":"2.0.0","since":"2026-01-01T00:00:00.000Z","needs":"AddCapability=NET_ADMIN","grant":"/etc/rick/grants/web.conf","grantText":""}},"bodySha256":"SHA"}\n';

const indexCache =
  '{"version":1,"url":"https://example.org/index.json","etag":null,"config":"FEED=https://example.org/index.json\\nBUNDLES=demo\\n","state":"{}\\n","feed":"https://example.org/index.json","metricsFile":"/var/lib/node_exporter/textfile_collector/rick.prom","feedTimeoutSec":30,"installed":{"demo":"1.0.0"},"yanked":{"demo":{"version":"1.0.0","reason":"broken"}},"indexSha256":"aaaa","keys":"bbbb","serial":7,"expires":1800000000,"recheckAt":1700000000}\n';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function stateDir(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'rick-feed-cache-'));
  dirs.push(dir);
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

describe('feed caches written before the shared cache', () => {
  it('feed-cache.json reads whole, and its releases list with it', async () => {
    const { createHash } = await import('node:crypto');
    const sha = createHash('sha256').update(releases).digest('hex');
    const dir = stateDir({
      'feed-cache.json': feedCache.replace('SHA', sha),
      'feed-releases.json': releases,
    });
    const cache = readFeedCache(join(dir, 'feed-cache.json'));
    expect(cache).toEqual(JSON.parse(feedCache.replace('SHA', sha)));
    expect(cache?.held?.web?.needs).toBe('AddCapability=NET_ADMIN');
    expect(await readCachedBody(feedBodyPath(dir), cache!)).toBe(releases);
  });

  it('index-cache.json reads whole, an ETag of null included', () => {
    const dir = stateDir({ 'index-cache.json': indexCache });
    expect(readIndexCache(join(dir, 'index-cache.json'))).toEqual(JSON.parse(indexCache));
  });

  it('neither reads the other, nor a file whose shared field has the wrong type', () => {
    const dir = stateDir({
      'feed-cache.json': indexCache,
      'index-cache.json': indexCache.replace('"feedTimeoutSec":30', '"feedTimeoutSec":"30"'),
      'github.json': feedCache.replace('"etag":"W/\\"e1\\""', '"etag":null'),
      'other.json': indexCache.replace('"installed":{"demo":"1.0.0"}', '"installed":{"demo":1}'),
    });
    // An index cache has no bodySha256 and may have a null ETag: not a GitHub feed's cache.
    expect(readFeedCache(join(dir, 'feed-cache.json'))).toBeUndefined();
    expect(readIndexCache(join(dir, 'index-cache.json'))).toBeUndefined();
    expect(readIndexCache(join(dir, 'other.json'))).toBeUndefined();
    expect(readFeedCache(join(dir, 'github.json'))).toBeUndefined();
    expect(readIndexCache(join(dir, 'missing.json'))).toBeUndefined();
  });
});
