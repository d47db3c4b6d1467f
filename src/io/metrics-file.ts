/**
 * Writes the node-exporter textfile. The collector reads the directory at
 * every scrape, so the file is replaced by rename and never seen half
 * written. The directory is not created: without node-exporter's textfile
 * directory there is no one to read the file, and rick leaves no trace.
 */
import { readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { wrapError } from '../errors.js';

export async function readMetricsFile(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch {
    return undefined;
  }
}

/** Returns false (and writes nothing) when the textfile directory does not exist. */
export async function writeMetricsFile(file: string, text: string): Promise<boolean> {
  const dir = dirname(file);
  try {
    if (!(await stat(dir)).isDirectory()) return false;
  } catch {
    return false;
  }
  // node-exporter ignores files that do not end in .prom, so the temp file is invisible to it.
  const tmp = join(dir, `.${basename(file)}.${process.pid}.tmp`);
  try {
    await writeFile(tmp, text, { mode: 0o644 });
    await rename(tmp, file);
    return true;
  } catch (error) {
    await rm(tmp, { force: true });
    throw wrapError(error, 'IO_ERROR', `cannot write metrics file ${file}`);
  }
}
