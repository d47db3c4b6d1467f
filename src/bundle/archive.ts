/**
 * Reads a bundle tarball held in memory and turns it into validated contents,
 * or refuses it. Nothing here touches the disk: the archive is gunzipped with
 * a hard output cap (a gzip bomb is cut off, not inflated) and the tar stream
 * is walked block by block with a deliberately small reader that knows only
 * what rick's own packer writes (ustar regular files, optionally PAX or GNU
 * long names) and refuses everything else: links of either kind (even ones
 * pointing inside), devices, FIFOs, directories carrying data, special mode
 * bits, unsafe or colliding names, data smuggled after the end of the archive.
 *
 * Callers must verify the signature over the same bytes BEFORE calling this
 * (see bundle-trust.ts): the parser is strict, but it is still a parser of
 * attacker-shaped input, and the signature is what makes the input trusted.
 */
import { createHash } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { Header } from 'tar/header';
import { describe, RickError } from '../errors.js';
import { MAX_BUNDLE_BYTES } from '../host/intake/signature.js';
import { checkBundleUnits } from './bundle-units.js';
import {
  bundlePathPattern,
  formatProblems,
  MANIFEST_PATH,
  type Manifest,
  parseManifest,
} from './manifest.js';
import { checkUnitsAndSites } from './plain-units.js';
import { bundleSysusers } from './sysusers.js';
import { checkBundleTmpfiles } from './tmpfiles.js';

/** Caps applied while reading an archive. Every field is a hard limit. */
export interface ArchiveLimits {
  /** Size of the .tgz file itself. */
  maxCompressedBytes: number;
  /** Number of tar entries (files and directories, extension headers not counted). */
  maxEntries: number;
  /** Size of one entry's content. */
  maxEntryBytes: number;
  /** Sum of every entry's content. */
  maxTotalBytes: number;
  /**
   * Decompressed-to-compressed size ratio. Only enforced above 1 MiB of
   * output, so that tiny archives (mostly tar padding) are never refused.
   */
  maxRatio: number;
}

const MiB = 1024 * 1024;

export const defaultArchiveLimits: Readonly<ArchiveLimits> = Object.freeze({
  maxCompressedBytes: MAX_BUNDLE_BYTES,
  maxEntries: 4096,
  maxEntryBytes: 32 * MiB,
  maxTotalBytes: 256 * MiB,
  maxRatio: 200,
});

/** The manifest is read whole into a JSON parser; it never needs to be large. */
const MAX_MANIFEST_BYTES = 8 * MiB;
/** A PAX header or GNU long name holds a path, not data. */
const MAX_EXTENSION_BYTES = 64 * 1024;
const RATIO_FLOOR_BYTES = MiB;
/** Problems listed in one message before the rest are counted. */
const MAX_LISTED = 25;

const BLOCK = 512;

export interface BundleContents {
  /** The validated manifest (zod output, defaults applied). */
  manifest: Manifest;
  /** `manifest.json` exactly as signed, for recording in the generation. */
  manifestBytes: Buffer;
  /**
   * Every file the manifest lists, by bundle path (e.g. `quadlet/x.container`),
   * each checked against the manifest's size, sha256 and mode. The buffers are
   * views into one decompressed archive: treat them as read-only.
   */
  files: ReadonlyMap<string, Buffer>;
}

interface RawEntry {
  path: string;
  type: 'file' | 'dir';
  mode: number;
  data: Buffer;
}

function invalid(message: string, hint?: string): RickError {
  return new RickError('BUNDLE_INVALID', message, hint === undefined ? {} : { hint });
}

function listProblems(problems: readonly string[]): string {
  const shown = problems.slice(0, MAX_LISTED).join('; ');
  const rest = problems.length - MAX_LISTED;
  return rest > 0 ? `${shown}; and ${rest} more` : shown;
}

function gunzipCapped(tgz: Buffer, limits: ArchiveLimits): Buffer {
  if (tgz.length > limits.maxCompressedBytes) {
    throw invalid(
      `bundle is ${tgz.length} bytes, more than the limit of ${limits.maxCompressedBytes}`,
    );
  }
  if (tgz.length < 2 || tgz[0] !== 0x1f || tgz[1] !== 0x8b) {
    throw invalid('bundle is not a gzip-compressed tarball');
  }
  // Every entry may carry a header, a PAX header with its data, a long-name
  // header with its data, and padding; the archive ends with two zero blocks
  // padded to a 10 KiB record.
  const structureCap =
    limits.maxTotalBytes + limits.maxEntries * (6 * BLOCK) + 2 * MAX_EXTENSION_BYTES + 20 * BLOCK;
  const ratioCap = Math.max(RATIO_FLOOR_BYTES, tgz.length * limits.maxRatio);
  const cap = Math.min(structureCap, ratioCap);
  try {
    return gunzipSync(tgz, { maxOutputLength: cap });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ERR_BUFFER_TOO_LARGE' || error instanceof RangeError) {
      const which =
        cap === ratioCap
          ? `more than ${limits.maxRatio} times its compressed size`
          : `more than ${cap} bytes`;
      throw invalid(`bundle decompresses to ${which}; refusing a possible gzip bomb`);
    }
    throw invalid(`bundle is not valid gzip: ${describe(error)}`);
  }
}

function isZero(buf: Buffer, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (buf[i] !== 0) return false;
  return true;
}

/** The size field as written, without the reinterpretations tar readers apply. */
function rawSize(buf: Buffer, off: number): number | string {
  const field = buf.subarray(off + 124, off + 136);
  if ((field[0] ?? 0) & 0x80) return 'size uses base-256 encoding';
  const text = field.toString('latin1').replace(/\0.*$/s, '').trim();
  if (!/^[0-7]*$/.test(text)) return `size field ${JSON.stringify(text)} is not octal`;
  return text === '' ? 0 : Number.parseInt(text, 8);
}

const allowedPaxKeys = new Set([
  'path',
  'mtime',
  'atime',
  'ctime',
  'uid',
  'gid',
  'uname',
  'gname',
  'comment',
]);

/** Parses PAX records (`<len> <key>=<value>\n`), refusing anything odd. */
function parsePax(data: Buffer, where: string): Map<string, string> {
  const records = new Map<string, string>();
  let off = 0;
  while (off < data.length) {
    const space = data.indexOf(0x20, off);
    if (space < 0 || space - off > 10) throw invalid(`${where}: malformed PAX record`);
    const lenText = data.subarray(off, space).toString('latin1');
    if (!/^[1-9][0-9]*$/.test(lenText)) throw invalid(`${where}: malformed PAX record length`);
    const len = Number(lenText);
    const end = off + len;
    if (end > data.length || data[end - 1] !== 0x0a) {
      throw invalid(`${where}: PAX record overruns its header`);
    }
    const record = new TextDecoder('utf-8', { fatal: false }).decode(
      data.subarray(space + 1, end - 1),
    );
    const eq = record.indexOf('=');
    if (eq <= 0) throw invalid(`${where}: malformed PAX record`);
    const key = record.slice(0, eq);
    if (!allowedPaxKeys.has(key)) {
      throw invalid(`${where}: PAX attribute ${JSON.stringify(key)} is not allowed in a bundle`);
    }
    if (records.has(key)) throw invalid(`${where}: PAX attribute ${key} given twice`);
    records.set(key, record.slice(eq + 1));
    off = end;
  }
  return records;
}

function pathProblem(path: string): string | undefined {
  if (path === '') return 'empty name';
  if (path.includes('\0')) return 'name contains NUL';
  if (path.startsWith('/')) return 'absolute path';
  const segments = path.split('/');
  if (segments.includes('..')) return 'path traversal (..)';
  if (path.includes('\\')) return 'backslash in name';
  if (segments.includes('.') || segments.includes('')) return 'non-canonical path (. or //)';
  if (path !== MANIFEST_PATH && !bundlePathPattern.test(path)) {
    return 'name has characters outside [A-Za-z0-9_.@+-/]';
  }
  return undefined;
}

function entryTypeName(flag: string): string {
  switch (flag) {
    case '1':
      return 'hard link';
    case '2':
      return 'symbolic link';
    case '3':
      return 'character device';
    case '4':
      return 'block device';
    case '6':
      return 'FIFO';
    case '7':
      return 'contiguous file';
    case 'g':
      return 'PAX global header';
    case 'K':
      return 'GNU long link name';
    case 'S':
      return 'GNU sparse file';
    case 'D':
      return 'GNU dump directory';
    case 'M':
      return 'GNU multi-volume continuation';
    case 'V':
      return 'volume label';
    default:
      return `type ${JSON.stringify(flag)}`;
  }
}

/** Case- and Unicode-insensitive key: what a case-folding or normalising filesystem sees. */
function collisionKey(path: string): string {
  return path.normalize('NFC').toUpperCase().toLowerCase();
}

/**
 * Walks the tar stream. Structural damage (truncation, bad checksum, hostile
 * extension headers) refuses at once; per-entry problems are collected so
 * that every one of them is reported together.
 */
function readTarEntries(tar: Buffer, limits: ArchiveLimits): RawEntry[] {
  const entries: RawEntry[] = [];
  const problems: string[] = [];
  /** Every entry's name, refused or not, for the collision check. */
  const names: string[] = [];
  let total = 0;
  let off = 0;
  let pendingPath: string | undefined;
  let pendingSource: 'pax' | 'gnu' | undefined;
  let ended = false;
  while (off + BLOCK <= tar.length) {
    if (isZero(tar, off, off + BLOCK)) {
      ended = true;
      break;
    }
    const where = `entry at offset ${off}`;
    let header: Header;
    try {
      header = new Header(tar, off);
    } catch (error) {
      // node-tar throws on base-256 numbers beyond 2^53; no bundle has them.
      throw invalid(`${where}: unreadable tar header: ${describe(error)}`);
    }
    if (!header.cksumValid) throw invalid(`${where}: tar header checksum mismatch`);
    const magic = tar.subarray(off + 257, off + 265).toString('latin1');
    if (magic !== 'ustar\u000000' && magic !== 'ustar  \u0000') {
      throw invalid(`${where}: not a ustar header`);
    }
    const flag = String.fromCharCode(tar[off + 156] ?? 0).replace('\0', '');
    const size = rawSize(tar, off);
    if (typeof size === 'string') throw invalid(`${where}: ${size}`);
    const dataStart = off + BLOCK;
    const dataEnd = dataStart + size;
    if (dataEnd > tar.length) throw invalid(`${where}: archive is truncated`);
    const next = dataStart + Math.ceil(size / BLOCK) * BLOCK;

    if (flag === 'x' || flag === 'L') {
      if (pendingSource !== undefined) {
        throw invalid(`${where}: more than one long-name header for one entry`);
      }
      if (size > MAX_EXTENSION_BYTES) throw invalid(`${where}: extension header too large`);
      const data = tar.subarray(dataStart, dataEnd);
      if (flag === 'x') {
        const pax = parsePax(data, where);
        pendingPath = pax.get('path');
        pendingSource = 'pax';
      } else {
        pendingPath = data.toString('utf8').replace(/\0.*$/s, '');
        pendingSource = 'gnu';
      }
      off = next;
      continue;
    }

    const path = pendingPath ?? header.path ?? '';
    pendingPath = undefined;
    pendingSource = undefined;
    const label = JSON.stringify(path);
    names.push(flag === '5' ? path.replace(/\/$/, '') : path);
    off = next;

    // Refused entries count too: a flood of them must not grow the problem list unbounded.
    if (names.length > limits.maxEntries) {
      throw invalid(`bundle has more than ${limits.maxEntries} entries`);
    }

    if (flag !== '0' && flag !== '' && flag !== '5') {
      problems.push(`${label}: ${entryTypeName(flag)} entries are not allowed`);
      continue;
    }
    const isDir = flag === '5';
    const name = isDir ? path.replace(/\/$/, '') : path;
    const pathIssue = pathProblem(name);
    if (pathIssue) {
      problems.push(`${label}: ${pathIssue}`);
      continue;
    }
    if (header.mode === undefined) {
      problems.push(`${label}: unreadable mode`);
      continue;
    }
    const mode = header.mode & 0o7777;
    if (mode & 0o7000) {
      problems.push(`${label}: mode ${mode.toString(8)} has a setuid, setgid or sticky bit`);
      continue;
    }
    if (isDir) {
      if (size !== 0) {
        problems.push(`${label}: directory entry carries ${size} bytes of data`);
        continue;
      }
      entries.push({ path: name, type: 'dir', mode, data: Buffer.alloc(0) });
      continue;
    }
    if (size > limits.maxEntryBytes) {
      problems.push(`${label}: ${size} bytes, more than the limit of ${limits.maxEntryBytes}`);
      continue;
    }
    total += size;
    if (total > limits.maxTotalBytes) {
      throw invalid(`bundle content exceeds the limit of ${limits.maxTotalBytes} bytes`);
    }
    entries.push({ path: name, type: 'file', mode, data: tar.subarray(dataStart, dataEnd) });
  }
  if (pendingSource !== undefined) throw invalid('archive ends inside a long-name header');
  if (!ended) throw invalid('archive is truncated (no end-of-archive marker)');
  if (!isZero(tar, off, tar.length)) {
    throw invalid('archive has data after its end-of-archive marker');
  }
  problems.push(...nameProblems(names, entries));
  if (problems.length) throw invalid(`bundle archive refused: ${listProblems(problems)}`);
  return entries;
}

/** Duplicates and collisions among all names, and files that are also directories. */
function nameProblems(names: readonly string[], entries: readonly RawEntry[]): string[] {
  const problems: string[] = [];
  const byKey = new Map<string, string>();
  for (const name of names) {
    const key = collisionKey(name);
    const previous = byKey.get(key);
    if (previous === undefined) byKey.set(key, name);
    else if (previous === name) problems.push(`${JSON.stringify(name)}: duplicate name`);
    else {
      problems.push(
        `${JSON.stringify(name)} and ${JSON.stringify(previous)}: names collide after Unicode normalisation or case folding`,
      );
    }
  }
  // A file may not also be a directory on the way to another entry.
  const fileKeys = new Map(
    entries.filter((e) => e.type === 'file').map((e) => [collisionKey(e.path), e.path]),
  );
  for (const entry of entries) {
    const parts = collisionKey(entry.path).split('/');
    for (let i = 1; i < parts.length; i++) {
      const file = fileKeys.get(parts.slice(0, i).join('/'));
      if (file !== undefined) {
        problems.push(
          `${JSON.stringify(file)}: is both a file and a directory of ${JSON.stringify(entry.path)}`,
        );
      }
    }
  }
  return problems;
}

function parseManifestBytes(bytes: Buffer): Manifest {
  if (bytes.length > MAX_MANIFEST_BYTES) {
    throw new RickError(
      'MANIFEST_INVALID',
      `manifest.json is larger than ${MAX_MANIFEST_BYTES} bytes`,
    );
  }
  let value: unknown;
  try {
    const text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(bytes);
    value = JSON.parse(text);
  } catch (error) {
    throw new RickError(
      'MANIFEST_INVALID',
      `manifest.json is not valid UTF-8 JSON: ${describe(error)}`,
    );
  }
  const result = parseManifest(value);
  if (!result.ok) {
    throw new RickError(
      'MANIFEST_INVALID',
      `manifest.json is invalid: ${formatProblems(result.problems)}`,
      {
        hint: 'rebuild the bundle with a rick-bundle matching this installer',
      },
    );
  }
  return result.manifest;
}

/**
 * Parses and validates a bundle tarball from memory. Throws BUNDLE_INVALID for
 * a malformed or hostile archive and MANIFEST_INVALID for a bad manifest.json;
 * each message lists every problem of its kind.
 */
export function parseBundleArchive(
  tgz: Buffer,
  limits: ArchiveLimits = defaultArchiveLimits,
): BundleContents {
  const tar = gunzipCapped(tgz, limits);
  const entries = readTarEntries(tar, limits);

  const manifestEntry = entries.find((e) => e.path === MANIFEST_PATH);
  if (manifestEntry?.type !== 'file') {
    throw invalid('bundle has no manifest.json at its root');
  }
  const manifest = parseManifestBytes(manifestEntry.data);

  const problems: string[] = [];
  const listed = new Map(manifest.files.map((f) => [f.path, f]));
  const dirs = new Set<string>();
  for (const f of manifest.files) {
    const parts = f.path.split('/');
    for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join('/'));
  }
  const files = new Map<string, Buffer>();
  for (const entry of entries) {
    if (entry === manifestEntry) continue;
    const label = JSON.stringify(entry.path);
    if (entry.type === 'dir') {
      if (!dirs.has(entry.path)) problems.push(`${label}: directory not part of the manifest`);
      continue;
    }
    const expected = listed.get(entry.path);
    if (!expected) {
      problems.push(`${label}: not listed in the manifest`);
      continue;
    }
    if (entry.data.length !== expected.size) {
      problems.push(
        `${label}: size ${entry.data.length} differs from the manifest's ${expected.size}`,
      );
    }
    const digest = createHash('sha256').update(entry.data).digest('hex');
    if (digest !== expected.sha256) {
      problems.push(`${label}: sha256 ${digest} differs from the manifest's ${expected.sha256}`);
    }
    if (entry.mode !== expected.mode) {
      problems.push(
        `${label}: mode ${entry.mode.toString(8)} differs from the manifest's ${expected.mode.toString(8)}`,
      );
    }
    files.set(entry.path, entry.data);
  }
  for (const f of manifest.files) {
    if (!files.has(f.path))
      problems.push(
        `${JSON.stringify(f.path)}: listed in the manifest but missing from the archive`,
      );
  }
  if (problems.length) {
    throw invalid(`bundle does not match its manifest: ${listProblems(problems)}`);
  }
  // Fragments the installer applies as root are held to policy here, so that
  // no caller can get verified contents without the check.
  checkBundleUnits(manifest, files);
  bundleSysusers(manifest, files);
  checkBundleTmpfiles(manifest, files);
  checkUnitsAndSites(manifest, files);
  return { manifest, manifestBytes: manifestEntry.data, files };
}
