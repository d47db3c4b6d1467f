/**
 * `rick-bundle pin`: renders the bundle as `build` does, asks each image's
 * registry for the digest its tag names now, and writes images.lock. The
 * lock is written whole or not at all: any image that cannot be resolved
 * leaves the previous lock as it was.
 */
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Output } from '../cli/run.js';
import { RickError } from '../errors.js';
import { createRegistryClient, type RegistryClient } from '../registry/client.js';
import { IMAGES_LOCK_FILE, serializeImagesLock } from '../registry/images-lock.js';
import { parseImageReference } from '../registry/reference.js';
import { findUnitImages } from '../registry/unit-images.js';
import { defaultTemplatesDir } from './build.js';
import { writeOutputFile } from './output-file.js';
import { renderBundleFiles } from './render-bundle.js';
import { readBundleSource } from './source.js';

export interface PinDeps {
  output: Output;
  env: NodeJS.ProcessEnv;
  cwd: string;
  repoRoot: string;
  /** The registry edge; default the real HTTP client. */
  registry?: RegistryClient;
}

export interface PinOptions {
  bundleDir: string;
  vars?: string[];
  templatesDir?: string;
}

export interface PinChange {
  reference: string;
  before: string | undefined;
  after: string;
}

export interface PinResult {
  path: string;
  images: PinChange[];
  /** References the old lock had that the units no longer name. */
  dropped: string[];
}

/**
 * The version templates see while pinning: pin has no release version, and
 * an image reference should not depend on one (a build with another
 * version would then find its images unpinned, and say so).
 */
const PIN_RENDER_VERSION = '0.0.0';

export async function pinBundle(options: PinOptions, deps: PinDeps): Promise<PinResult> {
  const bundleDir = resolve(deps.cwd, options.bundleDir);
  const source = await readBundleSource(
    bundleDir,
    (options.vars ?? []).map((v) => resolve(deps.cwd, v)),
  );
  const { files } = renderBundleFiles(source, {
    templatesDir: options.templatesDir
      ? resolve(deps.cwd, options.templatesDir)
      : defaultTemplatesDir(bundleDir, deps.repoRoot),
    version: PIN_RENDER_VERSION,
  });
  const references = [
    ...new Set(
      files
        .filter((f) => f.kind === 'quadlet')
        .flatMap((f) => findUnitImages(f.name, f.content))
        .map((i) => i.reference),
    ),
  ].sort();
  // Every reference is judged before the registry is asked anything.
  const parsed = references.map((r) => parseImageReference(r));
  const written = parsed.filter((p) => p.digest !== undefined);
  if (written.length > 0) {
    throw new RickError(
      'IMAGE_REFERENCE_INVALID',
      `${written.map((p) => `image ${p.written}`).join(', ')}: already carries a digest; pin reads the digest of a tag`,
      {
        hint: `write the tag alone in the unit (Image=name:tag): ${IMAGES_LOCK_FILE} holds its digest`,
      },
    );
  }
  const path = join(bundleDir, IMAGES_LOCK_FILE);
  const previous = await readPreviousLock(path);
  const registry = deps.registry ?? (await createRegistryClient({ env: deps.env }));
  const digests = new Map<string, string>();
  for (const ref of parsed) digests.set(ref.written, await registry.resolveDigest(ref));
  // Keys are the references as rendered, docker:// included when written.
  const locked = new Map(references.map((r, i) => [r, digests.get(parsed[i]!.written)!]));
  await writeOutputFile(path, serializeImagesLock(locked), { mode: 0o644 });
  return {
    path,
    images: references.map((reference) => ({
      reference,
      before: previous.get(reference),
      after: locked.get(reference)!,
    })),
    dropped: [...previous.keys()].filter((r) => !locked.has(r)).sort(),
  };
}

/** The digests of the lock being replaced, for the report; an unreadable one is simply replaced. */
async function readPreviousLock(path: string): Promise<Map<string, string>> {
  try {
    const value = JSON.parse(await readFile(path, 'utf8')) as { images?: unknown };
    const images = value.images;
    if (images === null || typeof images !== 'object') return new Map();
    return new Map(
      Object.entries(images).filter((e): e is [string, string] => typeof e[1] === 'string'),
    );
  } catch {
    return new Map();
  }
}
