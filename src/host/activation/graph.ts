/**
 * The I/O side of the unit graph: runs podman's quadlet generator in dry-run
 * over a generation's units and reads its output with units.ts. The same
 * check the installer runs before a generation may go live.
 */
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { RickError } from '../../errors.js';
import type { GenerationView } from './plan.js';
import { parseUnitGraph, type UnitGraph, withPlainUnits } from './units.js';

/** What the unit check found: the generated units, or why it was skipped. */
export type UnitCheck = { generated: string } | { skipped: string };

/** Runs quadlet over a directory of units. Throws QUADLET_REJECTED when it rejects one. */
export type CheckUnits = (unitDir: string, offline: boolean) => Promise<UnitCheck>;

/**
 * The graph of a generation's units: what quadlet generated, and the plain
 * systemd units the generation's bundles carry (`plain`, see plainUnitsOf).
 */
export function graphOf(
  check: UnitCheck,
  plain: ReadonlyArray<{ name: string; text: string }> = [],
): UnitGraph | undefined {
  if (!('generated' in check)) return undefined;
  const graph = parseUnitGraph(check.generated);
  return plain.length > 0 ? withPlainUnits(graph, plain) : graph;
}

/** The plain systemd units of a generation not written yet. */
export function plainUnitsOf(view: GenerationView): Array<{ name: string; text: string }> {
  const out: Array<{ name: string; text: string }> = [];
  for (const bundle of view.bundles.values()) {
    for (const [path, data] of bundle.files) {
      if (path.startsWith('systemd/')) {
        out.push({ name: path.slice('systemd/'.length), text: data.toString('utf8') });
      }
    }
  }
  return out;
}

/** The plain systemd units of a generation on disk (`systemd/<bundle>/<unit>`). */
async function readPlainUnits(
  generationDir: string,
): Promise<Array<{ name: string; text: string }>> {
  const out: Array<{ name: string; text: string }> = [];
  const base = join(generationDir, 'systemd');
  for (const bundle of await readdir(base).catch(() => [] as string[])) {
    for (const name of await readdir(join(base, bundle)).catch(() => [] as string[])) {
      out.push({ name, text: await readFile(join(base, bundle, name), 'utf8') });
    }
  }
  return out;
}

/**
 * The generated units of a generation already on disk. Undefined when
 * quadlet is not there (an offline tree) or rejects them now (a podman
 * upgraded since): the planner then reads the other generation's pods.
 */
export async function readGenerationGraph(
  generationDir: string,
  check: CheckUnits,
  offline: boolean,
): Promise<UnitGraph | undefined> {
  try {
    const checked = await check(join(generationDir, 'quadlet'), offline);
    return graphOf(checked, await readPlainUnits(generationDir));
  } catch (error) {
    if (error instanceof RickError && error.code === 'QUADLET_REJECTED') return undefined;
    throw error;
  }
}

/** The generated units of a generation not written yet: its units in a scratch directory. */
export async function graphOfView(
  view: GenerationView,
  check: CheckUnits,
  offline: boolean,
): Promise<UnitGraph | undefined> {
  const dir = await mkdtemp(join(tmpdir(), 'rick-units-'));
  try {
    for (const bundle of view.bundles.values()) {
      for (const [path, data] of bundle.files) {
        if (!path.startsWith('quadlet/')) continue;
        const file = join(dir, bundle.name, path.slice('quadlet/'.length));
        await mkdir(dirname(file), { recursive: true });
        await writeFile(file, data, { mode: 0o600 });
      }
    }
    return graphOf(await check(dir, offline), plainUnitsOf(view));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
