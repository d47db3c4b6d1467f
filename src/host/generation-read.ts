/**
 * Reading generations back (src/host/generations.ts describes the store):
 * which one is live, which exist, one bundle or a whole generation checked
 * against what generation.json recorded, and a bundle carried into a new
 * generation by rendering it again. Everything read is untrusted local
 * state: nothing is followed through a symbolic link, names and paths must
 * pass the manifest's rules, and the files must be the ones recorded.
 */
import { constants } from 'node:fs';
import { type FileHandle, lstat, open, readdir, readlink, realpath } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { type Manifest, manifestSchema } from '../bundle/manifest.js';
import { type RecordedFacts, renderMasked, renderRecordedBundle } from './generation-files.js';
import type { HostPaths } from './paths.js';
import '../bundle/zod.js';
import { describe, RickError, wrapError } from '../errors.js';
import {
  type BundleMeta,
  bundleMetaSchema,
  type GenerationRecord,
  generationDir,
  generationRecordSchema,
  INSTALLER_FILE,
  inconsistent,
  parseSources,
  recordedFactsSchema,
  renderedLocation,
  type StoredBundle,
  type StoredGeneration,
  secretValuesSchema,
  sha256,
} from './generation-layout.js';

// ---------------------------------------------------------------------------
// Reading

/**
 * The generation `current` points at, or undefined when there is no
 * `current`. `current` must be rick's own link, `generations/<n>`; anything
 * else is refused rather than followed.
 */
export async function readLiveGenerationNumber(paths: HostPaths): Promise<number | undefined> {
  let target: string;
  try {
    target = await readlink(paths.current);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'EINVAL') {
      throw inconsistent(
        `${paths.current} is not a symbolic link`,
        `rick keeps it as a link to generations/<n>: move it away, then name the generation that should be live with rick-install rollback --to <n>`,
      );
    }
    throw wrapError(error, 'IO_ERROR', `cannot read ${paths.current}`);
  }
  const match = /^generations\/([1-9][0-9]*)$/.exec(target);
  if (!match) {
    throw inconsistent(
      `${paths.current} points at ${target}, not at a generation (generations/<n>)`,
      `rick never follows it elsewhere: remove it (rm ${paths.current}), then name the generation that should be live with rick-install rollback --to <n>`,
    );
  }
  return Number(match[1]);
}

/** generations/ itself: absent, or a real directory (never followed through a link). */
export async function checkGenerationsDir(paths: HostPaths): Promise<boolean> {
  let st: Awaited<ReturnType<typeof lstat>>;
  try {
    st = await lstat(paths.generationsDir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw wrapError(error, 'IO_ERROR', `cannot read ${paths.generationsDir}`);
  }
  if (!st.isDirectory()) {
    throw inconsistent(
      `${paths.generationsDir} is ${st.isSymbolicLink() ? 'a symbolic link' : 'not a directory'}`,
      `rick keeps its generations in a real directory and never follows a link there: move it away and put the directory back`,
    );
  }
  return true;
}

/** Complete generations (directories named by a number), ascending. */
export async function listGenerations(paths: HostPaths): Promise<number[]> {
  if (!(await checkGenerationsDir(paths))) return [];
  let names: string[];
  try {
    names = await readdir(paths.generationsDir);
  } catch (error) {
    throw wrapError(error, 'IO_ERROR', `cannot list ${paths.generationsDir}`);
  }
  const numbers = names.filter((n) => /^[1-9][0-9]*$/.test(n));
  await Promise.all(numbers.map((n) => checkGenerationDir(join(paths.generationsDir, n))));
  return numbers.map(Number).sort((a, b) => a - b);
}

export async function checkGenerationDir(dir: string): Promise<void> {
  let st: Awaited<ReturnType<typeof lstat>>;
  try {
    st = await lstat(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw inconsistent(
        `generation ${basename(dir)} is not on disk (${dir})`,
        'name a generation that is on disk: rick-install status lists them',
      );
    }
    throw wrapError(error, 'IO_ERROR', `cannot read ${dir}`);
  }
  if (!st.isDirectory()) {
    throw inconsistent(
      `${dir} is ${st.isSymbolicLink() ? 'a symbolic link' : 'not a directory'}, not a generation`,
      'rick writes generations as real directories and never follows a link there: move it away',
    );
  }
}

/** A problem with one file of a generation, named by its full path. */
export interface FileProblem {
  file: string;
  problem: string;
}

class LocalFileError extends Error {
  constructor(readonly problem: FileProblem) {
    super(`${problem.file}: ${problem.problem}`);
  }
}

/**
 * Reads files inside one generation directory and nowhere else: the file is
 * opened with O_NOFOLLOW and must be a regular file, and every directory on
 * the way must resolve to the generation's own (no link in the middle).
 */
export class GenerationReader {
  private readonly checkedDirs = new Map<string, Promise<void>>();

  private constructor(
    readonly dir: string,
    private readonly realDir: string,
  ) {}

  static async open(paths: HostPaths, n: number): Promise<GenerationReader> {
    await checkGenerationsDir(paths);
    const dir = generationDir(paths, n);
    await checkGenerationDir(dir);
    return new GenerationReader(dir, await realpath(dir));
  }

  private checkDir(rel: string): Promise<void> {
    let checked = this.checkedDirs.get(rel);
    if (!checked) {
      checked = (async () => {
        const actual = await realpath(join(this.dir, rel)).catch(() => undefined);
        if (actual !== undefined && actual !== join(this.realDir, rel)) {
          throw new LocalFileError({
            file: join(this.dir, rel),
            problem: 'is a symbolic link (or lies behind one)',
          });
        }
      })();
      this.checkedDirs.set(rel, checked);
    }
    return checked;
  }

  /** The file's bytes and mode, or undefined when it does not exist. Throws LocalFileError. */
  async read(rel: string): Promise<{ data: Buffer; mode: number } | undefined> {
    const parent = dirname(rel);
    if (parent !== '.') await this.checkDir(parent);
    const file = join(this.dir, rel);
    let handle: FileHandle;
    try {
      handle = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
      if (code === 'ELOOP') throw new LocalFileError({ file, problem: 'is a symbolic link' });
      throw new LocalFileError({ file, problem: `cannot be read: ${describe(error)}` });
    }
    try {
      const st = await handle.stat();
      if (!st.isFile()) throw new LocalFileError({ file, problem: 'is not a regular file' });
      return { data: await handle.readFile(), mode: st.mode & 0o7777 };
    } finally {
      await handle.close();
    }
  }

  /** Names in a directory of the generation ([] when it does not exist). */
  async list(rel: string): Promise<string[]> {
    await this.checkDir(rel);
    return readdir(join(this.dir, rel)).catch(() => [] as string[]);
  }
}

export async function readGenerationRecord(paths: HostPaths, n: number): Promise<GenerationRecord> {
  const reader = await GenerationReader.open(paths, n);
  return readRecord(reader, n);
}

async function readRecord(reader: GenerationReader, n: number): Promise<GenerationRecord> {
  const file = join(reader.dir, 'generation.json');
  const fail = (why: string) =>
    inconsistent(
      `generation ${n} is unreadable: ${file} ${why}`,
      'rick writes it last and never edits it: roll back to, or install over, another generation',
    );
  let read: Awaited<ReturnType<GenerationReader['read']>>;
  try {
    read = await reader.read('generation.json');
  } catch (error) {
    if (error instanceof LocalFileError) throw fail(error.problem.problem);
    throw error;
  }
  if (!read) throw fail('is missing');
  let json: unknown;
  try {
    json = JSON.parse(read.data.toString('utf8'));
  } catch (error) {
    throw fail(`is not JSON (${describe(error)})`);
  }
  const parsed = generationRecordSchema.safeParse(json);
  if (!parsed.success) {
    throw fail(
      `is not a generation record: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`,
    );
  }
  if (parsed.data.generation !== n) throw fail(`names generation ${parsed.data.generation}`);
  return parsed.data;
}

const sameSet = (a: Iterable<string>, b: Iterable<string>) => {
  const x = [...a].sort();
  const y = [...b].sort();
  return x.length === y.length && x.every((v, i) => v === y[i]);
};

export interface BundleReadResult {
  /** Undefined when a file it needs is damaged: see `problems`. */
  bundle?: StoredBundle;
  problems: FileProblem[];
  /** Modes of the rendered files read, by bundle path. */
  modes: Map<string, number>;
}

/**
 * Reads one bundle of generation n back and checks it against the record:
 * manifest, facts, sources and secrets must have the recorded sha256 and
 * agree with one another; rendered files are read as they are (whether they
 * still match is drift, judged by the caller).
 */
export async function readStoredBundle(
  reader: GenerationReader,
  n: number,
  name: string,
  entry: GenerationRecord['bundles'][string],
): Promise<BundleReadResult> {
  const problems: FileProblem[] = [];
  const modes = new Map<string, number>();
  const base = `bundles/${name}`;
  const meta: Partial<Record<keyof BundleMeta, Buffer>> = {};
  for (const key of Object.keys(bundleMetaSchema.shape) as Array<keyof BundleMeta>) {
    const want = entry.meta[key];
    const file = join(reader.dir, base, key);
    let read: Awaited<ReturnType<GenerationReader['read']>>;
    try {
      read = await reader.read(`${base}/${key}`);
    } catch (error) {
      if (!(error instanceof LocalFileError)) throw error;
      problems.push(error.problem);
      continue;
    }
    if (want === undefined) {
      if (read) problems.push({ file, problem: 'not written by rick' });
      continue;
    }
    if (!read) problems.push({ file, problem: 'missing' });
    else if (sha256(read.data) !== want)
      problems.push({ file, problem: `content changed since generation ${n} was written` });
    else meta[key] = read.data;
  }
  if (problems.length) return { problems, modes };

  const at = (key: keyof BundleMeta) => join(reader.dir, base, key);
  let manifest: Manifest;
  let facts: RecordedFacts;
  let sources: Map<string, Buffer>;
  let secrets = new Map<string, string>();
  try {
    manifest = manifestSchema.parse(JSON.parse(meta['manifest.json']!.toString('utf8')));
  } catch (error) {
    return {
      problems: [{ file: at('manifest.json'), problem: `invalid: ${describe(error)}` }],
      modes,
    };
  }
  try {
    facts = recordedFactsSchema.parse(JSON.parse(meta['facts.json']!.toString('utf8')));
  } catch (error) {
    return {
      problems: [{ file: at('facts.json'), problem: `invalid: ${describe(error)}` }],
      modes,
    };
  }
  try {
    sources = parseSources(meta['source.json']!.toString('utf8'));
  } catch (error) {
    return {
      problems: [{ file: at('source.json'), problem: `invalid: ${describe(error)}` }],
      modes,
    };
  }
  if (meta['secrets.json']) {
    try {
      const values = secretValuesSchema.parse(JSON.parse(meta['secrets.json'].toString('utf8')));
      secrets = new Map(Object.entries(values));
    } catch {
      // The error would quote the values.
      return { problems: [{ file: at('secrets.json'), problem: 'invalid' }], modes };
    }
  }

  const shipped = manifest.files.filter((f) => f.kind !== 'installer').map((f) => f.path);
  const secretNames = manifest.facts.filter((f) => f.kind === 'secret').map((f) => f.name);
  if (manifest.name !== name || manifest.version !== entry.version) {
    problems.push({
      file: at('manifest.json'),
      problem: `is ${manifest.name} ${manifest.version}, but generation ${n} records ${name} ${entry.version}`,
    });
  }
  if (!sameSet(sources.keys(), shipped)) {
    problems.push({
      file: at('source.json'),
      problem: "does not hold exactly the manifest's files",
    });
  }
  if (!sameSet(Object.keys(entry.files), shipped)) {
    problems.push({
      file: join(reader.dir, 'generation.json'),
      problem: `does not record exactly the files of bundle ${name}'s manifest`,
    });
  }
  const declared = new Set(manifest.facts.map((f) => `${f.kind}:${f.name}`));
  const recordedNames = [
    ...Object.keys(facts.gid).map((g) => `gid:${g}`),
    ...Object.keys(facts.uid).map((u) => `uid:${u}`),
  ];
  if (!sameSet(facts.secrets, secretNames) || recordedNames.some((k) => !declared.has(k))) {
    problems.push({ file: at('facts.json'), problem: "does not match the manifest's facts" });
  }
  if (!sameSet(secrets.keys(), facts.secrets)) {
    problems.push({
      file: at('secrets.json'),
      problem: `${meta['secrets.json'] ? 'does not hold' : 'is missing, holding'} exactly the secrets facts.json names`,
    });
  }
  if (problems.length) return { problems, modes };

  const files = new Map<string, Buffer>();
  const masked = new Map<string, string>();
  for (const path of shipped) {
    const source = sources.get(path)!;
    masked.set(path, renderMasked(source.toString('utf8'), { bundle: name, generation: n, facts }));
    try {
      const read = await reader.read(renderedLocation(name, path));
      if (read) {
        files.set(path, read.data);
        modes.set(path, read.mode);
      }
    } catch (error) {
      if (!(error instanceof LocalFileError)) throw error;
      problems.push(error.problem);
    }
  }
  return {
    bundle: {
      name,
      version: entry.version,
      services: manifest.services,
      files,
      masked,
      manifest,
      manifestBytes: meta['manifest.json']!,
      facts,
      sources,
      secrets,
    },
    problems,
    modes,
  };
}

/**
 * Reads generation n back: manifests, recorded facts, sources, secrets and
 * rendered files; its installer only when asked (the largest file by far).
 * A damaged generation is refused (STATE_INCONSISTENT) naming each file.
 */
export async function readGeneration(
  paths: HostPaths,
  n: number,
  options: {
    installer?: boolean;
    /**
     * A bundle whose damage is no obstacle (the one an install replaces):
     * left out when its own files cannot be read back.
     */
    replacing?: string;
  } = {},
): Promise<StoredGeneration> {
  const reader = await GenerationReader.open(paths, n);
  const record = await readRecord(reader, n);
  const bundles = new Map<string, StoredBundle>();
  const problems: FileProblem[] = [];
  for (const [name, entry] of Object.entries(record.bundles)) {
    const result = await readStoredBundle(reader, n, name, entry);
    if (name === options.replacing && result.problems.length) continue;
    problems.push(...result.problems);
    if (result.bundle) bundles.set(name, result.bundle);
  }
  let installer: Buffer | undefined;
  if (options.installer && record.installer) {
    try {
      installer = (await reader.read(INSTALLER_FILE))?.data;
    } catch (error) {
      if (!(error instanceof LocalFileError)) throw error;
      problems.push(error.problem);
    }
  }
  if (problems.length) {
    throw inconsistent(
      `generation ${n} is damaged: ${problems.map((p) => `${p.file} ${p.problem}`).join('; ')}`,
      'rick never edits a generation in place: `rick-install verify` names what changed; roll back to, or install over, another generation',
    );
  }
  return { generation: n, bundles, record, installer };
}

// ---------------------------------------------------------------------------
// Carrying a bundle into a new generation

/**
 * The same bundle rendered for generation `to`: from its source, recorded
 * facts and recorded secrets, by the install's own substitution.
 */
export function carryBundle(bundle: StoredBundle, to: number): StoredBundle {
  let rendered: Map<string, Buffer>;
  try {
    rendered = renderRecordedBundle(bundle, to);
  } catch (error) {
    throw new RickError(
      'STATE_INCONSISTENT',
      `bundle ${bundle.name} cannot be rendered again from what its generation recorded: ${describe(error)}`,
      { hint: `install ${bundle.name} again, or roll back`, cause: error },
    );
  }
  const masked = new Map<string, string>();
  for (const [path, source] of bundle.sources) {
    masked.set(
      path,
      renderMasked(source.toString('utf8'), {
        bundle: bundle.name,
        generation: to,
        facts: bundle.facts,
      }),
    );
  }
  return { ...bundle, files: rendered, masked };
}
