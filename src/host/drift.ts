/**
 * `rick-install verify`: drift check of the live generation. Every file is
 * checked against what the generation recorded when it was written:
 *   - each shipped source file (source.json) against the manifest's sha256;
 *   - each rendered file against generation.json's sha256, and, for files
 *     without secrets, against a fresh rendering from source and facts.json
 *     (so a consistent edit of a file and its record is caught too);
 *   - env files and any file holding a secret are mode 0600;
 *   - no unit or site in the quadlet, systemd or caddy directories that the
 *     generation did not write, and each bundle's Caddy import file as rick
 *     writes it;
 *   - the combined sysusers.d and tmpfiles.d fragments hold exactly the
 *     bundles' fragments;
 *   - `current`, /etc/containers/systemd/rick, /usr/local/bin/rick-install,
 *     /etc/tmpfiles.d/rick.conf, /etc/sysusers.d/rick.conf and (with sites)
 *     /etc/caddy/rick point where they should; (with plain units) the
 *     rick-units generator is rick's, mode 0755.
 * Exits DRIFT naming each file.
 */
import { createHash } from 'node:crypto';
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { caddyBundleImport } from '../bundle/caddy.js';
import { hasSecretTokens, renderPublic } from '../host/generation-files.js';
import {
  generationDir,
  hasPlainUnits,
  hasSites,
  hostLinks,
  hostNeedsOf,
  INSTALLER_FILE,
  readGeneration,
  readLiveGenerationNumber,
  renderedLocation,
  renderedMode,
  renderFragments,
  SOURCE_FILE,
} from '../host/generations.js';
import { hostPaths } from '../host/paths.js';
import { readGeneratorState } from './unit-generator.js';

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
    for (const kind of ['quadlet', 'systemd', 'caddy'] as const) {
      const kindDir = join(dir, kind, bundle.name);
      const expected = new Set(
        Object.keys(recorded)
          .filter((p) => p.startsWith(`${kind}/`))
          .map((p) => p.slice(kind.length + 1)),
      );
      for (const name of await readdir(kindDir).catch(() => [] as string[])) {
        if (!expected.has(name)) drift.push(`${join(kindDir, name)}: not written by rick`);
      }
    }
  }
  for (const name of await readdir(join(dir, 'quadlet')).catch(() => [] as string[])) {
    if (!generation.bundles.has(name))
      drift.push(`${join(dir, 'quadlet', name)}: not written by rick`);
  }
  for (const name of await readdir(join(dir, 'systemd')).catch(() => [] as string[])) {
    const bundle = generation.bundles.get(name);
    if (!bundle || !hasPlainUnits(bundle))
      drift.push(`${join(dir, 'systemd', name)}: not written by rick`);
  }
  // caddy/ holds, per bundle with sites, its directory and the file importing it.
  for (const name of await readdir(join(dir, 'caddy')).catch(() => [] as string[])) {
    const bundle = generation.bundles.get(name.replace(/\.caddy$/, ''));
    if (!bundle || !hasSites(bundle))
      drift.push(`${join(dir, 'caddy', name)}: not written by rick`);
  }
  for (const bundle of generation.bundles.values()) {
    if (!hasSites(bundle)) continue;
    const stub = join(dir, 'caddy', `${bundle.name}.caddy`);
    checked++;
    const data = await readMaybe(stub);
    if (data?.toString('utf8') !== caddyBundleImport(bundle.name)) {
      drift.push(`${stub}: ${data ? 'differs from what rick writes' : 'missing'}`);
    }
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
  const needs = hostNeedsOf(generation);
  const links = hostLinks(paths, needs);
  if (needs.units) {
    checked++;
    const state = await readGeneratorState(paths);
    const mode = (await lstat(paths.unitGenerator).catch(() => undefined))?.mode;
    if (state !== 'current') {
      drift.push(
        `${paths.unitGenerator}: ${state === 'absent' ? 'missing' : 'differs from the generator rick writes'}`,
      );
    } else if (mode === undefined || (mode & 0o7777) !== 0o755) {
      drift.push(
        `${paths.unitGenerator}: mode ${((mode ?? 0) & 0o7777).toString(8).padStart(4, '0')}, expected 0755`,
      );
    }
  }
  for (const [link, target] of links) {
    checked++;
    const actual = await readlink(link).catch(() => undefined);
    if (actual !== target)
      drift.push(
        `${link}: ${actual === undefined ? 'missing or not a symlink' : `points at ${actual}`}, expected ${target}`,
      );
  }
  return { generation: live, checked, drift };
}
