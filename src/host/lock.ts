/**
 * One install at a time.
 *
 * The lock is a kernel flock(2) on /var/lib/rick/lock, held by a small child
 * (`flock --no-fork LOCK cat`) whose stdin is a pipe from this process. The
 * kernel drops the lock when the last descriptor closes, so a process killed
 * with SIGKILL cannot leave it stuck: its pipe closes, `cat` reads EOF and
 * exits, and the lock is free. No pid files to judge stale, no pid reuse to
 * get wrong. Node has no flock of its own; util-linux's flock(1) is on every
 * Debian host (it is Essential).
 *
 * The holder writes its pid and start time into the lock file so that a
 * refused run can name it.
 */
import { spawn } from 'node:child_process';
import { mkdir, readFile, truncate, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { RickError } from '../errors.js';

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
   * (its lock child is exiting). A live holder is refused at once.
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

export async function readLockHolder(file: string): Promise<LockHolder | undefined> {
  try {
    const value = JSON.parse(await readFile(file, 'utf8')) as Partial<LockHolder>;
    if (typeof value.pid === 'number' && typeof value.since === 'string') {
      return { pid: value.pid, since: value.since, purpose: value.purpose };
    }
  } catch {
    // Empty (being written) or not ours: the holder is unknown.
  }
  return undefined;
}

type Attempt = { held: HeldLock } | { busy: true };

function tryLock(file: string): Promise<Attempt> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      'flock',
      [
        '--nonblock',
        '--exclusive',
        '--conflict-exit-code',
        String(CONFLICT),
        '--no-fork',
        file,
        'cat',
      ],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    );
    let settled = false;
    let out = '';
    let err = '';
    const exited = new Promise<void>((done) => child.on('close', () => done()));
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      // cat echoes our line only once flock holds the lock and has exec'd it.
      if (!settled && out.includes('locked\n')) {
        settled = true;
        resolve({
          held: {
            file,
            release: async () => {
              // Leave the file as every run finds it: empty while nobody holds it.
              await truncate(file).catch(() => {});
              child.stdin.end();
              await exited;
            },
          },
        });
      }
    });
    child.on('error', (error) => {
      if (settled) return;
      settled = true;
      reject(
        new RickError('IO_ERROR', `cannot run flock to take the install lock: ${error.message}`, {
          hint: 'install util-linux',
          cause: error,
        }),
      );
    });
    child.on('close', (code) => {
      if (settled) return;
      settled = true;
      if (code === CONFLICT) resolve({ busy: true });
      else
        reject(
          new RickError(
            'IO_ERROR',
            `cannot take the install lock ${file}: ${err.trim() || `flock exit ${code}`}`,
          ),
        );
    });
    child.stdin.on('error', () => {});
    child.stdin.write('locked\n');
  });
}

/** Takes the install lock or throws LOCK_BUSY naming the holder. */
export async function acquireLock(file: string, options: AcquireOptions = {}): Promise<HeldLock> {
  const now = options.now ?? (() => new Date());
  const deadline = Date.now() + (options.deadHolderWaitMs ?? 5000);
  await mkdir(dirname(file), { recursive: true, mode: 0o755 });
  for (;;) {
    const attempt = await tryLock(file);
    if ('held' in attempt) {
      const holder: LockHolder = { pid: process.pid, since: now().toISOString() };
      if (options.purpose) holder.purpose = options.purpose;
      try {
        await writeFile(file, `${JSON.stringify(holder)}\n`, { mode: 0o644 });
      } catch (error) {
        await attempt.held.release();
        throw error;
      }
      return attempt.held;
    }
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
