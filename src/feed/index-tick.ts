import { join } from 'node:path';
import { type HostPaths, hostPaths } from '../host/paths.js';
import { feedCachePath, readFeedCache } from './cache.js';
import type { HttpResponse } from './client.js';
import type { RickConfig } from './config.js';
import { heldLine } from './hold.js';
import {
  type IndexCache,
  indexCachePath,
  readIndexCache,
  versionsOf,
  warnYanked,
} from './index-cache.js';
import { parsePreviousIndexMetrics, parsePreviousMetrics, renderMetrics } from './metrics.js';
import { readMetricsFile, writeMetricsFile } from './metrics-file.js';
import { readText } from './small-file.js';
import { INDEX_MAX_BYTES, sameInputs } from './tick-cache.js';
import type { IndexTick, Report, UpdateDeps, UpdateOptions } from './update-deps.js';

/**
 * Follows the index when rick.conf's FEED names one and returns true; returns
 * false (having changed nothing) for a GitHub feed, which update-tick.ts
 * follows. Tells the two apart from the caches without parsing rick.conf
 * when it has not changed since the last carried-out decision.
 */
export async function followIndexFeed(options: UpdateOptions, deps: UpdateDeps): Promise<boolean> {
  const root = options.root ?? '/';
  const paths = hostPaths(root);
  const configText = readText(paths.config);
  if (configText === undefined) return false;
  const cache = readIndexCache(indexCachePath(paths.stateDir));
  if (cache?.config === configText) {
    await runIndexTick({ options, deps, root, paths, configText, cache, config: undefined });
    return true;
  }
  // The GitHub feed decided on this very rick.conf: not an index.
  if (readFeedCache(feedCachePath(paths.stateDir))?.config === configText) return false;
  const { parseConfig } = await import('./update-deferred.js');
  let config: RickConfig;
  try {
    config = parseConfig(configText, paths.config, hostPaths('/').metricsFile);
  } catch {
    // update-tick.ts reports it.
    return false;
  }
  if (config.feedKind !== 'index') return false;
  await runIndexTick({ options, deps, root, paths, configText, cache, config });
  return true;
}

async function runIndexTick(tick: IndexTick): Promise<void> {
  const { deps, paths, root, configText, cache } = tick;
  const checkedAt = deps.now();
  const nowSec = Math.floor(checkedAt.getTime() / 1000);
  let metricsFile: string | undefined =
    tick.config?.metricsFile ??
    (cache ? (cache.metricsFile ?? undefined) : hostPaths('/').metricsFile);
  const report: Report = {};
  try {
    const stateText = readText(paths.stateFile) ?? '';
    const sameConfig = cache !== undefined && cache.config === configText;
    const unchanged = tick.options.now !== true && sameInputs(cache, configText, stateText, root);
    const due =
      cache !== undefined && (nowSec >= cache.expires || (cache.recheckAt ?? Infinity) <= nowSec);
    let url: string;
    let feed: string;
    let feedTimeoutSec: number;
    if (sameConfig && cache) {
      ({ url, feed, feedTimeoutSec } = cache);
    } else {
      const config = tick.config as RickConfig;
      ({ feedUrl: url, feed, feedTimeoutSec } = config);
      metricsFile = config.metricsFile;
    }

    // The accepted index is at hand for deciding again only if it is the one
    // the cached ETag belongs to; only then may the request be conditional.
    let held: Buffer | undefined;
    const headers: Record<string, string> = {
      'user-agent': 'rick-install',
      accept: 'application/json',
    };
    if (cache?.etag && cache.url === url) {
      if (unchanged && !due) {
        headers['if-none-match'] = cache.etag;
      } else {
        held = await readHeldIndex(paths, cache);
        if (held !== undefined) headers['if-none-match'] = cache.etag;
      }
    }
    const source = `release index ${feed}`;
    const response = await deps.http.get(url, {
      headers,
      maxBytes: INDEX_MAX_BYTES,
      timeoutMs: feedTimeoutSec * 1000,
      what: source,
    });

    if (unchanged && !due && cache && (await sameAsAccepted(response, cache))) {
      deps.log(`checked ${feed}: unchanged since the last check, nothing new`);
      warnYanked(cache.yanked, deps);
      for (const [bundle, h] of Object.entries(cache.held ?? {})) deps.log(heldLine(bundle, h));
      report.installed = cache.installed;
      report.held = cache.held ?? {};
      report.index = {
        expires: cache.expires,
        serial: cache.serial,
        yanked: versionsOf(cache.yanked),
      };
      recordIndexMetrics(root, metricsFile, checkedAt, report, true);
      return;
    }
    const { decideOnIndex } = await import('./update-deferred.js');
    await decideOnIndex(tick, { response, held, url, feed, feedTimeoutSec, report });
    recordIndexMetrics(root, metricsFile, checkedAt, report, true);
  } catch (error) {
    try {
      recordIndexMetrics(root, metricsFile, checkedAt, report, false);
    } catch {
      // The tick's own error is the one to report.
    }
    throw error;
  }
}

/** A 304, or the very bytes accepted last (a server without ETags answers 200 every time). */
async function sameAsAccepted(response: HttpResponse, cache: IndexCache): Promise<boolean> {
  if (response.status === 304) return true;
  if (response.status !== 200) return false;
  const { createHash } = await import('node:crypto');
  return createHash('sha256').update(response.body).digest('hex') === cache.indexSha256;
}

async function readHeldIndex(paths: HostPaths, cache: IndexCache): Promise<Buffer | undefined> {
  const { readAcceptedIndex } = await import('./update-deferred.js');
  try {
    const accepted = readAcceptedIndex(paths);
    return accepted?.sha256 === cache.indexSha256 ? accepted.bytes : undefined;
  } catch {
    return undefined;
  }
}

function recordIndexMetrics(
  root: string,
  metricsFile: string | undefined,
  checkedAt: Date,
  report: Report,
  success: boolean,
): void {
  if (!metricsFile) return;
  const file = join(root, metricsFile);
  const previousText = readMetricsFile(file);
  const previous = parsePreviousMetrics(previousText);
  const kept = parsePreviousIndexMetrics(previousText);
  const now = Math.floor(checkedAt.getTime() / 1000);
  const index = report.index ?? kept.index;
  const text = renderMetrics({
    installed: report.installed ?? kept.installed,
    lastCheck: now,
    lastSuccess: success ? now : previous.lastSuccess,
    successTotal: previous.successTotal + (success ? 1 : 0),
    failureTotal: previous.failureTotal + (success ? 0 : 1),
    indexNotYetValidTotal: previous.indexNotYetValidTotal + (report.indexNotYetValid ? 1 : 0),
    ...(index === undefined ? {} : { index }),
    ...(report.held === undefined
      ? {}
      : {
          held: Object.fromEntries(Object.entries(report.held).map(([b, h]) => [b, h.version])),
        }),
  });
  writeMetricsFile(file, text);
}
