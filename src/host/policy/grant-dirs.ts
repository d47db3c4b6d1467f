/**
 * The directories above a grant file are as much the grant as the file:
 * whoever can write `/etc/rick/policy.d` (or `/etc/rick`, or `/etc`) can put
 * any grant there, or swap the directory for one of their own. Each is
 * checked as the file is: a real directory, not a symbolic link, writable
 * by no one but its owner, and (on a host, as root) owned by root. Under
 * `--root DIR`, the directories from DIR/etc down.
 */
import { lstat } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, RickError } from '../../errors.js';
import { POLICY_DIR } from './grant-path.js';

/** `/etc`, `/etc/rick`, `/etc/rick/policy.d` below `root`. */
export function grantDirs(root: string): string[] {
  const parts = POLICY_DIR.split('/').filter(Boolean);
  return parts.map((_, i) => join(root, '/', ...parts.slice(0, i + 1)));
}

/** What is wrong with one directory's status, or nothing. */
export function grantDirProblems(
  st: { isDirectory(): boolean; isSymbolicLink(): boolean; mode: number; uid: number },
  requireOwner: number | undefined,
): string[] {
  if (st.isSymbolicLink()) return ['is a symbolic link'];
  const problems: string[] = [];
  if (!st.isDirectory()) problems.push('is not a directory');
  if (st.mode & 0o022) problems.push(`is writable by ${st.mode & 0o002 ? 'others' : 'its group'}`);
  if (requireOwner !== undefined && st.uid !== requireOwner) {
    problems.push(`belongs to uid ${st.uid}, not root`);
  }
  return problems;
}

/**
 * Refuses (CONFIG_INVALID) a grant directory others could write; a missing
 * directory is fine (there is no grant below it).
 */
export async function checkGrantDirs(
  root: string,
  requireOwner: number | undefined,
): Promise<void> {
  const problems: string[] = [];
  for (const dir of grantDirs(root)) {
    let st: Awaited<ReturnType<typeof lstat>>;
    try {
      st = await lstat(dir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') break;
      throw new RickError('CONFIG_INVALID', `cannot read ${dir}: ${describe(error)}`, {
        cause: error,
      });
    }
    for (const p of grantDirProblems(st, requireOwner)) problems.push(`${dir} ${p}`);
  }
  if (problems.length) {
    const dir = join(root, POLICY_DIR);
    throw new RickError(
      'CONFIG_INVALID',
      `the grant directory is not root's alone: ${problems.join(', ')}`,
      {
        hint: `whoever can write a directory above a grant can grant anything: make each a real directory, chown root:root and chmod go-w (e.g. chmod 0755 ${dir})`,
      },
    );
  }
}
