/**
 * One install at a time.
 *
 * The lock is a kernel flock(2) on /var/lib/rick/lock. Node has no flock of
 * its own, so the file is opened here and util-linux's flock(1) (Essential on
 * Debian) is handed that descriptor (`flock --nonblock 3`): the lock belongs
 * to the open file description this process keeps, and the kernel drops it
 * when the descriptor closes. A process killed with SIGKILL cannot leave it
 * stuck, and no pid file is judged stale.
 *
 * The path is never followed: it is opened with O_NOFOLLOW and must be a
 * regular file of this user with one link, so a symlink or hard link planted
 * there cannot make rick write its holder line into, or truncate, another
 * file. The lock file exists only while a run holds it (or after a run that
 * was killed): release removes it, and the directories this run had to
 * create for it when they are empty again, so a refused install on a fresh
 * host leaves nothing behind. Because a file can be removed between another
 * run's open and its flock, a run that gets the lock checks that the path
 * still names the file it locked, and starts over otherwise.
 *
 * The holder writes its pid and start time into the lock file so that a
 * refused run can name it.
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:fs';
import { type FileHandle, lstat, mkdir, open, rmdir, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { describe, RickError } from '../errors.js';
import { lockReleased, lockTaken } from './interrupt.js';

const CONFLICT = 75;

export interface LockHolder {
  pid: number;
  /** ISO time the holder took the lock. */
  since: string;
  /** What the holder is doing, e.g. `install demo-1.2.0.tgz`. */
  purpose?: string;
}

export interface HeldLock {
  readonly file: string;
  release(): Promise<void>;
}

export interface AcquireOptions {
  purpose?: string;
  now?: () => Date;
  /**
   * How long to wait when the lock is held by a process that is already dead
   * (a holder of an older rick whose lock child is exiting). A live holder is
   * refused at once.
   */
  deadHolderWaitMs?: number;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Reads the holder line without following a link at the path. */
export async function readLockHolder(file: string): Promise<LockHolder | undefined> {
  try {
    const handle = await open(
      file,
      constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK,
    );
    let text: string;
    try {
      if (!(await handle.stat()).isFile()) return undefined;
      text = await handle.readFile('utf8');
    } finally {
      await handle.close();
    }
    const value = JSON.parse(text) as Partial<LockHolder>;
    if (typeof value.pid === 'number' && typeof value.since === 'string') {
      return { pid: value.pid, since: value.since, purpose: value.purpose };
    }
  } catch {
    // Missing, empty (being written) or not ours: the holder is unknown.
  }
  return undefined;
}

function refuseLockPath(file: string, what: string): RickError {
  return new RickError('STATE_INCONSISTENT', `the install lock ${file} ${what}`, {
    hint: `rick creates it as a regular file while it runs; remove what is there (rm ${file}) and run again`,
  });
}

/** Opens the lock file without following links, creating it when absent. */
async function openLockFile(file: string): Promise<FileHandle | 'retry'> {
  let handle: FileHandle;
  try {
    handle = await open(
      file,
      constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW | constants.O_NONBLOCK,
      0o644,
    );
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ELOOP') throw refuseLockPath(file, 'is a symbolic link');
    // The directory went away with a releasing run: make it again.
    if (code === 'ENOENT') return 'retry';
    if (code === 'EISDIR') throw refuseLockPath(file, 'is a directory');
    throw new RickError('IO_ERROR', `cannot open the install lock ${file}: ${describe(error)}`, {
      cause: error,
    });
  }
  try {
    const st = await handle.stat();
    if (!st.isFile()) throw refuseLockPath(file, 'is not a regular file');
    if (st.nlink !== 1) throw refuseLockPath(file, `has ${st.nlink} hard links`);
    const uid = process.getuid?.();
    if (uid !== undefined && st.uid !== uid) {
      throw refuseLockPath(file, `is owned by uid ${st.uid}, not ${uid}`);
    }
  } catch (error) {
    await handle.close();
    throw error;
  }
  return handle;
}

/** flock(1) on our descriptor: true when the lock is ours, false when someone holds it. */
function tryFlock(handle: FileHandle, file: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      'flock',
      ['--nonblock', '--exclusive', '--conflict-exit-code', String(CONFLICT), '3'],
      { stdio: ['ignore', 'ignore', 'pipe', handle.fd] },
    );
    let err = '';
    child.stderr?.on('data', (d: Buffer) => {
      err += d.toString();
    });
    child.on('error', (error) =>
      reject(
        new RickError('IO_ERROR', `cannot run flock to take the install lock: ${error.message}`, {
          hint: 'install util-linux',
          cause: error,
        }),
      ),
    );
    child.on('close', (code) => {
      if (code === 0) resolve(true);
      else if (code === CONFLICT) resolve(false);
      else
        reject(
          new RickError(
            'IO_ERROR',
            `cannot take the install lock ${file}: ${err.trim() || `flock exit ${code}`}`,
          ),
        );
    });
  });
}

/** True when `file` still names the file open as `handle` (not removed or replaced meanwhile). */
async function stillNamed(handle: FileHandle, file: string): Promise<boolean> {
  const [held, named] = await Promise.all([handle.stat(), lstat(file).catch(() => undefined)]);
  return named !== undefined && named.ino === held.ino && named.dev === held.dev;
}

/** Removes the directories `mkdir -p` created (deepest first) while they are empty. */
async function removeCreatedDirs(file: string, firstCreated: string | undefined): Promise<void> {
  if (firstCreated === undefined) return;
  for (let dir = dirname(file); ; dir = dirname(dir)) {
    try {
      await rmdir(dir);
    } catch {
      return; // Not empty (or gone): it holds something now, so it stays.
    }
    if (dir === firstCreated || dirname(dir) === dir) return;
  }
}

/** Takes the install lock or throws LOCK_BUSY naming the holder. */
export async function acquireLock(file: string, options: AcquireOptions = {}): Promise<HeldLock> {
  const now = options.now ?? (() => new Date());
  const deadline = Date.now() + (options.deadHolderWaitMs ?? 5000);
  let created: string | undefined;
  for (;;) {
    const made = await mkdir(dirname(file), { recursive: true, mode: 0o755 });
    created ??= made;
    const handle = await openLockFile(file);
    if (handle === 'retry') continue;
    let locked: boolean;
    try {
      locked = await tryFlock(handle, file);
      if (locked && !(await stillNamed(handle, file))) {
        // A releasing run removed the file between our open and our flock.
        await handle.close();
        continue;
      }
    } catch (error) {
      await handle.close();
      await removeCreatedDirs(file, created);
      throw error;
    }
    if (locked) {
      // From here a stop signal waits for the run to leave the host consistent.
      lockTaken();
      const holder: LockHolder = { pid: process.pid, since: now().toISOString() };
      if (options.purpose) holder.purpose = options.purpose;
      const release = async () => {
        // Removed while still held, so that no run can lock the old file after us.
        await unlink(file).catch(() => {});
        await handle.close();
        await removeCreatedDirs(file, created);
        lockReleased();
      };
      try {
        await handle.truncate(0);
        await handle.write(`${JSON.stringify(holder)}\n`, 0);
      } catch (error) {
        await release();
        throw new RickError(
          'IO_ERROR',
          `cannot write the install lock ${file}: ${describe(error)}`,
          {
            cause: error,
          },
        );
      }
      return { file, release };
    }
    await handle.close();
    const holder = await readLockHolder(file);
    const holderDead = holder !== undefined && !alive(holder.pid);
    if (!holderDead || Date.now() > deadline) {
      const who = holder
        ? `pid ${holder.pid}, since ${holder.since}${holder.purpose ? `, ${holder.purpose}` : ''}`
        : 'holder unknown';
      throw new RickError('LOCK_BUSY', `another rick-install holds the lock ${file} (${who})`, {
        hint: 'wait for it to finish; a killed holder releases the lock by itself',
      });
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Runs `fn` holding the lock, and releases it however `fn` ends. */
export async function withLock<T>(
  file: string,
  options: AcquireOptions,
  fn: () => Promise<T>,
): Promise<T> {
  const lock = await acquireLock(file, options);
  try {
    return await fn();
  } finally {
    await lock.release();
  }
}
