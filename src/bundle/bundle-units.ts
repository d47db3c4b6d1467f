/**
 * A bundle's units are its own, and only its own: which services its quadlet
 * files make, and what in quadlet/ would reach beyond them. Pure.
 *
 * rick puts a bundle's quadlet/ at /etc/containers/systemd/rick/<bundle>/,
 * one of quadlet's source directories, where quadlet reads every unit and
 * every drop-in directory whatever the bundle meant (see quadlet-units.ts).
 * So, for the files of kind `quadlet`:
 *
 * - a unit sits directly in quadlet/ (quadlet would also load one from a
 *   subdirectory), with a plain name (unitFilePattern); no directory is
 *   named like a unit;
 * - a drop-in is `quadlet/<unit>.d/<name>.conf` for a unit the bundle ships:
 *   `container.d/`, `foo-.container.d/` or `<other>.container.d/` apply to
 *   units of other bundles and of the host, so no other directory anywhere
 *   in quadlet/ may be named like a drop-in directory;
 * - `[Install] Alias=` is refused: it links unit names rick never derived;
 * - each unit's service is derived as quadlet derives it (its own drop-ins
 *   merged in), must be a plain service name, and no two units of the
 *   bundle may make the same service (`x-pod.container` and `x.pod`);
 * - `services[].service` must be exactly the service derived for
 *   `services[].unit` (a manifest cannot name, say, ssh.service).
 *
 * Other files (a kube unit's YAML, say) may sit anywhere else in quadlet/.
 */
import { RickError } from '../errors.js';
import type { Manifest } from './manifest.js';
import {
  isDropinDirName,
  lookupAllWords,
  mergeUnitFiles,
  parseUnitFile,
  serviceNameOf,
  serviceNamePattern,
  type UnitKind,
  unitFilePattern,
  unitKindOf,
} from './quadlet-units.js';

export interface BundleUnit {
  /** The unit's file name in quadlet/ (or systemd/), e.g. `demo-app.container`. */
  file: string;
  /** A Quadlet kind, or `plain` for a plain systemd unit of systemd/ (plain-units.ts). */
  kind: UnitKind | 'plain';
  /** The service quadlet generates from it, e.g. `demo-app.service`; a plain unit's own name. */
  service: string;
  /** Bundle paths of its drop-ins, in the order quadlet merges them. */
  dropins: string[];
  /** Its bundle path when it is not `quadlet/<file>` (a plain unit's `systemd/<file>`). */
  path?: string;
}

const QUADLET_DIR = 'quadlet/';

/**
 * The units of a bundle and every problem with them. `files` holds the
 * bundle's files by bundle path (shipped or rendered: the rules read only
 * what quadlet reads, which placeholders do not change).
 */
export function analyzeBundleUnits(
  manifest: Pick<Manifest, 'files'>,
  files: ReadonlyMap<string, Buffer>,
): { units: BundleUnit[]; problems: string[] } {
  const problems: string[] = [];
  const paths = manifest.files
    .filter((f) => f.kind === 'quadlet' && f.path.startsWith(QUADLET_DIR))
    .map((f) => f.path);
  const unitFiles = new Set(
    paths
      .map((p) => p.slice(QUADLET_DIR.length))
      .filter((rel) => !rel.includes('/') && unitKindOf(rel) !== undefined),
  );
  const dropins = new Map<string, string[]>();
  for (const path of paths) {
    const segments = path.slice(QUADLET_DIR.length).split('/');
    const last = segments[segments.length - 1] ?? '';
    const dirs = segments.slice(0, -1);
    const unitNamedDir = dirs.find((d) => unitKindOf(d) !== undefined);
    if (unitNamedDir !== undefined) {
      problems.push(`${path}: directory ${unitNamedDir} is named like a unit`);
      continue;
    }
    if (segments.length === 1) {
      if (unitKindOf(last) !== undefined) {
        if (!unitFilePattern.test(last)) {
          problems.push(
            `${path}: unit names are letters, digits, _, . and -, with at most one @, not starting with . or -`,
          );
        }
      } else if (isDropinDirName(last)) {
        problems.push(`${path}: a file named like a drop-in directory`);
      }
      continue;
    }
    const first = segments[0] ?? '';
    if (isDropinDirName(first)) {
      const unit = first.slice(0, -2);
      if (!unitFiles.has(unit)) {
        problems.push(
          `${path}: drop-in directory ${first} applies to units that are not the bundle's own (only <unit>.d of a unit the bundle ships is allowed)`,
        );
        continue;
      }
      if (segments.length !== 2 || !last.endsWith('.conf') || last === '.conf') {
        problems.push(`${path}: a drop-in directory holds only <name>.conf files`);
        continue;
      }
      const list = dropins.get(unit) ?? [];
      list.push(path);
      dropins.set(unit, list);
      continue;
    }
    const nested = segments.slice(1).find((s) => isDropinDirName(s));
    if (nested !== undefined) {
      problems.push(
        `${path}: drop-in directory ${nested} in a subdirectory applies to units that are not the bundle's own`,
      );
      continue;
    }
    if (unitKindOf(last) !== undefined) {
      problems.push(`${path}: units sit directly in quadlet/ (quadlet loads subdirectories too)`);
    }
  }

  const units: BundleUnit[] = [];
  for (const file of [...unitFiles].sort()) {
    const kind = unitKindOf(file) as UnitKind;
    const path = `${QUADLET_DIR}${file}`;
    const parsed = parseUnitFile(files.get(path)?.toString('utf8') ?? '');
    if (!parsed.ok) {
      problems.push(`${path}: ${parsed.problem}`);
      continue;
    }
    let groups = parsed.groups;
    // Drop-ins merge in file name order (podman sorts by name).
    const own = (dropins.get(file) ?? []).sort((a, b) => {
      const na = a.slice(a.lastIndexOf('/') + 1);
      const nb = b.slice(b.lastIndexOf('/') + 1);
      return na < nb ? -1 : na > nb ? 1 : 0;
    });
    let broken = false;
    for (const dropin of own) {
      const d = parseUnitFile(files.get(dropin)?.toString('utf8') ?? '');
      if (!d.ok) {
        problems.push(`${dropin}: ${d.problem}`);
        broken = true;
        continue;
      }
      groups = mergeUnitFiles(groups, d.groups);
    }
    if (broken) continue;
    const aliases = lookupAllWords(groups, 'Install', 'Alias');
    if (aliases.length) {
      problems.push(
        `${path}: [Install] Alias=${aliases.join(' ')} would give its service names of other units`,
      );
    }
    const service = serviceNameOf(file, groups);
    if (!serviceNamePattern.test(service)) {
      problems.push(
        `${path}: ServiceName= makes ${JSON.stringify(service)}, not a plain service name`,
      );
      continue;
    }
    units.push({ file, kind, service, dropins: own });
  }

  const byService = new Map<string, string>();
  for (const u of units) {
    const other = byService.get(u.service);
    if (other !== undefined) {
      problems.push(`quadlet/${other} and quadlet/${u.file} both make ${u.service}`);
    } else byService.set(u.service, u.file);
  }
  return { units, problems };
}

/**
 * Checks a verified bundle's units and its services list; throws
 * BUNDLE_INVALID naming every problem. Returns the units.
 */
export function checkBundleUnits(
  manifest: Manifest,
  files: ReadonlyMap<string, Buffer>,
): BundleUnit[] {
  const { units, problems } = analyzeBundleUnits(manifest, files);
  const byFile = new Map(units.map((u) => [u.file, u]));
  const seen = new Set<string>();
  manifest.services.forEach((s, i) => {
    if (seen.has(s.unit)) problems.push(`services.${i}: ${s.unit} is listed twice`);
    seen.add(s.unit);
    const unit = byFile.get(s.unit);
    if (unit && unit.service !== s.service) {
      problems.push(
        `services.${i}.service: ${s.service} is not the service quadlet makes from ${s.unit} (${unit.service})`,
      );
    }
  });
  if (problems.length) {
    throw new RickError('BUNDLE_INVALID', `bundle units refused: ${problems.join('; ')}`, {
      hint: "a bundle's units, drop-ins and services are its own: see docs/host-intake.md",
    });
  }
  return units;
}
