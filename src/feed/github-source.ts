/**
 * The GitHub releases list as a feed source (source.ts): the pages a tick
 * read (or the list kept from the last decision), one candidate per bundle
 * by releases.ts's selection, and a release's asset and its `.sig`
 * downloaded from the feed, with GITHUB_TOKEN for the feed's own origin.
 * Loaded only when a tick has something to decide (update-deferred.ts).
 */
import { RickError } from '../errors.js';
import { hostPaths } from '../host/paths.js';
import type { HeldReleases } from '../host/policy/held.js';
import { refreshKeyTrust } from '../trust/key-accept.js';
import { publishedAmongAssets } from '../trust/key-fetch.js';
import { ownerOption } from '../trust/key-state.js';
import type { RickConfig } from './config.js';
import { decideBundles, isRollback, readInstalled } from './decide.js';
import { explainRefusal } from './github-api.js';
import { FEED_MAX_PAGES, feedCredentials, headersFor } from './github-request.js';
import {
  type Candidate,
  type FeedAsset,
  type FeedRelease,
  parseReleases,
  selectRelease,
  serializeReleases,
} from './releases.js';
import type { FeedSource, SignedFile } from './source.js';
import { SIGNATURE_MAX_BYTES } from './tick-cache.js';
import type { UpdateDeps } from './update-deps.js';

/** The releases list as this tick has it. */
export type FeedBody =
  | { kind: 'fresh'; pages: string[]; truncated: boolean }
  | { kind: 'cached'; body: string; truncated: boolean };

export interface DecidedReleases {
  installed: Record<string, string>;
  /** Releases held until the operator grants what they need (src/host/policy/held.ts). */
  held: HeldReleases;
  /** The rollback error to report once the decision has been recorded. */
  rolledBack: unknown;
  /** The releases decided on, as the cache keeps them. */
  body: string;
}

/**
 * Decides per bundle on the releases list and installs. Only a rollback is
 * a carried-out decision besides success (the version is now quarantined);
 * any other failure is raised here and leaves no cache, so that the next
 * tick tries again.
 */
export async function decideOnReleases(
  config: RickConfig,
  body: FeedBody,
  root: string,
  deps: UpdateDeps,
): Promise<DecidedReleases> {
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
  const decided = await decideBundles(
    githubSource(config, releases, capped, root, deps),
    config,
    root,
    deps,
  );
  if (decided.firstError !== undefined && !isRollback(decided.firstError)) {
    throw decided.firstError;
  }
  return {
    installed: await readInstalled(root, config.bundles),
    held: decided.held,
    rolledBack: decided.firstError,
    body: serializeReleases(releases),
  };
}

function githubSource(
  config: RickConfig,
  releases: readonly FeedRelease[],
  capped: string | undefined,
  root: string,
  deps: UpdateDeps,
): FeedSource<Candidate> {
  const policy = { channel: config.channel, range: config.range };
  return {
    choose: (bundle, status) => {
      const selection = selectRelease(releases, bundle, policy, status);
      const skipped = selection.skippedQuarantined.map((version) => ({
        version,
        why: 'quarantined' as const,
      }));
      const common = { skipped, notes: selection.notes, waiting: [] };
      return selection.action === 'none'
        ? {
            release: undefined,
            reason: `${selection.reason}${capped ? `; ${capped}` : ''}`,
            ...common,
          }
        : { release: selection.candidate, reason: '', ...common };
    },
    version: (candidate) => candidate.version,
    origin: (candidate) => `release ${candidate.tag}`,
    expectSource: (candidate) => `release ${candidate.tag} of ${config.feed}`,
    fetchBundle: (candidate) => {
      // The newest release carrying a key list has the list in force (an older release's is older).
      const keyAssets =
        releases.find((r) => !r.draft && r.assets.some((a) => a.name === 'keys.json'))?.assets ??
        [];
      return downloadCandidate(config, candidate, keyAssets, root, deps);
    },
  };
}

async function downloadCandidate(
  config: RickConfig,
  candidate: Candidate,
  /** The assets of the release publishing the key list and a root hand-over. */
  keyAssets: readonly FeedAsset[],
  root: string,
  deps: UpdateDeps,
): Promise<SignedFile> {
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
  await refreshKeyTrust(hostPaths(root), publishedAmongAssets(keyAssets, download), deps.log, {
    now: deps.now(),
    ...ownerOption(),
  });
  const bytes = await download(asset, config.maxBundleBytes);
  const sig = await download(signature, SIGNATURE_MAX_BYTES);
  return { name: asset.name, bytes, signature: { name: signature.name, bytes: sig } };
}
