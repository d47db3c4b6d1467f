/**
 * images.lock: the digest each image of a bundle is pinned to, beside its
 * bundle.yaml and committed with it. Written by `rick-bundle pin`, read by
 * `rick-bundle build`. Keys are references exactly as the units render them
 * (`ghcr.io/goauthentik/server:2025.10.2`), values their sha256 digests.
 * Pure: parse and serialize.
 */
import * as z from 'zod';
import { RickError } from '../errors.js';

export const IMAGES_LOCK_FILE = 'images.lock';
export const IMAGES_LOCK_SCHEMA_VERSION = 1;

export const imageDigestSchema = z
  .string()
  .regex(/^sha256:[0-9a-f]{64}$/, 'must be sha256:<64 lowercase hex digits>');

export const imagesLockSchema = z.strictObject({
  schemaVersion: z.literal(IMAGES_LOCK_SCHEMA_VERSION),
  images: z.record(z.string(), imageDigestSchema).superRefine((images, ctx) => {
    for (const reference of Object.keys(images)) {
      // The key is the reference as the units write it: the digest is the value.
      if (reference === '' || reference.includes('@')) {
        ctx.addIssue({
          code: 'custom',
          message: 'must be an image reference without a digest',
          path: [reference],
        });
      }
    }
  }),
});
export type ImagesLock = z.infer<typeof imagesLockSchema>;

/** Parses images.lock's text; every problem at once, named by `path`. */
export function parseImagesLock(text: string, path: string): ImagesLock {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new RickError(
      'IMAGES_LOCK_INVALID',
      `${path}: not valid JSON: ${(error as Error).message}`,
      { hint: 'run `rick-bundle pin` to write it again' },
    );
  }
  const result = imagesLockSchema.safeParse(value);
  if (!result.success) {
    throw new RickError(
      'IMAGES_LOCK_INVALID',
      `${path}: ${result.error.issues
        .map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`)
        .join('; ')}`,
      { hint: 'run `rick-bundle pin` to write it again' },
    );
  }
  return result.data;
}

/** Sorted keys, two-space indent, final newline: a reviewed diff shows only what moved. */
export function serializeImagesLock(images: ReadonlyMap<string, string>): string {
  const sorted = [...images].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `${JSON.stringify(
    { schemaVersion: IMAGES_LOCK_SCHEMA_VERSION, images: Object.fromEntries(sorted) },
    null,
    2,
  )}\n`;
}
