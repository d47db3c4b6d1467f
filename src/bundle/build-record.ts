/**
 * The build record: `installer/build-record.json` in every bundle, listed in
 * the manifest (kind `installer`) so that its sha256 is signed with the rest.
 * It holds what a reader of the release wants and a host does not need: the
 * toolchain that built the bundle and the images it pinned.
 *
 * It is a file of its own, not fields of manifest.json, because every
 * installer already on hosts validates manifest.json strictly and refuses a
 * field it does not know (see the comment at manifestSchema): a new field
 * there stops every host's update timer. Hosts take only
 * installer/rick-install.cjs of the `installer` files into a generation and
 * ignore the others, so a record here installs everywhere.
 */
import semver from 'semver';
import * as z from 'zod';
import { RickError } from '../errors.js';
import './zod.js';

export const BUILD_RECORD_PATH = 'installer/build-record.json';
export const BUILD_RECORD_SCHEMA_VERSION = 1;

const dottedVersion = z.string().regex(/^\d+\.\d+\.\d+$/, 'must be a version such as 1.2.3');

/**
 * What built the bundle, so that a rebuild from the tag can use the same:
 * the Node.js that ran rick-bundle, rick-bundle's own version, and the
 * esbuild of that rick (which builds the single-file installer), null when
 * that rick has none.
 */
export const toolchainSchema = z.strictObject({
  node: dottedVersion,
  rick: z.string().refine((v) => semver.valid(v) === v, {
    message: 'must be a semantic version such as 1.2.3',
  }),
  esbuild: dottedVersion.nullable(),
});
export type Toolchain = z.infer<typeof toolchainSchema>;

/** An image the build pinned: the reference as the unit wrote it, and its digest. */
export const pinnedImageSchema = z.strictObject({
  reference: z.string().min(1).max(512),
  digest: z.string().regex(/^sha256:[0-9a-f]{64}$/, 'must be sha256:<64 lowercase hex digits>'),
});
export type PinnedImageEntry = z.infer<typeof pinnedImageSchema>;

export const buildRecordSchema = z
  .strictObject({
    schemaVersion: z.literal(BUILD_RECORD_SCHEMA_VERSION),
    toolchain: toolchainSchema,
    /**
     * The images the units name by digest (`Image=<reference>@sha256:…`,
     * from images.lock), each once, sorted by reference; absent when none.
     */
    images: z.array(pinnedImageSchema).min(1).optional(),
  })
  .superRefine((record, ctx) => {
    const references = (record.images ?? []).map((i) => i.reference);
    references.forEach((reference, i) => {
      const previous = references[i - 1];
      if (previous !== undefined && !(previous < reference)) {
        ctx.addIssue({
          code: 'custom',
          message: `images must be sorted by reference, each once: ${reference} follows ${previous}`,
          path: ['images', i, 'reference'],
        });
      }
    });
  });
export type BuildRecord = z.infer<typeof buildRecordSchema>;

/**
 * Pure: the record for a build, validated. Images are sorted here, so that
 * the bytes depend on what was pinned and not on the order it was found in.
 */
export function planBuildRecord(
  toolchain: Toolchain,
  images: readonly PinnedImageEntry[],
): BuildRecord {
  const sorted = [...images]
    .map((i) => ({ reference: i.reference, digest: i.digest }))
    .sort((a, b) => (a.reference < b.reference ? -1 : a.reference > b.reference ? 1 : 0));
  const record = {
    schemaVersion: BUILD_RECORD_SCHEMA_VERSION,
    toolchain: { node: toolchain.node, rick: toolchain.rick, esbuild: toolchain.esbuild },
    ...(sorted.length ? { images: sorted } : {}),
  };
  const parsed = buildRecordSchema.safeParse(record);
  if (!parsed.success) {
    throw new RickError('INTERNAL', `invalid build record: ${formatIssues(parsed.error.issues)}`);
  }
  return parsed.data;
}

/** Canonical bytes: the schema's key order, two-space indent, final newline. */
export function serializeBuildRecord(record: BuildRecord): string {
  return `${JSON.stringify(record, null, 2)}\n`;
}

/** Pure: validates a build record's bytes; every problem in one message. */
export function parseBuildRecord(
  bytes: Buffer,
): { ok: true; record: BuildRecord } | { ok: false; problem: string } {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (error) {
    return { ok: false, problem: `not UTF-8 JSON: ${(error as Error).message}` };
  }
  const parsed = buildRecordSchema.safeParse(value);
  if (parsed.success) return { ok: true, record: parsed.data };
  return { ok: false, problem: formatIssues(parsed.error.issues) };
}

function formatIssues(issues: readonly z.core.$ZodIssue[]): string {
  return issues
    .map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`)
    .join('; ');
}
