/**
 * The adopted files' own record: /var/lib/rick/adopted/<time>/record.json
 * beside the files themselves (files/<host path>), kept for good. An
 * adoption moves the foreign files here just before the flip that makes its
 * generation live; the record says which files, which generation and where
 * the adoption stands, so that whatever a crash leaves, the next run (under
 * the lock, after recovery settled `current`, see settleAdoptions) ends
 * with either the adopted files in place or the adopting generation live,
 * never neither:
 *
 *   moving, moved  the files are (being) moved and the flip may not have
 *                  happened: when state.json confirms the generation, the
 *                  adoption is done; otherwise the files go back.
 *   done           the generation went live and was confirmed. When the
 *                  live generation is later an older one without the
 *                  bundle (a rollback past the adoption), the files go back.
 *   restored       the files are back where they were; nothing more to do.
 *
 * The record is written atomically (temp file, fsync, rename) before the
 * first file moves; a file is moved by rename(2), or, across file systems,
 * copied, synced and only then removed, so a crash in the middle leaves it
 * in one place or in both, never in none.
 */
import { copyFile, link, lstat, mkdir, open, readdir, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import * as z from 'zod';
import '../bundle/zod.js';
import { CADDY_SERVICE } from '../bundle/caddy.js';
import { describe, RickError } from '../errors.js';
import type { ForeignFile } from './adopt.js';
import { checkpoint } from './fault.js';
import { readGenerationRecord, readLiveGenerationNumber } from './generations.js';
import { type HostPaths, RICK_STATE_DIR } from './paths.js';
import { fsyncDir, type HostState, readStateFile, writeFileAtomic } from './state.js';
import type { Host } from './system.js';

/** Where adopted files are kept, as the host sees it. */
export const ADOPTED_DIR = `${RICK_STATE_DIR}/adopted`;

const recordSchema = z.strictObject({
  schemaVersion: z.literal(1),
  bundle: z.string(),
  version: z.string(),
  /** The generation the adoption makes live. */
  generation: z.number().int().positive(),
  /** The generation live before it; absent on a host rick had not installed anything on. */
  from: z.number().int().positive().optional(),
  time: z.string(),
  state: z.enum(['moving', 'moved', 'done', 'restored']),
  files: z.array(
    z.strictObject({
      /** Where the file was (and goes back to), as the host sees it. */
      path: z.string().startsWith('/'),
      kind: z.enum(['unit', 'site']),
    }),
  ),
  /** The services the adopted units make: started again when the files go back. */
  services: z.array(z.string()),
});
export type AdoptionRecord = z.infer<typeof recordSchema>;

const RECORD_FILE = 'record.json';

function adoptedRoot(paths: HostPaths): string {
  return join(paths.root, ADOPTED_DIR);
}

/** Where a moved file is kept inside its adoption's directory. */
function storedPath(dir: string, hostPath: string): string {
  return join(dir, 'files', hostPath);
}

async function exists(path: string): Promise<boolean> {
  return lstat(path).then(
    () => true,
    () => false,
  );
}

async function writeRecord(dir: string, record: AdoptionRecord): Promise<void> {
  await writeFileAtomic(join(dir, RECORD_FILE), `${JSON.stringify(record, null, 2)}\n`, 0o644);
}

async function syncFile(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Moves one file durably: rename(2), or across file systems a copy that is
 * synced before the original is removed. Never leaves the file nowhere.
 */
async function moveFile(from: string, to: string): Promise<void> {
  await mkdir(dirname(to), { recursive: true, mode: 0o700 });
  try {
    await rename(from, to);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EXDEV') throw error;
    const temp = `${to}.tmp-${process.pid}`;
    await copyFile(from, temp);
    await syncFile(temp);
    // link(2) refuses to replace: a file already there is never overwritten.
    await link(temp, to);
    await unlink(temp);
    await fsyncDir(dirname(to));
    await unlink(from);
  }
  await fsyncDir(dirname(to));
  await fsyncDir(dirname(from));
}

/** The directory of a new adoption: its time, made unique on this host. */
async function newAdoptionDir(paths: HostPaths, time: string): Promise<string> {
  const base = time.replace(/[:.]/g, '-');
  await mkdir(adoptedRoot(paths), { recursive: true, mode: 0o700 });
  for (let n = 1; ; n++) {
    const dir = join(adoptedRoot(paths), n === 1 ? base : `${base}-${n}`);
    try {
      await mkdir(dir, { mode: 0o700 });
      return dir;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
  }
}

/**
 * Records the adoption, then moves the foreign files into its directory.
 * Called after the generation is written and before the flip. Returns the
 * directory (as the host sees it).
 */
export async function moveAdoptedFiles(
  paths: HostPaths,
  adoption: Omit<AdoptionRecord, 'schemaVersion' | 'state' | 'files'> & {
    files: readonly ForeignFile[];
  },
): Promise<string> {
  const dir = await newAdoptionDir(paths, adoption.time);
  const record: AdoptionRecord = {
    schemaVersion: 1,
    ...adoption,
    state: 'moving',
    files: adoption.files.map((f) => ({ path: f.hostPath, kind: f.kind })),
  };
  await writeRecord(dir, record);
  await fsyncDir(adoptedRoot(paths));
  await checkpoint('adopt-recorded');
  for (const f of record.files) {
    try {
      await moveFile(join(paths.root, f.path), storedPath(dir, f.path));
    } catch (error) {
      throw new RickError('IO_ERROR', `cannot move ${f.path} into ${dir}: ${describe(error)}`, {
        cause: error,
        hint: 'the next rick-install run puts back what was moved',
      });
    }
  }
  await writeRecord(dir, { ...record, state: 'moved' });
  await checkpoint('adopt-moved');
  return dir.slice(paths.root.length === 1 ? 0 : paths.root.length);
}

async function readRecords(
  paths: HostPaths,
): Promise<Array<{ dir: string; record: AdoptionRecord }>> {
  const root = adoptedRoot(paths);
  const names = await readdir(root).catch(() => [] as string[]);
  const out: Array<{ dir: string; record: AdoptionRecord }> = [];
  for (const name of names.sort()) {
    const dir = join(root, name);
    const text = await readStateFile(join(dir, RECORD_FILE));
    if (text === undefined) continue;
    let parsed: ReturnType<typeof recordSchema.safeParse>;
    try {
      parsed = recordSchema.safeParse(JSON.parse(text));
    } catch {
      parsed = recordSchema.safeParse(undefined);
    }
    if (!parsed.success) {
      throw new RickError(
        'STATE_INCONSISTENT',
        `${join(ADOPTED_DIR, name, RECORD_FILE)} is not an adoption record rick wrote`,
        {
          hint: 'rick writes it atomically, so it was changed by hand; nothing was changed. Restore it, or move its directory out of the way',
        },
      );
    }
    out.push({ dir, record: parsed.data });
  }
  return out;
}

/** The records of every adoption on the host, oldest first, with their directories as the host sees them (for `status`). */
export async function readAdoptions(
  paths: HostPaths,
): Promise<Array<AdoptionRecord & { dir: string }>> {
  return (await readRecords(paths)).map((r) => ({
    ...r.record,
    dir: `${ADOPTED_DIR}/${basename(r.dir)}`,
  }));
}

/**
 * Brings every adoption to an end state against what is live (see the
 * header): run under the lock, after recovery settled `current`, and after
 * a run that changes the live generation recorded it.
 */
export async function settleAdoptions(
  paths: HostPaths,
  host: Host,
  state: HostState,
  log: (line: string) => void,
): Promise<void> {
  const records = await readRecords(paths);
  if (!records.length) return;
  const current = await readLiveGenerationNumber(paths);
  const confirmed = state.live !== undefined && state.live === current ? state.live : undefined;
  const holds = async (bundle: string) =>
    confirmed === undefined
      ? false
      : Object.hasOwn((await readGenerationRecord(paths, confirmed)).bundles, bundle);
  for (const { dir, record } of records) {
    if (record.state === 'restored') continue;
    if (record.state === 'moving' || record.state === 'moved') {
      if (confirmed === record.generation) {
        await writeRecord(dir, { ...record, state: 'done' });
        continue;
      }
      log(
        `generation ${record.generation}, which adopted ${record.bundle}'s files, is not live: putting them back`,
      );
    } else {
      // Done: only a rollback past the adoption (to a generation without the bundle) undoes it.
      if (confirmed !== undefined && confirmed >= record.generation) continue;
      if (confirmed !== undefined && (await holds(record.bundle))) continue;
      log(
        `the live generation is older than generation ${record.generation}, which adopted ${record.bundle}'s files: putting them back`,
      );
    }
    await putBack(paths, host, dir, record, log);
  }
}

async function putBack(
  paths: HostPaths,
  host: Host,
  dir: string,
  record: AdoptionRecord,
  log: (line: string) => void,
): Promise<void> {
  for (const f of record.files) {
    const stored = storedPath(dir, f.path);
    const target = join(paths.root, f.path);
    if (!(await exists(stored))) continue;
    if (await exists(target)) {
      // Written again meanwhile (or a crash left the file in both places):
      // the one in place stays, the kept copy too.
      log(`note: ${f.path} exists, so it stays as it is; the adopted copy is kept in ${dir}`);
      continue;
    }
    await mkdir(dirname(target), { recursive: true });
    // The kept copy stays too: adopted files are never deleted.
    await copyFile(stored, `${target}.tmp-${process.pid}`);
    await syncFile(`${target}.tmp-${process.pid}`);
    await rename(`${target}.tmp-${process.pid}`, target);
    await fsyncDir(dirname(target));
    log(`restored ${f.path}`);
  }
  await writeRecord(dir, { ...record, state: 'restored' });
  if (!host.systemctl) return;
  // The units are the host's own again: systemd loads them and starts what they make.
  await host.systemctl.daemonReload();
  if (record.services.length) {
    await host.systemctl.start(record.services);
    log(`started ${record.services.join(' ')}`);
  }
  if (record.files.some((f) => f.kind === 'site')) {
    try {
      await host.systemctl.reload([CADDY_SERVICE]);
      log(`reloaded ${CADDY_SERVICE}`);
    } catch (error) {
      log(`note: reloading ${CADDY_SERVICE} failed (${describe(error)}); reload it by hand`);
    }
  }
}
