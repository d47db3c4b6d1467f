/**
 * systemd unit names are global on a host: a bundle's units must not make a
 * service that another bundle, or the host outside rick, already has.
 * Collisions are judged on the services quadlet generates (so
 * `x-pod.container` and `x.pod`, which both make `x-pod.service`, collide),
 * a template `x@.service` colliding with each of its instances, and on unit
 * file names (quadlet loads only the first unit of a name it sees).
 *
 * What the host has outside rick:
 * - unit files and links in systemd's system unit directories (the
 *   generators' output included, except what quadlet generated from rick's
 *   own units), and /etc/init.d scripts (systemd-sysv-generator makes
 *   `<name>.service` of them);
 * - quadlet units in /run/containers/systemd, /etc/containers/systemd and
 *   /usr/share/containers/systemd, outside rick's own link, with the service
 *   names quadlet derives for them (their drop-ins included).
 *
 * Reading is done here; the judgement (`unitNamespaceProblems`) is pure.
 */
import { lstat, readdir, readFile, readlink, stat } from 'node:fs/promises';
import { dirname, isAbsolute, join } from 'node:path';
import type { BundleUnit } from '../../bundle/bundle-units.js';
import {
  dropinDirsFor,
  mergeUnitFiles,
  parseUnitFile,
  serviceNameOf,
  servicesClash,
  unitKindOf,
} from '../../bundle/quadlet-units.js';
import { describe, RickError } from '../../errors.js';

/** systemd's unit search path for the system manager, highest priority first, plus /lib. */
export const SYSTEMD_UNIT_DIRS: readonly string[] = [
  '/etc/systemd/system.control',
  '/run/systemd/system.control',
  '/run/systemd/transient',
  '/run/systemd/generator.early',
  '/etc/systemd/system',
  '/etc/systemd/system.attached',
  '/run/systemd/system',
  '/run/systemd/system.attached',
  '/run/systemd/generator',
  '/usr/local/lib/systemd/system',
  '/usr/lib/systemd/system',
  '/lib/systemd/system',
  '/run/systemd/generator.late',
];

/** Quadlet's source directories for rootful units, in the order it reads them. */
export const QUADLET_SOURCE_DIRS: readonly string[] = [
  '/run/containers/systemd',
  '/etc/containers/systemd',
  '/usr/share/containers/systemd',
];

/** The directory quadlet never reads for the system generator (per-user units). */
const QUADLET_USERS_DIR = '/etc/containers/systemd/users';

/** A quadlet unit on the host outside rick. */
export interface HostQuadletUnit {
  /** Host path (not under --root). */
  path: string;
  file: string;
  service: string;
}

/** A unit name systemd already knows on the host, and where. */
export interface HostUnitName {
  name: string;
  /** Host path of the unit file, link or init script. */
  path: string;
}

export interface HostUnits {
  systemd: HostUnitName[];
  quadlet: HostQuadletUnit[];
}

/** One installed bundle's units, for the collision check. */
export interface InstalledUnits {
  bundle: string;
  units: ReadonlyArray<Pick<BundleUnit, 'file' | 'service'>>;
}

async function listDir(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).sort();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return [];
    throw new RickError('IO_ERROR', `cannot list ${dir}: ${describe(error)}`, { cause: error });
  }
}

/** Follows a symlink as the host would see it: absolute targets lie under `root`. */
async function resolveUnder(root: string, path: string): Promise<string | undefined> {
  let current = path;
  for (let hops = 0; hops < 40; hops++) {
    const st = await lstat(current).catch(() => undefined);
    if (!st) return undefined;
    if (!st.isSymbolicLink()) return current;
    const target = await readlink(current);
    current = isAbsolute(target) ? join(root, target) : join(dirname(current), target);
  }
  return undefined;
}

function generatedFromRick(text: string): boolean {
  return /^SourcePath=(\/etc\/containers\/systemd\/rick\/|\/var\/lib\/rick\/)/m.test(text);
}

/**
 * Reads the host's unit names and quadlet units outside rick. `rickLink` is
 * the host path of rick's link in /etc/containers/systemd, which is skipped.
 */
export async function readHostUnits(root: string, rickLink: string): Promise<HostUnits> {
  const under = (p: string) => join(root, p);
  const systemd: HostUnitName[] = [];
  for (const dir of SYSTEMD_UNIT_DIRS) {
    for (const name of await listDir(under(dir))) {
      if (name.endsWith('.d') || name.endsWith('.wants') || name.endsWith('.requires')) continue;
      const path = `${dir}/${name}`;
      if (dir.startsWith('/run/systemd/generator')) {
        // The rick-units generator's links to rick's own plain units are rick's.
        const target = await readlink(under(path)).catch(() => undefined);
        if (target?.startsWith('/var/lib/rick/')) continue;
      }
      if (dir.startsWith('/run/systemd/generator') && name.endsWith('.service')) {
        // Quadlet's output for rick's own units is rick's, not the host's.
        const text = await readFile(under(path), 'utf8').catch(() => '');
        if (generatedFromRick(text)) continue;
      }
      systemd.push({ name, path });
    }
  }
  for (const name of await listDir(under('/etc/init.d'))) {
    if (name.startsWith('.') || name === 'README' || name === 'skeleton') continue;
    systemd.push({ name: `${name}.service`, path: `/etc/init.d/${name}` });
  }
  const quadlet = await readQuadletUnits(root, QUADLET_SOURCE_DIRS, new Set([rickLink]));
  return { systemd, quadlet };
}

/**
 * The quadlet units of the given source directories (and their
 * subdirectories, as quadlet walks them), with the service each makes after
 * its drop-ins are merged. Paths in `skip` (host paths) are not entered.
 */
export async function readQuadletUnits(
  root: string,
  topDirs: readonly string[],
  skip: ReadonlySet<string> = new Set(),
): Promise<HostQuadletUnit[]> {
  const sources: string[] = [];
  const visited = new Set<string>();
  const walk = async (hostPath: string) => {
    if (skip.has(hostPath) || visited.has(hostPath)) return;
    if (hostPath.endsWith('.d')) return;
    if (hostPath === QUADLET_USERS_DIR || hostPath.startsWith(`${QUADLET_USERS_DIR}/`)) return;
    const resolved = await resolveUnder(root, join(root, hostPath));
    if (!resolved) return;
    const st = await stat(resolved).catch(() => undefined);
    if (!st?.isDirectory()) return;
    visited.add(hostPath);
    sources.push(hostPath);
    for (const name of await listDir(resolved)) await walk(`${hostPath}/${name}`);
  };
  for (const dir of topDirs) await walk(dir);

  const seen = new Set<string>();
  const units: HostQuadletUnit[] = [];
  for (const source of sources) {
    for (const file of await listDir(join(root, source))) {
      if (seen.has(file) || unitKindOf(file) === undefined) continue;
      const path = `${source}/${file}`;
      const text = await readFile(join(root, path), 'utf8').catch(() => undefined);
      if (text === undefined) continue;
      seen.add(file);
      const parsed = parseUnitFile(text);
      // Quadlet skips a unit it cannot parse; so does the check.
      if (!parsed.ok) continue;
      let groups = parsed.groups;
      const dropins = new Map<string, string>();
      for (const src of sources) {
        for (const dir of dropinDirsFor(file)) {
          for (const name of await listDir(join(root, src, dir))) {
            if (!name.endsWith('.conf') || name === '.conf' || dropins.has(name)) continue;
            dropins.set(name, `${src}/${dir}/${name}`);
          }
        }
      }
      for (const name of [...dropins.keys()].sort()) {
        const d = await readFile(join(root, dropins.get(name) as string), 'utf8').catch(() => '');
        const parsedDropin = parseUnitFile(d);
        if (parsedDropin.ok) groups = mergeUnitFiles(groups, parsedDropin.groups);
      }
      units.push({ path, file, service: serviceNameOf(file, groups) });
    }
  }
  return units;
}

/**
 * Every collision of a bundle's units with the other installed bundles'
 * units and with the host's, one line each. Pure.
 */
export function unitNamespaceProblems(
  units: readonly BundleUnit[],
  others: readonly InstalledUnits[],
  host: HostUnits,
): string[] {
  const problems: string[] = [];
  for (const u of units) {
    const path = u.path ?? `quadlet/${u.file}`;
    const label = u.kind === 'plain' ? `${path} is ${u.service}` : `${path} makes ${u.service}`;
    for (const other of others) {
      for (const o of other.units) {
        if (o.file === u.file) {
          problems.push(
            `${path} has the name of a unit of bundle ${other.bundle} (${u.kind === 'plain' ? 'systemd loads' : 'quadlet reads'} only one of them)`,
          );
        } else if (servicesClash(o.service, u.service)) {
          problems.push(`${label}, as does ${o.file} of bundle ${other.bundle} (${o.service})`);
        }
      }
    }
    for (const q of host.quadlet) {
      if (q.file === u.file) {
        problems.push(
          `${path} has the name of the host's quadlet file ${q.path} (quadlet reads only one of them)`,
        );
      } else if (servicesClash(q.service, u.service)) {
        problems.push(`${label}, as does the host's quadlet file ${q.path} (${q.service})`);
      }
    }
    for (const s of host.systemd) {
      if (servicesClash(s.name, u.service)) {
        problems.push(`${label}, which the host already has: ${s.path}`);
      }
    }
  }
  return [...new Set(problems)];
}

/** Throws BUNDLE_INVALID naming every collision of the bundle's units. */
export function checkUnitNamespace(
  bundle: string,
  units: readonly BundleUnit[],
  others: readonly InstalledUnits[],
  host: HostUnits,
): void {
  const problems = unitNamespaceProblems(units, others, host);
  if (problems.length) {
    throw new RickError(
      'BUNDLE_INVALID',
      `bundle ${bundle}'s units collide with units this host already has: ${problems.join('; ')}`,
      {
        hint: 'systemd unit names are global on a host: rename the unit (or its ServiceName=) in the bundle, or remove the other unit',
      },
    );
  }
}

/** The host path of rick's own quadlet link, which readHostUnits skips. */
export const RICK_QUADLET_LINK = '/etc/containers/systemd/rick';
