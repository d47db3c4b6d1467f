/**
 * The build's side of images.lock: each image the lock pins is rendered
 * `Image=<reference>@sha256:<hex>`, so that what a host pulls is the bytes
 * the lock was written for, whoever moves the tag since.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, RickError } from '../errors.js';
import { IMAGES_LOCK_FILE, type ImagesLock, parseImagesLock } from '../registry/images-lock.js';
import { pinUnitImages, type UnitImage } from '../registry/unit-images.js';
import type { RenderedFile } from './plan.js';

export interface PinnedImage {
  reference: string;
  digest: string;
}

export interface AppliedLock {
  files: RenderedFile[];
  /** Each pinned reference once, sorted: what the manifest records. */
  pinned: PinnedImage[];
  /** Images without a digest. */
  unpinned: UnitImage[];
  /** Lock entries no unit uses. */
  unused: string[];
}

/** Pure: the rendered files with the lock's digests written into their `Image=` lines. */
export function applyImagesLock(
  files: readonly RenderedFile[],
  lock: ImagesLock | undefined,
): AppliedLock {
  const digests = new Map(Object.entries(lock?.images ?? {}));
  const used = new Set<string>();
  const unpinned: UnitImage[] = [];
  const out = files.map((file) => {
    if (file.kind !== 'quadlet') return file;
    const result = pinUnitImages(file.name, file.content, digests);
    for (const image of result.pinned) used.add(image.reference);
    unpinned.push(...result.unpinned);
    return result.pinned.length ? { ...file, content: result.content } : file;
  });
  const pinned = [...used].sort().map((reference) => ({
    reference,
    digest: digests.get(reference)!,
  }));
  return {
    files: out,
    pinned,
    unpinned,
    unused: [...digests.keys()].filter((r) => !used.has(r)).sort(),
  };
}

/** images.lock of the bundle directory, or undefined when it has none. */
export async function readImagesLock(bundleDir: string): Promise<ImagesLock | undefined> {
  const path = join(bundleDir, IMAGES_LOCK_FILE);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new RickError('IO_ERROR', `cannot read ${path}: ${describe(error)}`, { cause: error });
  }
  return parseImagesLock(text, path);
}

/**
 * Reads the lock and applies it; with `requirePinned`, refuses every image
 * without a digest at once (IMAGES_UNPINNED).
 */
export async function pinRenderedImages(
  bundleDir: string,
  files: readonly RenderedFile[],
  requirePinned: boolean,
): Promise<AppliedLock & { warnings: string[] }> {
  const lock = await readImagesLock(bundleDir);
  const applied = applyImagesLock(files, lock);
  const unpinned = applied.unpinned.map((i) => `${i.unit}: ${i.reference}`);
  if (requirePinned && unpinned.length > 0) {
    throw new RickError(
      'IMAGES_UNPINNED',
      `${lock ? `${join(bundleDir, IMAGES_LOCK_FILE)} has no digest for` : `no ${IMAGES_LOCK_FILE} in ${bundleDir}, so no digest for`} ${unpinned.join(', ')}`,
      {
        hint: `run \`rick-bundle pin ${bundleDir}\` (with the same --vars) and commit ${IMAGES_LOCK_FILE}`,
      },
    );
  }
  const warnings = applied.unused.map(
    (r) =>
      `${IMAGES_LOCK_FILE} pins ${r}, which no unit uses any more (run \`rick-bundle pin\` to drop it)`,
  );
  // Without a lock nothing is pinned on purpose; with one, a gap is worth a line.
  if (lock) warnings.push(...unpinned.map((u) => `${u} has no digest in ${IMAGES_LOCK_FILE}`));
  return { ...applied, warnings };
}
