import { describe, expect, it } from 'vitest';
import { RickError } from '../../src/errors.js';
import {
  type BundleStatus,
  type FeedRelease,
  parseReleases,
  selectRelease,
  serializeReleases,
} from '../../src/feed/releases.js';

function release(
  version: string,
  opts: { draft?: boolean; prerelease?: boolean; sig?: boolean; bundles?: string[] } = {},
): FeedRelease {
  const assets = (opts.bundles ?? ['authentik']).flatMap((b) => {
    const name = `${b}-${version}.tgz`;
    const list = [{ name, size: 100, url: `https://feed.test/assets/${name}` }];
    if (opts.sig !== false)
      list.push({ name: `${name}.sig`, size: 10, url: `https://feed.test/assets/${name}.sig` });
    return list;
  });
  return {
    tag: `v${version}`,
    draft: opts.draft ?? false,
    prerelease: opts.prerelease ?? false,
    assets,
  };
}

const fresh: BundleStatus = { installed: undefined, highest: undefined, quarantined: [] };
const stable = { channel: 'stable' as const, range: '*' };

function picked(
  releases: FeedRelease[],
  status: BundleStatus = fresh,
  policy: { channel: 'stable' | 'prerelease'; range: string } = stable,
): string | undefined {
  const s = selectRelease(releases, 'authentik', policy, status);
  return s.action === 'install' ? s.candidate.version : undefined;
}

describe('release selection', () => {
  it('takes the highest version, whatever the order of the list', () => {
    expect(picked([release('1.0.0'), release('1.2.0'), release('1.1.0')])).toBe('1.2.0');
  });

  it('takes nothing when the installed version is the newest, and ignores older releases', () => {
    const status = { installed: '1.2.0', highest: '1.2.0', quarantined: [] };
    const s = selectRelease([release('1.0.0'), release('1.2.0')], 'authentik', stable, status);
    expect(s).toEqual({
      action: 'none',
      reason: 'nothing newer than 1.2.0 in range *',
      skippedQuarantined: [],
      notes: [],
    });
  });

  it('never offers a version below the highest ever installed', () => {
    const status = { installed: '1.0.0', highest: '1.3.0', quarantined: [] };
    expect(picked([release('1.2.0'), release('1.1.0')], status)).toBeUndefined();
  });

  it('skips drafts', () => {
    expect(picked([release('2.0.0', { draft: true }), release('1.0.0')])).toBe('1.0.0');
  });

  it('takes a prerelease only on the prerelease channel', () => {
    const releases = [release('2.0.0-rc.1', { prerelease: true }), release('1.0.0')];
    expect(picked(releases)).toBe('1.0.0');
    expect(picked(releases, fresh, { channel: 'prerelease', range: '*' })).toBe('2.0.0-rc.1');
  });

  it('treats a semver prerelease as a prerelease even when the release is not marked so', () => {
    expect(picked([release('2.0.0-beta.1'), release('1.0.0')])).toBe('1.0.0');
  });

  it('honours the range', () => {
    const releases = [release('3.0.0'), release('2.5.0'), release('2.1.0')];
    expect(picked(releases, fresh, { channel: 'stable', range: '^2' })).toBe('2.5.0');
    expect(picked(releases, fresh, { channel: 'stable', range: '~2.1' })).toBe('2.1.0');
  });

  it('skips a quarantined version and takes the next newer one', () => {
    const status = { installed: '1.0.0', highest: '1.0.0', quarantined: ['1.2.0'] };
    const s = selectRelease(
      [release('1.2.0'), release('1.1.0'), release('1.0.0')],
      'authentik',
      stable,
      status,
    );
    expect(s.action).toBe('install');
    expect(s.action === 'install' && s.candidate.version).toBe('1.1.0');
    expect(s.skippedQuarantined).toEqual(['1.2.0']);
  });

  it('offers a release without signature, so that the update refuses it loudly', () => {
    const s = selectRelease([release('1.1.0', { sig: false })], 'authentik', stable, fresh);
    expect(s.action === 'install' && s.candidate.signature).toBeUndefined();
  });

  it('skips a version whose asset or signature is not completely uploaded, saying so', () => {
    const uploading = release('1.2.0');
    uploading.assets[0] = { ...uploading.assets[0]!, state: 'open' };
    const signing = release('1.1.0');
    signing.assets[1] = { ...signing.assets[1]!, state: 'starter' };
    const s = selectRelease([uploading, signing, release('1.0.0')], 'authentik', stable, fresh);
    expect(s.action === 'install' && s.candidate.version).toBe('1.0.0');
    expect(s.notes).toEqual([
      'skipping 1.2.0 of release v1.2.0: authentik-1.2.0.tgz is not completely uploaded (state open)',
      'skipping 1.1.0 of release v1.1.0: authentik-1.1.0.tgz.sig is not completely uploaded (state starter)',
    ]);
  });

  it('names the assets of the newest release in range that has none for the bundle', () => {
    const misnamed: FeedRelease = {
      tag: 'v1.3.0',
      draft: false,
      prerelease: false,
      assets: [
        { name: 'authentik_1.3.0.tgz', size: 1, url: 'https://feed.test/a' },
        { name: 'SHA256SUMS', size: 1, url: 'https://feed.test/b' },
      ],
    };
    const empty: FeedRelease = { tag: 'v1.2.0', draft: false, prerelease: false, assets: [] };
    const outOfRange: FeedRelease = { ...empty, tag: 'v2.0.0' };
    const s = selectRelease(
      [outOfRange, misnamed, empty, release('1.1.0')],
      'authentik',
      { channel: 'stable', range: '^1' },
      { installed: '1.0.0', highest: '1.0.0', quarantined: [] },
    );
    expect(s.action === 'install' && s.candidate.version).toBe('1.1.0');
    expect(s.notes).toEqual([
      'release v1.3.0 is in range but has no authentik-1.3.0.tgz (its assets: authentik_1.3.0.tgz, SHA256SUMS)',
    ]);
    const none = selectRelease(
      [empty],
      'authentik',
      { channel: 'stable', range: '^1' },
      { installed: '1.0.0', highest: '1.0.0', quarantined: [] },
    );
    expect(none).toEqual({
      action: 'none',
      reason: 'nothing newer than 1.0.0 in range ^1',
      skippedQuarantined: [],
      notes: ['release v1.2.0 is in range but has no authentik-1.2.0.tgz (its assets: none)'],
    });
  });

  it('does not take the assets of a bundle whose name extends the followed one', () => {
    expect(picked([release('9.0.0', { bundles: ['authentik-worker'] }), release('1.0.0')])).toBe(
      '1.0.0',
    );
  });
});

describe('releases list', () => {
  const valid = JSON.stringify([
    {
      tag_name: 'v1.0.0',
      draft: false,
      prerelease: false,
      id: 7,
      assets: [
        {
          name: 'a-1.0.0.tgz',
          size: 3,
          url: 'https://x.test/1',
          browser_download_url: 'https://x.test/d',
          extra: 1,
        },
      ],
    },
  ]);

  function feedError(body: string): RickError {
    try {
      parseReleases(body, 'release feed acme/x');
    } catch (error) {
      if (error instanceof RickError) return error;
      throw error;
    }
    throw new Error('expected a refusal');
  }

  it('reads the GitHub shape and ignores fields it does not use', () => {
    expect(parseReleases(valid, 'feed')).toEqual([
      {
        tag: 'v1.0.0',
        draft: false,
        prerelease: false,
        assets: [{ name: 'a-1.0.0.tgz', size: 3, url: 'https://x.test/1' }],
      },
    ]);
  });

  it('keeps what it read in a form it reads back the same', () => {
    const releases = parseReleases(valid, 'feed');
    releases[0]!.assets[0]!.state = 'uploaded';
    expect(parseReleases(serializeReleases(releases), 'cache')).toEqual(releases);
  });

  it('says so when the feed answers HTML', () => {
    const error = feedError('<!DOCTYPE html><html><body>Login</body></html>');
    expect(error.code).toBe('FEED_ERROR');
    expect(error.exitCode).toBe(11);
    expect(error.message).toBe('release feed acme/x answered HTML, not a JSON releases list');
  });

  it('says so when the JSON is truncated', () => {
    const error = feedError(valid.slice(0, valid.length / 2));
    expect(error.code).toBe('FEED_ERROR');
    expect(error.message).toMatch(/^release feed acme\/x answered malformed JSON \(/);
  });

  it('names what does not match the schema', () => {
    const error = feedError(JSON.stringify({ message: 'Not Found' }));
    expect(error.message).toContain('is not a GitHub releases list: (root):');
    const error2 = feedError(JSON.stringify([{ tag_name: 'v1', draft: 'no', assets: [{}] }]));
    expect(error2.message).toContain('0.draft:');
    expect(error2.message).toContain('0.prerelease:');
    expect(error2.message).toContain('0.assets.0.name:');
  });
});
