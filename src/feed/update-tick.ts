import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { RickError } from '../errors.js';
import type { InstallerDeps } from '../host/install.js';
import { throwIfInterrupted } from '../host/interrupt.js';
import { hostPaths } from '../host/paths.js';
import type { Host } from '../host/system.js';
import {
  FEED_CACHE_VERSION,
  feedBodyPath,
  feedCachePath,
  readCachedBody,
  readFeedCache,
  writeFeedCache,
} from './cache.js';
import type { RickConfig } from './config.js';
import { FEED_MAX_PAGES, feedCredentials, headersFor } from './github-request.js';
import type { FeedBody } from './github-source.js';
import { cachedHeld, heldLine, recordHeld } from './hold.js';
import { followIndexFeed } from './index-tick.js';
import { parsePreviousMetrics, renderMetrics } from './metrics.js';
import { readMetricsFile, writeMetricsFile } from './metrics-file.js';
import { readText } from './small-file.js';
import { FEED_MAX_BYTES, sameInputs } from './tick-cache.js';
import type { InstallDownloaded, UpdateDeps, UpdateOptions } from './update-deps.js';

export type { InstallDownloaded, UpdateDeps, UpdateOptions } from './update-deps.js';

/** Runs one update tick. Resolves when every followed bundle is up to date; throws the first failure. */
export async function runUpdate(options: UpdateOptions, deps: UpdateDeps): Promise<void> {
  // A run that died (or was stopped) after its flip left its intent record,
  // and the feed may have nothing new: the tick completes it whatever the
  // feed says. One stat when there is none.
  const intentFile = hostPaths(options.root ?? '/').intentFile;
  if (deps.completeInterrupted && existsSync(intentFile)) {
    await deps.completeInterrupted(options.root ?? '/');
    // Stopped meanwhile (the restore was finished first): the feed can wait.
    throwIfInterrupted('after completing the interrupted run');
  }
  // A FEED naming a signed release index is followed by index-tick.ts.
  if (await followIndexFeed(options, deps)) return;
  const root = options.root ?? '/';
  const paths = hostPaths(root);
  const defaultMetrics = hostPaths('/').metricsFile;
  const checkedAt = deps.now();
  let metricsFile: string | undefined = defaultMetrics;
  let installed: Record<string, string> | undefined;
  try {
    const configText = readText(paths.config);
    if (configText === undefined) {
      throw new RickError('CONFIG_INVALID', `${paths.config} does not exist`, {
        hint: 'run bootstrap.sh (a release asset) or write it by hand: KEY=value lines, FEED= (a GitHub owner/name or an index URL) and BUNDLES= at least',
      });
    }
    const stateText = readText(paths.stateFile) ?? '';
    const cacheFile = feedCachePath(paths.stateDir);
    const cache = readFeedCache(cacheFile);
    const unchangedInputs = sameInputs(cache, configText, stateText, root);

    let feed: string;
    let feedUrl: string;
    let feedTimeoutSec: number;
    let config: RickConfig | undefined;
    if (unchangedInputs) {
      // Same rick.conf and state as when the cached decision was made.
      ({ feed, url: feedUrl, feedTimeoutSec } = cache);
      metricsFile = cache.metricsFile ?? undefined;
      installed = cache.installed;
    } else {
      const { parseConfig } = await import('./update-deferred.js');
      config = parseConfig(configText, paths.config, defaultMetrics);
      ({ feed, feedUrl, feedTimeoutSec } = config);
      metricsFile = config.metricsFile;
    }

    // Revalidate only what can be decided on again: with the same inputs the
    // cached decision stands; with new inputs the cached list must be at hand.
    let cachedBody: string | undefined;
    if (cache && cache.url === feedUrl && !unchangedInputs) {
      cachedBody = await readCachedBody(feedBodyPath(paths.stateDir), cache);
    }
    const credentials = feedCredentials(feedUrl, deps.env);
    const what = `release feed ${feed}`;
    const accept = 'application/vnd.github+json';
    const headers = headersFor(feedUrl, accept);
    if (cache && cache.url === feedUrl && (unchangedInputs || cachedBody !== undefined)) {
      headers['if-none-match'] = cache.etag;
    }
    const request = { credentials, maxBytes: FEED_MAX_BYTES, timeoutMs: feedTimeoutSec * 1000 };
    const response = await deps.http.get(feedUrl, { ...request, headers, what });

    if (response.status === 304 && unchangedInputs) {
      deps.log(`checked ${feed}: unchanged since the last check, nothing new`);
      for (const [bundle, h] of Object.entries(cache.held ?? {})) deps.log(heldLine(bundle, h));
      recordMetrics(root, metricsFile, checkedAt, cache.installed, true, cache.held);
      return;
    }
    let body: FeedBody;
    if (response.status === 304 && cachedBody !== undefined && cache) {
      body = { kind: 'cached', body: cachedBody, truncated: cache.truncated === true };
      deps.log(`checked ${feed}: unchanged, deciding again because rick.conf or the state changed`);
    } else if (response.status === 200) {
      const { nextPageUrl, explainRefusal } = await import('./update-deferred.js');
      // Newer releases come first; one in range may sit behind many out of it.
      const pages = [response.body.toString('utf8')];
      let truncated = false;
      for (let next = nextPageUrl(response.headers.link); next !== undefined; ) {
        if (pages.length >= FEED_MAX_PAGES) {
          truncated = true;
          break;
        }
        const url = new URL(next, feedUrl);
        const page = `${what} (page ${pages.length + 1})`;
        if (url.origin !== new URL(feedUrl).origin) {
          throw new RickError(
            'FEED_ERROR',
            `${page}: the next page is on another origin (${url.href}); not following it`,
            { hint: 'nothing was changed; a feed serves every page of its list itself' },
          );
        }
        const answer = await deps.http.get(url.href, {
          ...request,
          headers: headersFor(url.href, accept),
          what: page,
        });
        if (answer.status !== 200) {
          throw explainRefusal(answer, { token: credentials !== undefined, what: page });
        }
        pages.push(answer.body.toString('utf8'));
        next = nextPageUrl(answer.headers.link);
      }
      body = { kind: 'fresh', pages, truncated };
    } else {
      // Off the no-op path: explaining a refusal loads the rest of the program.
      const { explainRefusal } = await import('./update-deferred.js');
      throw explainRefusal(response, { token: credentials !== undefined, what });
    }
    if (!config) {
      const { parseConfig } = await import('./update-deferred.js');
      config = parseConfig(configText, paths.config, defaultMetrics);
    }
    const { decideOnReleases } = await import('./update-deferred.js');
    const decided = await decideOnReleases(config, body, root, deps);
    installed = decided.installed;
    const { writeFileAtomic: writeHeld } = await import('./update-deferred.js');
    const held = await recordHeld(paths.stateDir, decided.held, deps.now(), writeHeld);

    const etag = response.status === 200 ? response.headers.etag : cache?.etag;
    if (etag) {
      const { writeFileAtomic } = await import('./update-deferred.js');
      await writeFeedCache(
        paths.stateDir,
        {
          version: FEED_CACHE_VERSION,
          url: config.feedUrl,
          etag,
          config: configText,
          state: readText(paths.stateFile) ?? '',
          feed: config.feed,
          metricsFile: config.metricsFile ?? null,
          feedTimeoutSec: config.feedTimeoutSec,
          installed,
          truncated: body.truncated,
          ...(Object.keys(held).length ? { held: cachedHeld(held, root) } : {}),
        },
        decided.body,
        writeFileAtomic,
      );
    }
    if (decided.rolledBack !== undefined) throw decided.rolledBack;
    recordMetrics(root, metricsFile, checkedAt, installed, true, held);
  } catch (error) {
    try {
      recordMetrics(root, metricsFile, checkedAt, installed, false);
    } catch {
      // The update's own error is the one to report.
    }
    throw error;
  }
}

function recordMetrics(
  root: string,
  metricsFile: string | undefined,
  checkedAt: Date,
  installed: Record<string, string> | undefined,
  success: boolean,
  held?: Record<string, { version: string }>,
): void {
  if (!metricsFile) return;
  const file = join(root, metricsFile);
  const previousText = readMetricsFile(file);
  const previous = parsePreviousMetrics(previousText);
  const now = Math.floor(checkedAt.getTime() / 1000);
  const text = renderMetrics({
    installed: installed ?? parseInstalledFromMetrics(previousText),
    lastCheck: now,
    lastSuccess: success ? now : previous.lastSuccess,
    successTotal: previous.successTotal + (success ? 1 : 0),
    failureTotal: previous.failureTotal + (success ? 0 : 1),
    held: Object.fromEntries(Object.entries(held ?? {}).map(([b, h]) => [b, h.version])),
  });
  writeMetricsFile(file, text);
}

function parseInstalledFromMetrics(text: string | undefined): Record<string, string> {
  const installed: Record<string, string> = {};
  for (const m of text?.matchAll(/^rick_bundle_info\{bundle="([^"]*)",version="([^"]*)"\} 1$/gm) ??
    []) {
    installed[m[1]!] = m[2]!;
  }
  return installed;
}

/** Installs a downloaded bundle through the pipeline of `rick-install <bundle>`. */
export async function installThroughPipeline(
  request: Parameters<InstallDownloaded>[0],
  host: Host,
  log: (line: string) => void,
  validateUnits?: InstallerDeps['validateUnits'],
): Promise<void> {
  // Loaded only when there is something to install: tar and the
  // schemas stay off the timer's no-op path.
  const { installBundle } = await import('./update-deferred.js');
  await installBundle(
    {
      bundlePath: request.bundlePath,
      signaturePath: request.signaturePath,
      expect: request.expect,
      ...(request.root === '/' ? {} : { root: request.root }),
    },
    { host, log, validateUnits },
  );
}

/** Completes an interrupted run's intent record through the install pipeline's recovery. */
export async function completeThroughPipeline(
  root: string,
  host: Host,
  log: (line: string) => void,
  validateUnits?: InstallerDeps['validateUnits'],
): Promise<void> {
  const { completeInterruptedRun } = await import('./update-deferred.js');
  await completeInterruptedRun(root === '/' ? undefined : root, {
    host,
    log,
    ...(validateUnits ? { validateUnits } : {}),
  });
}
