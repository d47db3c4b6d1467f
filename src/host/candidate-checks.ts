/**
 * The checks a candidate generation's plain systemd units and Caddy sites
 * pass before anything on the host changes (before systemd-sysusers, before
 * the generation is written): each changed plain unit through
 * `systemd-analyze verify`, and, when a site changes, the host's whole
 * Caddyfile with the candidate's sites in place of the live ones through
 * `caddy validate`. They run on a scratch copy outside the host tree, laid
 * out as the generation will be, so a refusal leaves no trace.
 *
 * Also refused here, for the same reason: a path rick would need that is
 * someone else's (/etc/caddy/rick, the rick-units generator), a host
 * Caddyfile that does not import rick's sites, a live host without Caddy or
 * systemd-analyze. An offline tree (`--root`) checks the sites on their own
 * and skips, with a note, what its machine cannot run.
 */
import { mkdir, mkdtemp, readlink, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  adaptCaddyfile,
  CADDY_IMPORT_LINE,
  CADDY_PROBE_HOST,
  CADDY_SITES_ENV,
  caddyBundleImport,
  caddyProbeSite,
  validateCaddyfile,
} from '../bundle/caddy.js';
import type { Manifest } from '../bundle/manifest.js';
import { verifySystemdUnits } from '../bundle/systemd-verify.js';
import { RickError } from '../errors.js';
import type { CommandRunner } from '../io/exec.js';
import { type GenerationView, normalized, type RenderedBundle } from './activation/plan.js';
import { carryBundle, hostNeedsOf, type StoredGeneration, sitesLink } from './generations.js';
import type { HostPaths } from './paths.js';
import {
  checkSiteClaims,
  hostCaddyfileClaims,
  readSiteClaims,
  type SiteClaim,
} from './policy/sites.js';
import { substituteBundle } from './substitute.js';
import { readGeneratorState } from './unit-generator.js';

export interface CandidateCheckOptions {
  paths: HostPaths;
  /** `--root` without a service manager: an image, not a running host. */
  offline: boolean;
  runner?: CommandRunner;
  env?: NodeJS.ProcessEnv;
}

/** Checks the candidate; returns notes for the operator, throws a RickError on refusal. */
export type CandidateCheck = (
  live: GenerationView | undefined,
  next: GenerationView,
  options: CandidateCheckOptions,
) => Promise<string[]>;

interface ManagedFile {
  bundle: string;
  /** Bundle path, `systemd/x.service` or `caddy/x.caddy`. */
  path: string;
  data: Buffer;
}

function filesOf(view: GenerationView | undefined, dir: 'systemd' | 'caddy'): ManagedFile[] {
  const out: ManagedFile[] = [];
  for (const bundle of view?.bundles.values() ?? []) {
    for (const [path, data] of bundle.files) {
      if (path.startsWith(`${dir}/`)) out.push({ bundle: bundle.name, path, data });
    }
  }
  return out;
}

/** Files of `dir` that are new or differ from the live generation (generation paths aside). */
function changedFiles(
  live: GenerationView | undefined,
  next: GenerationView,
  dir: 'systemd' | 'caddy',
): ManagedFile[] {
  return filesOf(next, dir).filter((f) => normalized(live, f) !== normalized(next, f));
}

/** True when a site was added, changed or removed. */
export function sitesChanged(live: GenerationView | undefined, next: GenerationView): boolean {
  if (changedFiles(live, next, 'caddy').length > 0) return true;
  const kept = new Set(filesOf(next, 'caddy').map((f) => `${f.bundle}/${f.path}`));
  return filesOf(live, 'caddy').some((f) => !kept.has(`${f.bundle}/${f.path}`));
}

/** A bundle's sites in a generation, by bundle path, as text. */
function sitesOf(bundle: RenderedBundle): Map<string, string> {
  const out = new Map<string, string>();
  for (const [path, data] of bundle.files) {
    if (path.startsWith('caddy/')) out.set(path, data.toString('utf8'));
  }
  return out;
}

/**
 * Each host name is one bundle's (or the host Caddyfile's): the addresses
 * of every bundle's sites, normalized, against each other and `host`; and a
 * changed bundle's sites hold no `import` and no `{$ENV}`. Throws SITE_REJECTED.
 */
function checkClaims(
  live: GenerationView | undefined,
  next: GenerationView,
  host: readonly SiteClaim[],
): void {
  const changed = new Set([...changedFiles(live, next, 'caddy').map((f) => f.bundle)]);
  const claims = new Map<string, SiteClaim[]>();
  for (const bundle of next.bundles.values()) {
    claims.set(bundle.name, readSiteClaims(bundle.name, sitesOf(bundle)).claims);
  }
  for (const bundle of next.bundles.values()) {
    if (!changed.has(bundle.name)) continue;
    const others = [
      ...host,
      ...[...claims].filter(([n]) => n !== bundle.name).flatMap(([, c]) => c),
    ];
    checkSiteClaims(bundle.name, sitesOf(bundle), others);
  }
}

/** Writes a generation's caddy/ directory as writeGeneration will: stubs and sites. */
async function writeSites(dir: string, view: GenerationView): Promise<void> {
  await mkdir(dir, { recursive: true });
  const byBundle = new Map<string, ManagedFile[]>();
  for (const f of filesOf(view, 'caddy')) {
    byBundle.set(f.bundle, [...(byBundle.get(f.bundle) ?? []), f]);
  }
  for (const [bundle, files] of byBundle) {
    await mkdir(join(dir, bundle), { recursive: true });
    await writeFile(join(dir, `${bundle}.caddy`), caddyBundleImport(bundle));
    for (const f of files) {
      await writeFile(join(dir, bundle, f.path.slice('caddy/'.length)), f.data);
    }
  }
}

async function isFile(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined))?.isFile() ?? false;
}

/** /etc/caddy/rick must be absent or rick's own link before a generation with sites goes live. */
async function checkSitesLink(paths: HostPaths): Promise<void> {
  const [link, target] = sitesLink(paths);
  let existing: string | undefined;
  try {
    existing = await readlink(link);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return;
    if (code !== 'EINVAL') throw error;
  }
  if (existing === target) return;
  throw new RickError(
    'PREREQUISITE_MISSING',
    `${link} ${existing === undefined ? 'exists and is not a symlink' : `points at ${existing}`}: rick serves its Caddy sites through a link to ${target}`,
    { hint: `move ${link} aside; rick creates the link itself` },
  );
}

async function checkSites(
  live: GenerationView | undefined,
  next: GenerationView,
  options: CandidateCheckOptions,
  scratch: string,
): Promise<string[]> {
  const { paths, offline } = options;
  if (hostNeedsOf(next).sites) await checkSitesLink(paths);
  if (!sitesChanged(live, next)) return [];
  if (offline) checkClaims(live, next, []);
  const run = { ...(options.runner ? { runner: options.runner } : {}), env: options.env };
  const sitesDir = join(scratch, 'caddy');
  await writeSites(sitesDir, next);
  const shown = (text: string) => text.split(`${sitesDir}/`).join(`${paths.caddySitesLink}/`);
  const hostCaddyfile = !offline || (await isFile(paths.caddyfile));
  let config = paths.caddyfile;
  const notes: string[] = [];
  if (offline) {
    // An image's Caddyfile may import the image's own files by their host
    // paths, which this machine does not have: the sites are judged alone.
    config = join(scratch, 'Caddyfile');
    await writeFile(config, `{\n\tadmin off\n}\nimport {$${CADDY_SITES_ENV}}/*.caddy\n`);
    if (hostCaddyfile) notes.push(`Caddy sites checked on their own, not with ${paths.caddyfile}`);
  } else if (!(await isFile(paths.caddyfile))) {
    throw new RickError(
      'PREREQUISITE_MISSING',
      `the new generation has Caddy sites, but ${paths.caddyfile} does not exist`,
      { hint: `install Caddy and add this line to its Caddyfile: ${CADDY_IMPORT_LINE}` },
    );
  }
  try {
    if (!offline) {
      // The live Caddyfile must import the sites through RICK_CADDY_SITES, or
      // the check below would judge the live sites instead of the new ones.
      const probeDir = join(scratch, 'probe');
      await mkdir(join(probeDir, 'rick-probe'), { recursive: true });
      await writeFile(join(probeDir, 'rick-probe.caddy'), caddyBundleImport('rick-probe'));
      await writeFile(join(probeDir, 'rick-probe', 'probe.caddy'), caddyProbeSite);
      const probe = await adaptCaddyfile(config, probeDir, run);
      if (!probe.ok || !probe.stdout.includes(CADDY_PROBE_HOST)) {
        throw new RickError(
          'PREREQUISITE_MISSING',
          probe.ok
            ? `${paths.caddyfile} does not import rick's Caddy sites`
            : `Caddy cannot read ${paths.caddyfile}: ${probe.error}`,
          {
            hint: probe.ok
              ? `add this line to ${paths.caddyfile} (bootstrap.sh offers to): ${CADDY_IMPORT_LINE}`
              : `fix ${paths.caddyfile}; nothing was changed`,
          },
        );
      }
      // The operator's own sites, read by Caddy with rick's left out.
      const emptyDir = join(scratch, 'empty');
      await mkdir(emptyDir, { recursive: true });
      const own = await adaptCaddyfile(config, emptyDir, run);
      checkClaims(live, next, own.ok ? hostCaddyfileClaims(own.stdout, paths.caddyfile) : []);
    }
    const result = await validateCaddyfile(config, sitesDir, run);
    if (!result.ok) {
      throw new RickError(
        'SITE_REJECTED',
        `Caddy rejects the new generation's sites: ${shown(result.error ?? 'no message')}`,
        { hint: "fix the bundle's sites and publish a new version; nothing was changed" },
      );
    }
    return [...notes, ...result.warnings.map((w) => `caddy: ${shown(w)}`)];
  } catch (error) {
    if (offline && error instanceof RickError && error.code === 'PREREQUISITE_MISSING') {
      return [`Caddy check of the sites skipped: ${error.message}`];
    }
    throw error;
  }
}

async function checkUnits(
  live: GenerationView | undefined,
  next: GenerationView,
  options: CandidateCheckOptions,
  scratch: string,
): Promise<string[]> {
  const { paths, offline } = options;
  if (hostNeedsOf(next).units && (await readGeneratorState(paths)) === 'foreign') {
    throw new RickError(
      'PREREQUISITE_MISSING',
      `${paths.unitGenerator} exists and is not rick's generator: plain systemd units could not go live`,
      { hint: `move ${paths.unitGenerator} aside; rick writes it itself` },
    );
  }
  const changed = changedFiles(live, next, 'systemd');
  if (changed.length === 0) return [];
  const dir = join(scratch, 'systemd');
  await mkdir(dir, { recursive: true });
  const files: string[] = [];
  const where = new Map<string, string>();
  for (const f of changed) {
    const name = f.path.slice('systemd/'.length);
    files.push(join(dir, name));
    where.set(name, `${f.bundle}/${f.path}`);
    await writeFile(join(dir, name), f.data);
  }
  const shown = (line: string) => line.split(`${dir}/`).join('systemd/');
  let result: Awaited<ReturnType<typeof verifySystemdUnits>>;
  try {
    result = await verifySystemdUnits(files, {
      ...(options.runner ? { runner: options.runner } : {}),
      env: options.env,
    });
  } catch (error) {
    if (offline && error instanceof RickError && error.code === 'PREREQUISITE_MISSING') {
      return [`systemd-analyze check of the plain units skipped: ${error.message}`];
    }
    throw error;
  }
  // A program missing from an image tree is judged when it boots, not here.
  const errors = offline ? result.errors : [...result.errors, ...result.missingCommands];
  if (!result.ok && errors.length > 0) {
    throw new RickError(
      'UNITS_REJECTED',
      `systemd-analyze rejects the new generation's units (${[...where.values()].join(', ')}): ${errors.map(shown).join('; ')}`,
      { hint: "fix the bundle's units and publish a new version; nothing was changed" },
    );
  }
  return [
    ...result.warnings.map((w) => `systemd-analyze: ${shown(w)}`),
    ...(offline ? result.missingCommands.map((l) => `systemd-analyze: ${shown(l)}`) : []),
  ];
}

/** What an account systemd-sysusers has yet to create stands for in a preview. */
export const PREVIEW_ACCOUNT_ID = '4242';

/**
 * The units and sites generation `generation` would hold, before
 * systemd-sysusers ran: the new bundle rendered with `values` (accounts it
 * will create standing as PREVIEW_ACCOUNT_ID), the other bundles carried
 * over from the live generation.
 */
export function previewGeneration(
  contents: { manifest: Manifest; files: ReadonlyMap<string, Buffer> },
  values: ReadonlyMap<string, string>,
  generation: number,
  live: StoredGeneration | undefined,
): GenerationView {
  const { manifest } = contents;
  const rendered = substituteBundle(contents, values, generation);
  const files = new Map<string, Buffer>();
  for (const f of manifest.files) {
    const data = rendered.get(f.path);
    if (data && (f.kind === 'systemd' || f.kind === 'caddy')) files.set(f.path, data);
  }
  const bundles = new Map<string, RenderedBundle>();
  for (const other of live?.bundles.values() ?? []) {
    if (other.name !== manifest.name) {
      bundles.set(other.name, carryBundle(other, generation));
    }
  }
  bundles.set(manifest.name, {
    name: manifest.name,
    version: manifest.version,
    services: manifest.services,
    files,
    masked: new Map(),
  });
  return { generation, bundles };
}

/** The real checks: systemd-analyze and Caddy through the command runner. */
export const checkCandidate: CandidateCheck = async (live, next, options) => {
  const scratch = await mkdtemp(join(tmpdir(), 'rick-candidate-'));
  try {
    // Both end before the scratch directory goes, whichever fails first.
    const [units, sites] = await Promise.allSettled([
      checkUnits(live, next, options, scratch),
      checkSites(live, next, options, scratch),
    ]);
    if (units.status === 'rejected') throw units.reason;
    if (sites.status === 'rejected') throw sites.reason;
    return [...units.value, ...sites.value];
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
};
