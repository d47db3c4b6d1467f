/**
 * `/etc/rick/rick.conf`: what `rick-install update` follows. The format is
 * the one systemd's EnvironmentFile= and POSIX shells read: one `KEY=value`
 * per line, `#` comments, blank lines, values optionally in single or double
 * quotes. An operator edits it with any editor; bootstrap.sh writes it.
 *
 *   FEED=acme/rick-releases        # GitHub owner/name, or an https:// URL serving the releases API shape,
 *                                  # or the URL of a signed release index (a path ending in index.json)
 *   BUNDLES=authentik              # bundles to follow, separated by spaces or commas
 *   CHANNEL=stable                 # stable | prerelease
 *   RANGE=^2                       # semver range (default: any version)
 *   METRICS_FILE=/var/lib/prometheus/node-exporter/rick.prom   # empty: no metrics
 *   MAX_BUNDLE_BYTES=67108864      # hard cap on one downloaded asset
 *   DOWNLOAD_TIMEOUT_SEC=300       # deadline for the whole download of one asset
 *   FEED_TIMEOUT_SEC=30            # deadline for the releases list
 *   INFRASTRUCTURE_GROUPS=postgres-clients valkey-clients   # groups bundles may join
 *   POSTGRESQL_SOCKET_DIR=/var/run/postgresql   # where the host's PostgreSQL listens (src/host/database/)
 *   VALKEY_SOCKET=/var/run/valkey/valkey.sock   # the host's Valkey socket (pre-flight)
 *
 * Every problem is reported at once as `KEY: message`, with line numbers for
 * lines that are not `KEY=value` at all.
 */
import semver from 'semver';
import * as z from 'zod';
import { bundleNamePattern } from '../bundle/manifest.js';
import { checkPlaceholderName } from '../bundle/placeholders.js';
import { RickError } from '../errors.js';
import '../bundle/zod.js';

export const channels = ['stable', 'prerelease'] as const;
export type Channel = (typeof channels)[number];

export const DEFAULT_MAX_BUNDLE_BYTES = 64 * 1024 * 1024;
export const DEFAULT_DOWNLOAD_TIMEOUT_SEC = 300;
export const DEFAULT_FEED_TIMEOUT_SEC = 30;

/**
 * The groups a bundle may name without creating them (join with an `m`
 * line, take as a primary group, ask the GID of), unless rick.conf says
 * otherwise: the client groups of the host's PostgreSQL and Valkey sockets
 * (directories of mode 0770 owned by these groups). Joining one grants a
 * socket's client access and nothing else, and it is what the services rick
 * deploys exist to get; any other group (disk, adm, systemd-journal, docker,
 * staff, …) grants more than a service needs and must be declared by the
 * operator before a bundle can have it.
 */
export const DEFAULT_INFRASTRUCTURE_GROUPS: readonly string[] = [
  'postgres-clients',
  'valkey-clients',
];

/**
 * How the feed is read: `github`, the GitHub releases API (or its shape);
 * `index`, a signed release index (src/feed/index-tick.ts).
 */
export type FeedKind = 'github' | 'index';

/** A validated rick.conf. */
export interface RickConfig {
  /** The releases list URL (the `owner/name` form already expanded), or the index URL. */
  feedUrl: string;
  feedKind: FeedKind;
  /** The FEED value as written, for log lines. */
  feed: string;
  bundles: string[];
  channel: Channel;
  range: string;
  /** Absolute path of the node-exporter textfile, or undefined when metrics are off. */
  metricsFile: string | undefined;
  maxBundleBytes: number;
  downloadTimeoutSec: number;
  feedTimeoutSec: number;
}

const githubRepoPattern = /^[A-Za-z0-9][A-Za-z0-9-]{0,38}\/[A-Za-z0-9._-]{1,100}$/;

/** A FEED URL whose path ends in `index.json` names a signed release index. */
export function feedKindOf(feed: string): FeedKind {
  if (githubRepoPattern.test(feed)) return 'github';
  try {
    return new URL(feed).pathname.endsWith('index.json') ? 'index' : 'github';
  } catch {
    return 'github';
  }
}

/**
 * `owner/name` → the GitHub releases API URL. Both forms ask for 100
 * releases a page (GitHub's default is 30), unless a URL says otherwise.
 */
export function feedUrlFor(feed: string): string {
  if (githubRepoPattern.test(feed)) {
    return `https://api.github.com/repos/${feed}/releases?per_page=100`;
  }
  const url = new URL(feed);
  // An index is one file; only the releases API pages.
  if (feedKindOf(feed) === 'index') return url.href;
  if (!url.searchParams.has('per_page')) url.searchParams.set('per_page', '100');
  return url.href;
}

const positiveInt = (max: number) =>
  z
    .string()
    .regex(/^[0-9]+$/, 'must be a whole number')
    .transform(Number)
    .pipe(z.number().int().positive().max(max));

/**
 * Built on first use: only the update command reads a config, and building
 * zod schemas is a measurable part of every installer start.
 */
const buildConfigSchema = () =>
  z.strictObject({
    FEED: z
      .string({ error: 'is required (a GitHub owner/name or an https:// URL)' })
      .refine((v) => githubRepoPattern.test(v) || isFeedUrl(v), {
        message: 'must be a GitHub owner/name or an http(s):// URL',
      }),
    BUNDLES: z
      .string({ error: 'is required (the bundles to follow)' })
      .transform((v) => v.split(/[\s,]+/).filter((b) => b.length > 0))
      .pipe(
        z
          .array(z.string().regex(bundleNamePattern, 'must be bundle names such as authentik'))
          .min(1, 'must name at least one bundle'),
      ),
    CHANNEL: z.enum(channels, { error: 'must be stable or prerelease' }).default('stable'),
    RANGE: z
      .string()
      .refine((v) => semver.validRange(v) !== null, {
        message: 'must be a semver range such as ^2',
      })
      .default('*'),
    METRICS_FILE: z
      .string()
      .refine((v) => v === '' || v.startsWith('/'), {
        message: 'must be an absolute path (or empty to turn metrics off)',
      })
      .optional(),
    MAX_BUNDLE_BYTES: positiveInt(1024 * 1024 * 1024).optional(),
    DOWNLOAD_TIMEOUT_SEC: positiveInt(3600).optional(),
    FEED_TIMEOUT_SEC: positiveInt(600).optional(),
    INFRASTRUCTURE_GROUPS: z.string().optional(),
    // Read by an install (src/host/database/sockets.ts); here so that `update` accepts them.
    POSTGRESQL_SOCKET_DIR: z.string().optional(),
    VALKEY_SOCKET: z.string().optional(),
  });
let configSchema: ReturnType<typeof buildConfigSchema> | undefined;

function isFeedUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return (url.protocol === 'https:' || url.protocol === 'http:') && url.username === '';
  } catch {
    return false;
  }
}

export interface ConfigProblem {
  path: string;
  message: string;
}

/** Splits the text into KEY=value pairs; lines that are neither blank, comment nor KEY=value are problems. */
export function parseConfigLines(text: string): {
  values: Record<string, string>;
  problems: ConfigProblem[];
  /** The line (1-based) each key was set on, so that a refusal can point at it. */
  lines: Record<string, number>;
} {
  const values: Record<string, string> = {};
  const problems: ConfigProblem[] = [];
  const lines: Record<string, number> = {};
  text.split('\n').forEach((raw, index) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const match = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(line);
    if (!match) {
      problems.push({ path: `line ${index + 1}`, message: 'expected KEY=value' });
      return;
    }
    const key = match[1]!;
    let value = match[2]!.trim();
    const quote = value[0];
    if ((quote === '"' || quote === "'") && value.length >= 2 && value.endsWith(quote)) {
      value = value.slice(1, -1);
    } else if (value.includes(' #')) {
      value = value.slice(0, value.indexOf(' #')).trim();
    }
    if (key in values) {
      problems.push({
        path: `line ${lines[key]}: ${key}`,
        message: `set twice (again on line ${index + 1})`,
      });
      return;
    }
    values[key] = value;
    lines[key] = index + 1;
  });
  return { values, problems, lines };
}

/**
 * Every key rick.conf may set. The hint lists them because a host has no
 * README to look them up in; a test keeps the list equal to the schema.
 */
export const CONFIG_KEYS = [
  'FEED',
  'BUNDLES',
  'CHANNEL',
  'RANGE',
  'METRICS_FILE',
  'MAX_BUNDLE_BYTES',
  'DOWNLOAD_TIMEOUT_SEC',
  'FEED_TIMEOUT_SEC',
  'INFRASTRUCTURE_GROUPS',
  'POSTGRESQL_SOCKET_DIR',
  'VALKEY_SOCKET',
] as const;

/** The keys the schema knows, for the test that keeps CONFIG_KEYS equal to them. */
export function configSchemaKeys(): string[] {
  configSchema ??= buildConfigSchema();
  return Object.keys(configSchema.shape);
}

export const CONFIG_HINT = `fix the file and run again (nothing was changed): one KEY=value per line, # for comments; the keys are ${CONFIG_KEYS.join(', ')}`;

/** "line N: KEY" when the key was set on a line, else the key alone (a required key that is missing). */
export function configKeyAt(lines: Record<string, number>, key: string): string {
  return key in lines ? `line ${lines[key]}: ${key}` : key;
}

/** Validates the text of rick.conf whole; throws CONFIG_INVALID naming every problem. */
export function parseConfig(text: string, source: string, defaultMetricsFile: string): RickConfig {
  const { values, problems, lines } = parseConfigLines(text);
  configSchema ??= buildConfigSchema();
  const result = configSchema.safeParse(values);
  if (!result.success) {
    for (const issue of result.error.issues) {
      if (issue.code === 'unrecognized_keys') {
        for (const key of issue.keys) {
          problems.push({ path: configKeyAt(lines, key), message: 'unknown setting' });
        }
      } else {
        const key = issue.path[0];
        const path = issue.path.length ? issue.path.join('.') : '(file)';
        problems.push({
          path: typeof key === 'string' && key in lines ? `line ${lines[key]}: ${path}` : path,
          message: issue.message,
        });
      }
    }
  }
  // Read by every install (parseInfrastructureGroups); judged here too, so
  // that `update` refuses a file an install would refuse.
  const groups = infrastructureGroupsFrom(values);
  if (typeof groups === 'string') {
    problems.push({ path: configKeyAt(lines, 'INFRASTRUCTURE_GROUPS'), message: groups });
  }
  if (problems.length > 0 || !result.success) {
    throw new RickError(
      'CONFIG_INVALID',
      `${source}: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`,
      { hint: CONFIG_HINT },
    );
  }
  const c = result.data;
  return {
    feed: c.FEED,
    feedUrl: feedUrlFor(c.FEED),
    feedKind: feedKindOf(c.FEED),
    bundles: [...new Set(c.BUNDLES)],
    channel: c.CHANNEL,
    range: c.RANGE,
    metricsFile:
      c.METRICS_FILE === undefined
        ? defaultMetricsFile
        : c.METRICS_FILE === ''
          ? undefined
          : c.METRICS_FILE,
    maxBundleBytes: c.MAX_BUNDLE_BYTES ?? DEFAULT_MAX_BUNDLE_BYTES,
    downloadTimeoutSec: c.DOWNLOAD_TIMEOUT_SEC ?? DEFAULT_DOWNLOAD_TIMEOUT_SEC,
    feedTimeoutSec: c.FEED_TIMEOUT_SEC ?? DEFAULT_FEED_TIMEOUT_SEC,
  };
}

/** The INFRASTRUCTURE_GROUPS value as a list, or why it is invalid. */
function infrastructureGroupsFrom(values: Record<string, string>): string[] | string {
  const value = values.INFRASTRUCTURE_GROUPS;
  if (value === undefined) return [...DEFAULT_INFRASTRUCTURE_GROUPS];
  const names = value.split(/[\s,]+/).filter((g) => g.length > 0);
  const bad = names.filter((g) => checkPlaceholderName('gid', g) !== undefined || g === 'root');
  if (bad.length) {
    return `must be group names separated by spaces or commas (not ${bad.map((b) => JSON.stringify(b)).join(', ')})`;
  }
  return [...new Set(names)];
}

/**
 * INFRASTRUCTURE_GROUPS from the text of rick.conf, for an install: only
 * the file's syntax and this key are judged (FEED and BUNDLES matter to
 * `update` alone, and a host installing by hand may have neither).
 */
export function parseInfrastructureGroups(text: string, source: string): string[] {
  const { values, problems, lines } = parseConfigLines(text);
  const groups = infrastructureGroupsFrom(values);
  if (typeof groups === 'string') {
    problems.push({ path: configKeyAt(lines, 'INFRASTRUCTURE_GROUPS'), message: groups });
  }
  if (problems.length > 0 || typeof groups === 'string') {
    throw new RickError(
      'CONFIG_INVALID',
      `${source}: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`,
      { hint: CONFIG_HINT },
    );
  }
  return groups;
}
