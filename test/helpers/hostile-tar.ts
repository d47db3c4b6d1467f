/**
 * Forges tar archives byte by byte, so that tests can build exactly the
 * hostile input they name (links, devices, traversal, PAX tricks, bombs)
 * instead of relying on a packer that would refuse to write them.
 */
import { gzipSync } from 'node:zlib';
import { Header } from 'tar';
import type { FileKind } from '../../src/bundle/manifest.js';
import { isRickError, type RickError } from '../../src/errors.js';
import { sha256 } from './bundle-factory.js';

const BLOCK = 512;

export interface ForgedEntry {
  /** The name as the header carries it (a long name goes into a PAX or GNU header). */
  path: string;
  data?: Buffer;
  mode?: number;
  /** Tar type flag: '0' file, '1' hard link, '2' symlink, '3' char, '4' block, '5' dir, '6' fifo, … */
  type?: string;
  linkpath?: string;
  devmaj?: number;
  devmin?: number;
  /** Put the path into a PAX `x` header or a GNU `L` header before this entry. */
  longName?: 'pax' | 'gnu';
  /** Extra raw PAX records (key → value) written in an `x` header before this entry. */
  pax?: Record<string, string>;
  /** The size field written in the header, when it must lie about the data. */
  headerSize?: number;
  /** Breaks the header checksum. */
  badChecksum?: boolean;
}

function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let len = Buffer.byteLength(body) + 1;
  while (String(len).length + Buffer.byteLength(body) !== len) len++;
  return `${len}${body}`;
}

function headerBlock(fields: {
  path: string;
  type: string;
  size: number;
  mode: number;
  linkpath?: string;
  devmaj?: number;
  devmin?: number;
}): Buffer {
  const block = Buffer.alloc(BLOCK);
  const header = new Header({
    path: fields.path,
    mode: fields.mode,
    uid: 0,
    gid: 0,
    uname: 'root',
    gname: 'root',
    size: fields.size,
    mtime: new Date(1_700_000_000_000),
    linkpath: fields.linkpath ?? '',
    devmaj: fields.devmaj ?? 0,
    devmin: fields.devmin ?? 0,
  });
  header.type = fields.type as never;
  header.encode(block, 0);
  // Header.encode splits long names into prefix + name; forged names are
  // written raw so that the test controls every byte.
  if (Buffer.byteLength(fields.path) <= 100) {
    block.fill(0, 0, 100);
    block.write(fields.path, 0, 100, 'utf8');
    block.fill(0, 345, 500);
    rechecksum(block);
  }
  return block;
}

function rechecksum(block: Buffer): void {
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'latin1');
}

function pad(data: Buffer): Buffer[] {
  const rest = (BLOCK - (data.length % BLOCK)) % BLOCK;
  return rest ? [data, Buffer.alloc(rest)] : [data];
}

/** Builds an uncompressed tar stream with the two zero blocks at the end. */
export function forgeTar(
  entries: readonly ForgedEntry[],
  trailer: Buffer = Buffer.alloc(0),
): Buffer {
  const chunks: Buffer[] = [];
  for (const entry of entries) {
    const data = entry.data ?? Buffer.alloc(0);
    const type = entry.type ?? '0';
    let headerPath = entry.path;
    const records: string[] = [];
    if (entry.longName === 'pax') {
      records.push(paxRecord('path', entry.path));
      headerPath = entry.path.slice(0, 99);
    }
    for (const [k, v] of Object.entries(entry.pax ?? {})) records.push(paxRecord(k, v));
    if (records.length) {
      const body = Buffer.from(records.join(''));
      chunks.push(
        headerBlock({ path: 'PaxHeader/x', type: 'x', size: body.length, mode: 0o644 }),
        ...pad(body),
      );
    }
    if (entry.longName === 'gnu') {
      const body = Buffer.from(`${entry.path}\0`);
      chunks.push(
        headerBlock({ path: '././@LongLink', type: 'L', size: body.length, mode: 0o644 }),
        ...pad(body),
      );
      headerPath = entry.path.slice(0, 99);
    }
    const block = headerBlock({
      path: headerPath,
      type,
      size: entry.headerSize ?? data.length,
      mode: entry.mode ?? 0o644,
      ...(entry.linkpath === undefined ? {} : { linkpath: entry.linkpath }),
      ...(entry.devmaj === undefined ? {} : { devmaj: entry.devmaj }),
      ...(entry.devmin === undefined ? {} : { devmin: entry.devmin }),
    });
    if (entry.badChecksum) block[0] = (block[0] ?? 0) ^ 1;
    chunks.push(block, ...pad(data));
  }
  chunks.push(Buffer.alloc(2 * BLOCK), trailer);
  return Buffer.concat(chunks);
}

export function forgeTgz(entries: readonly ForgedEntry[], trailer?: Buffer): Buffer {
  return gzipSync(forgeTar(entries, trailer));
}

export interface ManifestFile {
  path: string;
  data: Buffer;
  mode?: number;
  kind?: FileKind;
}

const kindByDir: Record<string, FileKind> = {
  quadlet: 'quadlet',
  systemd: 'systemd',
  caddy: 'caddy',
  env: 'env',
  'sysusers.d': 'sysusers',
  'tmpfiles.d': 'tmpfiles',
  installer: 'installer',
};

/** A valid manifest.json (as bytes) listing exactly these files. */
export function manifestFor(
  files: readonly ManifestFile[],
  patch: (m: Record<string, unknown>) => Record<string, unknown> = (m) => m,
): Buffer {
  const manifest = {
    schemaVersion: 1,
    name: 'demo',
    version: '1.0.0',
    createdAt: '2024-01-01T00:00:00.000Z',
    source: { commit: null },
    requires: { podman: '5.3.0' },
    files: files.map((f) => ({
      path: f.path,
      kind: f.kind ?? kindByDir[f.path.split('/')[0] ?? ''] ?? 'quadlet',
      sha256: sha256(f.data),
      size: f.data.length,
      mode: f.mode ?? 0o644,
    })),
    facts: [],
    services: [],
  };
  return Buffer.from(`${JSON.stringify(patch(manifest), null, 2)}\n`);
}

/** Runs `fn` and returns the RickError it throws; fails the test when it does not throw one. */
export function refusal(fn: () => unknown): RickError {
  try {
    fn();
  } catch (error) {
    if (isRickError(error)) return error;
    throw error;
  }
  throw new Error('expected a refusal, but nothing was thrown');
}

/** Async variant of refusal. */
export async function asyncRefusal(fn: () => Promise<unknown>): Promise<RickError> {
  try {
    await fn();
  } catch (error) {
    if (isRickError(error)) return error;
    throw error;
  }
  throw new Error('expected a refusal, but nothing was thrown');
}
