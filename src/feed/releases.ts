/**
 * The release feed, pure: validating a GitHub-shaped releases list and
 * choosing which release of a bundle to install. No I/O here; the feed
 * client fetches, `update` acts on the decision.
 *
 * A release holds one asset per bundle, `<name>-<version>.tgz`, and its
 * detached signature `<name>-<version>.tgz.sig`. The version comes from the
 * asset name, which is only a claim: the installer takes the bundle only if
 * its signed manifest is exactly that bundle and version, in the channel and
 * range (src/host/intake/identity.ts). An asset whose upload is not complete
 * (GitHub's `state` other than `uploaded`) is not there yet.
 */
import semver from 'semver';
import * as z from 'zod';
import { describeFeedIssues } from '../bundle/zod.js';
import { RickError } from '../errors.js';
import {
  aboveFloor,
  type BundleStatus,
  inPolicy,
  nothingNewReason,
  type SelectionPolicy,
} from './select.js';

export type { BundleStatus, SelectionPolicy } from './select.js';

// GitHub's objects carry many more fields than these and add new ones over
// time: unknown keys are ignored here (z.object), unlike rick's own inputs.
// Built on first use: only the update command reads a feed, and building zod
// schemas is a measurable part of every installer start.
const buildReleasesSchema = () =>
  z.array(
    z.object({
      tag_name: z.string(),
      draft: z.boolean(),
      prerelease: z.boolean(),
      assets: z.array(
        z.object({
          name: z.string(),
          size: z.number().int().nonnegative(),
          url: z.string().url(),
          // GitHub always sends it; a feed of the same shape without it serves complete files.
          state: z.string().optional(),
          browser_download_url: z.string().url().optional(),
        }),
      ),
    }),
  );
let releasesSchema: ReturnType<typeof buildReleasesSchema> | undefined;

export interface FeedAsset {
  name: string;
  size: number;
  /** The API URL of the asset (GET with `Accept: application/octet-stream`). */
  url: string;
  /** GitHub's upload state; only `uploaded` (or none given) is complete. */
  state?: string;
}

export interface FeedRelease {
  tag: string;
  draft: boolean;
  prerelease: boolean;
  assets: FeedAsset[];
}

/** Parses the body of the releases endpoint; every problem is a FEED_ERROR naming the source. */
export function parseReleases(body: string, source: string): FeedRelease[] {
  const text = body.trimStart();
  if (text.startsWith('<')) {
    throw new RickError('FEED_ERROR', `${source} answered HTML, not a JSON releases list`, {
      hint: 'FEED must be a GitHub owner/name or the URL of a releases API endpoint',
    });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new RickError(
      'FEED_ERROR',
      `${source} answered malformed JSON (${error instanceof Error ? error.message : String(error)})`,
      {
        hint: 'the feed may be truncated or not a releases API endpoint; retried at the next tick',
      },
    );
  }
  releasesSchema ??= buildReleasesSchema();
  const result = releasesSchema.safeParse(value);
  if (!result.success) {
    throw new RickError(
      'FEED_ERROR',
      `${source} is not a GitHub releases list: ${describeFeedIssues(result.error.issues)}`,
    );
  }
  return result.data.map((r) => ({
    tag: r.tag_name,
    draft: r.draft,
    prerelease: r.prerelease,
    assets: r.assets.map((a) => ({
      name: a.name,
      size: a.size,
      url: a.url,
      ...(a.state === undefined ? {} : { state: a.state }),
    })),
  }));
}

/**
 * The releases as rick keeps them between ticks (feed-releases.json): the
 * fields it reads, under GitHub's names, so that parseReleases reads them back.
 */
export function serializeReleases(releases: readonly FeedRelease[]): string {
  return `${JSON.stringify(
    releases.map((r) => ({
      tag_name: r.tag,
      draft: r.draft,
      prerelease: r.prerelease,
      assets: r.assets,
    })),
  )}\n`;
}

export interface Candidate {
  version: string;
  tag: string;
  asset: FeedAsset;
  /** Undefined when the release has no `.sig` for the asset: the update refuses it. */
  signature: FeedAsset | undefined;
}

/** What a selection skipped or found missing on the way, one log line each (without the bundle). */
interface SelectionLines {
  skippedQuarantined: string[];
  notes: string[];
}

export type Selection =
  | ({ action: 'install'; candidate: Candidate } & SelectionLines)
  | ({ action: 'none'; reason: string } & SelectionLines);

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function complete(asset: FeedAsset): boolean {
  return asset.state === undefined || asset.state === 'uploaded';
}

/** The version a tag names (`v1.2.0` or `1.2.0`), if it names one. */
function tagVersion(tag: string): string | undefined {
  const version = tag.startsWith('v') ? tag.slice(1) : tag;
  return semver.valid(version) === version ? version : undefined;
}

/**
 * Picks the highest version that satisfies the range, is newer than the
 * installed one (and not below the highest ever installed), comes from a
 * published release (not a draft), is not quarantined, is a prerelease
 * only on the prerelease channel, and whose asset and signature are
 * completely uploaded. Says on the way what it skipped, and which newer
 * release in range carries no asset for the bundle at all.
 */
export function selectRelease(
  releases: readonly FeedRelease[],
  bundle: string,
  policy: SelectionPolicy,
  status: BundleStatus,
): Selection {
  const pattern = new RegExp(`^${escapeRegExp(bundle)}-(.+)\\.tgz$`);
  const skippedQuarantined: string[] = [];
  const notes: string[] = [];
  const wanted = (version: string, prerelease: boolean): boolean =>
    inPolicy(version, prerelease, policy) && aboveFloor(version, status);
  const candidates: Array<Candidate & { prerelease: boolean }> = [];
  for (const release of releases) {
    if (release.draft) continue;
    for (const asset of release.assets) {
      const version = pattern.exec(asset.name)?.[1];
      if (version === undefined || semver.valid(version) !== version) continue;
      candidates.push({
        version,
        tag: release.tag,
        asset,
        signature: release.assets.find((a) => a.name === `${asset.name}.sig`),
        prerelease: release.prerelease,
      });
    }
  }
  candidates.sort((a, b) => semver.rcompare(a.version, b.version));
  let chosen: Candidate | undefined;
  for (const c of candidates) {
    if (!wanted(c.version, c.prerelease)) continue;
    if (status.quarantined.includes(c.version)) {
      skippedQuarantined.push(c.version);
      continue;
    }
    const unfinished = [c.asset, c.signature].find((a) => a !== undefined && !complete(a));
    if (unfinished) {
      notes.push(
        `skipping ${c.version} of release ${c.tag}: ${unfinished.name} is not completely uploaded (state ${unfinished.state})`,
      );
      continue;
    }
    const { prerelease: _p, ...candidate } = c;
    chosen = candidate;
    break;
  }
  // A newer release in range that holds no asset for this bundle is worth a line:
  // a misnamed asset would otherwise go unnoticed. The newest such release only.
  const missing = releases
    .filter((r) => !r.draft)
    .map((r) => ({ release: r, version: tagVersion(r.tag) }))
    .filter(
      (r): r is { release: FeedRelease; version: string } =>
        r.version !== undefined &&
        wanted(r.version, r.release.prerelease) &&
        !status.quarantined.includes(r.version) &&
        (chosen === undefined || semver.gt(r.version, chosen.version)) &&
        !r.release.assets.some((a) => pattern.exec(a.name)?.[1] === r.version),
    )
    .sort((a, b) => semver.rcompare(a.version, b.version))[0];
  if (missing) {
    const names = missing.release.assets.map((a) => a.name);
    notes.push(
      `release ${missing.release.tag} is in range but has no ${bundle}-${missing.version}.tgz (its assets: ${names.length ? names.join(', ') : 'none'})`,
    );
  }
  if (chosen) return { action: 'install', candidate: chosen, skippedQuarantined, notes };
  return { action: 'none', reason: nothingNewReason(policy, status), skippedQuarantined, notes };
}
