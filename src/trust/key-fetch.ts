/**
 * Where the update tick finds the key list and a root hand-over: beside the
 * index (the index URL's directory, its query kept, as for the index's own
 * signature), or among the assets of the GitHub release being installed.
 * Absent files are `undefined`, not errors: a feed that publishes no list
 * leaves the kept one in force (src/trust/key-accept.ts).
 */
import { RickError } from '../errors.js';
import type { HttpClient } from '../feed/client.js';
import type { FeedAsset } from '../feed/releases.js';
import type { FetchPublished } from './key-accept.js';
import { KEY_LIST_MAX_BYTES } from './key-roles.js';

/** `keys.json` beside `https://host/dir/index.json?token=abc` is `https://host/dir/keys.json?token=abc`. */
export function besideIndexUrl(indexUrl: string, name: string): string {
  const index = new URL(indexUrl);
  const url = new URL(name, index);
  url.search = index.search;
  url.hash = '';
  return url.href;
}

export function publishedBesideIndex(
  http: HttpClient,
  indexUrl: string,
  timeoutMs: number,
): FetchPublished {
  return async (name) => {
    const url = besideIndexUrl(indexUrl, name);
    const response = await http.get(url, {
      headers: { 'user-agent': 'rick-install', accept: 'application/octet-stream' },
      maxBytes: KEY_LIST_MAX_BYTES,
      timeoutMs,
      what: `${name} beside the index`,
    });
    if (response.status === 404) return undefined;
    if (response.status !== 200) {
      throw new RickError('FEED_ERROR', `${name} (${url}): HTTP ${response.status}`, {
        hint: 'nothing was changed; the next timer tick tries again',
      });
    }
    return response.body;
  };
}

/** Among a release's assets, downloaded as the bundle is (`download`: credentials, caps). */
export function publishedAmongAssets(
  assets: readonly FeedAsset[],
  download: (asset: FeedAsset, maxBytes: number) => Promise<Buffer>,
): FetchPublished {
  return async (name) => {
    const asset = assets.find((a) => a.name === name);
    return asset === undefined ? undefined : download(asset, KEY_LIST_MAX_BYTES);
  };
}
