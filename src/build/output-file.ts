/**
 * Writes a build output (bundle, signature, key) so that it appears whole or
 * not at all: a temporary file beside the target, fsynced, then renamed.
 */
import { randomBytes } from 'node:crypto';
import { link, open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { describe, RickError } from '../errors.js';

export interface OutputFileOptions {
  mode?: number;
  /** Refuse to replace an existing file. */
  exclusive?: boolean;
}

export async function writeOutputFile(
  path: string,
  data: Uint8Array | string,
  options: OutputFileOptions = {},
): Promise<void> {
  const mode = options.mode ?? 0o644;
  const temp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const handle = await open(temp, 'wx', mode);
    try {
      await handle.writeFile(data);
      await handle.chmod(mode);
      await handle.sync();
    } finally {
      await handle.close();
    }
    if (options.exclusive) {
      // link(2) fails if the target exists, where rename(2) would replace it.
      await link(temp, path);
      await rm(temp, { force: true });
    } else {
      await rename(temp, path);
    }
  } catch (error) {
    await rm(temp, { force: true });
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new RickError('USAGE', `${path} already exists; refusing to overwrite it`, {
        hint: 'remove it or choose another --out directory',
      });
    }
    throw new RickError('IO_ERROR', `cannot write ${path}: ${describe(error)}`, { cause: error });
  }
}
