/**
 * Writing a generation (src/host/generations.ts describes the store): every
 * file under generations/<n>.tmp-<pid>, made durable (an fsync per file, or
 * one syncfs for a large one; then every directory), generation.json last,
 * then one rename to generations/<n>: a directory named by a bare number is
 * always complete.
 */
import { constants } from 'node:fs';
import { lstat, mkdir, open, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { caddyBundleImport } from '../bundle/caddy.js';
import type { HostPaths } from './paths.js';
import '../bundle/zod.js';
import { RickError, wrapError } from '../errors.js';
import { realCommandRunner } from '../io/exec.js';
import { checkpoint } from './fault.js';
import {
  type BundleMeta,
  type GenerationContent,
  type GenerationRecord,
  generationDir,
  hasSites,
  INSTALLER_FILE,
  renderedLocation,
  renderedMode,
  renderFragments,
  SECRETS_FILE,
  SOURCE_FILE,
  serializeFacts,
  serializeSecrets,
  serializeSources,
  sha256,
} from './generation-layout.js';
import { checkGenerationsDir } from './generation-read.js';
import { fsyncDir } from './state.js';

// ---------------------------------------------------------------------------
// Writing

async function writeSynced(path: string, data: Buffer | string, mode: number): Promise<void> {
  const handle = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, mode);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Up to this many files, a generation is made durable file by file; above
 * it, with one syncfs(2) of its filesystem.
 */
export const PER_FILE_SYNC_MAX = 256;

/**
 * Makes every file written under `dir` durable. A generation of a few
 * bundles is fsynced file by file: that flushes what the install wrote and
 * nothing else, where syncfs would also flush every dirty page of the
 * filesystem (a busy database on the same disk), and it needs no child
 * process. One syncfs (coreutils `sync --file-system`) costs far less than
 * thousands of fsyncs, so a large generation takes that, and falls back to
 * fsyncing each file where it cannot run.
 */
async function syncTree(dir: string, files: readonly string[]): Promise<void> {
  if (files.length > PER_FILE_SYNC_MAX) {
    const result = await realCommandRunner.run('sync', ['--file-system', dir], {
      timeoutMs: 120_000,
    });
    if (result.code === 0) return;
  }
  for (let i = 0; i < files.length; i += 64) {
    await Promise.all(
      files.slice(i, i + 64).map(async (file) => {
        const handle = await open(file, constants.O_RDONLY);
        try {
          await handle.sync();
        } finally {
          await handle.close();
        }
      }),
    );
  }
}

export interface WriteGenerationOptions {
  /**
   * Checks the written generation (its directory under the temporary name)
   * while it is being made durable; when it throws, the generation is removed
   * and never renamed into place.
   */
  check?: (dir: string) => Promise<void>;
}

/**
 * Writes generation n completely under a temporary name, fsyncs it (and runs
 * `options.check` meanwhile), and renames it into place. Returns its final
 * directory.
 */
export async function writeGeneration(
  paths: HostPaths,
  content: GenerationContent,
  options: WriteGenerationOptions = {},
): Promise<string> {
  const final = generationDir(paths, content.generation);
  const tmp = `${final}.tmp-${process.pid}`;
  if (!(await checkGenerationsDir(paths))) {
    await mkdir(paths.generationsDir, { recursive: true, mode: 0o755 });
  }
  if (await pathExists(final)) {
    throw new RickError('IO_ERROR', `generation ${content.generation} already exists (${final})`);
  }
  const dirs = new Set<string>();
  const ensureDir = async (rel: string, mode = 0o755) => {
    const parts = rel.split('/');
    for (let i = 1; i <= parts.length; i++) {
      const sub = parts.slice(0, i).join('/');
      if (dirs.has(sub)) continue;
      await mkdir(join(tmp, sub), { mode });
      dirs.add(sub);
    }
  };
  // Modes are exactly what we decide (0600 env files, 0644 units), whatever the caller's umask.
  const umask = process.umask(0o022);
  try {
    await mkdir(tmp, { mode: 0o755 });
    await ensureDir('quadlet');
    await ensureDir('bundles');
    const record: GenerationRecord = {
      schemaVersion: 1,
      generation: content.generation,
      createdAt: content.createdAt,
      reason: content.reason,
      bundles: {},
    };
    const writes: Array<{ rel: string; data: Buffer | string; mode: number }> = [];
    for (const bundle of [...content.bundles.values()].sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const files: Record<string, string> = {};
      const modes = new Map(bundle.manifest.files.map((f) => [f.path, f.mode]));
      const sourceText = serializeSources(bundle.sources);
      const factsText = serializeFacts(bundle.facts);
      const meta: BundleMeta = {
        'manifest.json': sha256(bundle.manifestBytes),
        'facts.json': sha256(factsText),
        'source.json': sha256(sourceText),
      };
      for (const [path, data] of [...bundle.files].sort(([a], [b]) => (a < b ? -1 : 1))) {
        files[path] = sha256(data);
        writes.push({
          rel: renderedLocation(bundle.name, path),
          data,
          mode: renderedMode(path, bundle.sources.get(path), modes.get(path) ?? 0o644),
        });
      }
      writes.push({ rel: `bundles/${bundle.name}/${SOURCE_FILE}`, data: sourceText, mode: 0o644 });
      writes.push({
        rel: `bundles/${bundle.name}/manifest.json`,
        data: bundle.manifestBytes,
        mode: 0o644,
      });
      writes.push({ rel: `bundles/${bundle.name}/facts.json`, data: factsText, mode: 0o644 });
      if (bundle.secrets.size > 0) {
        const secretsText = serializeSecrets(bundle.secrets);
        meta['secrets.json'] = sha256(secretsText);
        writes.push({
          rel: `bundles/${bundle.name}/${SECRETS_FILE}`,
          data: secretsText,
          mode: 0o600,
        });
      }
      record.bundles[bundle.name] = { version: bundle.version, files, meta };
      await ensureDir(`quadlet/${bundle.name}`);
      if (hasSites(bundle)) {
        // Caddy's import takes one wildcard: the host imports caddy/*.caddy, each of which imports a bundle's sites.
        writes.push({
          rel: `caddy/${bundle.name}.caddy`,
          data: caddyBundleImport(bundle.name),
          mode: 0o644,
        });
      }
    }
    if (content.installer) {
      writes.push({ rel: INSTALLER_FILE, data: content.installer, mode: 0o755 });
      record.installer = sha256(content.installer);
    }
    record.fragments = {};
    for (const [rel, text] of renderFragments(content.bundles.values())) {
      const data = Buffer.from(text);
      writes.push({ rel, data, mode: 0o644 });
      record.fragments[rel] = sha256(data);
    }
    for (const w of writes) {
      const parent = dirname(w.rel);
      // Directories holding env files are as private as the files.
      await ensureDir(parent, /(^|\/)env(\/|$)/.test(parent) ? 0o700 : 0o755);
    }
    // Written in parallel batches, made durable together below (syncTree).
    const half = Math.ceil(writes.length / 2);
    const writeAll = async (batch: typeof writes) => {
      for (let i = 0; i < batch.length; i += 64) {
        await Promise.all(
          batch
            .slice(i, i + 64)
            .map((w) => writeFile(join(tmp, w.rel), w.data, { mode: w.mode, flag: 'wx' })),
        );
      }
    };
    await writeAll(writes.slice(0, half));
    await checkpoint('generation-partial');
    await writeAll(writes.slice(half));
    const durable = async () => {
      await syncTree(
        tmp,
        writes.map((w) => join(tmp, w.rel)),
      );
      // generation.json last: a generation with its record has every file durable.
      await writeSynced(
        join(tmp, 'generation.json'),
        `${JSON.stringify(record, null, 2)}\n`,
        0o644,
      );
      await Promise.all([...dirs].map((d) => fsyncDir(join(tmp, d))));
      await fsyncDir(tmp);
    };
    // The check (podman's quadlet, a child process) reads what the page
    // cache already holds, so it need not wait for the disk; both must end
    // before anything is renamed or removed.
    const [synced, checked] = await Promise.allSettled([
      durable(),
      options.check ? options.check(tmp) : Promise.resolve(),
    ]);
    if (checked.status === 'rejected') throw checked.reason;
    if (synced.status === 'rejected') throw synced.reason;
    await checkpoint('generation-synced');
    await rename(tmp, final);
    await fsyncDir(paths.generationsDir);
  } catch (error) {
    await rm(tmp, { recursive: true, force: true });
    throw wrapError(error, 'IO_ERROR', `cannot write generation ${content.generation}`);
  } finally {
    process.umask(umask);
  }
  return final;
}

export async function pathExists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch {
    return false;
  }
}
