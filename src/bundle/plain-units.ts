/**
 * What rick itself requires of the plain systemd units and Caddy sites a
 * bundle carries, beyond what systemd-analyze and Caddy judge: both are
 * UTF-8 text, and a unit's [Install] section says only what the rick-units
 * generator carries out (WantedBy= and RequiredBy=, naming units), since a
 * generated unit cannot be enabled, aliased or instantiated by systemctl.
 * Pure; the archive reader applies it, so the builder and every host do.
 */
import { RickError } from '../errors.js';
import { analyzeBundleUnits, type BundleUnit } from './bundle-units.js';
import type { Manifest } from './manifest.js';
import { servicesClash } from './quadlet-units.js';

const installKeys = new Set(['WantedBy', 'RequiredBy']);
const unitName = /^[A-Za-z0-9@_.:-]+\.[a-z]+$/;

/** The problems of one plain unit's text, as `path: problem` lines. */
export function plainUnitProblems(path: string, text: string): string[] {
  const problems: string[] = [];
  let section = '';
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) return;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      section = header[1] ?? '';
      return;
    }
    if (section !== 'Install') return;
    const eq = line.indexOf('=');
    const key = (eq < 0 ? line : line.slice(0, eq)).trim();
    if (!installKeys.has(key)) {
      problems.push(
        `${path}:${i + 1}: [Install] ${key}= is not supported (only WantedBy= and RequiredBy=: rick's generator makes those links, nothing else)`,
      );
      return;
    }
    for (const target of line
      .slice(eq + 1)
      .split(/\s+/)
      .filter((t) => t !== '')) {
      if (!unitName.test(target) || target.startsWith('.')) {
        problems.push(`${path}:${i + 1}: ${key}=${target} is not a unit name`);
      }
    }
  });
  return problems;
}

function decode(data: Buffer): string | undefined {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(data);
  } catch {
    return undefined;
  }
}

/**
 * A bundle's plain units as units of the namespace (intake/unit-namespace.ts):
 * each is the systemd unit of its own name.
 */
export function plainBundleUnits(manifest: Pick<Manifest, 'files'>): BundleUnit[] {
  return manifest.files
    .filter((f) => f.kind === 'systemd')
    .map((f) => {
      const file = f.path.slice('systemd/'.length);
      return { file, kind: 'plain', service: file, dropins: [], path: f.path };
    });
}

/** Refuses a bundle whose plain units or Caddy sites rick could not carry out. */
export function checkUnitsAndSites(manifest: Manifest, files: ReadonlyMap<string, Buffer>): void {
  const problems: string[] = [];
  // A plain unit and a Quadlet unit that would be the same systemd unit.
  const quadlet = analyzeBundleUnits(manifest, files).units;
  for (const plain of plainBundleUnits(manifest)) {
    for (const q of quadlet) {
      if (servicesClash(q.service, plain.service)) {
        problems.push(`${plain.path} and quadlet/${q.file} both make ${q.service}`);
      }
    }
  }
  for (const f of manifest.files) {
    if (f.kind !== 'systemd' && f.kind !== 'caddy') continue;
    const data = files.get(f.path);
    if (data === undefined) continue;
    const text = decode(data);
    if (text === undefined) {
      problems.push(`${f.path}: not UTF-8 text`);
      continue;
    }
    if (f.kind === 'systemd') problems.push(...plainUnitProblems(f.path, text));
  }
  if (problems.length > 0) {
    throw new RickError('BUNDLE_INVALID', `bundle ${manifest.name}: ${problems.join('; ')}`, {
      hint: 'fix the unit templates and rebuild the bundle',
    });
  }
}
