/**
 * Following a signed release index, pure: whether an index a host has just
 * verified may replace the one it accepted before (serial, expiry), which
 * rollout bucket a host is in, when a wave reaches it, and which release of
 * a bundle to install. No I/O here: src/feed/index-tick.ts fetches and acts.
 *
 * Staged rollout. Each host has, for each release, a bucket from 0 to 99:
 * the first four bytes (big-endian) of sha256(machine-id NUL bundle NUL
 * version), modulo 100. A release's waves say "from this time on, buckets
 * below this percentage"; a host takes the release once the first wave that
 * covers its bucket has started. The version is part of the hash, so the
 * canaries of one release are not always the same hosts.
 */
import { createHash } from 'node:crypto';
import semver from 'semver';
import type { IndexRelease, IndexYank, ReleaseIndex } from '../bundle/release-index.js';
import { RickError } from '../errors.js';
import {
  aboveFloor,
  type BundleStatus,
  inPolicy,
  nothingNewReason,
  type SelectionPolicy,
} from './select.js';

/** The bucket (0–99) of a host for one release. */
export function rolloutBucket(machineId: string, bundle: string, version: string): number {
  const digest = createHash('sha256').update(`${machineId}\0${bundle}\0${version}`).digest();
  return digest.readUInt32BE(0) % 100;
}

/**
 * The bucket used without a machine-id (an image or a tree that has none):
 * the last one, so such a host takes a release with the last wave.
 */
export const LAST_BUCKET = 99;

export interface RolloutPosition {
  bucket: number;
  /** When the wave covering the bucket starts (the release's publication without waves); undefined: no wave covers it. */
  takesAt: Date | undefined;
  admitted: boolean;
}

/** Where a host stands in a release's rollout at `now`. */
export function rolloutPosition(release: IndexRelease, bucket: number, now: Date): RolloutPosition {
  if (release.rollout === undefined) {
    return { bucket, takesAt: new Date(release.published), admitted: true };
  }
  // Waves start one after the other and each covers more hosts than the one
  // before (the schema checks it): the first that covers the bucket is the earliest.
  const wave = release.rollout.find((w) => bucket < w.percent);
  const takesAt = wave === undefined ? undefined : new Date(wave.at);
  return { bucket, takesAt, admitted: takesAt !== undefined && takesAt.getTime() <= now.getTime() };
}

/** What a host keeps of the index it accepted last. */
export interface AcceptedIndex {
  serial: number;
  /** sha256 of the index's bytes. */
  sha256: string;
}

/**
 * Checks that a verified index may replace the one accepted before: its
 * serial is not lower (a replay of an older index, or a mirror serving a
 * stale one), and an equal serial comes with the same bytes (two different
 * indexes signed with one serial). Returns whether it is new.
 */
export function checkIndexSequence(
  index: ReleaseIndex,
  sha256: string,
  accepted: AcceptedIndex | undefined,
  source: string,
): 'new' | 'same' {
  if (accepted === undefined || index.serial > accepted.serial) return 'new';
  if (index.serial < accepted.serial) {
    throw new RickError(
      'INDEX_ROLLBACK',
      `${source} has serial ${index.serial}, lower than serial ${accepted.serial} accepted before: refusing to go back to an older index`,
      {
        hint: 'a mirror or proxy serves an old copy, or someone replays one; nothing was changed',
      },
    );
  }
  if (sha256 !== accepted.sha256) {
    throw new RickError(
      'INDEX_ROLLBACK',
      `${source} has serial ${index.serial} like the index accepted before, but other contents: refusing it`,
      {
        hint: 'every index the publisher signs must carry a higher serial (rick-bundle index does that); nothing was changed',
      },
    );
  }
  return 'same';
}

/** How far in the future an index may be issued: clocks drift, an hour is more than NTP allows. */
export const INDEX_ISSUED_SKEW_MS = 3_600_000;

/**
 * Refuses an index issued more than INDEX_ISSUED_SKEW_MS after `now`: the
 * publisher's clock or this host's is wrong, or the index was signed ahead
 * of time. Its serial (at least its issue time) would otherwise become the
 * host's floor, above every index the publisher signs until that time.
 */
export function checkIndexIssued(index: ReleaseIndex, now: Date, source: string): void {
  const ahead = Date.parse(index.issued) - now.getTime();
  if (ahead <= INDEX_ISSUED_SKEW_MS) return;
  throw new RickError(
    'INDEX_NOT_YET_VALID',
    `${source} (serial ${index.serial}) is issued at ${index.issued}, ${Math.ceil(ahead / 60_000)} minutes after this host's clock (${now.toISOString()}): refusing it`,
    {
      hint: "check this host's clock (timedatectl) and the publisher's; nothing was changed",
    },
  );
}

/** Refuses an index past its `expires`: whoever serves it may be hiding newer ones. */
export function checkIndexFresh(index: ReleaseIndex, now: Date, source: string): void {
  if (now.getTime() < Date.parse(index.expires)) return;
  throw new RickError(
    'INDEX_EXPIRED',
    `${source} (serial ${index.serial}) expired at ${index.expires}: refusing it, since whoever serves it may be hiding newer releases`,
    {
      hint: 'the publisher must re-sign the index before it expires (the index workflow, daily); check that workflow and the server or mirror; nothing was changed',
    },
  );
}

export type IndexPolicy = SelectionPolicy;

export interface IndexSelectionInput {
  bundle: string;
  policy: IndexPolicy;
  status: BundleStatus;
  now: Date;
  /** The host's bucket for one release of this bundle. */
  bucketOf: (version: string) => number;
  /** `update --now`: take a release its waves have not reached yet. */
  ignoreWaves: boolean;
}

export interface PendingRelease {
  version: string;
  bucket: number;
  /** When this host takes it; undefined while no wave covers its bucket. */
  takesAt: Date | undefined;
}

export interface SkippedRelease {
  version: string;
  why: 'quarantined' | 'yanked';
  /** The yank's reason. */
  reason?: string;
}

export interface IndexSelection {
  /** The release to install, if any. */
  release: IndexRelease | undefined;
  /** Why nothing is installed (when `release` is undefined). */
  reason: string;
  /** Newer releases passed over, highest first. */
  skipped: SkippedRelease[];
  /** Newer releases whose waves have not reached this host yet, highest first. */
  pending: PendingRelease[];
  /** The installed version's yank, when it is yanked. */
  liveYanked: IndexYank | undefined;
}

/**
 * Picks the highest release of the bundle that is in the range and the
 * channel, newer than the installed one (and not below the highest ever
 * installed), neither quarantined nor yanked, and whose rollout has reached
 * this host. Newer releases the rollout has not reached yet are reported as
 * pending, so that the host takes a lower one meanwhile and knows when to
 * look again.
 */
export function selectFromIndex(index: ReleaseIndex, input: IndexSelectionInput): IndexSelection {
  const { bundle, policy, status, now } = input;
  const yanks = new Map(
    index.yanked.filter((y) => y.bundle === bundle).map((y) => [y.version, y] as const),
  );
  const candidates = index.releases
    .filter((r) => r.bundle === bundle)
    .sort((a, b) => semver.rcompare(a.version, b.version));
  const skipped: SkippedRelease[] = [];
  const pending: PendingRelease[] = [];
  const liveYanked = status.installed === undefined ? undefined : yanks.get(status.installed);
  let chosen: IndexRelease | undefined;
  for (const r of candidates) {
    if (!inPolicy(r.version, r.channel === 'prerelease', policy)) continue;
    // Highest first: every later one is below the floor too.
    if (!aboveFloor(r.version, status)) break;
    const yank = yanks.get(r.version);
    if (yank) {
      skipped.push({ version: r.version, why: 'yanked', reason: yank.reason });
      continue;
    }
    if (status.quarantined.includes(r.version)) {
      skipped.push({ version: r.version, why: 'quarantined' });
      continue;
    }
    const position = rolloutPosition(r, input.bucketOf(r.version), now);
    if (!position.admitted && !input.ignoreWaves) {
      pending.push({ version: r.version, bucket: position.bucket, takesAt: position.takesAt });
      continue;
    }
    chosen = r;
    break;
  }
  let reason = '';
  if (chosen === undefined) {
    const first = pending[0];
    if (first !== undefined) {
      reason = `waiting for the rollout of ${first.version} to reach this host (${describeWait(first)})`;
    } else {
      reason = nothingNewReason(policy, status);
    }
  }
  return { release: chosen, reason, skipped, pending, liveYanked };
}

/** "bucket 37, from 2026-01-02T00:00:00.000Z" or "bucket 37, no wave covers it yet". */
export function describeWait(p: PendingRelease): string {
  return p.takesAt === undefined
    ? `bucket ${p.bucket}, no wave covers it yet`
    : `bucket ${p.bucket}, from ${p.takesAt.toISOString()}`;
}

/**
 * When the decision may change without the index changing: the earliest
 * future start of a wave this host waits for. Undefined: only a new index
 * (or new inputs) can change it.
 */
export function nextRolloutChange(
  selections: readonly IndexSelection[],
  now: Date,
): Date | undefined {
  let next: number | undefined;
  for (const s of selections) {
    for (const p of s.pending) {
      const t = p.takesAt?.getTime();
      if (t !== undefined && t > now.getTime() && (next === undefined || t < next)) next = t;
    }
  }
  return next === undefined ? undefined : new Date(next);
}
