/**
 * The signed release index, `index.json`: the contract between
 * `rick-bundle index`, which writes and signs it, and `rick-install update`,
 * which follows it (FEED=…/index.json). Its JSON Schema is published as
 * schema/index.schema.json. One index lists every published release of
 * every bundle (version, channel, sha256, size, the names of its files and
 * where they lie relative to the index), the versions withdrawn (`yanked`,
 * with a reason), and for each release its rollout plan (waves: from a time
 * on, the hosts whose bucket is below a percentage). `serial` only grows and
 * `expires` bounds how long a host believes it: a host refuses an older
 * index than the one it accepted last (rollback) and an expired one (freeze).
 *
 * The detached signature, `index.json.sig`, covers these exact bytes; a host
 * checks it (with gpgv) before it parses anything here.
 */
import semver from 'semver';
import * as z from 'zod';
import { RickError } from '../errors.js';
import { bundleNamePattern } from './manifest.js';
import { describeFeedIssues } from './zod.js';

export const INDEX_SCHEMA_VERSION = 1;
export const INDEX_FILE = 'index.json';
export const INDEX_SIGNATURE_FILE = 'index.json.sig';
export const INDEX_SCHEMA_FILE = 'schema/index.schema.json';

export const indexChannels = ['stable', 'prerelease'] as const;

/** A file name of the release, without any directory: `authentik-1.2.0.tgz`. */
const fileNamePattern = /^[A-Za-z0-9_][A-Za-z0-9._+-]*$/;

/**
 * Where a release's files lie, relative to the index: `..` segments, then
 * plain path segments, each ending in `/` (`../../download/v1.2.0/`); empty
 * for the index's own directory. Never a scheme, a host, an absolute path, a
 * query or a fragment, so that a mirror serving a copy of the tree serves
 * the files too.
 */
export const locationPattern = /^(?:\.\.\/)*(?:[A-Za-z0-9_~+-][A-Za-z0-9._~+-]*\/)*$/;

const semverString = z.string().refine((v) => semver.valid(v) === v, {
  message: 'must be a semantic version such as 1.2.3',
});

const buildIndexSchema = () => {
  const wave = z.strictObject({
    /** From this time on… */
    at: z.iso.datetime(),
    /** …hosts whose bucket (0–99) is below this number take the release. */
    percent: z.number().int().min(1).max(100),
  });
  const release = z
    .strictObject({
      bundle: z.string().regex(bundleNamePattern, 'must be lowercase letters, digits and dashes'),
      version: semverString,
      channel: z.enum(indexChannels),
      /** Lowercase hex sha256 of the bundle file. */
      sha256: z.string().regex(/^[0-9a-f]{64}$/, 'must be a lowercase hex sha256'),
      /** Size of the bundle file in bytes. */
      size: z.number().int().positive().max(Number.MAX_SAFE_INTEGER),
      files: z.strictObject({
        bundle: z.string().max(255).regex(fileNamePattern, 'must be a plain file name'),
        signature: z.string().max(255).regex(fileNamePattern, 'must be a plain file name'),
      }),
      /** The directory of the files relative to the index (default: the index's own). */
      location: z
        .string()
        .max(1024)
        .regex(locationPattern, 'must be a relative directory such as ../../download/v1.2.0/')
        .optional(),
      /** When the release was first listed. */
      published: z.iso.datetime(),
      /** Waves, earliest first; absent: every host at once. */
      rollout: z.array(wave).min(1).max(20).optional(),
    })
    .superRefine((r, ctx) => {
      r.rollout?.forEach((w, i) => {
        const previous = i > 0 ? r.rollout?.[i - 1] : undefined;
        if (previous && Date.parse(w.at) <= Date.parse(previous.at)) {
          ctx.addIssue({
            code: 'custom',
            message: 'waves must start one after the other',
            path: ['rollout', i, 'at'],
          });
        }
        if (previous && w.percent <= previous.percent) {
          ctx.addIssue({
            code: 'custom',
            message: 'each wave must cover more hosts than the one before',
            path: ['rollout', i, 'percent'],
          });
        }
      });
    });
  const yank = z.strictObject({
    bundle: z.string().regex(bundleNamePattern, 'must be lowercase letters, digits and dashes'),
    version: semverString,
    /** One line for the operator: what is wrong with the version. */
    reason: z
      .string()
      .min(1)
      .max(500)
      .regex(/^[^\n\r]*$/, 'must be one line'),
    /** When it was yanked. */
    yanked: z.iso.datetime(),
  });
  return z
    .strictObject({
      schemaVersion: z.literal(INDEX_SCHEMA_VERSION),
      /** Grows with every index the publisher signs; a host never goes back to a lower one. */
      serial: z.number().int().positive().max(Number.MAX_SAFE_INTEGER),
      issued: z.iso.datetime(),
      /** A host refuses the index from this time on. */
      expires: z.iso.datetime(),
      releases: z.array(release),
      yanked: z.array(yank),
    })
    .superRefine((index, ctx) => {
      if (Date.parse(index.expires) <= Date.parse(index.issued)) {
        ctx.addIssue({ code: 'custom', message: 'must be after issued', path: ['expires'] });
      }
      const seen = new Set<string>();
      index.releases.forEach((r, i) => {
        const key = `${r.bundle}@${r.version}`;
        if (seen.has(key)) {
          ctx.addIssue({
            code: 'custom',
            message: `${r.bundle} ${r.version} is listed twice`,
            path: ['releases', i],
          });
        }
        seen.add(key);
      });
      const yanked = new Set<string>();
      index.yanked.forEach((y, i) => {
        const key = `${y.bundle}@${y.version}`;
        if (yanked.has(key)) {
          ctx.addIssue({
            code: 'custom',
            message: `${y.bundle} ${y.version} is yanked twice`,
            path: ['yanked', i],
          });
        }
        yanked.add(key);
      });
    });
};

// Built on first use, like the other schemas the installer carries.
let indexSchemaCache: ReturnType<typeof buildIndexSchema> | undefined;
export function indexSchema(): ReturnType<typeof buildIndexSchema> {
  indexSchemaCache ??= buildIndexSchema();
  return indexSchemaCache;
}

export type ReleaseIndex = z.infer<ReturnType<typeof buildIndexSchema>>;
export type IndexRelease = ReleaseIndex['releases'][number];
export type IndexYank = ReleaseIndex['yanked'][number];
export type RolloutWave = NonNullable<IndexRelease['rollout']>[number];

/**
 * Parses the text of an index whose signature has been checked. Every
 * problem is reported at once, as `path: message`, in one FEED_ERROR.
 */
export function parseIndex(text: string, source: string): ReleaseIndex {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new RickError(
      'FEED_ERROR',
      `${source} is not JSON (${error instanceof Error ? error.message : String(error)})`,
      { hint: 'the index must be the index.json written by rick-bundle index' },
    );
  }
  const result = indexSchema().safeParse(value);
  if (!result.success) {
    throw new RickError(
      'FEED_ERROR',
      `${source} is not a rick release index: ${describeFeedIssues(result.error.issues)}`,
      { hint: 'the index must be the index.json written by rick-bundle index' },
    );
  }
  return result.data;
}

/** Canonical bytes: releases by bundle then version, yanks likewise, two-space indent, final newline. */
export function serializeIndex(index: ReleaseIndex): string {
  const byBundleVersion = (
    a: { bundle: string; version: string },
    b: { bundle: string; version: string },
  ) =>
    a.bundle === b.bundle ? semver.compare(a.version, b.version) : a.bundle < b.bundle ? -1 : 1;
  const sorted: ReleaseIndex = {
    schemaVersion: index.schemaVersion,
    serial: index.serial,
    issued: index.issued,
    expires: index.expires,
    releases: [...index.releases].sort(byBundleVersion).map((r) => ({
      bundle: r.bundle,
      version: r.version,
      channel: r.channel,
      sha256: r.sha256,
      size: r.size,
      files: { bundle: r.files.bundle, signature: r.files.signature },
      ...(r.location === undefined ? {} : { location: r.location }),
      published: r.published,
      ...(r.rollout === undefined
        ? {}
        : { rollout: r.rollout.map((w) => ({ at: w.at, percent: w.percent })) }),
    })),
    yanked: [...index.yanked].sort(byBundleVersion).map((y) => ({
      bundle: y.bundle,
      version: y.version,
      reason: y.reason,
      yanked: y.yanked,
    })),
  };
  return `${JSON.stringify(sorted, null, 2)}\n`;
}

/**
 * The URL of one of a release's files: its name under the release's
 * location, resolved against the index URL as configured (not against where
 * a redirect led, which for a CDN is a signed, expiring object URL).
 */
export function releaseFileUrl(indexUrl: string, release: IndexRelease, file: string): string {
  return new URL(`${release.location ?? ''}${file}`, indexUrl).href;
}
