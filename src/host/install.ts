/**
 * `rick-install <bundle.tgz>`: the install pipeline, also what `update`
 * calls for each release it takes.
 *
 *   verify signature, read bundle → lock → recover from a crashed run
 *   (src/host/recovery.ts) → version policy → prerequisites (podman,
 *   infrastructure groups, unit names, the unit link) → drift of what is
 *   carried → secrets → systemd-sysusers → resolve facts → substitute →
 *   systemd-tmpfiles → intent record → write generation, quadlet dry-run →
 *   plan on the generated units → pull images → flip → daemon-reload → stop
 *   removed, restart changed → health gate (or roll back and quarantine) →
 *   record state → drop the intent → prune
 *
 * `preparePlan` is everything up to the write, shared with `plan`, which
 * changes nothing on the host.
 */
import { lstat, mkdir, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import semver from 'semver';
import type { Manifest } from '../bundle/manifest.js';
import { runQuadletDryRun } from '../bundle/quadlet.js';
import { bundleSysusers } from '../bundle/sysusers.js';
import type { Output } from '../cli/run.js';
import { RickError } from '../errors.js';
import {
  type CheckUnits,
  graphOf,
  readGenerationGraph,
  type UnitCheck,
} from './activation/graph.js';
import { pullImages } from './activation/images.js';
import {
  type ActivationPlan,
  formatPlan,
  planActivation,
  type UnitGraphs,
} from './activation/plan.js';
import { activate, describeFailure } from './activation/run.js';
import { findDrift, refuseCarriedDrift } from './drift.js';
import { checkpoint } from './fault.js';
import { type RecordedFacts, renderMasked } from './generation-files.js';
import {
  carryBundle,
  checkQuadletLink,
  ensureHostLinks,
  generationDir,
  INSTALLER_FILE,
  listGenerations,
  pruneGenerations,
  readGeneration,
  readLiveGenerationNumber,
  type StoredBundle,
  type StoredGeneration,
  writeGeneration,
} from './generations.js';
import { checkRequiredAccounts, type FactValues, resolveFacts } from './intake/facts.js';
import { readSecretsFileIfPresent } from './intake/secrets.js';
import { requiredOwner } from './intake/signature.js';
import { readVerifiedBundle, type VerifiedBundle } from './intake/trust.js';
import { acquireLock } from './lock.js';
import { type HostPaths, hostPaths, secretsFileFor } from './paths.js';
import { checkPodmanVersion } from './prerequisites.js';
import { clearIntent, type Log, reconcile, writeIntent } from './recovery.js';
import { bundleState, type HostState, quarantine, readState, writeState } from './state.js';
import { substituteBundle, substituteBundleNormalized } from './substitute.js';
import type { Host } from './system.js';
import { decideVersion } from './version-policy.js';

/** What every rick-install command needs from the world outside the process. */
export interface InstallerDeps {
  output: Output;
  /** The host port for a live host (`root` undefined) or a `--root DIR` tree. */
  host: (root: string | undefined) => Host;
  /**
   * Checks a generation's unit directory with podman's quadlet in dry-run
   * and returns the units it generates (activation plans on them), or why it
   * was skipped. Default: runQuadletDryRun.
   */
  validateUnits?: CheckUnits;
}

export interface InstallOptions {
  bundlePath: string;
  /** Default `<bundlePath>.sig`. */
  signaturePath?: string;
  /** Default /etc/rick/keys (under --root). */
  keyringPath?: string;
  /** Default /etc/rick/secrets/<bundle>.env (under --root). */
  secretsPath?: string;
  allowDowngrade?: boolean;
  /** `--root DIR`. */
  root?: string;
  /** Generations to keep; stored in state.json once given. */
  keepGenerations?: number;
}

export interface InstallResult {
  outcome: 'installed' | 'noop';
  bundle: string;
  version: string;
  /** The live generation after the run. */
  generation?: number;
  previousGeneration?: number;
  plan?: ActivationPlan;
  notes: string[];
}

export type { Log };

export async function defaultValidateUnits(unitDir: string, offline: boolean): Promise<UnitCheck> {
  let result: Awaited<ReturnType<typeof runQuadletDryRun>>;
  try {
    result = await runQuadletDryRun(unitDir);
  } catch (error) {
    // An offline image may be built on a machine without podman; a live host must have it.
    if (offline && error instanceof RickError && error.code === 'PREREQUISITE_MISSING') {
      return { skipped: `quadlet dry-run skipped: ${error.message}` };
    }
    throw error;
  }
  if (!result.ok) {
    throw new RickError(
      'QUADLET_REJECTED',
      `podman's quadlet rejects the new generation's units: ${result.output.join(' | ')}`,
      { hint: 'the bundle does not suit this podman; nothing was changed' },
    );
  }
  return { generated: result.generated };
}

// ---------------------------------------------------------------------------
// Preparation (shared with `plan`)

export interface PreparedInstall {
  manifest: Manifest;
  /** The bundle as it will be written (rendered for `generation`). */
  bundle: StoredBundle;
  live: StoredGeneration | undefined;
  next: StoredGeneration;
  plan: ActivationPlan;
  /** Rendered tmpfiles.d fragments, applied just before the write. */
  tmpfiles: Map<string, Buffer>;
  notes: string[];
  /** The installed version again, to replace its hand-changed live files. */
  repair: boolean;
}

export type Preparation =
  | { kind: 'noop'; manifest: Manifest; reason: string }
  | ({ kind: 'install' } & PreparedInstall);

interface PrepareContext {
  paths: HostPaths;
  host: Host;
  state: HostState;
  log: Log;
  /** Plan only: nothing on the host may change (no sysusers). */
  dryRun: boolean;
}

function recordFacts(manifest: Manifest, values: FactValues): RecordedFacts {
  const facts: RecordedFacts = { gid: {}, uid: {}, secrets: [] };
  for (const fact of manifest.facts) {
    const value = values.get(`${fact.kind}:${fact.name}`);
    if (fact.kind === 'secret') facts.secrets.push(fact.name);
    else if (value !== undefined && /^[0-9]+$/.test(value))
      facts[fact.kind][fact.name] = Number(value);
  }
  return facts;
}

async function nextGenerationNumber(paths: HostPaths, state: HostState): Promise<number> {
  const existing = await listGenerations(paths);
  return Math.max(state.lastGeneration, ...existing, 0) + 1;
}

function checkUnitNames(manifest: Manifest, live: StoredGeneration | undefined): void {
  const mine = new Set(
    manifest.files.filter((f) => f.kind === 'quadlet').map((f) => basename(f.path)),
  );
  const clashes: string[] = [];
  for (const other of live?.bundles.values() ?? []) {
    if (other.name === manifest.name) continue;
    for (const f of other.manifest.files) {
      if (f.kind === 'quadlet' && mine.has(basename(f.path))) {
        clashes.push(`${basename(f.path)} (bundle ${other.name})`);
      }
    }
  }
  if (clashes.length) {
    throw new RickError(
      'BUNDLE_INVALID',
      `bundle ${manifest.name} ships units another installed bundle owns: ${clashes.join(', ')}`,
      { hint: 'systemd unit names are global on a host; rename the units in one of the bundles' },
    );
  }
}

async function applyFragments(
  paths: HostPaths,
  _host: Host,
  bundle: string,
  fragments: ReadonlyMap<string, Buffer>,
  apply: (files: readonly string[]) => Promise<string | undefined>,
): Promise<string | undefined> {
  if (fragments.size === 0) return undefined;
  const dir = join(paths.stateDir, `.apply-${process.pid}`);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  try {
    const files: string[] = [];
    for (const [path, data] of fragments) {
      const file = join(dir, `${bundle}-${basename(path)}`);
      await writeFile(file, data, { mode: 0o600 });
      files.push(file);
    }
    return await apply(files);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Signature, then archive and manifest: read-only, so it may run before the lock. */
export function readBundleFor(options: InstallOptions, paths: HostPaths): Promise<VerifiedBundle> {
  return readVerifiedBundle({
    bundlePath: options.bundlePath,
    signaturePath: options.signaturePath,
    keyringPath: options.keyringPath ?? paths.keysDir,
    requireKeyOwner: requiredOwner(),
  });
}

export async function prepareInstall(
  options: InstallOptions,
  ctx: PrepareContext,
  preverified?: VerifiedBundle,
): Promise<Preparation> {
  const { paths, host, state, log } = ctx;
  const notes: string[] = [];
  const verified = preverified ?? (await readBundleFor(options, paths));
  const { manifest, files } = verified.contents;
  log(
    `verified ${basename(options.bundlePath)}: ${manifest.name} ${manifest.version}, signed by ${verified.signer.fingerprint}`,
  );
  await checkpoint('verified');

  const liveNumber = await readLiveGenerationNumber(paths);
  const decision = decideVersion(manifest.version, bundleState(state, manifest.name), {
    allowDowngrade: options.allowDowngrade ?? false,
  });
  // The installed version is a no-op, unless its live files were changed by
  // hand: installing it again renders them anew (how drift is repaired).
  let repair = false;
  if (decision.action === 'noop') {
    const own =
      liveNumber === undefined
        ? []
        : (await findDrift(paths, liveNumber)).entries.filter((e) => e.bundle === manifest.name);
    if (!own.length) return { kind: 'noop', manifest, reason: decision.reason };
    repair = true;
    log(
      `${manifest.name} ${manifest.version} is installed, but its live files were changed by hand (${own.map((e) => e.file).join(', ')}): rendering it again`,
    );
  }
  if (decision.action === 'refuse') {
    throw new RickError(decision.code, decision.message, { hint: decision.hint });
  }

  // Prerequisites, before anything on the host changes.
  const version = await host.podmanVersion();
  if (version === undefined && !host.systemctl) {
    notes.push('podman version not checked (offline tree)');
  } else {
    checkPodmanVersion(version, manifest);
  }
  await checkRequiredAccounts(manifest, files, host.accounts);
  // podman loads units from whatever /etc/containers/systemd/rick leads to:
  // a link rick did not make would bypass the generation and its gate.
  const planted = await checkQuadletLink(paths);
  if (planted) {
    throw new RickError('DRIFT', `${planted.file} ${planted.problem}`, {
      hint: `rick creates it once and never follows another: check what it leads to, remove it (rm ${planted.file}) and install again`,
    });
  }
  const shipsInstaller = manifest.files.some((f) => f.path === INSTALLER_FILE);
  if (liveNumber !== undefined) {
    // What is carried on must be what the live generation recorded.
    const discarded = await refuseCarriedDrift(paths, liveNumber, manifest.name, !shipsInstaller);
    if (discarded.length && !repair) {
      notes.push(
        `hand changes to ${manifest.name}'s live files are not carried on: ${discarded.map((e) => e.file).join(', ')}`,
      );
    }
  }
  const live =
    liveNumber === undefined
      ? undefined
      : await readGeneration(paths, liveNumber, {
          installer: !shipsInstaller,
          replacing: manifest.name,
        });
  checkUnitNames(manifest, live);
  const secretsPath = options.secretsPath ?? secretsFileFor(paths, manifest.name);
  const needsSecrets = manifest.facts.some((f) => f.kind === 'secret');
  const secrets = needsSecrets
    ? await readSecretsFileIfPresent(secretsPath, { requireOwner: requiredOwner() })
    : undefined;

  const sysusers = new Map<string, Buffer>();
  const tmpfilesSources = new Map<string, Buffer>();
  for (const f of manifest.files) {
    const data = files.get(f.path);
    if (!data) continue;
    if (f.kind === 'sysusers') sysusers.set(f.path, data);
    if (f.kind === 'tmpfiles') tmpfilesSources.set(f.path, data);
  }
  for (const [path, data] of sysusers) {
    if (data.includes('@@rick:')) {
      throw new RickError(
        'BUNDLE_INVALID',
        `${path}: sysusers fragments cannot hold placeholders`,
        {
          hint: 'they run before host facts are known; name users and groups instead',
        },
      );
    }
  }

  let values: FactValues;
  if (ctx.dryRun) {
    const effects = bundleSysusers(manifest, files);
    values = await resolveFacts(manifest, host.accounts, secrets, {
      secretsPath,
      pending: { users: effects.users, groups: effects.groups },
    });
  } else {
    // Every secret and existing account must be there before sysusers changes the host.
    const effects = bundleSysusers(manifest, files);
    const early = await resolveFacts(manifest, host.accounts, secrets, {
      secretsPath,
      pending: { users: effects.users, groups: effects.groups },
    });
    // Every placeholder must resolve, too: a refusal after sysusers ran would leave its accounts behind.
    substituteBundleNormalized(verified.contents, early);
    const note = await applyFragments(paths, host, manifest.name, sysusers, (f) =>
      host.applySysusers(f),
    );
    if (note) notes.push(note);
    values = await resolveFacts(manifest, host.accounts, secrets, { secretsPath });
  }

  const generation = await nextGenerationNumber(paths, state);
  const rendered = substituteBundle(verified.contents, values, generation);
  const facts = recordFacts(manifest, values);
  const secretValues = new Map<string, string>();
  for (const name of facts.secrets) {
    const value = values.get(`secret:${name}`);
    if (value !== undefined) secretValues.set(name, value);
  }
  const bundleFiles = new Map<string, Buffer>();
  const sources = new Map<string, Buffer>();
  const masked = new Map<string, string>();
  const tmpfiles = new Map<string, Buffer>();
  let installer: Buffer | undefined;
  for (const f of manifest.files) {
    const out = rendered.get(f.path);
    const source = files.get(f.path);
    if (!out || !source) continue;
    if (f.kind === 'installer') {
      if (f.path === INSTALLER_FILE) installer = out;
      continue;
    }
    bundleFiles.set(f.path, out);
    sources.set(f.path, source);
    masked.set(
      f.path,
      renderMasked(source.toString('utf8'), { bundle: manifest.name, generation, facts }),
    );
    if (f.kind === 'tmpfiles') tmpfiles.set(f.path, out);
  }
  const bundle: StoredBundle = {
    name: manifest.name,
    version: manifest.version,
    services: manifest.services,
    files: bundleFiles,
    masked,
    manifest,
    manifestBytes: verified.contents.manifestBytes,
    facts,
    sources,
    secrets: secretValues,
  };
  const bundles = new Map<string, StoredBundle>();
  for (const other of live?.bundles.values() ?? []) {
    if (other.name !== manifest.name) bundles.set(other.name, carryBundle(other, generation));
  }
  bundles.set(manifest.name, bundle);
  const next: StoredGeneration = {
    generation,
    bundles,
    installer: installer ?? live?.installer,
    record: {
      schemaVersion: 1,
      generation,
      createdAt: host.clock.now().toISOString(),
      reason: `install ${manifest.name} ${manifest.version}`,
      bundles: {},
    },
  };
  const plan = planActivation(live, next);
  return { kind: 'install', manifest, bundle, live, next, plan, tmpfiles, notes, repair };
}

// ---------------------------------------------------------------------------
// Install

export interface InstallContext {
  host: Host;
  log: Log;
  validateUnits?: InstallerDeps['validateUnits'];
}

/** `--root DIR` must name an existing directory: a typo must not grow a tree. */
export async function checkRoot(root: string | undefined): Promise<void> {
  if (root === undefined) return;
  const st = await stat(root).catch(() => undefined);
  if (!st?.isDirectory()) {
    throw new RickError('USAGE', `--root ${root} is not a directory`, {
      hint: 'create the image or test tree first',
    });
  }
}

async function pathExists(path: string): Promise<boolean> {
  return lstat(path).then(
    () => true,
    () => false,
  );
}

/** Installs one bundle. Throws RickError (ROLLED_BACK, ROLLBACK_FAILED, …) on failure. */
export async function installBundle(
  options: InstallOptions,
  ctx: InstallContext,
): Promise<InstallResult> {
  const { host, log } = ctx;
  await checkRoot(options.root);
  const paths = hostPaths(options.root ?? '/');
  const validate = ctx.validateUnits ?? defaultValidateUnits;
  // A bundle that is untrusted or malformed is refused before the lock, so
  // that such a refusal leaves even a fresh host without a trace.
  const verified = await readBundleFor(options, paths);
  const lock = await acquireLock(paths.lockFile, {
    purpose: `install ${basename(options.bundlePath)}`,
    now: () => host.clock.now(),
  });
  try {
    await checkpoint('locked');
    const state = await readState(paths.stateFile);
    await reconcile(paths, host, state, log, { check: validate });
    await checkpoint('cleaned');
    if (options.keepGenerations !== undefined) state.keepGenerations = options.keepGenerations;

    const prepared = await prepareInstall(
      options,
      { paths, host, state, log, dryRun: false },
      verified,
    );
    if (prepared.kind === 'noop') {
      log(
        `${prepared.manifest.name} ${prepared.manifest.version}: ${prepared.reason}; nothing to do`,
      );
      return {
        outcome: 'noop',
        bundle: prepared.manifest.name,
        version: prepared.manifest.version,
        generation: state.live,
        notes: [],
      };
    }
    const { manifest, live, next, notes } = prepared;
    let plan = prepared.plan;
    let graphs: UnitGraphs = {};
    const offline = !host.systemctl;
    // The live generation's units as quadlet generates them, read while the
    // next generation is written. An offline tree starts nothing: its plan
    // is only printed, and reads the live pods from the next generation.
    const liveGraph =
      live && !offline
        ? readGenerationGraph(generationDir(paths, live.generation), validate, offline)
        : Promise.resolve(undefined);
    const liveGraphSettled = liveGraph.then(
      () => undefined,
      () => undefined,
    );
    // tmpfiles.d needs only the accounts systemd-sysusers made, and the
    // generation does not need what tmpfiles.d creates: it runs while the
    // generation is written, and both end before anything goes live.
    const tmpfiles = applyFragments(paths, host, manifest.name, prepared.tmpfiles, (f) =>
      host.applyTmpfiles(f),
    );
    const tmpfilesSettled = tmpfiles.then(
      () => undefined,
      () => undefined,
    );
    await checkpoint('sysusers-applied');
    for (const note of notes) log(`note: ${note}`);

    // The intent record comes first: whatever this run leaves from here on,
    // the next run knows what it was and undoes only that.
    const hadGenerations = await pathExists(paths.generationsDir);
    await writeIntent(paths, {
      operation: 'install',
      reason: next.record.reason,
      ...(live ? { from: live.generation } : {}),
      to: next.generation,
      created: true,
      time: next.record.createdAt,
    });
    try {
      await writeGeneration(
        paths,
        {
          generation: next.generation,
          createdAt: next.record.createdAt,
          reason: next.record.reason,
          bundles: next.bundles,
          installer: next.installer,
        },
        {
          // podman's quadlet checks the units before anything goes live, and
          // the plan follows the units it generates. The images they need
          // are pulled here too: a pull that fails leaves no generation.
          check: async (dir) => {
            const [checked, tmpNote, liveUnits] = await Promise.all([
              validate(join(dir, 'quadlet'), offline),
              tmpfiles,
              liveGraph,
            ]);
            if (tmpNote) log(`note: ${tmpNote}`);
            if ('skipped' in checked) log(`note: ${checked.skipped}`);
            graphs = { live: liveUnits, next: graphOf(checked) };
            plan = planActivation(live, next, graphs);
            log(formatPlan(plan, { offline }).trimEnd());
            if (offline) {
              if (plan.images.length) log('note: offline tree (--root): no images pulled');
            } else {
              await pullImages(host, plan.images, log);
            }
          },
        },
      );
    } catch (error) {
      // Refused before anything went live (writeGeneration removed what it
      // wrote): leave the host as this run found it, once tmpfiles.d and the
      // live graph are done.
      await Promise.all([tmpfilesSettled, liveGraphSettled]);
      if (!hadGenerations) await rmdir(paths.generationsDir).catch(() => {});
      await clearIntent(paths);
      throw error;
    }
    await checkpoint('generation-renamed');
    for (const note of await ensureHostLinks(paths)) log(`note: ${note}`);
    await checkpoint('links-created');

    const outcome = await activate({ host, paths, log }, live, next, graphs, plan);
    const now = host.clock.now().toISOString();
    state.lastGeneration = Math.max(state.lastGeneration, next.generation);
    const entry = bundleState(state, manifest.name);
    if (!outcome.ok) {
      // Installed again to repair hand changes, the version is not to blame for a failed gate.
      if (!prepared.repair) quarantine(state, manifest.name, manifest.version);
      state.history.push({
        generation: next.generation,
        bundle: manifest.name,
        version: manifest.version,
        time: now,
        outcome: outcome.restored ? 'rolled-back' : 'rollback-failed',
        detail: describeFailure(outcome.failure),
      });
      if (!outcome.restored) {
        // Whatever is live now is not known healthy; recovery must not undo it blindly.
        state.live = live?.generation;
      }
      await writeState(paths.stateFile, state);
      // Restored, nothing is in flight. Otherwise the record stays, so that
      // the next run puts the confirmed generation back again.
      if (outcome.restored) await clearIntent(paths);
      const back = live ? `generation ${live.generation}` : 'no generation';
      if (!outcome.restored) {
        throw new RickError(
          'ROLLBACK_FAILED',
          `${manifest.name} ${manifest.version} failed its health gate (${describeFailure(outcome.failure)}) and restoring ${back} failed too: ${outcome.restoreError}`,
          { hint: "the host needs attention: see `rick-install status` and the units' journals" },
        );
      }
      throw new RickError(
        'ROLLED_BACK',
        `${manifest.name} ${manifest.version} failed its health gate: ${describeFailure(outcome.failure)}; rolled back to ${back}${prepared.repair ? '' : ` and quarantined ${manifest.version}`}`,
        {
          hint: `fix the bundle and publish a new version; \`rick-install status\` shows the history`,
        },
      );
    }
    entry.installed = manifest.version;
    if (!entry.highest || semver.gt(manifest.version, entry.highest))
      entry.highest = manifest.version;
    state.bundles[manifest.name] = entry;
    state.live = next.generation;
    state.history.push({
      generation: next.generation,
      bundle: manifest.name,
      version: manifest.version,
      time: now,
      outcome: 'installed',
      ...(prepared.repair ? { detail: 'installed again over hand-changed files' } : {}),
    });
    await writeState(paths.stateFile, state);
    await checkpoint('state-written');
    await clearIntent(paths);
    const pruned = await pruneGenerations(paths, state.keepGenerations, state.live);
    if (pruned.length) log(`pruned generation(s) ${pruned.join(', ')}`);
    await checkpoint('pruned');
    log(`installed ${manifest.name} ${manifest.version} as generation ${next.generation}`);
    return {
      outcome: 'installed',
      bundle: manifest.name,
      version: manifest.version,
      generation: next.generation,
      previousGeneration: live?.generation,
      plan,
      notes,
    };
  } finally {
    await lock.release();
  }
}
