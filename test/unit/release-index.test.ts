import { describe, expect, it } from 'vitest';
import {
  type AddedRelease,
  type IndexChanges,
  parseTarget,
  parseWaves,
  planIndex,
} from '../../src/build/release-index.js';
import {
  parseIndex,
  type ReleaseIndex,
  releaseFileUrl,
  serializeIndex,
} from '../../src/bundle/release-index.js';
import { RickError } from '../../src/errors.js';

const ISSUED = new Date('2026-01-10T00:00:00Z');
const WEEK = 7 * 86_400_000;

function added(bundle: string, version: string, sha = 'a'): AddedRelease {
  return {
    bundle,
    version,
    channel: 'stable',
    sha256: sha.repeat(64),
    size: 1234,
    files: { bundle: `${bundle}-${version}.tgz`, signature: `${bundle}-${version}.tgz.sig` },
    location: `../../download/v${version}/`,
  };
}

const none: IndexChanges = { add: [], rollout: [], yank: [], unyank: [] };

function plan(previous: ReleaseIndex | undefined, changes: Partial<IndexChanges>, at = ISSUED) {
  return planIndex(previous, { ...none, ...changes }, at, WEEK);
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    return error instanceof RickError ? error.code : 'not a RickError';
  }
  return undefined;
}

describe('the release index format', () => {
  it('round-trips through its canonical serialisation, sorted by bundle and version', () => {
    const { index } = plan(undefined, {
      add: [added('zeta', '1.10.0'), added('alpha', '1.2.0'), added('zeta', '1.9.0')],
    });
    const text = serializeIndex(index);
    expect(parseIndex(text, 'x')).toEqual(index);
    expect(index.releases.map((r) => `${r.bundle}@${r.version}`)).toEqual([
      'alpha@1.2.0',
      'zeta@1.9.0',
      'zeta@1.10.0',
    ]);
    expect(text.endsWith('}\n')).toBe(true);
  });

  it('reports every problem of an invalid index at once', () => {
    const bad = {
      schemaVersion: 1,
      serial: 0,
      issued: '2026-01-10T00:00:00Z',
      expires: '2026-01-09T00:00:00Z',
      releases: [
        {
          ...added('demo', '1.0.0'),
          version: 'one',
          files: { bundle: '../evil.tgz', signature: 'x.sig' },
          location: 'https://elsewhere.example/',
          published: '2026-01-10T00:00:00Z',
          rollout: [
            { at: '2026-01-11T00:00:00Z', percent: 50 },
            { at: '2026-01-10T00:00:00Z', percent: 40 },
          ],
        },
      ],
      yanked: [],
      extra: true,
    };
    let message = '';
    try {
      parseIndex(JSON.stringify(bad), 'release index T');
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toContain('release index T is not a rick release index:');
    for (const part of [
      'serial: ',
      'releases.0.version: must be a semantic version',
      'releases.0.files.bundle: must be a plain file name',
      'releases.0.location: must be a relative directory',
      'releases.0.rollout.1.at: waves must start one after the other',
      'releases.0.rollout.1.percent: each wave must cover more hosts than the one before',
      'expires: must be after issued',
    ]) {
      expect(message).toContain(part);
    }
    expect(message).toMatch(/Unrecognized key.*extra/);
  });

  it('resolves file URLs against the index URL, not against a redirect target', () => {
    const { index } = plan(undefined, { add: [added('demo', '1.2.0')] });
    const release = index.releases[0]!;
    expect(
      releaseFileUrl(
        'https://github.com/acme/rel/releases/latest/download/index.json',
        release,
        release.files.bundle,
      ),
    ).toBe('https://github.com/acme/rel/releases/download/v1.2.0/demo-1.2.0.tgz');
    const flat = { ...release, location: undefined };
    expect(releaseFileUrl('https://mirror.example/rick/index.json', flat, 'demo-1.2.0.tgz')).toBe(
      'https://mirror.example/rick/demo-1.2.0.tgz',
    );
  });
});

describe('planning an index', () => {
  it('starts a serial at the issue time and grows it by at least one', () => {
    const first = plan(undefined, { add: [added('demo', '1.0.0')] }).index;
    expect(first.serial).toBe(Date.parse('2026-01-10T00:00:00Z') / 1000);
    expect(first.issued).toBe('2026-01-10T00:00:00Z');
    expect(first.expires).toBe('2026-01-17T00:00:00Z');
    // Re-signed in the same second, and a day later.
    expect(plan(first, {}).index.serial).toBe(first.serial + 1);
    const later = plan(first, {}, new Date('2026-01-11T00:00:00Z')).index;
    expect(later.serial).toBe(Date.parse('2026-01-11T00:00:00Z') / 1000);
    expect(later.releases).toEqual(first.releases);
    // Even a previous serial far ahead of the clock is outgrown.
    expect(plan({ ...first, serial: 9e12 }, {}).index.serial).toBe(9e12 + 1);
  });

  it('adds releases with their waves relative to the issue time', () => {
    const { index, notes } = plan(undefined, {
      add: [added('demo', '1.0.0')],
      waves: parseWaves('0h:5,24h:50,3d:100'),
    });
    expect(index.releases[0]).toMatchObject({
      published: '2026-01-10T00:00:00Z',
      rollout: [
        { at: '2026-01-10T00:00:00Z', percent: 5 },
        { at: '2026-01-11T00:00:00Z', percent: 50 },
        { at: '2026-01-13T00:00:00Z', percent: 100 },
      ],
    });
    expect(notes).toEqual(['added demo 1.0.0 (stable)']);
  });

  it('never changes a published version', () => {
    const first = plan(undefined, { add: [added('demo', '1.0.0', 'a')] }).index;
    expect(plan(first, { add: [added('demo', '1.0.0', 'a')] }).notes).toEqual([
      'demo 1.0.0 is already listed',
    ]);
    expect(() => plan(first, { add: [added('demo', '1.0.0', 'b')] })).toThrow(
      `demo 1.0.0 is already in the index with sha256 ${'a'.repeat(64)}, not ${'b'.repeat(64)}`,
    );
  });

  it('changes a rollout, yanks and unyanks by version or by bundle and version', () => {
    const first = plan(undefined, {
      add: [added('demo', '1.0.0'), added('other', '1.0.0'), added('demo', '1.1.0')],
    }).index;
    const rolled = plan(first, { rollout: [parseTarget('1.0.0')], waves: parseWaves('1h:10') });
    expect(rolled.index.releases.filter((r) => r.rollout).map((r) => r.bundle)).toEqual([
      'demo',
      'other',
    ]);
    const yanked = plan(first, { yank: [parseTarget('demo@1.1.0')], reason: 'eats data' }).index;
    expect(yanked.yanked).toEqual([
      { bundle: 'demo', version: '1.1.0', reason: 'eats data', yanked: '2026-01-10T00:00:00Z' },
    ]);
    expect(plan(yanked, { unyank: [parseTarget('v1.1.0')] }).index.yanked).toEqual([]);
    // A version the index never listed is yanked by its full name only.
    expect(
      plan(first, { yank: [parseTarget('demo@0.9.0')], reason: 'old' }).index.yanked,
    ).toHaveLength(1);
    expect(codeOf(() => plan(first, { yank: [parseTarget('0.9.0')], reason: 'old' }))).toBe(
      'USAGE',
    );
    expect(codeOf(() => plan(first, { yank: [parseTarget('1.1.0')] }))).toBe('USAGE');
    expect(codeOf(() => plan(first, { rollout: [parseTarget('1.1.0')] }))).toBe('USAGE');
    expect(codeOf(() => plan(first, { unyank: [parseTarget('1.1.0')] }))).toBe('USAGE');
  });

  it('reads waves and release names, refusing malformed ones', () => {
    expect(parseWaves('30m:1, 12h:40,2d:100')).toEqual([
      { afterMs: 1_800_000, percent: 1 },
      { afterMs: 43_200_000, percent: 40 },
      { afterMs: 172_800_000, percent: 100 },
    ]);
    for (const bad of ['', '5', '0h:0', '0h:101', '1h:50,1h:60', '0h:50,1h:40', '1w:5']) {
      expect(codeOf(() => parseWaves(bad))).toBe('USAGE');
    }
    expect(parseTarget('authentik@1.2.0')).toEqual({ bundle: 'authentik', version: '1.2.0' });
    expect(codeOf(() => parseTarget('authentik'))).toBe('USAGE');
  });
});
