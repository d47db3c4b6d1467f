/**
 * `rick-install adopt`: taking over a host whose services other tooling
 * (Ansible) deployed. What is taken over is narrow on purpose: the files at
 * the top level of /etc/containers/systemd that have the names of the
 * bundle's Quadlet units, and the files of Caddy's sites directory
 * (`--caddy-sites`, default /etc/caddy/sites-enabled) that have the names of
 * its sites. Any other unit of the host that collides with the bundle's is
 * still refused, as an install refuses it.
 *
 * The adopted files stand for the live generation of the bundle: the
 * planner (activation/plan.ts) compares them with the next generation as it
 * compares two generations, so it alone decides what restarts. A unit is
 * unchanged when what systemd would run is the same: the service quadlet
 * generates from the foreign file and from the bundle's unit are equal once
 * their `SourcePath=` is taken out and every `EnvironmentFile=` path is
 * replaced by the sha256 of the file's content (the foreign unit's env file
 * read from the host, the bundle's from the next generation). An Ansible
 * unit reading /etc/authentik/authentik.env and the bundle's reading its
 * generation's env file are the same when the two files hold the same
 * bytes. Other paths (mounted configs, volumes) are compared as written.
 *
 * This file plans and reads; moving the files and putting them back is
 * adopt-record.ts.
 */
import { createHash } from 'node:crypto';
import { lstat, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Manifest } from '../bundle/manifest.js';
import { unitKindOf } from '../bundle/quadlet-units.js';
import type { SysusersEffects } from '../bundle/sysusers.js';
import { stateRootOf, type TmpfilesEntry } from '../bundle/tmpfiles.js';
import { describe, RickError } from '../errors.js';
import { type CheckUnits, graphOf, plainUnitsOf } from './activation/graph.js';
import type { GenerationView, RenderedBundle } from './activation/plan.js';
import type { UnitGraph } from './activation/units.js';
import type { Accounts } from './intake/accounts.js';
import type { CreatedRecord, CreatedRecords } from './intake/ownership.js';
import type { HostUnits } from './intake/unit-namespace.js';
import { normalizeGenerationPaths } from './substitute.js';

/** Caddy's sites directory as Debian's and Ansible's Caddy roles lay it out. */
export const DEFAULT_CADDY_SITES = '/etc/caddy/sites-enabled';
/** Where quadlet reads the host's rootful units; only its top level is adopted. */
export const QUADLET_DIR = '/etc/containers/systemd';

/** What `adopt` (and `plan --adopt`) is asked to take over. */
export interface AdoptOptions {
  /** Caddy's sites directory as the host sees it (not under --root). */
  caddySites: string;
}

/** A file of the host that a bundle file of the same name replaces. */
export interface ForeignFile {
  /** The bundle file that replaces it: `quadlet/x.container`, `caddy/x.caddy`. */
  bundlePath: string;
  /** Its path as the host sees it. */
  hostPath: string;
  kind: 'unit' | 'site';
  data: Buffer;
}

/** The bundle's top-level Quadlet units and sites, and where a foreign file of each would be. */
export function adoptableNames(
  manifest: Manifest,
  caddySites: string,
): Array<Omit<ForeignFile, 'data'>> {
  const out: Array<Omit<ForeignFile, 'data'>> = [];
  for (const f of manifest.files) {
    const [dir, name, ...rest] = f.path.split('/');
    if (name === undefined || rest.length > 0) continue;
    if (f.kind === 'quadlet' && dir === 'quadlet' && unitKindOf(name) !== undefined) {
      out.push({ bundlePath: f.path, hostPath: `${QUADLET_DIR}/${name}`, kind: 'unit' });
    } else if (f.kind === 'caddy' && dir === 'caddy') {
      out.push({ bundlePath: f.path, hostPath: `${caddySites}/${name}`, kind: 'site' });
    }
  }
  return out;
}

/**
 * The host's files that have the names of the bundle's units and sites.
 * Refuses one that is not a regular file: a link or directory of that name
 * is not a unit another tool wrote, and moving it would move what it leads to.
 */
export async function readForeignFiles(
  root: string,
  manifest: Manifest,
  caddySites: string,
): Promise<ForeignFile[]> {
  const found: ForeignFile[] = [];
  const problems: string[] = [];
  for (const name of adoptableNames(manifest, caddySites)) {
    const path = join(root, name.hostPath);
    const st = await lstat(path).catch(() => undefined);
    if (!st) continue;
    if (!st.isFile()) {
      problems.push(`${name.hostPath} is not a regular file`);
      continue;
    }
    try {
      found.push({ ...name, data: await readFile(path) });
    } catch (error) {
      throw new RickError('IO_ERROR', `cannot read ${name.hostPath}: ${describe(error)}`, {
        cause: error,
      });
    }
  }
  if (problems.length) {
    throw new RickError('BUNDLE_INVALID', `cannot adopt: ${problems.join('; ')}`, {
      hint: 'adopt takes over regular files only; replace the link or directory by the file it stands for, or remove it',
    });
  }
  return found;
}

/**
 * Why the bundle cannot be adopted here, or undefined: it is installed
 * already (its units are rick's), or the host has nothing of its names.
 */
export function adoptionProblems(
  manifest: Manifest,
  live: GenerationView | undefined,
  foreign: readonly ForeignFile[],
  caddySites: string,
): RickError | undefined {
  if (live?.bundles.has(manifest.name)) {
    return new RickError(
      'USAGE',
      `bundle ${manifest.name} is installed already (generation ${live.generation}): there is nothing to adopt`,
      { hint: `install it as usual: rick-install ${manifest.name}-${manifest.version}.tgz` },
    );
  }
  if (foreign.length === 0) {
    return new RickError(
      'USAGE',
      `nothing to adopt: neither ${QUADLET_DIR} nor ${caddySites} has a file with the name of a unit or site of bundle ${manifest.name}`,
      {
        hint: `install it as usual: rick-install ${manifest.name}-${manifest.version}.tgz; or name Caddy's sites directory with --caddy-sites DIR`,
      },
    );
  }
  return undefined;
}

/**
 * The host's units without the ones being adopted: their files, and what
 * quadlet generated from them into systemd's generator directories (a live
 * host has loaded them), so that the namespace check does not see them.
 */
export async function withoutAdopted(
  root: string,
  host: HostUnits,
  foreign: readonly ForeignFile[],
): Promise<HostUnits> {
  const adopted = new Set(foreign.filter((f) => f.kind === 'unit').map((f) => f.hostPath));
  if (adopted.size === 0) return host;
  const systemd: HostUnits['systemd'] = [];
  for (const s of host.systemd) {
    if (s.path.startsWith('/run/systemd/generator') && s.name.endsWith('.service')) {
      const text = await readFile(join(root, s.path), 'utf8').catch(() => '');
      const source = /^SourcePath=(.*)$/m.exec(text)?.[1];
      if (source !== undefined && adopted.has(source)) continue;
    }
    systemd.push(s);
  }
  return { systemd, quadlet: host.quadlet.filter((q) => !adopted.has(q.path)) };
}

// ---------------------------------------------------------------------------
// What the adopted files are, as a stand-in for the live generation

export interface AdoptionPlanInput {
  root: string;
  live: GenerationView | undefined;
  next: GenerationView;
  bundle: string;
  foreign: readonly ForeignFile[];
  /** The bundle's secret values, masked in the foreign files before they are shown. */
  secrets: Iterable<string>;
  check: CheckUnits;
  offline: boolean;
}

export interface AdoptionPlan {
  foreign: readonly ForeignFile[];
  /**
   * The live generation with the bundle as the adopted files make it: the
   * planner's `live`. Its other bundles are the live generation's.
   */
  view: GenerationView;
  /** The units quadlet generates from the live generation and the adopted units. */
  liveGraph: UnitGraph | undefined;
  /** The units quadlet generates from the next generation. */
  nextGraph: UnitGraph | undefined;
  /** Services the adopted units make (started again when they are put back). */
  services: string[];
  /** Adopted unit files (bundle paths) whose generated service equals the bundle's. */
  same: string[];
  /** One line for each adopted file, and the unified diff of those that differ. */
  report: string;
  notes: string[];
}

interface GeneratedUnit {
  name: string;
  text: string;
}

/** The blocks of `quadlet -dryrun` output, keyed by the base name of their source. */
function splitGenerated(generated: string): Map<string, GeneratedUnit[]> {
  const out = new Map<string, GeneratedUnit[]>();
  const parts = generated.split(/^---([^\n]+)---$/m);
  for (let i = 1; i + 1 < parts.length; i += 2) {
    const name = parts[i]!;
    const text = parts[i + 1]!;
    const source = /^SourcePath=(.*)$/m.exec(text)?.[1];
    if (source === undefined) continue;
    const base = source.slice(source.lastIndexOf('/') + 1);
    out.set(base, [...(out.get(base) ?? []), { name, text }]);
  }
  return out;
}

const sha = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');

/**
 * A unit (quadlet's output, or the Quadlet source when quadlet cannot run)
 * as it is compared: `SourcePath=` taken out, generation paths normalized,
 * each env file's path replaced by the hash of its content.
 */
async function comparable(
  text: string,
  envContent: (path: string) => Promise<Buffer | undefined>,
): Promise<string> {
  let out = text.replace(/^SourcePath=.*\n?/gm, '');
  const paths = new Set<string>();
  for (const m of out.matchAll(/^EnvironmentFile=-?(.+)$/gm)) paths.add(m[1]!.trim());
  for (const path of [...paths].sort((a, b) => b.length - a.length)) {
    const data = await envContent(path);
    out = out.split(path).join(data === undefined ? `<env missing>` : `<env sha256:${sha(data)}>`);
  }
  return normalizeGenerationPaths(out);
}

async function runQuadlet(
  files: ReadonlyMap<string, Buffer>,
  check: CheckUnits,
  offline: boolean,
): Promise<string | undefined> {
  const dir = await mkdtemp(join(tmpdir(), 'rick-adopt-'));
  try {
    for (const [rel, data] of files) {
      const file = join(dir, rel);
      await mkdir(dirname(file), { recursive: true });
      await writeFile(file, data, { mode: 0o600 });
    }
    const checked = await check(dir, offline);
    return 'generated' in checked ? checked.generated : undefined;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Every bundle's Quadlet files of a view, as `<bundle>/<file>` for a scratch directory. */
function quadletFilesOf(view: GenerationView | undefined, skip?: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const b of view?.bundles.values() ?? []) {
    if (b.name === skip) continue;
    for (const [path, data] of b.files) {
      if (path.startsWith('quadlet/')) out.set(`${b.name}/${path.slice('quadlet/'.length)}`, data);
    }
  }
  return out;
}

function maskValues(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of [...secrets].sort((a, b) => b.length - a.length)) {
    if (s.length >= 4) out = out.split(s).join('********');
  }
  return out;
}

/**
 * Compares the adopted files with the next generation's rendering and
 * builds the stand-in for the live generation: an adopted unit whose
 * generated service is the bundle's is given the bundle's own text there
 * (the planner keeps it), one that differs keeps its own (the planner
 * restarts it); a unit of the bundle no file stands for is new (started).
 * The env files are the next generation's: their content was compared
 * with the units that read them.
 */
export async function planAdoption(input: AdoptionPlanInput): Promise<AdoptionPlan> {
  const { root, live, next, bundle: name, foreign, check, offline } = input;
  const bundle = next.bundles.get(name);
  if (!bundle) throw new TypeError(`the next generation lacks bundle ${name}`);
  const secrets = [...input.secrets];
  const units = foreign.filter((f) => f.kind === 'unit');
  const notes: string[] = [];

  // One run of quadlet for each side: the other bundles' units with the
  // adopted ones (what runs now), and the next generation's.
  const liveFiles = quadletFilesOf(live, name);
  for (const f of units) liveFiles.set(`${name}/${f.bundlePath.slice('quadlet/'.length)}`, f.data);
  const [liveGenerated, nextGenerated] = await Promise.all([
    runQuadlet(liveFiles, check, offline).catch((error: unknown) => {
      // The foreign units alone may not stand (a pod the host keeps elsewhere):
      // they are then compared as written.
      if (!(error instanceof RickError && error.code === 'QUADLET_REJECTED')) throw error;
      notes.push(`quadlet rejects the adopted units on their own: ${error.message}`);
      return undefined;
    }),
    runQuadlet(quadletFilesOf(next), check, offline),
  ]);
  if (liveGenerated === undefined || nextGenerated === undefined) {
    notes.push(
      'quadlet not available: the adopted units are compared as written (env files by content), not as the services quadlet generates',
    );
  }
  const liveUnits = liveGenerated === undefined ? undefined : splitGenerated(liveGenerated);
  const nextUnits = nextGenerated === undefined ? undefined : splitGenerated(nextGenerated);

  const hostEnv = async (path: string) =>
    path.startsWith('/') ? readFile(join(root, path)).catch(() => undefined) : undefined;
  const prefix = normalizeGenerationPaths(`/var/lib/rick/generations/${next.generation}/bundles/`);
  const nextEnv = async (path: string) => {
    const p = normalizeGenerationPaths(path);
    if (!p.startsWith(prefix)) return hostEnv(path);
    const [owner, ...rest] = p.slice(prefix.length).split('/');
    return next.bundles.get(owner ?? '')?.files.get(rest.join('/'));
  };

  const same: string[] = [];
  const services: string[] = [];
  for (const f of units) {
    const file = f.bundlePath.slice('quadlet/'.length);
    const ours = bundle.files.get(f.bundlePath)!;
    let before: string;
    let after: string;
    const generatedBefore = liveUnits?.get(file);
    const generatedAfter = nextUnits?.get(file);
    if (generatedBefore && generatedAfter) {
      for (const u of generatedBefore) services.push(u.name);
      const render = async (
        list: GeneratedUnit[],
        env: (p: string) => Promise<Buffer | undefined>,
      ) => {
        const parts: string[] = [];
        for (const u of [...list].sort((a, b) => (a.name < b.name ? -1 : 1)))
          parts.push(`---${u.name}---\n${await comparable(u.text, env)}`);
        return parts.join('');
      };
      before = await render(generatedBefore, hostEnv);
      after = await render(generatedAfter, nextEnv);
    } else {
      before = await comparable(f.data.toString('utf8'), hostEnv);
      after = await comparable(ours.toString('utf8'), nextEnv);
      const service = bundle.services.find((s) => s.unit === file)?.service;
      if (service) services.push(service);
    }
    if (before === after) same.push(f.bundlePath);
  }

  // The stand-in for the bundle in the live generation.
  const foreignByPath = new Map(foreign.map((f) => [f.bundlePath, f]));
  const files = new Map<string, Buffer>();
  const masked = new Map<string, string>();
  for (const [path, data] of bundle.files) {
    const f = foreignByPath.get(path);
    const ownMasked = bundle.masked.get(path) ?? '';
    if (f) {
      const keep = same.includes(path);
      files.set(path, keep ? data : f.data);
      masked.set(path, keep ? ownMasked : maskValues(f.data.toString('utf8'), secrets));
      continue;
    }
    const unitOf = /^quadlet\/([^/]+)\.d\//.exec(path)?.[1];
    if (unitOf !== undefined) {
      // A drop-in is part of its unit: new with a new unit, compared with an adopted one.
      if (foreignByPath.has(`quadlet/${unitOf}`)) {
        files.set(path, data);
        masked.set(path, ownMasked);
      }
      continue;
    }
    if (/^(quadlet|caddy|systemd)\//.test(path)) continue;
    files.set(path, data);
    masked.set(path, ownMasked);
  }
  const adoptedUnits = new Set(units.map((f) => f.bundlePath.slice('quadlet/'.length)));
  const standIn: RenderedBundle = {
    name,
    version: 'adopted',
    services: bundle.services.filter((s) => adoptedUnits.has(s.unit)),
    files,
    masked,
  };
  const view: GenerationView = {
    generation: live?.generation ?? 0,
    bundles: new Map([...(live?.bundles ?? new Map()), [name, standIn]]),
  };
  const liveGraph =
    liveGenerated === undefined
      ? undefined
      : graphOf({ generated: liveGenerated }, plainUnitsOf(view));
  const nextGraph =
    nextGenerated === undefined
      ? undefined
      : graphOf({ generated: nextGenerated }, plainUnitsOf(next));

  return {
    foreign,
    view,
    liveGraph,
    nextGraph,
    services: [...new Set(services)].sort(),
    same,
    report: await describeAdoption(foreign, same, bundle, next.generation, secrets),
    notes,
  };
}

/**
 * `adopt /etc/containers/systemd/x.container (same service as quadlet/x.container)`
 * for each file, then the unified diff of each one that differs from the
 * bundle's rendering (secret values masked on both sides).
 */
async function describeAdoption(
  foreign: readonly ForeignFile[],
  same: readonly string[],
  bundle: RenderedBundle,
  generation: number,
  secrets: readonly string[],
): Promise<string> {
  const { createTwoFilesPatch } = await import('diff');
  const lines: string[] = [];
  const patches: string[] = [];
  for (const f of foreign) {
    const ours = bundle.masked.get(f.bundlePath) ?? '';
    const theirs = maskValues(f.data.toString('utf8'), secrets);
    const what =
      f.kind === 'site'
        ? theirs === ours
          ? 'same site'
          : 'site differs, diff below'
        : same.includes(f.bundlePath)
          ? theirs === ours
            ? 'same unit'
            : 'same service, text differs, diff below'
          : 'service differs, diff below';
    lines.push(`adopt   ${f.hostPath} (${what}: ${bundle.name}/${f.bundlePath})`);
    if (theirs === ours) continue;
    patches.push(
      createTwoFilesPatch(
        f.hostPath,
        `${bundle.name}/${f.bundlePath}`,
        theirs,
        ours,
        'adopted',
        `generation ${generation}`,
        { context: 3 },
      ),
    );
  }
  return `${lines.join('\n')}\n${patches.length ? `\n${patches.join('')}` : ''}`;
}

// ---------------------------------------------------------------------------
// Accounts and paths the other tooling made

export interface TakeOverInput {
  root: string;
  bundle: string;
  effects: SysusersEffects;
  tmpfiles: readonly TmpfilesEntry[];
  accounts: Accounts;
  records: CreatedRecords;
  /** The users and groups the host's grant for the bundle names (USERS=, GROUPS=). */
  granted: { users: readonly string[]; groups: readonly string[] };
}

/**
 * What an adoption takes over besides the files: the service accounts the
 * other tooling made before (an Ansible role's `authentik` user), and the
 * paths it made for them. An install refuses to touch what exists and is
 * not the bundle's (intake/ownership.ts); an adoption makes it the
 * bundle's, narrowly:
 *
 * - a user or group of the bundle's `u`/`g` lines that exists, is no other
 *   bundle's, and that the host's grant for the bundle names (the operator
 *   already agreed that its containers run as it);
 * - a path of its tmpfiles.d lines (and each directory on the way from its
 *   state root) that exists, is no other bundle's, is not a symbolic link,
 *   and is owned by one of those users or groups (the service's own data
 *   directory, as the role made it).
 *
 * Anything else that exists stays refused, as by an install.
 */
export async function planTakeOver(input: TakeOverInput): Promise<CreatedRecord> {
  const take: CreatedRecord = { users: [], groups: [], paths: [] };
  const others = (kind: keyof CreatedRecord, name: string) =>
    Object.entries(input.records.bundles).some(
      ([bundle, r]) => bundle !== input.bundle && r[kind].includes(name),
    );
  const own = input.records.bundles[input.bundle];
  const uids = new Set<number>();
  const gids = new Set<number>();
  for (const created of input.effects.createdBy.values()) {
    if (created.kind === 'user') {
      const user = await input.accounts.user(created.name);
      if (!user || others('users', created.name)) continue;
      if (own?.users.includes(created.name) || input.granted.users.includes(created.name)) {
        if (!own?.users.includes(created.name)) take.users.push(created.name);
        uids.add(user.uid);
      }
    } else {
      const group = await input.accounts.group(created.name);
      if (!group || others('groups', created.name)) continue;
      if (own?.groups.includes(created.name) || input.granted.groups.includes(created.name)) {
        if (!own?.groups.includes(created.name)) take.groups.push(created.name);
        gids.add(group.gid);
      }
    }
  }
  if (uids.size + gids.size > 0) {
    for (const entry of input.tmpfiles) {
      for (const path of tmpfilesChain(entry.path)) {
        const st = await lstat(join(input.root, path)).catch(() => undefined);
        if (!st) break;
        if (st.isSymbolicLink() || others('paths', path)) break;
        if (own?.paths.includes(path) || take.paths.includes(path)) continue;
        if (!uids.has(st.uid) && !gids.has(st.gid)) break;
        take.paths.push(path);
      }
    }
  }
  return take;
}

/** A tmpfiles.d path and the directories between its state root and it, outermost first. */
function tmpfilesChain(path: string): string[] {
  const root = stateRootOf(path);
  if (root === undefined) return [path];
  const parts = path.slice(root.length).split('/');
  return parts.map((_, i) => `${root}${parts.slice(0, i + 1).join('/')}`);
}

/** `user demo, group demo, /var/lib/demo`, for the operator. */
export function describeTakeOver(take: CreatedRecord): string {
  return [
    ...take.users.map((u) => `user ${u}`),
    ...take.groups.map((g) => `group ${g}`),
    ...take.paths,
  ].join(', ');
}
