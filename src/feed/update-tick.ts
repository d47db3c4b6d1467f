import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, isRickError, RickError } from '../errors.js';
import type { InstallerDeps } from '../host/install.js';
import type { Expectation } from '../host/intake/identity.js';
import { throwIfInterrupted } from '../host/interrupt.js';
import { hostPaths } from '../host/paths.js';
import type { HeldReleases } from '../host/policy/held.js';
import type { Host } from '../host/system.js';
import {
  FEED_CACHE_VERSION,
  feedBodyPath,
  feedCachePath,
  readCachedBody,
  readFeedCache,
  writeFeedCache,
} from './cache.js';
import { type HttpClient, isLoopback } from './client.js';
import type { RickConfig } from './config.js';
import {
  cachedHeld,
  heldGrantsUnchanged,
  heldLine,
  heldRelease,
  isPolicyRefusal,
  readText,
  recordHeld,
} from './hold.js';
import { followIndexFeed } from './index-tick.js';
import { parsePreviousMetrics, renderMetrics } from './metrics.js';
import { readMetricsFile, writeMetricsFile } from './metrics-file.js';
import type { Candidate, FeedAsset } from './releases.js';

/** The most one page of the releases list may weigh. */
export const FEED_MAX_BYTES = 8 * 1024 * 1024;
/** The most pages of the releases list one tick reads (100 releases each). */
export const FEED_MAX_PAGES = 10;
/** The most a detached signature may weigh. */
export const SIGNATURE_MAX_BYTES = 64 * 1024;
const USER_AGENT = 'rick-install';

export interface UpdateOptions {
  /** Install into this tree instead of `/` (`--root`). */
  root?: string;
  /** `--now`: take releases whose rollout waves have not reached this host yet (index feeds). */
  now?: boolean;
}

/**
 * What `update` needs from the installer: install one downloaded, not yet
 * verified bundle, which must be exactly the bundle and version chosen, in
 * the feed's channel and range (judged again on its verified manifest).
 */
export type InstallDownloaded = (request: {
  bundle: string;
  bundlePath: string;
  signaturePath: string;
  root: string;
  expect: Expectation;
}) => Promise<void>;

export interface UpdateDeps {
  http: HttpClient;
  install: InstallDownloaded;
  /** GITHUB_TOKEN is read from here. */
  env: NodeJS.ProcessEnv;
  now: () => Date;
  /** One line per decision; the journal picks stdout up. */
  log: (line: string) => void;
  /** A line at warning priority (src/feed/journal.ts); `log` with a `warning: ` prefix when absent. */
  warn?: (line: string) => void;
  /**
   * Completes what an interrupted run left on the host (its intent record),
   * under the lock (install.ts completeInterruptedRun). Called by every
   * tick that finds intent.json, before the feed is asked.
   */
  completeInterrupted?: (root: string) => Promise<void>;
}

interface Decided {
  installed: Record<string, string>;
  /** Releases held until the operator grants what they need (src/host/policy/held.ts). */
  held: HeldReleases;
  /** The rollback error to report once the decision has been recorded. */
  rolledBack: unknown;
  /** The releases decided on, as the cache keeps them. */
  body: string;
}

/** The releases list as this tick has it. */
type FeedBody =
  | { kind: 'fresh'; pages: string[]; truncated: boolean }
  | { kind: 'cached'; body: string; truncated: boolean };

/**
 * GITHUB_TOKEN as credentials for the feed's own origin, and for no other:
 * not an asset URL elsewhere, not where a redirect leads. A token travels
 * only over TLS (or to this very host).
 */
function feedCredentials(
  feedUrl: string,
  env: NodeJS.ProcessEnv,
): { authorization: string; origin: string } | undefined {
  const token = env.GITHUB_TOKEN;
  if (!token) return undefined;
  const url = new URL(feedUrl);
  if (url.protocol !== 'https:' && !isLoopback(url)) return undefined;
  return { authorization: `Bearer ${token}`, origin: url.origin };
}

function headersFor(url: string, accept: string): Record<string, string> {
  const headers: Record<string, string> = { 'user-agent': USER_AGENT, accept };
  if (new URL(url).hostname === 'api.github.com') headers['x-github-api-version'] = '2022-11-28';
  return headers;
}

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
    const unchangedInputs =
      cache !== undefined &&
      cache.config === configText &&
      cache.state === stateText &&
      heldGrantsUnchanged(cache.held, root);

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
    const decided = await decideAndInstall(config, body, root, deps);
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

/**
 * Decides per bundle and installs. A bundle whose install rolled back has
 * been quarantined by the installer: the decision is carried out, and the
 * error is raised after the other bundles had their turn. Nothing else
 * quarantines: a download that fails, a bad signature, or a bundle other
 * than the one the release names are the mirror's doing, not the release's,
 * and the next tick tries again.
 */
async function decideAndInstall(
  config: RickConfig,
  body: FeedBody,
  root: string,
  deps: UpdateDeps,
): Promise<Decided> {
  const { parseReleases, selectRelease, serializeReleases, readState, bundleState } = await import(
    './update-deferred.js'
  );
  const paths = hostPaths(root);
  const what = `release feed ${config.feed}`;
  const releases =
    body.kind === 'cached'
      ? parseReleases(body.body, what)
      : body.pages.flatMap((page, i) =>
          parseReleases(page, i === 0 ? what : `${what} (page ${i + 1})`),
        );
  const capped = body.truncated
    ? `only the first ${releases.length} releases were read (at most ${FEED_MAX_PAGES} pages)`
    : undefined;
  if (body.kind === 'fresh') {
    const pages = body.pages.length > 1 ? ` on ${body.pages.length} pages` : '';
    deps.log(
      `checked ${config.feed}: ${releases.length} releases${pages}${capped ? `; ${capped}` : ''}`,
    );
  }
  let firstError: unknown;
  const held: HeldReleases = {};
  for (const bundle of config.bundles) {
    const status = bundleState(await readState(paths.stateFile), bundle);
    const selection = selectRelease(
      releases,
      bundle,
      { channel: config.channel, range: config.range },
      { installed: status.installed, highest: status.highest, quarantined: status.quarantined },
    );
    for (const version of selection.skippedQuarantined) {
      deps.log(`${bundle}: skipping ${version}, quarantined after a failed install`);
    }
    for (const note of selection.notes) deps.log(`${bundle}: ${note}`);
    if (selection.action === 'none') {
      deps.log(`${bundle}: nothing new (${selection.reason}${capped ? `; ${capped}` : ''})`);
      continue;
    }
    const { candidate } = selection;
    deps.log(
      `${bundle}: installing ${candidate.version} from release ${candidate.tag} (installed: ${status.installed ?? 'none'})`,
    );
    try {
      // The newest release carrying a key list has the list in force (an older release's is older).
      const assets =
        releases.find((r) => !r.draft && r.assets.some((a) => a.name === 'keys.json'))?.assets ??
        [];
      await downloadAndInstall(config, bundle, candidate, assets, root, deps);
      deps.log(`${bundle}: installed ${candidate.version}`);
    } catch (error) {
      // Stopped by a signal, once the host was put back: the other bundles wait for the next tick.
      if (isRickError(error) && error.code === 'INTERRUPTED') throw error;
      if (isPolicyRefusal(error)) {
        // Not a failure and not quarantined: held until the operator grants it.
        const h = heldRelease(bundle, candidate.version, error.message, root);
        held[bundle] = h;
        deps.log(heldLine(bundle, h));
        continue;
      }
      if (isRickError(error) && error.code === 'ROLLED_BACK') {
        deps.log(`${bundle}: rolled back ${candidate.version} because ${error.message}`);
      } else {
        deps.log(
          `${bundle}: not installed ${candidate.version} because ${isRickError(error) ? `${error.code}: ` : ''}${describe(error)}`,
        );
      }
      firstError ??= error;
    }
  }
  // Only a rollback is a carried-out decision (the version is now quarantined);
  // any other failure leaves no cache so that the next tick tries again.
  if (firstError !== undefined && !(isRickError(firstError) && firstError.code === 'ROLLED_BACK')) {
    throw firstError;
  }
  const state = await readState(paths.stateFile);
  const installed: Record<string, string> = {};
  for (const bundle of config.bundles) {
    const version = state.bundles[bundle]?.installed;
    if (version) installed[bundle] = version;
  }
  return { installed, held, rolledBack: firstError, body: serializeReleases(releases) };
}

async function downloadAndInstall(
  config: RickConfig,
  bundle: string,
  candidate: Candidate,
  /** The assets of the release publishing the key list and a root hand-over. */
  assets: readonly FeedAsset[],
  root: string,
  deps: UpdateDeps,
): Promise<void> {
  const { asset, signature } = candidate;
  if (!signature) {
    throw new RickError(
      'SIGNATURE_MISSING',
      `release ${candidate.tag} has ${asset.name} but no ${asset.name}.sig; refusing to install it`,
      { hint: 'publish the detached signature with the release' },
    );
  }
  if (asset.size > config.maxBundleBytes) {
    throw new RickError(
      'FEED_ERROR',
      `${asset.name} is ${asset.size} bytes, more than MAX_BUNDLE_BYTES=${config.maxBundleBytes}`,
    );
  }
  // Loaded here, off the no-op path.
  const [{ mkdtemp, rm, writeFile }, { tmpdir }, { explainRefusal }] = await Promise.all([
    import('node:fs/promises'),
    import('node:os'),
    import('./update-deferred.js'),
  ]);
  const dir = await mkdtemp(join(tmpdir(), 'rick-update-'));
  try {
    const credentials = feedCredentials(config.feedUrl, deps.env);
    const download = async (file: FeedAsset, maxBytes: number) => {
      const answer = await deps.http.get(file.url, {
        headers: headersFor(file.url, 'application/octet-stream'),
        credentials,
        maxBytes: Math.min(file.size, maxBytes),
        // GitHub announces each asset's size: a shorter body was cut off.
        expectBytes: file.size,
        timeoutMs: config.downloadTimeoutSec * 1000,
        what: file.name,
        // What an https feed names is fetched over https too.
        tls: new URL(config.feedUrl).protocol === 'https:',
      });
      if (answer.status !== 200) {
        throw explainRefusal(answer, { token: credentials !== undefined, what: file.name });
      }
      return answer.body;
    };
    // The release's key list and a root hand-over, before the bundle's signature is checked.
    const { refreshKeyTrust, publishedAmongAssets, ownerOption } = await import(
      './update-deferred.js'
    );
    await refreshKeyTrust(hostPaths(root), publishedAmongAssets(assets, download), deps.log, {
      now: deps.now(),
      ...ownerOption(),
    });
    const tgz = await download(asset, config.maxBundleBytes);
    const sig = await download(signature, SIGNATURE_MAX_BYTES);
    const bundlePath = join(dir, asset.name);
    const signaturePath = join(dir, signature.name);
    await writeFile(bundlePath, tgz, { mode: 0o600 });
    await writeFile(signaturePath, sig, { mode: 0o600 });
    await deps.install({
      bundle,
      bundlePath,
      signaturePath,
      root,
      expect: {
        bundle,
        version: candidate.version,
        source: `release ${candidate.tag} of ${config.feed}`,
        policy: { channel: config.channel, range: config.range },
      },
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
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
