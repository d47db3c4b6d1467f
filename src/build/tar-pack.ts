/**
 * Writes a reproducible gzipped tarball from files held in memory: entries
 * sorted by path, regular files only, owner 0:0, one fixed mtime, no gzip
 * timestamp. Same entries in, same bytes out.
 */
import { gzipSync } from 'node:zlib';
import { Header } from 'tar/header';

export interface PackEntry {
  path: string;
  data: Buffer;
  mode: number;
}

export interface PackOptions {
  /** Modification time of every entry, in seconds since the epoch (SOURCE_DATE_EPOCH). */
  mtime: number;
}

const BLOCK = 512;

export function packTarGz(entries: readonly PackEntry[], options: PackOptions): Buffer {
  return gzipSync(packTar(entries, options), { level: 9 });
}

export function packTar(entries: readonly PackEntry[], options: PackOptions): Buffer {
  const sorted = [...entries].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const mtime = new Date(options.mtime * 1000);
  const chunks: Buffer[] = [];
  let previous: string | undefined;
  for (const entry of sorted) {
    if (entry.path === previous) throw new Error(`duplicate tar entry ${entry.path}`);
    previous = entry.path;
    const header = new Header({
      path: entry.path,
      mode: entry.mode,
      uid: 0,
      gid: 0,
      uname: 'root',
      gname: 'root',
      size: entry.data.length,
      mtime,
      type: 'File',
    });
    const block = Buffer.alloc(BLOCK);
    // Paths are checked against the manifest pattern and kept short, so a
    // plain ustar header always suffices; a PAX header would add a varying field.
    if (header.encode(block, 0)) throw new Error(`tar path too long for ustar: ${entry.path}`);
    chunks.push(block, entry.data);
    const pad = (BLOCK - (entry.data.length % BLOCK)) % BLOCK;
    if (pad) chunks.push(Buffer.alloc(pad));
  }
  chunks.push(Buffer.alloc(BLOCK * 2));
  return Buffer.concat(chunks);
}
