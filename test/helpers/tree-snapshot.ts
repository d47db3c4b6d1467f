/**
 * Records everything observable about a directory tree (every path, its type,
 * mode, owner, size, content hash or link target) so that a test can assert
 * that a refused install, or a crash, left a host tree byte-for-byte as it was.
 *
 * Usage:
 *   const before = await snapshotTree(root);
 *   … run the thing that must change nothing …
 *   expect(diffTrees(before, await snapshotTree(root))).toEqual([]);
 * or simply `await expectTreeUnchanged(root, before)`.
 */
import { createHash } from 'node:crypto';
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';

export type TreeEntryType = 'file' | 'dir' | 'symlink' | 'fifo' | 'socket' | 'block' | 'char';

export interface TreeEntry {
  /** Path relative to the snapshot root, `/`-separated; the root itself is `.`. */
  path: string;
  type: TreeEntryType;
  /** Permission bits including setuid/setgid/sticky (mode & 0o7777). */
  mode: number;
  uid: number;
  gid: number;
  /** Regular files: byte size. */
  size?: number;
  /** Regular files: sha256 of the content. */
  sha256?: string;
  /** Symlinks: the link target as stored (not followed). */
  target?: string;
  /** Hard-link count of regular files, so that a new hard link shows up as a change. */
  nlink?: number;
}

/** Sorted by path; stable, so two snapshots of the same tree are deeply equal. */
export type TreeSnapshot = TreeEntry[];

export interface SnapshotOptions {
  /** Relative paths (or prefixes ending in `/`) left out, e.g. a lock file a test expects. */
  ignore?: readonly string[];
  /** Also record mtimes (off by default: a rewrite with the same bytes is no change). */
  mtime?: boolean;
}

function typeOf(st: Awaited<ReturnType<typeof lstat>>): TreeEntryType {
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isDirectory()) return 'dir';
  if (st.isFile()) return 'file';
  if (st.isFIFO()) return 'fifo';
  if (st.isSocket()) return 'socket';
  if (st.isBlockDevice()) return 'block';
  return 'char';
}

function ignored(path: string, ignore: readonly string[]): boolean {
  return ignore.some((p) => (p.endsWith('/') ? `${path}/`.startsWith(p) : path === p));
}

/** Walks `root` without following symlinks and records every entry. */
export async function snapshotTree(
  root: string,
  options: SnapshotOptions = {},
): Promise<TreeSnapshot> {
  const ignore = options.ignore ?? [];
  const entries: TreeEntry[] = [];
  async function visit(abs: string, rel: string): Promise<void> {
    const st = await lstat(abs);
    const type = typeOf(st);
    const entry: TreeEntry & { mtimeMs?: number } = {
      path: rel,
      type,
      mode: st.mode & 0o7777,
      uid: st.uid,
      gid: st.gid,
    };
    if (options.mtime) entry.mtimeMs = st.mtimeMs;
    if (type === 'file') {
      const data = await readFile(abs);
      entry.size = data.length;
      entry.sha256 = createHash('sha256').update(data).digest('hex');
      entry.nlink = st.nlink;
    } else if (type === 'symlink') {
      entry.target = await readlink(abs);
    }
    entries.push(entry);
    if (type === 'dir') {
      for (const name of (await readdir(abs)).sort()) {
        const childRel = rel === '.' ? name : `${rel}/${name}`;
        if (ignored(childRel, ignore)) continue;
        await visit(join(abs, name), childRel);
      }
    }
  }
  await visit(root, '.');
  return entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** Human-readable differences (`+ added`, `- removed`, `~ changed: fields`), empty when equal. */
export function diffTrees(before: TreeSnapshot, after: TreeSnapshot): string[] {
  const a = new Map(before.map((e) => [e.path, e]));
  const b = new Map(after.map((e) => [e.path, e]));
  const out: string[] = [];
  for (const [path, old] of a) {
    const now = b.get(path);
    if (!now) {
      out.push(`- ${path} (${old.type})`);
      continue;
    }
    const fields = (Object.keys({ ...old, ...now }) as (keyof TreeEntry)[]).filter(
      (k) => old[k] !== now[k],
    );
    if (fields.length) out.push(`~ ${path}: ${fields.join(', ')}`);
  }
  for (const [path, now] of b) if (!a.has(path)) out.push(`+ ${path} (${now.type})`);
  return out.sort();
}

/** Throws with every difference listed when the tree under `root` no longer matches `before`. */
export async function expectTreeUnchanged(
  root: string,
  before: TreeSnapshot,
  options: SnapshotOptions = {},
): Promise<void> {
  const diff = diffTrees(before, await snapshotTree(root, options));
  if (diff.length) throw new Error(`tree under ${root} changed:\n  ${diff.join('\n  ')}`);
}
