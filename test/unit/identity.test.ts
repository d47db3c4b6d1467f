import { describe, expect, it } from 'vitest';
import { RickError } from '../../src/errors.js';
import {
  checkIdentity,
  type Expectation,
  expectationFor,
  identityFromFileName,
  parseExpectArgument,
} from '../../src/host/intake/identity.js';

function refusal(fn: () => unknown): RickError {
  try {
    fn();
  } catch (error) {
    if (error instanceof RickError) return error;
    throw error;
  }
  throw new Error('expected a refusal');
}

describe('what a file name states', () => {
  it('reads <name>-<version>.tgz, names with dashes and digits and prereleases included', () => {
    expect(identityFromFileName('authentik-1.2.0.tgz')).toEqual({
      bundle: 'authentik',
      version: '1.2.0',
    });
    expect(identityFromFileName('authentik-server-2-1.0.0-rc.1.tgz')).toEqual({
      bundle: 'authentik-server-2',
      version: '1.0.0-rc.1',
    });
  });

  it('states nothing for other names', () => {
    for (const name of [
      'bundle.tgz',
      'demo-1.0.tgz',
      'demo-v1.0.0.tgz',
      'demo-1.0.0.tar.gz',
      '-1.0.0.tgz',
      'Demo-1.0.0.tgz',
      'demo_1.0.0.tgz',
      'demo-01.0.0.tgz',
      // Manifests carry no build metadata, so no file name states any.
      'demo-1.0.0+build.7.tgz',
    ]) {
      expect(identityFromFileName(name), name).toBeUndefined();
    }
  });
});

describe('--expect', () => {
  it('reads NAME@VERSION', () => {
    expect(parseExpectArgument('authentik@1.2.0-rc.1')).toEqual({
      bundle: 'authentik',
      version: '1.2.0-rc.1',
    });
  });

  it('refuses anything else as a usage error', () => {
    for (const value of ['authentik', 'authentik@', '@1.0.0', 'authentik@v1.0.0', 'A@1.0.0']) {
      const error = refusal(() => parseExpectArgument(value));
      expect(error.code).toBe('USAGE');
      expect(error.message).toBe(
        `--expect must be NAME@VERSION, such as authentik@1.2.0, not ${JSON.stringify(value)}`,
      );
    }
  });

  it('wins over the file name; a file whose name states nothing needs it', () => {
    expect(expectationFor('download.tgz', { bundle: 'demo', version: '1.0.0' })).toEqual({
      bundle: 'demo',
      version: '1.0.0',
      source: '--expect',
    });
    expect(expectationFor('demo-1.0.0.tgz', undefined)).toEqual({
      bundle: 'demo',
      version: '1.0.0',
      source: 'its file name',
    });
    const error = refusal(() => expectationFor('download.tgz', undefined));
    expect(error.code).toBe('USAGE');
    expect(error.message).toBe(
      'download.tgz does not say which bundle and version it holds: its name is not <name>-<version>.tgz',
    );
  });
});

describe('the verified manifest against the expectation', () => {
  const byName: Expectation = { bundle: 'authentik', version: '2.0.0', source: 'its file name' };
  const byFeed: Expectation = {
    bundle: 'authentik',
    version: '1.5.0',
    source: 'release v1.5.0 of acme/releases',
    policy: { channel: 'stable', range: '^1' },
  };

  it('accepts exactly the bundle and version expected', () => {
    expect(() =>
      checkIdentity({ bundle: 'authentik', version: '2.0.0' }, byName, 'authentik-2.0.0.tgz'),
    ).not.toThrow();
  });

  it('refuses another bundle, naming both', () => {
    const error = refusal(() =>
      checkIdentity({ bundle: 'other', version: '1.0.0' }, byName, 'authentik-2.0.0.tgz'),
    );
    expect(error.code).toBe('BUNDLE_MISMATCH');
    expect(error.message).toBe(
      'authentik-2.0.0.tgz holds other 1.0.0 (its signed manifest), not authentik 2.0.0 as its file name says',
    );
    expect(error.hint).toBe(
      'nothing was installed; if other 1.0.0 is what you mean to install, pass --expect other@1.0.0',
    );
  });

  it('refuses another version of the same bundle', () => {
    for (const version of ['2.0.1', '2.0.0-rc.1', '1.9.9']) {
      const error = refusal(() =>
        checkIdentity({ bundle: 'authentik', version }, byName, 'authentik-2.0.0.tgz'),
      );
      expect(error.code).toBe('BUNDLE_MISMATCH');
      expect(error.message).toBe(
        `authentik-2.0.0.tgz holds authentik ${version} (its signed manifest), not authentik 2.0.0 as its file name says`,
      );
    }
  });

  it('judges channel and range of an update on the manifest, not on the asset name', () => {
    const pre = refusal(() =>
      checkIdentity({ bundle: 'authentik', version: '2.0.0-rc.1' }, byFeed, 'authentik-1.5.0.tgz'),
    );
    expect(pre.code).toBe('VERSION_REFUSED');
    expect(pre.message).toBe(
      'authentik-1.5.0.tgz holds authentik 2.0.0-rc.1 (its signed manifest), a prerelease, and CHANNEL=stable takes none',
    );
    const out = refusal(() =>
      checkIdentity({ bundle: 'authentik', version: '2.0.0' }, byFeed, 'authentik-1.5.0.tgz'),
    );
    expect(out.code).toBe('VERSION_REFUSED');
    expect(out.message).toBe(
      'authentik-1.5.0.tgz holds authentik 2.0.0 (its signed manifest), outside RANGE=^1',
    );
    // In channel and range, but still not the version chosen.
    const other = refusal(() =>
      checkIdentity({ bundle: 'authentik', version: '1.4.0' }, byFeed, 'authentik-1.5.0.tgz'),
    );
    expect(other.code).toBe('BUNDLE_MISMATCH');
    expect(other.message).toBe(
      'authentik-1.5.0.tgz holds authentik 1.4.0 (its signed manifest), not authentik 1.5.0 as release v1.5.0 of acme/releases says',
    );
  });

  it('takes a prerelease in range on the prerelease channel', () => {
    expect(() =>
      checkIdentity(
        { bundle: 'authentik', version: '1.6.0-rc.1' },
        {
          ...byFeed,
          version: '1.6.0-rc.1',
          policy: { channel: 'prerelease', range: '^1' },
        },
        'authentik-1.6.0-rc.1.tgz',
      ),
    ).not.toThrow();
  });
});
