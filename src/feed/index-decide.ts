/**
 * The deciding half of a signed release index's tick (src/feed/index-tick.ts
 * has the whole and the no-op half): verify the index, check its serial and
 * expiry, keep it, decide per bundle with the one decision skeleton
 * (decide.ts, the index as its source: index-source.ts), record the
 * decision. Loaded only when a tick has something to decide.
 */
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { parseIndex } from '../bundle/release-index.js';
import { RickError } from '../errors.js';
import { hostPaths } from '../host/paths.js';
import { writeFileAtomic } from '../host/state.js';
import { refreshKeyTrust } from '../trust/key-accept.js';
import { publishedBesideIndex } from '../trust/key-fetch.js';
import { ownerOption } from '../trust/key-state.js';
import type { HttpResponse } from './client.js';
import { parseConfig } from './config.js';
import { decideBundles, isRollback, readInstalled } from './decide.js';
import { cachedHeld, recordHeld } from './hold.js';
import {
  INDEX_CACHE_VERSION,
  type IndexCache,
  indexCachePath,
  versionsOf,
  warnYanked,
} from './index-cache.js';
import {
  fetchIndexSignature,
  readAcceptedIndex,
  readAcceptedSignature,
  readMachineId,
  sha256Hex,
  trustedKeysDigest,
  verifyIndexSignature,
  writeAcceptedIndex,
} from './index-client.js';
import {
  checkIndexFresh,
  checkIndexIssued,
  checkIndexSequence,
  LAST_BUCKET,
  nextRolloutChange,
  rolloutBucket,
} from './index-select.js';
import { indexSource } from './index-source.js';
import { warn } from './journal.js';
import { INDEX_MAX_BYTES, writeCacheFile } from './tick-cache.js';
import type { IndexTick, Report } from './update-deps.js';

export interface Decision {
  response: HttpResponse;
  /** The accepted index, when the request was conditional on it. */
  held: Buffer | undefined;
  url: string;
  feed: string;
  feedTimeoutSec: number;
  report: Report;
}

/**
 * Verifies and checks the index (fetched now, or the accepted one when the
 * server answered 304), then decides per bundle and installs. The index
 * becomes the floor once verified and checked, whatever follows. Only a
 * rollback counts as a carried-out decision besides success (the version is
 * quarantined); any other failure records no decision.
 */
export async function decideOnIndex(tick: IndexTick, d: Decision): Promise<void> {
  const { deps, paths, root } = tick;
  const config =
    tick.config ?? parseConfig(tick.configText, paths.config, hostPaths('/').metricsFile);
  const now = deps.now();
  const source = `release index ${d.feed}`;
  const timeoutMs = d.feedTimeoutSec * 1000;
  // The key list and a root hand-over published beside the index, before any signature is checked.
  await refreshKeyTrust(paths, publishedBesideIndex(deps.http, d.url, timeoutMs), deps.log, {
    now,
    ...ownerOption(),
  });

  let bytes: Buffer;
  let signature: Buffer | undefined;
  let fresh: boolean;
  let response = d.response;
  // Whether the kept copy must be written again: a new index, or a kept signature that failed.
  let keep = false;
  if (response.status === 304 && d.held !== undefined) {
    bytes = d.held;
    signature = readAcceptedSignature(paths);
    fresh = false;
  } else if (response.status === 200) {
    bytes = response.body;
    fresh = true;
  } else {
    throw new RickError(
      'FEED_ERROR',
      `${source} answered HTTP ${response.status}${response.status === 304 ? ' to a request for the whole index' : ''}`,
      { hint: 'nothing was changed; the next timer tick tries again' },
    );
  }
  // The digest of the trusted keys that verified the index decided on.
  let keys: string | undefined;
  if (!fresh) {
    // The kept copy is the very index verified when it was accepted (the
    // held bytes have the cached sha256, and /var/lib/rick is root's). It
    // is verified again only when the trusted keys changed since, as a key
    // may have been removed; if it no longer verifies, the index is fetched
    // whole. docs/release-index.md says why skipping gpgv here is safe.
    const current = trustedKeysDigest(paths.keysDir, paths.stateDir);
    try {
      if (current !== undefined && current === tick.cache?.keys) {
        keys = current;
      } else {
        if (signature === undefined) throw new RickError('SIGNATURE_MISSING', 'no kept signature');
        ({ keys } = await verifyIndexSignature(
          bytes,
          signature,
          paths.keysDir,
          source,
          paths.stateDir,
        ));
      }
    } catch {
      response = await deps.http.get(d.url, {
        headers: { 'user-agent': 'rick-install', accept: 'application/json' },
        maxBytes: INDEX_MAX_BYTES,
        timeoutMs,
        what: source,
      });
      if (response.status !== 200) {
        throw new RickError('FEED_ERROR', `${source} answered HTTP ${response.status}`, {
          hint: 'nothing was changed; the next timer tick tries again',
        });
      }
      bytes = response.body;
      fresh = true;
      signature = undefined;
      keep = true;
    }
  }
  if (fresh) {
    signature = await fetchIndexSignature(deps.http, d.url, timeoutMs, source);
    // The signature first: nothing of the index is parsed before it is verified.
    ({ keys } = await verifyIndexSignature(
      bytes,
      signature,
      paths.keysDir,
      source,
      paths.stateDir,
    ));
  }
  const sha256 = sha256Hex(bytes);
  const index = parseIndex(bytes.toString('utf8'), source);
  const accepted = readAcceptedIndex(paths);
  const sequence = checkIndexSequence(index, sha256, accepted, source);
  try {
    checkIndexIssued(index, now, source);
  } catch (error) {
    d.report.indexNotYetValid = true;
    warn(
      deps,
      `${source} (serial ${index.serial}) is issued at ${index.issued}, in the future by this host's clock: installing nothing; check the clocks`,
    );
    throw error;
  }
  const expires = Math.floor(Date.parse(index.expires) / 1000);
  d.report.index = { expires, serial: index.serial, yanked: {} };
  try {
    checkIndexFresh(index, now, source);
  } catch (error) {
    warn(
      deps,
      `${source} (serial ${index.serial}) expired at ${index.expires}: installing nothing until a fresh index is served; the feed may be frozen`,
    );
    throw error;
  }
  // The floor rises as soon as the index is verified and checked, before
  // anything is downloaded, as TUF keeps verified metadata before it fetches
  // targets: a tick whose download fails (a 404 a mirror chose) must not
  // let the next one accept an older index, from before a yank. The cache
  // made on the index below goes first, so that no tick takes a 304 of that
  // one for "unchanged"; a crash in between leaves no cache and the old floor.
  if (sequence === 'new' || keep) {
    if (tick.cache !== undefined && tick.cache.indexSha256 !== sha256) {
      await rm(indexCachePath(paths.stateDir), { force: true });
    }
    await writeAcceptedIndex(paths, bytes, signature as Buffer);
  }
  if (fresh) {
    deps.log(
      `checked ${d.feed}: index serial ${index.serial}, ${index.releases.length} releases, expires ${index.expires}`,
    );
  } else {
    deps.log(
      `checked ${d.feed}: unchanged, deciding again (rick.conf, the state or the time changed)`,
    );
  }

  const machineId = readMachineId(root);
  const hasWaves = index.releases.some((r) => config.bundles.includes(r.bundle) && r.rollout);
  if (machineId === undefined && hasWaves) {
    deps.log(
      `no machine-id in ${join(root, 'etc/machine-id')}: this host takes staged releases with their last wave`,
    );
  }
  const bucketOf = (bundle: string) => (version: string) =>
    machineId === undefined ? LAST_BUCKET : rolloutBucket(machineId, bundle, version);

  const feedSource = indexSource({
    index,
    config,
    url: d.url,
    source,
    now,
    bucketOf,
    ignoreWaves: tick.options.now === true,
    http: deps.http,
  });
  const { held, updated, firstError } = await decideBundles(feedSource, config, root, deps);
  const { selections, yanked } = feedSource;
  for (const bundle of updated) delete yanked[bundle];
  warnYanked(yanked, deps);
  d.report.index.yanked = versionsOf(yanked);
  const installed = await readInstalled(root, config.bundles);
  d.report.installed = installed;
  if (firstError !== undefined && !isRollback(firstError)) {
    throw firstError;
  }
  const holds = await recordHeld(paths.stateDir, held, now, writeFileAtomic);
  d.report.held = holds;
  const recheck = nextRolloutChange(selections, now);
  // The ETag of the index decided on: the one just received, or the cached one after a 304.
  const etag =
    response.status === 200 ? (response.headers.etag ?? null) : (tick.cache?.etag ?? null);
  const cache: IndexCache = {
    version: INDEX_CACHE_VERSION,
    url: config.feedUrl,
    etag,
    config: tick.configText,
    state: await readFile(paths.stateFile, 'utf8').catch(() => ''),
    feed: config.feed,
    metricsFile: config.metricsFile ?? null,
    feedTimeoutSec: config.feedTimeoutSec,
    installed,
    yanked,
    indexSha256: sha256,
    ...(keys === undefined ? {} : { keys }),
    serial: index.serial,
    expires,
    recheckAt: recheck === undefined ? null : Math.floor(recheck.getTime() / 1000),
    ...(Object.keys(holds).length ? { held: cachedHeld(holds, root) } : {}),
  };
  await writeCacheFile(indexCachePath(paths.stateDir), cache, writeFileAtomic);
  if (firstError !== undefined) throw firstError;
}
