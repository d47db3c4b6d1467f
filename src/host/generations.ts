/**
 * Generations on disk: write one completely before it can go live, read one
 * back, flip `current`, clean up after a crashed run, prune old ones.
 *
 * A generation is written under generations/<n>.tmp-<pid>, made durable
 * (one syncfs of its filesystem, or an fsync per file where that is not
 * available; then every directory fsynced), then renamed to generations/<n>:
 * a directory named by a bare number is always complete. `generation.json` (written last) records
 * the sha256 of every rendered file for `verify`.
 *
 * Each bundle keeps, besides its rendered files:
 *   bundles/<b>/manifest.json   the verified manifest, byte for byte
 *   bundles/<b>/facts.json      GIDs and UIDs resolved at install, secret NAMES only
 *   bundles/<b>/source.json     its files as shipped, tokens unsubstituted (no secrets),
 *                               in one file: one fsync instead of one per unit
 * which is enough to carry the bundle into a later generation without its
 * secrets file: secret-free files are re-rendered from source and facts for
 * the new generation number; files holding secrets (env files) are copied
 * with the generation directory in their paths rewritten, their only
 * generation-dependent part. Secret values are written to rendered files
 * only, mode 0600.
 */
import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import {
  lstat,
  mkdir,
  open,
  readdir,
  readFile,
  readlink,
  rename,
  rm,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import * as z from 'zod';
import { caddyBundleImport } from '../bundle/caddy.js';
import { type Manifest, manifestSchema } from '../bundle/manifest.js';
import type { GenerationView, RenderedBundle } from './activation/plan.js';
import {
  hasSecretTokens,
  moveGenerationPaths,
  type RecordedFacts,
  renderMasked,
  renderPublic,
} from './generation-files.js';
import { type HostPaths, RICK_STATE_DIR } from './paths.js';
import '../bundle/zod.js';
import { RickError, wrapError } from '../errors.js';
import { realCommandRunner } from '../io/exec.js';
import { checkpoint } from './fault.js';
import { fsyncDir } from './state.js';
import { readGeneratorState, writeUnitGenerator } from './unit-generator.js';

export const INSTALLER_FILE = 'installer/rick-install.cjs';

const recordedFactsSchema = z.strictObject({
  gid: z.record(z.string(), z.number().int().nonnegative()),
  uid: z.record(z.string(), z.number().int().nonnegative()),
  secrets: z.array(z.string()),
});

const generationRecordSchema = z.strictObject({
  schemaVersion: z.literal(1),
  generation: z.number().int().positive(),
  createdAt: z.string(),
  /** What made this generation: the install or rollback that wrote it. */
  reason: z.string(),
  bundles: z.record(
    z.string(),
    z.strictObject({
      version: z.string(),
      /** sha256 of every rendered file, by bundle path. */
      files: z.record(z.string(), z.string()),
    }),
  ),
  installer: z.string().optional(),
  /** sha256 of the combined sysusers.d and tmpfiles.d fragments, by generation path. */
  fragments: z.record(z.string(), z.string()).optional(),
});
export type GenerationRecord = z.infer<typeof generationRecordSchema>;

/** One bundle of a generation, everything needed to write it and carry it on. */
export interface StoredBundle extends RenderedBundle {
  manifest: Manifest;
  manifestBytes: Buffer;
  facts: RecordedFacts;
  /** Files as shipped (unsubstituted), by bundle path; installer excluded. */
  sources: ReadonlyMap<string, Buffer>;
}

export interface StoredGeneration extends GenerationView {
  bundles: ReadonlyMap<string, StoredBundle>;
  record: GenerationRecord;
  /** The installer the generation carries, if any. */
  installer?: Buffer;
}

export interface GenerationContent {
  generation: number;
  createdAt: string;
  reason: string;
  bundles: ReadonlyMap<string, StoredBundle>;
  installer?: Buffer;
}

export const SOURCE_FILE = 'source.json';

/**
 * Every bundle's sysusers.d and tmpfiles.d fragments, combined into one file
 * of each kind at the generation's root. The host reads them at boot through
 * one link each (/etc/sysusers.d/rick.conf, /etc/tmpfiles.d/rick.conf) that
 * points through `current`, so they switch and roll back with the
 * generation: systemd-tmpfiles-setup brings a bundle's /run directories
 * back after a reboot, and a bundle that is no longer live has no lines.
 */
export const FRAGMENT_FILES = {
  sysusers: 'sysusers.d/rick.conf',
  tmpfiles: 'tmpfiles.d/rick.conf',
} as const;

/** The combined fragments of a set of bundles (see FRAGMENT_FILES), by generation path. */
export function renderFragments(bundles: Iterable<StoredBundle>): Map<string, string> {
  const out = new Map<string, string>();
  const sorted = [...bundles].sort((a, b) => (a.name < b.name ? -1 : 1));
  for (const kind of ['sysusers', 'tmpfiles'] as const) {
    const dir = `${kind === 'sysusers' ? 'sysusers.d' : 'tmpfiles.d'}/`;
    const parts = [
      `# Managed by rick: the ${dir.slice(0, -1)} fragments of this generation's bundles.\n# Do not edit: every install and rollback switches the file systemd reads.\n`,
    ];
    for (const b of sorted) {
      for (const f of b.manifest.files) {
        if (f.kind !== kind) continue;
        const data = b.files.get(f.path);
        if (data === undefined) continue;
        const text = data.toString('utf8');
        parts.push(
          `\n# ${b.name} ${b.version}: ${f.path}\n${text}${text.endsWith('\n') || text === '' ? '' : '\n'}`,
        );
      }
    }
    out.set(FRAGMENT_FILES[kind], parts.join(''));
  }
  return out;
}

const sourcesSchema = z.record(
  z.string(),
  z.strictObject({ encoding: z.enum(['utf8', 'base64']), data: z.string() }),
);

/** A bundle's shipped files in one JSON document (text as text, anything else base64). */
export function serializeSources(sources: ReadonlyMap<string, Buffer>): string {
  const out: Record<string, { encoding: 'utf8' | 'base64'; data: string }> = {};
  for (const [path, data] of [...sources].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const text = data.toString('utf8');
    out[path] = Buffer.from(text, 'utf8').equals(data)
      ? { encoding: 'utf8', data: text }
      : { encoding: 'base64', data: data.toString('base64') };
  }
  return `${JSON.stringify(out, null, 1)}\n`;
}

export function parseSources(text: string): Map<string, Buffer> {
  const parsed = sourcesSchema.parse(JSON.parse(text));
  return new Map(Object.entries(parsed).map(([p, v]) => [p, Buffer.from(v.data, v.encoding)]));
}

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

export function generationDir(paths: HostPaths, n: number): string {
  return join(paths.generationsDir, String(n));
}

/**
 * Kinds whose files are shown to a host program through one link into
 * `current` (quadlet, the rick-units generator, Caddy): they live in
 * `<dir>/<bundle>/` of the generation rather than in the bundle's directory.
 */
const linkedDirs = ['quadlet/', 'systemd/', 'caddy/'] as const;

/** Where a bundle's rendered file lives inside its generation directory. */
export function renderedLocation(bundle: string, path: string): string {
  const dir = linkedDirs.find((d) => path.startsWith(d));
  return dir ? `${dir}${bundle}/${path.slice(dir.length)}` : `bundles/${bundle}/${path}`;
}

/** True when a bundle of the generation ships Caddy sites. */
export function hasSites(bundle: { files: ReadonlyMap<string, Buffer> }): boolean {
  return [...bundle.files.keys()].some((p) => p.startsWith('caddy/'));
}

/** True when a bundle of the generation ships plain systemd units. */
export function hasPlainUnits(bundle: { files: ReadonlyMap<string, Buffer> }): boolean {
  return [...bundle.files.keys()].some((p) => p.startsWith('systemd/'));
}

/** File mode of a rendered file: 0600 for env files and anything that held a secret. */
export function renderedMode(
  path: string,
  source: Buffer | undefined,
  manifestMode: number,
): number {
  if (path.startsWith('env/')) return 0o600;
  if (source && hasSecretTokens(source.toString('utf8'))) return 0o600;
  return manifestMode & 0o755;
}

// ---------------------------------------------------------------------------
// Reading

/** The generation `current` points at, or undefined before the first install. */
export async function readLiveGenerationNumber(paths: HostPaths): Promise<number | undefined> {
  let target: string;
  try {
    target = await readlink(paths.current);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    throw wrapError(error, 'IO_ERROR', `cannot read ${paths.current}`);
  }
  const match = /^generations\/(\d+)$/.exec(target);
  if (!match) {
    throw new RickError('IO_ERROR', `${paths.current} points at ${target}, not at a generation`, {
      hint: `point it back with: ln -sfn generations/<n> ${RICK_STATE_DIR}/current`,
    });
  }
  return Number(match[1]);
}

/** Complete generations (directories named by a number), ascending. */
export async function listGenerations(paths: HostPaths): Promise<number[]> {
  let names: string[];
  try {
    names = await readdir(paths.generationsDir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw wrapError(error, 'IO_ERROR', `cannot list ${paths.generationsDir}`);
  }
  return names
    .filter((n) => /^[1-9][0-9]*$/.test(n))
    .map(Number)
    .sort((a, b) => a - b);
}

async function readOptional(path: string): Promise<Buffer | undefined> {
  try {
    return await readFile(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

export async function readGenerationRecord(paths: HostPaths, n: number): Promise<GenerationRecord> {
  const file = join(generationDir(paths, n), 'generation.json');
  try {
    return generationRecordSchema.parse(JSON.parse(await readFile(file, 'utf8')));
  } catch (error) {
    throw wrapError(error, 'IO_ERROR', `generation ${n} is unreadable (${file})`);
  }
}

/**
 * Reads generation n back: manifests, recorded facts, sources and rendered
 * files; its installer only when asked (it is the largest file by far).
 */
export async function readGeneration(
  paths: HostPaths,
  n: number,
  options: { installer?: boolean } = {},
): Promise<StoredGeneration> {
  const dir = generationDir(paths, n);
  const record = await readGenerationRecord(paths, n);
  const bundles = new Map<string, StoredBundle>();
  try {
    for (const [name, entry] of Object.entries(record.bundles)) {
      const base = join(dir, 'bundles', name);
      const manifestBytes = await readFile(join(base, 'manifest.json'));
      const manifest = manifestSchema.parse(JSON.parse(manifestBytes.toString('utf8')));
      const facts = recordedFactsSchema.parse(
        JSON.parse(await readFile(join(base, 'facts.json'), 'utf8')),
      );
      const sources = parseSources(await readFile(join(base, SOURCE_FILE), 'utf8'));
      const files = new Map<string, Buffer>();
      const masked = new Map<string, string>();
      for (const f of manifest.files) {
        if (f.kind === 'installer') continue;
        const source = sources.get(f.path);
        if (!source) throw new Error(`${SOURCE_FILE} lacks ${f.path}`);
        masked.set(
          f.path,
          renderMasked(source.toString('utf8'), { bundle: name, generation: n, facts }),
        );
      }
      for (const path of Object.keys(entry.files)) {
        const data = await readOptional(join(dir, renderedLocation(name, path)));
        if (data) files.set(path, data);
      }
      bundles.set(name, {
        name,
        version: entry.version,
        services: manifest.services,
        files,
        masked,
        manifest,
        manifestBytes,
        facts,
        sources,
      });
    }
  } catch (error) {
    throw wrapError(error, 'IO_ERROR', `generation ${n} is unreadable`);
  }
  const installer =
    options.installer && record.installer
      ? await readOptional(join(dir, INSTALLER_FILE))
      : undefined;
  return { generation: n, bundles, record, installer };
}

// ---------------------------------------------------------------------------
// Carrying a bundle into a new generation

/** The same bundle, rendered for generation `to` (see the header for how). */
export function carryBundle(bundle: StoredBundle, from: number, to: number): StoredBundle {
  const files = new Map<string, Buffer>();
  const masked = new Map<string, string>();
  for (const [path, data] of bundle.files) {
    const source = bundle.sources.get(path);
    const sourceText = source?.toString('utf8');
    const ctx = { bundle: bundle.name, generation: to, facts: bundle.facts };
    let rendered: string | undefined;
    if (sourceText !== undefined && !hasSecretTokens(sourceText))
      rendered = renderPublic(sourceText, ctx);
    files.set(
      path,
      rendered !== undefined
        ? Buffer.from(rendered)
        : Buffer.from(moveGenerationPaths(data.toString('utf8'), from, to)),
    );
    if (sourceText !== undefined) masked.set(path, renderMasked(sourceText, ctx));
  }
  return { ...bundle, files, masked };
}

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
  await mkdir(paths.generationsDir, { recursive: true, mode: 0o755 });
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
      for (const [path, data] of [...bundle.files].sort(([a], [b]) => (a < b ? -1 : 1))) {
        files[path] = sha256(data);
        writes.push({
          rel: renderedLocation(bundle.name, path),
          data,
          mode: renderedMode(path, bundle.sources.get(path), modes.get(path) ?? 0o644),
        });
      }
      writes.push({
        rel: `bundles/${bundle.name}/${SOURCE_FILE}`,
        data: serializeSources(bundle.sources),
        mode: 0o644,
      });
      writes.push({
        rel: `bundles/${bundle.name}/manifest.json`,
        data: bundle.manifestBytes,
        mode: 0o644,
      });
      writes.push({
        rel: `bundles/${bundle.name}/facts.json`,
        data: `${JSON.stringify(bundle.facts, null, 2)}\n`,
        mode: 0o644,
      });
      record.bundles[bundle.name] = { version: bundle.version, files };
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

async function pathExists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Points `current` at generation n (or removes it, for undefined) with one
 * rename(2) of a new symlink, then fsyncs the directory.
 */
export async function flipCurrent(paths: HostPaths, n: number | undefined): Promise<void> {
  const tmp = `${paths.current}.tmp-${process.pid}`;
  try {
    if (n === undefined) {
      await rm(paths.current, { force: true });
    } else {
      await rm(tmp, { force: true });
      await symlink(`generations/${n}`, tmp);
      await checkpoint('flip-link-created');
      await rename(tmp, paths.current);
    }
    await fsyncDir(dirname(paths.current));
  } catch (error) {
    await rm(tmp, { force: true });
    throw wrapError(error, 'IO_ERROR', `cannot point ${paths.current} at generation ${n}`);
  }
}

/** /etc/caddy/rick and its target through `current`. */
export function sitesLink(paths: HostPaths): [string, string] {
  return [paths.caddySitesLink, `${RICK_STATE_DIR}/current/caddy`];
}

/** What a generation needs on the host besides the links every host has. */
export interface HostNeeds {
  /** A bundle ships Caddy sites: /etc/caddy/rick. */
  sites: boolean;
  /** A bundle ships plain systemd units: the rick-units generator. */
  units: boolean;
}

export function hostNeedsOf(generation: {
  bundles: ReadonlyMap<string, { files: ReadonlyMap<string, Buffer> }>;
}): HostNeeds {
  const bundles = [...generation.bundles.values()];
  return { sites: bundles.some(hasSites), units: bundles.some(hasPlainUnits) };
}

/**
 * The links rick keeps on the host, each to its target through `current`:
 * the quadlet unit directory, the installer, and the combined fragments
 * systemd reads at boot.
 */
export function hostLinks(
  paths: HostPaths,
  needs: HostNeeds = { sites: false, units: false },
): Array<[string, string]> {
  return [
    [paths.quadletLink, `${RICK_STATE_DIR}/current/quadlet`],
    [paths.installerLink, `${RICK_STATE_DIR}/current/${INSTALLER_FILE}`],
    // Relative, so that systemd-tmpfiles and systemd-sysusers with --root
    // (an offline image) follow them inside the image too.
    [paths.tmpfilesLink, `../..${RICK_STATE_DIR}/current/${FRAGMENT_FILES.tmpfiles}`],
    [paths.sysusersLink, `../..${RICK_STATE_DIR}/current/${FRAGMENT_FILES.sysusers}`],
    // With the first Caddy site: what the host's Caddyfile imports.
    ...(needs.sites ? [sitesLink(paths)] : []),
  ];
}

/**
 * Creates the host links (hostLinks) once, /etc/caddy/rick with the first
 * Caddy site, and writes the rick-units generator with the first plain unit.
 * The links point through `current`, so they never change again. An
 * existing path that is not ours is left alone and reported.
 */
export async function ensureHostLinks(
  paths: HostPaths,
  needs: HostNeeds = { sites: false, units: false },
): Promise<string[]> {
  const notes: string[] = [];
  const links = hostLinks(paths, needs);
  for (const [link, target] of links) {
    let existing: string | undefined;
    try {
      existing = await readlink(link);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EINVAL') {
        notes.push(`${link} exists and is not a symlink: left alone`);
        continue;
      }
      if (code !== 'ENOENT') throw wrapError(error, 'IO_ERROR', `cannot read ${link}`);
    }
    if (existing === target) continue;
    if (existing !== undefined) {
      notes.push(`${link} points at ${existing}, not ${target}: left alone`);
      continue;
    }
    try {
      await mkdir(dirname(link), { recursive: true, mode: 0o755 });
      const tmp = `${link}.tmp-${process.pid}`;
      await rm(tmp, { force: true });
      await symlink(target, tmp);
      await rename(tmp, link);
      await fsyncDir(dirname(link));
    } catch (error) {
      throw wrapError(error, 'IO_ERROR', `cannot create ${link}`);
    }
  }
  if (needs.units) {
    const state = await readGeneratorState(paths);
    if (state === 'foreign')
      notes.push(`${paths.unitGenerator} is not rick's generator: left alone`);
    else if (state !== 'current') await writeUnitGenerator(paths);
  }
  return notes;
}

/**
 * Removes what a crashed run left: half-written generations (`<n>.tmp-*`),
 * temporary links and files, and complete generations newer than every
 * generation the state knows about that are not live (written, never flipped).
 */
export async function cleanupAfterCrash(
  paths: HostPaths,
  options: { lastKnownGeneration: number; live: number | undefined },
): Promise<string[]> {
  const removed: string[] = [];
  const remove = async (path: string) => {
    await rm(path, { recursive: true, force: true });
    removed.push(path);
  };
  let names: string[] = [];
  try {
    names = await readdir(paths.generationsDir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  for (const name of names) {
    if (/\.tmp-/.test(name)) await remove(join(paths.generationsDir, name));
    else if (/^[1-9][0-9]*$/.test(name)) {
      const n = Number(name);
      if (n > options.lastKnownGeneration && n !== options.live) {
        await remove(join(paths.generationsDir, name));
      }
    }
  }
  // Temporary links and files of an interrupted flip, link creation, state
  // write or sysusers run. A stray `rick.tmp-*` link in the quadlet directory
  // would make quadlet load every unit twice.
  const strays: Array<[string, RegExp]> = [
    [dirname(paths.current), /^(current\.tmp-|\.state\.json\.tmp-|\.created\.json\.tmp-|\.apply-)/],
    ...hostLinks(paths, { sites: true, units: true }).map(([link]): [string, RegExp] => [
      dirname(link),
      new RegExp(`^${basename(link).replace(/[.]/g, '\\.')}\\.tmp-`),
    ]),
    [dirname(dirname(paths.unitGenerator)), /^\.rick-units\.tmp-/],
  ];
  for (const [dir, pattern] of strays) {
    let names: string[] = [];
    try {
      names = await readdir(dir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    for (const name of names) if (pattern.test(name)) await remove(join(dir, name));
  }
  if (removed.length) await fsyncDir(paths.generationsDir).catch(() => {});
  return removed;
}

/** Keeps the newest `keep` generations and the live one; removes the rest. */
export async function pruneGenerations(
  paths: HostPaths,
  keep: number,
  live: number | undefined,
): Promise<number[]> {
  const all = await listGenerations(paths);
  const kept = new Set(all.slice(-keep));
  if (live !== undefined) kept.add(live);
  const removed = all.filter((n) => !kept.has(n));
  for (const n of removed) await rm(generationDir(paths, n), { recursive: true, force: true });
  if (removed.length) await fsyncDir(paths.generationsDir);
  return removed;
}
