/**
 * Writes the node-exporter textfile. The collector reads the directory at
 * every scrape, so the file is replaced by rename and never seen half
 * written. The directory is not created: without node-exporter's textfile
 * directory there is no one to read the file, and rick leaves no trace.
 */
import { renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { wrapError } from '../errors.js';
import { readKept } from './small-file.js';

/** The textfile as the last tick wrote it, or undefined (the counters then start again). */
export function readMetricsFile(file: string): string | undefined {
  return readKept(file)?.toString('utf8');
}

/** Returns false (and writes nothing) when the textfile directory does not exist. */
export function writeMetricsFile(file: string, text: string): boolean {
  const dir = dirname(file);
  try {
    if (!statSync(dir).isDirectory()) return false;
  } catch {
    return false;
  }
  // node-exporter ignores files that do not end in .prom, so the temp file is invisible to it.
  const tmp = join(dir, `.${basename(file)}.${process.pid}.tmp`);
  try {
    writeFileSync(tmp, text, { mode: 0o644 });
    renameSync(tmp, file);
    return true;
  } catch (error) {
    rmSync(tmp, { force: true });
    throw wrapError(error, 'IO_ERROR', `cannot write metrics file ${file}`);
  }
}
