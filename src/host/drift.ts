/**
 * `rick-install verify`: drift check of the live generation. Every file is
 * checked against what the generation recorded when it was written:
 *   - each shipped source file (source.json) against the manifest's sha256;
 *   - each rendered file against generation.json's sha256, and, for files
 *     without secrets, against a fresh rendering from source and facts.json
 *     (so a consistent edit of a file and its record is caught too);
 *   - env files and any file holding a secret are mode 0600;
 *   - no unit in the quadlet directory that the generation did not write;
 *   - the combined sysusers.d and tmpfiles.d fragments hold exactly the
 *     bundles' fragments;
 *   - `current`, /etc/containers/systemd/rick, /usr/local/bin/rick-install,
 *     /etc/tmpfiles.d/rick.conf and /etc/sysusers.d/rick.conf point where
 *     they should.
 * Exits DRIFT naming each file.
 */
import { createHash } from 'node:crypto';
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { hasSecretTokens, renderPublic } from '../host/generation-files.js';
import {
  generationDir,
  hostLinks,
  INSTALLER_FILE,
  readGeneration,
  readLiveGenerationNumber,
  renderedLocation,
  renderedMode,
  renderFragments,
  SOURCE_FILE,
} from '../host/generations.js';
import { hostPaths } from '../host/paths.js';

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

export interface DriftReport {
  generation?: number;
  checked: number;
  drift: string[];
}

async function readMaybe(path: string): Promise<Buffer | undefined> {
  try {
    return await readFile(path);
  } catch {
    return undefined;
  }
}

export async function checkDrift(root: string | undefined): Promise<DriftReport> {
  const paths = hostPaths(root ?? '/');
  const live = await readLiveGenerationNumber(paths);
  if (live === undefined) return { checked: 0, drift: [] };
  const dir = generationDir(paths, live);
  const generation = await readGeneration(paths, live);
  const drift: string[] = [];
  let checked = 0;
  for (const bundle of generation.bundles.values()) {
    const recorded = generation.record.bundles[bundle.name]?.files ?? {};
    for (const f of bundle.manifest.files) {
      if (f.kind === 'installer') continue;
      const source = bundle.sources.get(f.path);
      checked++;
      if (!source || sha256(source) !== f.sha256) {
        drift.push(
          `${join(dir, 'bundles', bundle.name, SOURCE_FILE)}: ${f.path} differs from the bundle's manifest`,
        );
      }
    }
    for (const [path, hash] of Object.entries(recorded)) {
      const location = join(dir, renderedLocation(bundle.name, path));
      checked++;
      const data = await readMaybe(location);
      if (!data) {
        drift.push(`${location}: missing`);
        continue;
      }
      if (sha256(data) !== hash) {
        drift.push(`${location}: content changed since generation ${live} was written`);
        continue;
      }
      const source = bundle.sources.get(path);
      const text = source?.toString('utf8');
      if (text !== undefined && !hasSecretTokens(text)) {
        const expected = renderPublic(text, {
          bundle: bundle.name,
          generation: live,
          facts: bundle.facts,
        });
        if (expected !== undefined && expected !== data.toString('utf8')) {
          drift.push(`${location}: does not match its source and recorded facts`);
        }
      }
      const mode = (await lstat(location)).mode & 0o7777;
      const manifestMode = bundle.manifest.files.find((x) => x.path === path)?.mode ?? 0o644;
      const want = renderedMode(path, source, manifestMode);
      if (mode !== want) {
        drift.push(
          `${location}: mode ${mode.toString(8).padStart(4, '0')}, expected ${want.toString(8).padStart(4, '0')}`,
        );
      }
    }
    const unitDir = join(dir, 'quadlet', bundle.name);
    const expectedUnits = new Set(
      Object.keys(recorded)
        .filter((p) => p.startsWith('quadlet/'))
        .map((p) => p.slice('quadlet/'.length)),
    );
    for (const name of await readdir(unitDir).catch(() => [] as string[])) {
      if (!expectedUnits.has(name)) drift.push(`${join(unitDir, name)}: not written by rick`);
    }
  }
  for (const name of await readdir(join(dir, 'quadlet')).catch(() => [] as string[])) {
    if (!generation.bundles.has(name))
      drift.push(`${join(dir, 'quadlet', name)}: not written by rick`);
  }
  if (generation.record.installer) {
    checked++;
    const data = await readMaybe(join(dir, INSTALLER_FILE));
    if (!data || sha256(data) !== generation.record.installer) {
      drift.push(`${join(dir, INSTALLER_FILE)}: differs from generation ${live}'s record`);
    }
  }
  // Generations written before the fragments were combined have no record of them.
  if (generation.record.fragments) {
    for (const [rel, text] of renderFragments(generation.bundles.values())) {
      checked++;
      const location = join(dir, rel);
      const data = await readMaybe(location);
      if (!data) drift.push(`${location}: missing`);
      else if (data.toString('utf8') !== text) {
        drift.push(`${location}: differs from the fragments of generation ${live}'s bundles`);
      }
    }
  }
  for (const [link, target] of hostLinks(paths)) {
    checked++;
    const actual = await readlink(link).catch(() => undefined);
    if (actual !== target)
      drift.push(
        `${link}: ${actual === undefined ? 'missing or not a symlink' : `points at ${actual}`}, expected ${target}`,
      );
  }
  return { generation: live, checked, drift };
}
