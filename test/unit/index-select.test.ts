import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { IndexRelease, ReleaseIndex } from '../../src/bundle/release-index.js';
import { RickError } from '../../src/errors.js';
import {
  checkIndexFresh,
  checkIndexIssued,
  checkIndexSequence,
  type IndexSelectionInput,
  nextRolloutChange,
  rolloutBucket,
  rolloutPosition,
  selectFromIndex,
} from '../../src/feed/index-select.js';

const NOW = new Date('2026-01-10T12:00:00Z');

function release(version: string, extra: Partial<IndexRelease> = {}): IndexRelease {
  return {
    bundle: 'authentik',
    version,
    channel: version.includes('-') ? 'prerelease' : 'stable',
    sha256: 'a'.repeat(64),
    size: 1000,
    files: { bundle: `authentik-${version}.tgz`, signature: `authentik-${version}.tgz.sig` },
    published: '2026-01-01T00:00:00Z',
    ...extra,
  };
}

function index(releases: IndexRelease[], yanked: ReleaseIndex['yanked'] = []): ReleaseIndex {
  return {
    schemaVersion: 1,
    serial: 100,
    issued: '2026-01-10T00:00:00Z',
    expires: '2026-01-17T00:00:00Z',
    releases,
    yanked,
  };
}

/** Waves at the given hours after 2026-01-10T00:00:00Z. */
function waves(...plan: Array<[number, number]>): IndexRelease['rollout'] {
  return plan.map(([hours, percent]) => ({
    at: new Date(Date.parse('2026-01-10T00:00:00Z') + hours * 3_600_000).toISOString(),
    percent,
  }));
}

function select(
  idx: ReleaseIndex,
  overrides: Partial<IndexSelectionInput> & { bucket?: number } = {},
): ReturnType<typeof selectFromIndex> {
  const { bucket = 50, ...rest } = overrides;
  return selectFromIndex(idx, {
    bundle: 'authentik',
    policy: { channel: 'stable', range: '*' },
    status: { installed: '1.0.0', highest: '1.0.0', quarantined: [] },
    now: NOW,
    bucketOf: () => bucket,
    ignoreWaves: false,
    ...rest,
  });
}

describe('rollout buckets', () => {
  it('are sha256(machine-id NUL bundle NUL version), first four bytes, modulo 100', () => {
    // Computed apart from rick, with Python's hashlib.
    expect(rolloutBucket('0123456789abcdef0123456789abcdef', 'authentik', '1.2.0')).toBe(60);
    expect(rolloutBucket('0123456789abcdef0123456789abcdef', 'authentik', '1.3.0')).toBe(31);
    expect(rolloutBucket('fedcba9876543210fedcba9876543210', 'authentik', '1.2.0')).toBe(91);
  });

  it('spread 20,000 machine-ids evenly over the 100 buckets', () => {
    const counts = new Array<number>(100).fill(0);
    for (let i = 0; i < 20_000; i++) {
      const machineId = createHash('md5').update(`host ${i}`).digest('hex');
      const bucket = rolloutBucket(machineId, 'authentik', '1.2.0');
      counts[bucket] = (counts[bucket] ?? 0) + 1;
    }
    // 200 expected per bucket; 6 standard deviations either way.
    expect(Math.min(...counts)).toBeGreaterThan(200 - 6 * 14);
    expect(Math.max(...counts)).toBeLessThan(200 + 6 * 14);
    const firstFive = counts.slice(0, 5).reduce((a, b) => a + b, 0) / 20_000;
    expect(Math.abs(firstFive - 0.05)).toBeLessThan(0.01);
  });
});

describe('rollout position', () => {
  it('without waves, every host takes the release at once', () => {
    expect(rolloutPosition(release('1.1.0'), 99, NOW)).toEqual({
      bucket: 99,
      takesAt: new Date('2026-01-01T00:00:00Z'),
      admitted: true,
    });
  });

  it('a bucket is taken by the first wave that covers it', () => {
    const r = release('1.1.0', { rollout: waves([0, 5], [24, 50], [72, 100]) });
    expect(rolloutPosition(r, 4, NOW)).toMatchObject({ admitted: true });
    expect(rolloutPosition(r, 5, NOW)).toEqual({
      bucket: 5,
      takesAt: new Date('2026-01-11T00:00:00Z'),
      admitted: false,
    });
    expect(rolloutPosition(r, 49, new Date('2026-01-11T00:00:00Z'))).toMatchObject({
      admitted: true,
    });
    expect(rolloutPosition(r, 50, new Date('2026-01-12T23:59:59Z'))).toMatchObject({
      admitted: false,
      takesAt: new Date('2026-01-13T00:00:00Z'),
    });
  });

  it('a bucket that no wave covers waits without a time', () => {
    const r = release('1.1.0', { rollout: waves([0, 10]) });
    expect(rolloutPosition(r, 10, NOW)).toEqual({
      bucket: 10,
      takesAt: undefined,
      admitted: false,
    });
  });
});

describe('choosing a release from the index', () => {
  it('takes the highest newer release the rollout has reached', () => {
    const s = select(index([release('1.0.0'), release('1.1.0'), release('1.2.0')]));
    expect(s.release?.version).toBe('1.2.0');
    expect(s.pending).toEqual([]);
  });

  it('takes a lower release while the newest waits for its wave, and says when', () => {
    const idx = index([
      release('1.1.0'),
      release('1.2.0', { rollout: waves([0, 5], [24, 50], [72, 100]) }),
    ]);
    const s = select(idx, { bucket: 30 });
    expect(s.release?.version).toBe('1.1.0');
    expect(s.pending).toEqual([
      { version: '1.2.0', bucket: 30, takesAt: new Date('2026-01-11T00:00:00Z') },
    ]);
    expect(nextRolloutChange([s], NOW)).toEqual(new Date('2026-01-11T00:00:00Z'));
  });

  it('waits with a reason naming the bucket and the time', () => {
    const idx = index([release('1.1.0', { rollout: waves([0, 5], [24, 50]) })]);
    const s = select(idx, { bucket: 70 });
    expect(s.release).toBeUndefined();
    expect(s.reason).toBe(
      'waiting for the rollout of 1.1.0 to reach this host (bucket 70, no wave covers it yet)',
    );
    expect(nextRolloutChange([s], NOW)).toBeUndefined();
  });

  it('update --now takes a release its waves have not reached', () => {
    const idx = index([release('1.1.0', { rollout: waves([0, 5], [24, 50]) })]);
    expect(select(idx, { bucket: 70, ignoreWaves: true }).release?.version).toBe('1.1.0');
  });

  it('passes over yanked and quarantined versions, and never goes below the installed one', () => {
    const idx = index(
      [release('0.9.0'), release('1.1.0'), release('1.2.0'), release('1.3.0')],
      [
        {
          bundle: 'authentik',
          version: '1.3.0',
          reason: 'corrupts media',
          yanked: NOW.toISOString(),
        },
      ],
    );
    const s = select(idx, {
      status: { installed: '1.0.0', highest: '1.0.0', quarantined: ['1.2.0'] },
    });
    expect(s.release?.version).toBe('1.1.0');
    expect(s.skipped).toEqual([
      { version: '1.3.0', why: 'yanked', reason: 'corrupts media' },
      { version: '1.2.0', why: 'quarantined' },
    ]);
    const none = select(index([release('0.9.0')]));
    expect(none.release).toBeUndefined();
    expect(none.reason).toBe('nothing newer than 1.0.0 in range *');
  });

  it('a yank of another bundle with the same version does not count', () => {
    const idx = index(
      [release('1.1.0')],
      [{ bundle: 'other', version: '1.1.0', reason: 'broken', yanked: NOW.toISOString() }],
    );
    expect(select(idx).release?.version).toBe('1.1.0');
  });

  it('says when the installed version is yanked', () => {
    const yank = {
      bundle: 'authentik',
      version: '1.0.0',
      reason: 'leaks',
      yanked: NOW.toISOString(),
    };
    const s = select(index([release('1.0.0')], [yank]));
    expect(s.liveYanked).toEqual(yank);
    expect(s.release).toBeUndefined();
  });

  it('honours the channel and the range', () => {
    const idx = index([release('1.1.0'), release('1.2.0-rc.1'), release('2.0.0')]);
    expect(select(idx, { policy: { channel: 'stable', range: '^1' } }).release?.version).toBe(
      '1.1.0',
    );
    expect(select(idx, { policy: { channel: 'prerelease', range: '^1' } }).release?.version).toBe(
      '1.2.0-rc.1',
    );
    const stableFlagged = index([release('1.1.0', { channel: 'prerelease' })]);
    expect(select(stableFlagged).release).toBeUndefined();
  });
});

describe('index sequence and freshness', () => {
  const idx = index([]);

  it('accepts a first index, a higher serial and the same bytes again', () => {
    expect(checkIndexSequence(idx, 'x', undefined, 'release index f')).toBe('new');
    expect(checkIndexSequence(idx, 'x', { serial: 99, sha256: 'y' }, 'release index f')).toBe(
      'new',
    );
    expect(checkIndexSequence(idx, 'x', { serial: 100, sha256: 'x' }, 'release index f')).toBe(
      'same',
    );
  });

  it('refuses a lower serial (a replay) and other contents under the same serial', () => {
    const lower = () =>
      checkIndexSequence(idx, 'x', { serial: 101, sha256: 'y' }, 'release index f');
    expect(lower).toThrow(RickError);
    expect(lower).toThrow(
      'release index f has serial 100, lower than serial 101 accepted before: refusing to go back to an older index',
    );
    const other = () =>
      checkIndexSequence(idx, 'x', { serial: 100, sha256: 'y' }, 'release index f');
    expect(other).toThrow('has serial 100 like the index accepted before, but other contents');
    try {
      lower();
    } catch (error) {
      expect((error as RickError).code).toBe('INDEX_ROLLBACK');
    }
  });

  it('refuses an index from its expiry on', () => {
    expect(() => checkIndexFresh(idx, new Date('2026-01-16T23:59:59Z'), 'f')).not.toThrow();
    const expired = () => checkIndexFresh(idx, new Date('2026-01-17T00:00:00Z'), 'f');
    expect(expired).toThrow('f (serial 100) expired at 2026-01-17T00:00:00Z: refusing it');
    try {
      expired();
    } catch (error) {
      expect((error as RickError).code).toBe('INDEX_EXPIRED');
      expect((error as RickError).exitCode).toBe(13);
    }
  });

  it('refuses an index issued more than an hour ahead of the clock, and takes one within the hour', () => {
    // Issued 2026-01-10T00:00:00Z.
    expect(() => checkIndexIssued(idx, new Date('2026-01-09T23:00:00Z'), 'f')).not.toThrow();
    const ahead = () => checkIndexIssued(idx, new Date('2026-01-09T22:59:59Z'), 'f');
    expect(ahead).toThrow(
      "f (serial 100) is issued at 2026-01-10T00:00:00Z, 61 minutes after this host's clock (2026-01-09T22:59:59.000Z): refusing it",
    );
    try {
      ahead();
    } catch (error) {
      expect((error as RickError).code).toBe('INDEX_NOT_YET_VALID');
      expect((error as RickError).exitCode).toBe(11);
    }
  });
});
