/**
 * The release feed, pure: validating a GitHub-shaped releases list and
 * choosing which release of a bundle to install. No I/O here; the feed
 * client fetches, `update` acts on the decision.
 *
 * A release holds one asset per bundle, `<name>-<version>.tgz`, and its
 * detached signature `<name>-<version>.tgz.sig`. The version comes from the
 * asset name (the signed manifest inside is checked again by the installer).
 */
import semver from 'semver';
import * as z from 'zod';
import { RickError } from '../errors.js';
import type { Channel } from './config.js';
import '../bundle/zod.js';

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
    const problems = result.error.issues
      .slice(0, 10)
      .map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`)
      .join('; ');
    throw new RickError(
      'FEED_ERROR',
      `${source} is not a GitHub releases list: ${problems}${result.error.issues.length > 10 ? '; …' : ''}`,
    );
  }
  return result.data.map((r) => ({
    tag: r.tag_name,
    draft: r.draft,
    prerelease: r.prerelease,
    assets: r.assets.map((a) => ({ name: a.name, size: a.size, url: a.url })),
  }));
}

/** What the host knows about one bundle (from state.json). */
export interface BundleStatus {
  installed: string | undefined;
  /** Highest version ever installed; the installer refuses anything lower. */
  highest: string | undefined;
  quarantined: readonly string[];
}

export interface SelectionPolicy {
  channel: Channel;
  range: string;
}

export interface Candidate {
  version: string;
  tag: string;
  asset: FeedAsset;
  /** Undefined when the release has no `.sig` for the asset: the update refuses it. */
  signature: FeedAsset | undefined;
}

export type Selection =
  | { action: 'install'; candidate: Candidate; skippedQuarantined: string[] }
  | { action: 'none'; reason: string; skippedQuarantined: string[] };

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Picks the highest version that satisfies the range, is newer than the
 * installed one (and not below the highest ever installed), comes from a
 * published release (not a draft), is not quarantined, and is a prerelease
 * only on the prerelease channel.
 */
export function selectRelease(
  releases: readonly FeedRelease[],
  bundle: string,
  policy: SelectionPolicy,
  status: BundleStatus,
): Selection {
  const pattern = new RegExp(`^${escapeRegExp(bundle)}-(.+)\\.tgz$`);
  const skippedQuarantined: string[] = [];
  const allowPrerelease = policy.channel === 'prerelease';
  const candidates: Array<Candidate & { draft: boolean; prerelease: boolean }> = [];
  for (const release of releases) {
    for (const asset of release.assets) {
      const version = pattern.exec(asset.name)?.[1];
      if (version === undefined || semver.valid(version) !== version) continue;
      candidates.push({
        version,
        tag: release.tag,
        asset,
        signature: release.assets.find((a) => a.name === `${asset.name}.sig`),
        draft: release.draft,
        prerelease: release.prerelease,
      });
    }
  }
  candidates.sort((a, b) => semver.rcompare(a.version, b.version));
  const floor = [status.installed, status.highest].filter((v): v is string => v !== undefined);
  for (const c of candidates) {
    if (c.draft) continue;
    const isPre = c.prerelease || semver.prerelease(c.version) !== null;
    if (isPre && !allowPrerelease) continue;
    if (!semver.satisfies(c.version, policy.range, { includePrerelease: allowPrerelease }))
      continue;
    if (status.installed !== undefined && semver.lte(c.version, status.installed)) break;
    if (status.highest !== undefined && semver.lt(c.version, status.highest)) break;
    if (status.quarantined.includes(c.version)) {
      skippedQuarantined.push(c.version);
      continue;
    }
    const { draft: _d, prerelease: _p, ...candidate } = c;
    return { action: 'install', candidate, skippedQuarantined };
  }
  const reason =
    floor.length > 0
      ? `nothing newer than ${status.installed ?? status.highest} in range ${policy.range}`
      : `no ${allowPrerelease ? '' : 'stable '}release in range ${policy.range}`;
  return { action: 'none', reason, skippedQuarantined };
}
