import { describe, expect, it } from 'vitest';
import { RickError } from '../../src/errors.js';
import {
  CONFIG_KEYS,
  configSchemaKeys,
  feedUrlFor,
  parseConfig,
  parseConfigLines,
  parseInfrastructureGroups,
} from '../../src/feed/config.js';
import { parseSocketConfig } from '../../src/host/database/sockets.js';

const DEFAULT_METRICS = '/var/lib/prometheus/node-exporter/rick.prom';

function refusal(text: string): RickError {
  try {
    parseConfig(text, '/etc/rick/rick.conf', DEFAULT_METRICS);
  } catch (error) {
    if (error instanceof RickError) return error;
    throw error;
  }
  throw new Error('expected a refusal');
}

describe('rick.conf', () => {
  it('takes a FEED URL whose path ends in index.json for a signed release index', () => {
    const read = (feed: string) =>
      parseConfig(`FEED=${feed}\nBUNDLES=authentik\n`, 'rick.conf', DEFAULT_METRICS);
    const github = read('https://github.com/acme/rel/releases/latest/download/index.json');
    expect(github.feedKind).toBe('index');
    expect(github.feedUrl).toBe('https://github.com/acme/rel/releases/latest/download/index.json');
    expect(read('http://mirror.example/rick/index.json?x=1').feedKind).toBe('index');
    expect(read('https://mirror.example/rick/releases.json').feedKind).toBe('github');
    expect(read('acme/index.json').feedKind).toBe('github');
  });

  it('reads a GitHub repository feed with defaults', () => {
    const config = parseConfig(
      '# rick\nFEED=acme/releases\nBUNDLES=authentik\n',
      'rick.conf',
      DEFAULT_METRICS,
    );
    expect(config).toEqual({
      feed: 'acme/releases',
      feedUrl: 'https://api.github.com/repos/acme/releases/releases?per_page=100',
      feedKind: 'github',
      bundles: ['authentik'],
      channel: 'stable',
      range: '*',
      metricsFile: DEFAULT_METRICS,
      maxBundleBytes: 64 * 1024 * 1024,
      downloadTimeoutSec: 300,
      feedTimeoutSec: 30,
    });
  });

  it('reads every setting, quotes, comments and a URL feed', () => {
    const config = parseConfig(
      [
        'FEED="https://mirror.example.org/api/releases"',
        "BUNDLES='authentik, gitea  demo'",
        'CHANNEL=prerelease',
        'RANGE=^2.1 # follow 2.x from 2.1',
        'METRICS_FILE=',
        'MAX_BUNDLE_BYTES=1000',
        'DOWNLOAD_TIMEOUT_SEC=5',
        'FEED_TIMEOUT_SEC=2',
        '',
      ].join('\n'),
      'rick.conf',
      DEFAULT_METRICS,
    );
    expect(config.feedUrl).toBe('https://mirror.example.org/api/releases?per_page=100');
    expect(config.feedKind).toBe('github');
    expect(config.bundles).toEqual(['authentik', 'gitea', 'demo']);
    expect(config.channel).toBe('prerelease');
    expect(config.range).toBe('^2.1');
    expect(config.metricsFile).toBeUndefined();
    expect(config.maxBundleBytes).toBe(1000);
    expect(config.downloadTimeoutSec).toBe(5);
    expect(config.feedTimeoutSec).toBe(2);
  });

  it('reports every problem at once, with names and line numbers', () => {
    const error = refusal(
      [
        'FEED=not a feed',
        'CHANNEL=nightly',
        'RANGE=>>2',
        'BOGUS=1',
        'this line is not a setting',
        'MAX_BUNDLE_BYTES=-3',
        'METRICS_FILE=relative/rick.prom',
      ].join('\n'),
    );
    expect(error.code).toBe('CONFIG_INVALID');
    expect(error.exitCode).toBe(2);
    for (const part of [
      'line 5: expected KEY=value',
      'line 1: FEED: must be a GitHub owner/name or an http(s):// URL',
      'BUNDLES: is required',
      'line 2: CHANNEL: must be stable or prerelease',
      'line 3: RANGE: must be a semver range',
      'line 4: BOGUS: unknown setting',
      'line 6: MAX_BUNDLE_BYTES: must be a whole number',
      'line 7: METRICS_FILE: must be an absolute path',
    ]) {
      expect(error.message).toContain(part);
    }
    // A missing key has no line to point at.
    expect(error.message).not.toMatch(/line \d+: BUNDLES/);
    // The host has no README: the hint itself lists every key.
    expect(error.hint).toBe(
      `fix the file and run again (nothing was changed): one KEY=value per line, # for comments; the keys are ${CONFIG_KEYS.join(', ')}`,
    );
    expect(error.hint).not.toContain('README');
  });

  it('accepts every key its hint lists, and lists every key', () => {
    expect([...configSchemaKeys()].sort()).toEqual([...CONFIG_KEYS].sort());
    const values: Record<string, string> = {
      FEED: 'acme/releases',
      BUNDLES: 'authentik',
      CHANNEL: 'stable',
      RANGE: '^1',
      METRICS_FILE: '',
      MAX_BUNDLE_BYTES: '1024',
      DOWNLOAD_TIMEOUT_SEC: '10',
      FEED_TIMEOUT_SEC: '10',
      INFRASTRUCTURE_GROUPS: 'postgres-clients',
      POSTGRESQL_SOCKET_DIR: '/var/run/postgresql',
      VALKEY_SOCKET: '/var/run/valkey/valkey.sock',
    };
    expect(Object.keys(values)).toEqual([...CONFIG_KEYS]);
    const text = CONFIG_KEYS.map((k) => `${k}=${values[k]}`).join('\n');
    expect(parseConfig(text, '/etc/rick/rick.conf', DEFAULT_METRICS).bundles).toEqual([
      'authentik',
    ]);
  });

  it('refuses a setting given twice and an empty bundle list', () => {
    const error = refusal('FEED=a/b\nFEED=c/d\nBUNDLES= , \n');
    expect(error.message).toContain('line 1: FEED: set twice (again on line 2)');
    expect(error.message).toContain('BUNDLES: must name at least one bundle');
  });

  it('refuses bundle names that are not bundle names and feeds with credentials', () => {
    const error = refusal('FEED=https://user:pw@example.org/releases\nBUNDLES=Authentik ../x\n');
    expect(error.message).toContain('FEED: must be a GitHub owner/name');
    expect(error.message).toContain('BUNDLES.0: must be bundle names');
  });

  it('keeps the line parser independent of the schema', () => {
    expect(parseConfigLines('A=1\n  # c\nB = 2\n')).toEqual({
      values: { A: '1' },
      problems: [{ path: 'line 3', message: 'expected KEY=value' }],
      lines: { A: 1 },
    });
  });

  it('expands owner/name, and asks for 100 releases a page unless the URL says otherwise', () => {
    expect(feedUrlFor('goauthentik/rick-releases')).toBe(
      'https://api.github.com/repos/goauthentik/rick-releases/releases?per_page=100',
    );
    expect(feedUrlFor('http://127.0.0.1:8080/releases')).toBe(
      'http://127.0.0.1:8080/releases?per_page=100',
    );
    expect(feedUrlFor('https://mirror.example.org/r?per_page=20&x=1')).toBe(
      'https://mirror.example.org/r?per_page=20&x=1',
    );
  });
});

describe('INFRASTRUCTURE_GROUPS', () => {
  it('defaults to the client groups of PostgreSQL and Valkey, and reads a list', () => {
    expect(parseInfrastructureGroups('FEED=acme/x\n', 'rick.conf')).toEqual([
      'postgres-clients',
      'valkey-clients',
    ]);
    expect(
      parseInfrastructureGroups('INFRASTRUCTURE_GROUPS="postgres-clients, redis-clients"\n', 'f'),
    ).toEqual(['postgres-clients', 'redis-clients']);
    expect(parseInfrastructureGroups('INFRASTRUCTURE_GROUPS=\n', 'f')).toEqual([]);
    // An install reads only this key: a file without FEED or BUNDLES is fine for it.
    expect(() =>
      parseConfig('FEED=acme/x\nBUNDLES=a\nINFRASTRUCTURE_GROUPS=a b\n', 'f', DEFAULT_METRICS),
    ).not.toThrow();
  });

  it('refuses what is not a group name, root included, for an install and for update', () => {
    for (const run of [
      () =>
        parseInfrastructureGroups(
          'FEED=acme/x\nBUNDLES=a\nINFRASTRUCTURE_GROUPS=root 0 ../x\n',
          '/etc/rick/rick.conf',
        ),
      () =>
        parseConfig(
          'FEED=acme/x\nBUNDLES=a\nINFRASTRUCTURE_GROUPS=root 0 ../x\n',
          '/etc/rick/rick.conf',
          DEFAULT_METRICS,
        ),
    ]) {
      expect(run).toThrow(
        '/etc/rick/rick.conf: line 3: INFRASTRUCTURE_GROUPS: must be group names separated by spaces or commas (not "root", "0", "../x")',
      );
    }
  });
});

describe('the socket keys of rick.conf', () => {
  it('name the line of a bad socket path, and list the keys in the hint', () => {
    let error: unknown;
    try {
      parseSocketConfig('# c\nVALKEY_SOCKET=relative/x\n', '/etc/rick/rick.conf');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(RickError);
    expect((error as RickError).message).toBe(
      '/etc/rick/rick.conf: line 2: VALKEY_SOCKET: must be an absolute path without a trailing /',
    );
    expect((error as RickError).hint).toContain('the keys are FEED, BUNDLES,');
  });
});
