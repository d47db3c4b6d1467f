/**
 * A signed release index as a feed source (source.ts): one candidate per
 * bundle by index-select.ts's selection (channel, range, yanks, rollout
 * waves), a release's files downloaded from where the index says they lie.
 * It keeps what the index tick records besides (index-decide.ts): which
 * installed versions are yanked, and when a wave this host waits for starts.
 */
import type { IndexRelease, ReleaseIndex } from '../bundle/release-index.js';
import type { HttpClient } from './client.js';
import type { RickConfig } from './config.js';
import type { IndexCache } from './index-cache.js';
import { downloadIndexedRelease } from './index-client.js';
import { describeWait, type IndexSelection, selectFromIndex } from './index-select.js';
import type { FeedSource } from './source.js';

export interface IndexSourceOptions {
  index: ReleaseIndex;
  config: RickConfig;
  /** The index URL, which release files are found relative to. */
  url: string;
  /** `release index FEED`, as the tick says it. */
  source: string;
  now: Date;
  /** The host's bucket for one release of a bundle. */
  bucketOf: (bundle: string) => (version: string) => number;
  /** `update --now`: take a release its waves have not reached yet. */
  ignoreWaves: boolean;
  http: HttpClient;
}

export interface IndexSource extends FeedSource<IndexRelease> {
  /** Each bundle's selection, for when the decision may change without the index changing. */
  selections: IndexSelection[];
  /** Installed versions the index yanks: bundle → version and reason. */
  yanked: IndexCache['yanked'];
}

export function indexSource(o: IndexSourceOptions): IndexSource {
  const policy = { channel: o.config.channel, range: o.config.range };
  const selections: IndexSelection[] = [];
  const yanked: IndexCache['yanked'] = {};
  return {
    selections,
    yanked,
    choose: (bundle, status) => {
      const selection = selectFromIndex(o.index, {
        bundle,
        policy,
        status,
        now: o.now,
        bucketOf: o.bucketOf(bundle),
        ignoreWaves: o.ignoreWaves,
      });
      selections.push(selection);
      if (selection.liveYanked && status.installed !== undefined) {
        yanked[bundle] = { version: status.installed, reason: selection.liveYanked.reason };
      }
      return {
        release: selection.release,
        reason: selection.reason,
        skipped: selection.skipped,
        notes: [],
        waiting: selection.pending.map(
          (p) => `${p.version} waits for its rollout wave (${describeWait(p)})`,
        ),
      };
    },
    version: (release) => release.version,
    origin: () => o.source,
    expectSource: () => `the release index ${o.url}`,
    fetchBundle: async (release) => {
      const files = await downloadIndexedRelease(o.http, o.url, release, {
        maxBundleBytes: o.config.maxBundleBytes,
        timeoutMs: o.config.downloadTimeoutSec * 1000,
      });
      return {
        name: release.files.bundle,
        bytes: files.bundle,
        signature: { name: release.files.signature, bytes: files.signature },
      };
    },
  };
}
