/**
 * Drift: what of a generation differs from what it recorded when it was
 * written. `rick-install verify` reports it for the live generation, and an
 * install refuses to carry a drifted bundle into a new generation (a hand
 * edit would otherwise be copied and hashed again, and `verify` would never
 * see it). Checked, per bundle:
 *   - manifest.json, facts.json, source.json and secrets.json against the
 *     sha256 generation.json recorded, and against one another;
 *   - each shipped source file against the manifest's sha256;
 *   - each rendered file against generation.json's sha256, and against a
 *     fresh rendering from source, facts and recorded secrets (so a
 *     consistent edit of a file and its record is caught too);
 *   - env files and any file holding a secret are mode 0600;
 *   - no unit or site in the quadlet, systemd or caddy directories that the
 *     generation did not write, and each bundle's Caddy import file as rick
 *     writes it;
 *   - links: nothing in the generation is a symbolic link;
 * and for the generation as a whole: the combined sysusers.d and tmpfiles.d
 * fragments hold exactly the bundles' fragments, the installer matches its
 * recorded sha256; and for the host: `current`,
 * /etc/containers/systemd/rick, /usr/local/bin/rick-install,
 * /etc/tmpfiles.d/rick.conf, /etc/sysusers.d/rick.conf and (with sites)
 * /etc/caddy/rick point where they should, and (with plain units) the
 * rick-units generator is rick's, mode 0755.
 */
import { createHash } from 'node:crypto';
import { lstat, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { caddyBundleImport } from '../bundle/caddy.js';
import { describe, RickError } from '../errors.js';
import { renderRecordedBundle } from './generation-files.js';
import {
  GenerationReader,
  hasPlainUnits,
  hasSites,
  hostLinks,
  hostNeedsOf,
  INSTALLER_FILE,
  readGenerationRecord,
  readLiveGenerationNumber,
  readStoredBundle,
  renderedLocation,
  renderedMode,
  renderFragments,
  SOURCE_FILE,
  type StoredBundle,
} from './generations.js';
import { type HostPaths, hostPaths } from './paths.js';
import { readGeneratorState } from './unit-generator.js';

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

export interface DriftEntry {
  /** The bundle the file belongs to; undefined for the installer and host links. */
  bundle?: string;
  /**
   * `installer`, `fragments` (the combined sysusers.d/tmpfiles.d files) or
   * `link` (host links and the unit generator) for what belongs to no bundle.
   */
  part: 'bundle' | 'installer' | 'fragments' | 'link';
  file: string;
  problem: string;
}

export interface DriftReport {
  generation?: number;
  checked: number;
  drift: string[];
  entries: DriftEntry[];
}

/** Every difference between generation n and what it recorded. */
export async function findDrift(
  paths: HostPaths,
  n: number,
): Promise<{ checked: number; entries: DriftEntry[] }> {
  const reader = await GenerationReader.open(paths, n);
  const record = await readGenerationRecord(paths, n);
  const entries: DriftEntry[] = [];
  const bundles = new Map<string, StoredBundle>();
  let checked = 0;
  for (const [name, entry] of Object.entries(record.bundles)) {
    const found = (file: string, problem: string) =>
      entries.push({ bundle: name, part: 'bundle', file, problem });
    const { bundle, problems, modes } = await readStoredBundle(reader, n, name, entry);
    checked += Object.keys(entry.meta).length;
    for (const p of problems) found(p.file, p.problem);
    if (!bundle) continue;
    bundles.set(name, bundle);
    let expected: Map<string, Buffer> | undefined;
    try {
      expected = renderRecordedBundle(bundle, n);
    } catch (error) {
      found(
        join(reader.dir, 'bundles', name, SOURCE_FILE),
        `cannot be rendered: ${describe(error)}`,
      );
    }
    for (const f of bundle.manifest.files) {
      if (f.kind === 'installer') continue;
      checked++;
      const source = bundle.sources.get(f.path);
      if (!source || sha256(source) !== f.sha256) {
        found(
          join(reader.dir, 'bundles', name, SOURCE_FILE),
          `${f.path} differs from the bundle's manifest`,
        );
      }
      const location = join(reader.dir, renderedLocation(name, f.path));
      const data = bundle.files.get(f.path);
      if (!data) {
        if (!problems.some((p) => p.file === location)) found(location, 'missing');
        continue;
      }
      if (sha256(data) !== entry.files[f.path]) {
        found(location, `content changed since generation ${n} was written`);
        continue;
      }
      const want = expected?.get(f.path);
      if (want && !want.equals(data)) {
        found(location, 'does not match its source and recorded facts');
      }
      const mode = modes.get(f.path);
      const wantMode = renderedMode(f.path, source, f.mode);
      if (mode !== undefined && mode !== wantMode) {
        found(
          location,
          `mode ${mode.toString(8).padStart(4, '0')}, expected ${wantMode.toString(8).padStart(4, '0')}`,
        );
      }
    }
    for (const kind of ['quadlet', 'systemd', 'caddy'] as const) {
      const written = new Set(
        Object.keys(entry.files)
          .filter((p) => p.startsWith(`${kind}/`))
          .map((p) => p.slice(kind.length + 1)),
      );
      for (const file of await reader.list(`${kind}/${name}`)) {
        if (!written.has(file)) found(join(reader.dir, kind, name, file), 'not written by rick');
      }
    }
    if (hasSites(bundle)) {
      // Caddy's import takes one wildcard: caddy/<bundle>.caddy imports the bundle's sites.
      checked++;
      const stub = join(reader.dir, 'caddy', `${name}.caddy`);
      const read = await readOrProblem(reader, `caddy/${name}.caddy`);
      if (typeof read === 'string') found(stub, read);
      else if (read.toString('utf8') !== caddyBundleImport(name))
        found(stub, 'differs from what rick writes');
    }
  }
  // A bundle that could not be read was reported above; its entries are not strangers too.
  const ownedBy =
    (has: (b: StoredBundle) => boolean) =>
    (name: string): boolean => {
      const b = bundles.get(name);
      return b ? has(b) : name in record.bundles;
    };
  const strangers: Array<[string, (entry: string) => boolean]> = [
    ['quadlet', (e) => e in record.bundles],
    ['systemd', ownedBy(hasPlainUnits)],
    ['caddy', (e) => ownedBy(hasSites)(e.replace(/\.caddy$/, ''))],
  ];
  for (const [kind, ours] of strangers) {
    for (const e of await reader.list(kind)) {
      if (!ours(e)) {
        entries.push({
          part: 'bundle',
          file: join(reader.dir, kind, e),
          problem: 'not written by rick',
        });
      }
    }
  }
  // Generations written before the fragments were combined have no record of them.
  if (record.fragments && bundles.size === Object.keys(record.bundles).length) {
    for (const [rel, text] of renderFragments(bundles.values())) {
      checked++;
      const file = join(reader.dir, rel);
      const read = await readOrProblem(reader, rel);
      if (typeof read === 'string') entries.push({ part: 'fragments', file, problem: read });
      else if (read.toString('utf8') !== text)
        entries.push({
          part: 'fragments',
          file,
          problem: `differs from the fragments of generation ${n}'s bundles`,
        });
    }
  }
  if (record.installer) {
    checked++;
    const file = join(reader.dir, INSTALLER_FILE);
    let problem: string | undefined;
    try {
      const read = await reader.read(INSTALLER_FILE);
      if (!read) problem = 'missing';
      else if (sha256(read.data) !== record.installer)
        problem = `differs from generation ${n}'s record`;
    } catch (error) {
      problem = describe(error).replace(`${file}: `, '');
    }
    if (problem) entries.push({ part: 'installer', file, problem });
  }
  const needs = hostNeedsOf({ bundles });
  if (needs.units) {
    checked++;
    const state = await readGeneratorState(paths);
    const mode = (await lstat(paths.unitGenerator).catch(() => undefined))?.mode;
    let problem: string | undefined;
    if (state !== 'current')
      problem = state === 'absent' ? 'missing' : 'differs from the generator rick writes';
    else if (mode === undefined || (mode & 0o7777) !== 0o755)
      problem = `mode ${((mode ?? 0) & 0o7777).toString(8).padStart(4, '0')}, expected 0755`;
    if (problem) entries.push({ part: 'link', file: paths.unitGenerator, problem });
  }
  for (const [link, target] of hostLinks(paths, needs)) {
    checked++;
    const actual = await readlink(link).catch(() => undefined);
    if (actual !== target) {
      entries.push({
        part: 'link',
        file: link,
        problem: `${actual === undefined ? 'missing or not a symlink' : `points at ${actual}`}, expected ${target}`,
      });
    }
  }
  return { checked, entries };
}

export async function checkDrift(root: string | undefined): Promise<DriftReport> {
  const paths = hostPaths(root ?? '/');
  const live = await readLiveGenerationNumber(paths);
  if (live === undefined) return { checked: 0, drift: [], entries: [] };
  const { checked, entries } = await findDrift(paths, live);
  return {
    generation: live,
    checked,
    entries,
    drift: entries.map((e) => `${e.file}: ${e.problem}`),
  };
}

/**
 * Refuses (DRIFT) to carry drifted files into a new generation: every
 * difference in the live generation except those of `replacing`, the bundle
 * being installed, whose files are rendered anew. The installer counts only
 * when it is carried (`carriesInstaller`); host links are judged apart.
 * Returns the differences of `replacing`, which the new generation discards.
 */
export async function refuseCarriedDrift(
  paths: HostPaths,
  live: number,
  replacing: string,
  carriesInstaller: boolean,
): Promise<DriftEntry[]> {
  const { entries } = await findDrift(paths, live);
  const carried = entries.filter(
    (e) =>
      (e.part === 'bundle' && e.bundle !== replacing) ||
      (e.part === 'installer' && carriesInstaller),
  );
  if (carried.length) {
    const bundles = [...new Set(carried.map((e) => e.bundle ?? 'installer'))].join(', ');
    throw new RickError(
      'DRIFT',
      `the live generation ${live} was changed by hand, and an install would carry it on: ${carried.map((e) => `${e.file} (${e.problem})`).join('; ')}`,
      {
        hint: `rick never carries or edits a hand-changed file: install ${bundles} again (the same version re-renders its files) or roll back; \`rick-install verify\` lists every difference`,
      },
    );
  }
  return entries.filter((e) => e.part === 'bundle' && e.bundle === replacing);
}

/**
 * What of generation n differs from its record (every part but the host
 * links, which belong to whichever generation is live): checked before an
 * existing generation is made live again, by `rollback` and by recovery,
 * so that a generation whose files were altered or removed, or one a cut
 * deletion left incomplete, never goes live.
 */
export async function generationDamage(paths: HostPaths, n: number): Promise<DriftEntry[]> {
  let entries: DriftEntry[];
  try {
    ({ entries } = await findDrift(paths, n));
  } catch (error) {
    // No readable record (a deletion cut short removes it as soon as any
    // file): the generation is damaged as a whole, and the message names why.
    if (!(error instanceof RickError) || error.code !== 'STATE_INCONSISTENT') throw error;
    return [
      { part: 'bundle', file: join(paths.generationsDir, String(n)), problem: error.message },
    ];
  }
  return entries.filter((e) => e.part !== 'link');
}

/** The refusal to make a damaged generation live, naming every file. */
export function damagedGenerationError(
  n: number,
  damage: readonly DriftEntry[],
  hint: string,
): RickError {
  return new RickError(
    'DRIFT',
    `generation ${n} differs from what it recorded, so it is not made live: ${damage.map((e) => `${e.file} (${e.problem})`).join('; ')}`,
    { hint },
  );
}

/** A generation file's content, or what is wrong with it. */
async function readOrProblem(reader: GenerationReader, rel: string): Promise<Buffer | string> {
  try {
    return (await reader.read(rel))?.data ?? 'missing';
  } catch (error) {
    return describe(error).replace(`${join(reader.dir, rel)}: `, '');
  }
}
