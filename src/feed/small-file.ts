/**
 * The one reader of the small files an update tick looks at on every run
 * (rick.conf, state.json, grant files, the feed caches, the kept index and
 * its signature, the metrics textfile): synchronously, whole, as a tick has
 * nothing else to do meanwhile. Two readings of a failure, each kept where
 * it was chosen: an input the tick needs is absent or an error
 * (`readSmallFile`, `readText`); a file the tick can do without (a cache,
 * a kept copy, the metrics it counts on from, the machine-id) that cannot be
 * read is as good as absent (`readKept`).
 */
import { readFileSync } from 'node:fs';
import { describe, RickError } from '../errors.js';

/** The file's bytes, or undefined when it is absent; any other failure is an IO_ERROR naming it. */
export function readSmallFile(file: string): Buffer | undefined {
  try {
    return readFileSync(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new RickError('IO_ERROR', `cannot read ${file}: ${describe(error)}`);
  }
}

/** Reads a small file whole as UTF-8, or undefined when it is absent. */
export function readText(file: string): string | undefined {
  return readSmallFile(file)?.toString('utf8');
}

/** A file the tick can do without, or undefined when it is absent or unreadable. */
export function readKept(file: string): Buffer | undefined {
  try {
    return readFileSync(file);
  } catch {
    return undefined;
  }
}
