/**
 * `rick-install <bundle.tgz>`: the install pipeline, also what `update`
 * calls for each release it takes.
 *
 *   verify signature, read bundle → lock → recover from a crashed run
 *   (src/host/recovery.ts) → version policy → the unit link, drift of what
 *   is carried → what the bundle may have here (groups, users, paths, unit
 *   names) → what the operator provides, judged in one pass (groups and
 *   users, secrets, grant: intake/readiness.ts) → podman → record what the
 *   fragments create → systemd-sysusers → resolve facts →
 *   substitute → systemd-tmpfiles → intent record → write generation,
 *   quadlet dry-run → plan on the generated units → pull images →
 *   databases and pre-flight (src/host/database/provision.ts) → flip →
 *   daemon-reload → stop removed, restart changed → health gate (or roll
 *   back and quarantine) → record state → drop the intent → prune
 *
 * `preparePlan` is everything up to the write, shared with `plan`, which
 * changes nothing on the host.
 */
import { lstat, mkdir, readFile, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import semver from 'semver';
import { analyzeBundleUnits, checkBundleUnits } from '../bundle/bundle-units.js';
import type { Manifest } from '../bundle/manifest.js';
import { plainBundleUnits } from '../bundle/plain-units.js';
import { runQuadletDryRun } from '../bundle/quadlet.js';
import { bundleSysusers } from '../bundle/sysusers.js';
import { bundleTmpfiles } from '../bundle/tmpfiles.js';
import type { Output } from '../cli/run.js';
import { RickError, wrapError } from '../errors.js';
import {
  type CheckUnits,
  graphOf,
  plainUnitsOf,
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
import {
  type AdoptionPlan,
  type AdoptOptions,
  adoptionProblems,
  DEFAULT_CADDY_SITES,
  describeTakeOver,
  planAdoption,
  planTakeOver,
  readForeignFiles,
  withoutAdopted,
} from './adopt.js';
import { moveAdoptedFiles, settleAdoptions } from './adopt-record.js';
import {
  type CandidateCheck,
  checkCandidate,
  PREVIEW_ACCOUNT_ID,
  previewGeneration,
} from './candidate-checks.js';
import { prepareDatabases } from './database/provision.js';
import { findDrift, refuseCarriedDrift } from './drift.js';
import { checkpoint } from './fault.js';
import { type RecordedFacts, renderMasked } from './generation-files.js';
import {
  carryBundle,
  checkQuadletLink,
  ensureHostLinks,
  generationDir,
  hostNeedsOf,
  INSTALLER_FILE,
  listGenerations,
  pruneGenerations,
  readGeneration,
  readLiveGenerationNumber,
  type StoredBundle,
  type StoredGeneration,
  writeGeneration,
} from './generations.js';
import { chooseInstaller, installerVersion, readInstallerVersion } from './installer-version.js';
import { accountPolicyProblems, readInfrastructureGroups } from './intake/account-policy.js';
import { type FactValues, resolveFacts } from './intake/facts.js';
import { checkIdentity, type Expectation, expectationFor } from './intake/identity.js';
import {
  addCreated,
  adoptCreated,
  type CreatedRecord,
  type CreatedRecords,
  planOwnership,
  readCreatedRecords,
  writeCreatedRecords,
} from './intake/ownership.js';
import {
  type Readiness,
  readinessRefusal,
  readReadiness,
  readyValues,
} from './intake/readiness.js';
import { readSecretsFileIfPresent } from './intake/secrets.js';
import { requiredOwner } from './intake/signature.js';
import { readVerifiedBundle, type VerifiedBundle } from './intake/trust.js';
import { checkUnitNamespace, RICK_QUADLET_LINK, readHostUnits } from './intake/unit-namespace.js';
import { isInterruption } from './interrupt.js';
import { acquireLock } from './lock.js';
import { type HostPaths, hostPaths, secretsFileFor } from './paths.js';
import { evaluatePolicy } from './policy/check.js';
import { readGrant } from './policy/grant.js';
import type { PolicyReport } from './policy/judge.js';
import { checkPodmanVersion } from './prerequisites.js';
import {
  clearIntent,
  intentPhases,
  type Log,
  reconcile,
  recoverFromInterruption,
  writeIntent,
} from './recovery.js';
import {
  bundleState,
  type HostState,
  quarantine,
  readState,
  readStateFile,
  writeState,
} from './state.js';
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
  /**
   * Asks the operator a question on the terminal (`rick-install --grant`);
   * resolves undefined when there is no terminal to ask on.
   */
  prompt?: (question: string) => Promise<string | undefined>;
}

export interface InstallOptions {
  bundlePath: string;
  /**
   * The bundle and version the file must hold (`update`, `--expect`);
   * default: what the file name `<name>-<version>.tgz` says.
   */
  expect?: Expectation;
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
  /**
   * `rick-install adopt`: take over the host's files that have the names
   * of the bundle's units and sites (src/host/adopt.ts).
   */
  adopt?: AdoptOptions;
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

/**
 * podman's quadlet judges the units. `repoRoot`: a rick checkout whose
 * .cache holds the generator (scripts/fetch-quadlet.sh), looked at as
 * rick-bundle does, before the system's.
 */
export async function defaultValidateUnits(
  unitDir: string,
  offline: boolean,
  repoRoot?: string,
): Promise<UnitCheck> {
  let result: Awaited<ReturnType<typeof runQuadletDryRun>>;
  try {
    result = await runQuadletDryRun(unitDir, repoRoot === undefined ? {} : { repoRoot });
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
  /** The bundle judged against this host's grant (`plan` shows it). */
  policy: PolicyReport;
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
  /** Checks the candidate's plain units and Caddy sites. Default: checkCandidate. */
  checkCandidate?: CandidateCheck;
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

/**
 * The bundle's units against the other installed bundles' and the host's:
 * systemd unit names are global (see intake/unit-namespace.ts).
 */
async function checkUnitNames(
  paths: HostPaths,
  manifest: Manifest,
  files: ReadonlyMap<string, Buffer>,
  live: StoredGeneration | undefined,
  adopt?: AdoptOptions,
): Promise<void> {
  // Plain systemd units (systemd/) share the namespace with quadlet's services.
  const units = [...checkBundleUnits(manifest, files), ...plainBundleUnits(manifest)];
  const others = [...(live?.bundles.values() ?? [])]
    .filter((b) => b.name !== manifest.name)
    .map((b) => ({
      bundle: b.name,
      units: [...analyzeBundleUnits(b.manifest, b.files).units, ...plainBundleUnits(b.manifest)],
    }));
  let hostUnits = await readHostUnits(paths.root, RICK_QUADLET_LINK);
  if (adopt) {
    const foreign = await readForeignFiles(paths.root, manifest, adopt.caddySites);
    const problems = adoptionProblems(manifest, live, foreign, adopt.caddySites);
    if (problems) throw problems;
    hostUnits = await withoutAdopted(paths.root, hostUnits, foreign);
  }
  try {
    checkUnitNamespace(manifest.name, units, others, hostUnits);
  } catch (error) {
    if (!(error instanceof RickError)) throw error;
    if (adopt) {
      throw new RickError('BUNDLE_INVALID', error.message, {
        hint: `adopt takes over only the files of the top level of /etc/containers/systemd and of ${adopt.caddySites} that have the names of the bundle's units and sites; rename or remove the others named here first`,
      });
    }
    const hint = await adoptHint(paths, manifest);
    if (!hint) throw error;
    throw new RickError('BUNDLE_INVALID', error.message, { hint });
  }
}

/**
 * The hint of a refused install on a host where other tooling deployed the
 * bundle's units: they can be taken over. Undefined when there are none.
 */
async function adoptHint(paths: HostPaths, manifest: Manifest): Promise<string | undefined> {
  const foreign = await readForeignFiles(paths.root, manifest, DEFAULT_CADDY_SITES).catch(() => []);
  const named = foreign.filter((f) => f.kind === 'unit').map((f) => f.hostPath);
  if (!named.length) return undefined;
  return `${named.join(', ')} ${named.length > 1 ? 'have' : 'has'} the name of a unit of the bundle: take ${named.length > 1 ? 'them' : 'it'} over with \`rick-install adopt BUNDLE.tgz\` (\`rick-install plan --adopt BUNDLE.tgz\` shows the differences first)`;
}

/**
 * What the bundle may name (account-policy.ts) and what existing accounts
 * and paths it may touch (ownership.ts); throws BUNDLE_INVALID naming every
 * problem. Returns what its fragments will create, for the record.
 */
async function checkOwnership(
  paths: HostPaths,
  host: Host,
  manifest: Manifest,
  files: ReadonlyMap<string, Buffer>,
  live: StoredGeneration | undefined,
  adopt?: AdoptOptions,
): Promise<{
  records: CreatedRecords;
  adopted: boolean;
  creates: CreatedRecord;
  /** Adopting: the existing accounts and paths that become the bundle's (adopt.ts). */
  takeOver?: CreatedRecord;
}> {
  const effects = bundleSysusers(manifest, files);
  const tmpfiles = bundleTmpfiles(manifest, files);
  const infrastructureGroups = await readInfrastructureGroups(paths.config);
  const recorded = await readCreatedRecords(paths.createdFile);
  const records =
    recorded ??
    (await adoptCreated(paths.root, host.accounts, [...(live?.bundles.values() ?? [])]));
  let takeOver: CreatedRecord | undefined;
  if (adopt) {
    const owner = requiredOwner();
    const grant = await readGrant(
      paths.root,
      manifest.name,
      owner === undefined ? {} : { requireOwner: owner },
    );
    takeOver = await planTakeOver({
      root: paths.root,
      bundle: manifest.name,
      effects,
      tmpfiles,
      accounts: host.accounts,
      records,
      granted: { users: grant.needs.users, groups: grant.needs.groups },
    });
    addCreated(records, manifest.name, takeOver);
  }
  const plan = await planOwnership({
    root: paths.root,
    bundle: manifest.name,
    effects,
    tmpfiles,
    accounts: host.accounts,
    records,
  });
  const problems = [
    ...accountPolicyProblems({
      manifest,
      effects,
      tmpfiles,
      infrastructureGroups: new Set(infrastructureGroups),
    }),
    ...plan.problems,
  ];
  if (problems.length) {
    // Another tool's deployment of the bundle made what it names: adopt takes it over.
    const hint = adopt ? undefined : await adoptHint(paths, manifest);
    throw new RickError(
      'BUNDLE_INVALID',
      `bundle ${manifest.name} asks for what is not its own: ${problems.join('; ')}`,
      {
        hint: hint
          ? `${hint}; adopt also takes over the users and groups the grant names, and the paths they own`
          : `a bundle names only the users, groups and paths it creates, and the infrastructure groups of INFRASTRUCTURE_GROUPS in ${paths.config} (here: ${infrastructureGroups.join(', ') || 'none'})`,
      },
    );
  }
  // Adopted only when the live generation's bundles name something that exists.
  const adopted = recorded === undefined && Object.keys(records.bundles).length > 0;
  return { records, adopted, creates: plan.creates, ...(takeOver ? { takeOver } : {}) };
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

/**
 * The installer the next generation carries: the bundle's, unless the live
 * generation's is newer (src/host/installer-version.ts); then the live one
 * stays, with a note.
 */
async function installerFor(
  paths: HostPaths,
  /** The bundle and version, for the note. */
  bundle: string,
  carried: Buffer | undefined,
  live: StoredGeneration | undefined,
  notes: string[],
): Promise<Buffer | undefined> {
  const liveFile =
    live?.record.installer === undefined
      ? undefined
      : join(generationDir(paths, live.generation), INSTALLER_FILE);
  // The live installer's version matters only against one the bundle carries.
  const liveVersion =
    liveFile === undefined
      ? undefined
      : carried === undefined
        ? null
        : ((await readInstallerVersion(liveFile)) ?? null);
  const choice = chooseInstaller(
    bundle,
    carried === undefined ? undefined : (installerVersion(carried) ?? null),
    liveVersion,
  );
  if (choice.note) notes.push(choice.note);
  if (choice.take === 'carried') return carried;
  if (choice.take === 'none' || liveFile === undefined) return undefined;
  try {
    return await readFile(liveFile);
  } catch (error) {
    throw wrapError(error, 'IO_ERROR', `cannot read the live installer ${liveFile}`);
  }
}

/**
 * Signature, then archive and manifest, then identity: the verified
 * manifest must be the bundle and version asked for. Read-only, so it runs
 * before the lock.
 */
export async function readBundleFor(
  options: InstallOptions,
  paths: HostPaths,
): Promise<VerifiedBundle> {
  const fileName = basename(options.bundlePath);
  // Known before anything is read: a file that says nothing is refused at once.
  const expectation = options.expect ?? expectationFor(fileName, undefined);
  const verified = await readVerifiedBundle({
    bundlePath: options.bundlePath,
    signaturePath: options.signaturePath,
    keyringPath: options.keyringPath ?? paths.keysDir,
    requireKeyOwner: requiredOwner(),
    // With a root key, the keys the accepted key list names (src/trust/key-state.ts).
    keyListDir: paths.stateDir,
  });
  const { manifest } = verified.contents;
  checkIdentity({ bundle: manifest.name, version: manifest.version }, expectation, fileName);
  return verified;
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
    bundle: manifest.name,
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
  // What the bundle may have here, then prerequisites, before anything on the host changes.
  const ownership = await checkOwnership(paths, host, manifest, files, live, options.adopt);
  const takenOver = ownership.takeOver ? describeTakeOver(ownership.takeOver) : '';
  if (takenOver) {
    notes.push(
      `adopts ${takenOver}, which exist and are granted to ${manifest.name}: they are the bundle's from now on`,
    );
  }
  await checkUnitNames(paths, manifest, files, live, options.adopt);
  // Every missing group, user, secret and grant, in one refusal, before
  // anything changed (`plan` shows its plan before refusing a grant alone).
  const { readiness, secrets, secretsPath } = await readHostReadiness(
    options,
    paths,
    host,
    verified,
    live,
  );
  const refusal = readinessRefusal(readiness, { withPolicy: !ctx.dryRun });
  if (refusal) throw refusal;
  const { policy } = readiness;
  // After the operator's part, as the install judges it before the lock:
  // `plan` and `install` refuse the same host with the same first refusal.
  const version = await host.podmanVersion();
  if (version === undefined && !host.systemctl) {
    notes.push('podman version not checked (offline tree)');
  } else {
    checkPodmanVersion(version, manifest);
  }

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

  const generation = await nextGenerationNumber(paths, state);
  let values: FactValues;
  // Every secret and existing account must be there before sysusers changes the host.
  const effects = bundleSysusers(manifest, files);
  const pending = { users: effects.users, groups: effects.groups };
  const early = readyValues(readiness);
  // Every placeholder must resolve, too: a refusal after sysusers ran would leave its accounts behind.
  substituteBundleNormalized(verified.contents, early);
  // So must the plain units and Caddy sites that would go live (`plan` shows a refusal too).
  const check = ctx.checkCandidate ?? checkCandidate;
  const preview = previewGeneration(verified.contents, early, generation, live);
  notes.push(...(await check(live, preview, { paths, offline: !host.systemctl })));
  if (ctx.dryRun) {
    values = await resolveFacts(manifest, host.accounts, secrets, { secretsPath, pending });
  } else {
    // What the fragments are about to create is the bundle's from now on.
    const changed = addCreated(ownership.records, manifest.name, ownership.creates);
    if (changed || ownership.adopted || takenOver) {
      if (ownership.adopted) {
        log(
          `${paths.createdFile} was missing: the live generation's bundles adopted what their fragments name`,
        );
      }
      await writeCreatedRecords(paths.createdFile, ownership.records);
    }
    const note = await applyFragments(paths, host, manifest.name, sysusers, (f) =>
      host.applySysusers(f),
    );
    if (note) notes.push(note);
    values = await resolveFacts(manifest, host.accounts, secrets, { secretsPath });
  }

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
  const nextInstaller = await installerFor(
    paths,
    `${manifest.name} ${manifest.version}`,
    installer,
    live,
    notes,
  );
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
    installer: nextInstaller,
    record: {
      schemaVersion: 1,
      generation,
      createdAt: host.clock.now().toISOString(),
      reason: `install ${manifest.name} ${manifest.version}`,
      bundles: {},
    },
  };
  const plan = planActivation(live, next);
  return { kind: 'install', manifest, bundle, live, next, plan, tmpfiles, notes, repair, policy };
}

// ---------------------------------------------------------------------------
// Install

export interface InstallContext {
  host: Host;
  log: Log;
  validateUnits?: InstallerDeps['validateUnits'];
  /** The bundle, already verified (`rick-install --grant` verified it to show its needs). */
  verified?: VerifiedBundle;
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

/**
 * The checks of prepareInstall that refuse a bundle for what it is, run
 * before the lock (reading only) for a release the version policy would
 * install: what it may name and own here and its unit names first, whose
 * BUNDLE_INVALID says the bundle itself is wrong, then the policy, whose
 * POLICY_REFUSED says the host has not granted it yet. prepareInstall runs
 * them again under the lock.
 */
async function refuseUngranted(
  options: InstallOptions,
  paths: HostPaths,
  host: Host,
  verified: VerifiedBundle,
): Promise<void> {
  const { manifest, files } = verified.contents;
  const state = await readState(paths.stateFile);
  const decision = decideVersion(manifest.version, bundleState(state, manifest.name), {
    allowDowngrade: options.allowDowngrade ?? false,
    bundle: manifest.name,
  });
  if (decision.action !== 'install') return;
  let live: StoredGeneration | undefined;
  try {
    const liveNumber = await readLiveGenerationNumber(paths);
    live =
      liveNumber === undefined
        ? undefined
        : await readGeneration(paths, liveNumber, { installer: false });
  } catch {
    // An interrupted run may have left `current` unreadable: recovery, under
    // the lock, comes first, and prepareInstall judges then.
    return;
  }
  await checkOwnership(paths, host, manifest, files, live, options.adopt);
  await checkUnitNames(paths, manifest, files, live, options.adopt);
  const { readiness } = await readHostReadiness(options, paths, host, verified, live);
  const refusal = readinessRefusal(readiness, { withPolicy: true });
  if (refusal) throw refusal;
}

/**
 * What the operator must provide for the bundle (accounts, secrets, grant),
 * read in one pass (src/host/intake/readiness.ts); read-only.
 */
export async function readHostReadiness(
  options: InstallOptions,
  paths: HostPaths,
  host: Host,
  verified: VerifiedBundle,
  live: StoredGeneration | undefined,
): Promise<{
  readiness: Readiness;
  secrets: Map<string, string> | undefined;
  secretsPath: string;
}> {
  const { manifest, files } = verified.contents;
  const owner = requiredOwner();
  const policy = await evaluatePolicy({
    manifest,
    files,
    root: paths.root,
    accounts: host.accounts,
    live,
    ...(owner === undefined ? {} : { requireOwner: owner }),
  });
  const secretsPath = options.secretsPath ?? secretsFileFor(paths, manifest.name);
  const needsSecrets = manifest.facts.some((f) => f.kind === 'secret');
  const secrets = needsSecrets
    ? await readSecretsFileIfPresent(secretsPath, { requireOwner: owner })
    : undefined;
  const readiness = await readReadiness({
    manifest,
    files,
    accounts: host.accounts,
    secrets,
    secretsPath,
    policy,
    pendingValue: PREVIEW_ACCOUNT_ID,
  });
  return { readiness, secrets, secretsPath };
}

/** What the adopted files are against the prepared generation (src/host/adopt.ts). */
export async function adoptionFor(
  adopt: AdoptOptions,
  paths: HostPaths,
  prepared: PreparedInstall,
  check: CheckUnits,
  offline: boolean,
): Promise<AdoptionPlan> {
  return planAdoption({
    root: paths.root,
    live: prepared.live,
    next: prepared.next,
    bundle: prepared.manifest.name,
    foreign: await readForeignFiles(paths.root, prepared.manifest, adopt.caddySites),
    secrets: prepared.bundle.secrets.values(),
    check,
    offline,
  });
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
  const verified = ctx.verified ?? (await readBundleFor(options, paths));
  // Judged before the lock too (what it may own here, then what this host
  // granted), so that such a refusal leaves no trace at all.
  await refuseUngranted(options, paths, host, verified);
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
    // Adopting, the host's files stand for the bundle in the live generation.
    const adoption = options.adopt
      ? await adoptionFor(options.adopt, paths, prepared, validate, offline)
      : undefined;
    if (adoption) {
      log(adoption.report.trimEnd());
      notes.push(...adoption.notes);
    }
    const planLive = adoption?.view ?? live;
    // The live generation's units as quadlet generates them, read while the
    // next generation is written. An offline tree starts nothing: its plan
    // is only printed, and reads the live pods from the next generation.
    const liveGraph = adoption
      ? Promise.resolve(adoption.liveGraph)
      : live && !offline
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
            graphs = { live: liveUnits, next: graphOf(checked, plainUnitsOf(next)) };
            plan = planActivation(planLive, next, graphs);
            log(
              formatPlan(plan, {
                offline,
                ...(adoption ? { adopted: new Set(adoption.services) } : {}),
              }).trimEnd(),
            );
            if (offline) {
              if (plan.images.length) log('note: offline tree (--root): no images pulled');
            } else {
              await pullImages(host, plan.images, log);
            }
            // The bundle's databases, then its containers as they will connect:
            // a refusal here leaves no generation and the live one as it was.
            await prepareDatabases({ host, paths, log }, live, next, manifest.name);
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
    for (const note of await ensureHostLinks(paths, hostNeedsOf(next))) log(`note: ${note}`);
    await checkpoint('links-created');
    let adoptedInto: string | undefined;
    if (adoption) {
      // Moved last, just before the flip: a crash from here on is settled by
      // the next run (adopt-record.ts), which puts them back unless this
      // generation was confirmed.
      adoptedInto = await moveAdoptedFiles(paths, {
        bundle: manifest.name,
        version: manifest.version,
        generation: next.generation,
        ...(live ? { from: live.generation } : {}),
        time: next.record.createdAt,
        services: adoption.services,
        files: adoption.foreign,
      });
      log(`moved ${adoption.foreign.map((f) => f.hostPath).join(', ')} to ${adoptedInto}`);
    }

    // A stop signal before the gate's verdict ends activate at a step
    // boundary (checkpoint, INTERRUPTED), handled below; one that comes
    // later lets the run record the verdict it has.
    const outcome = await activate(
      { host, paths, log, onFlip: intentPhases(paths) },
      live,
      next,
      graphs,
      plan,
    );
    const now = host.clock.now().toISOString();
    state.lastGeneration = Math.max(state.lastGeneration, next.generation);
    const entry = bundleState(state, manifest.name);
    if (!outcome.ok) {
      // Installed again to repair hand changes, the version is not to blame for a failed gate.
      if (!prepared.repair) {
        quarantine(state, manifest.name, manifest.version, {
          reason: 'health-gate',
          time: host.clock.now().toISOString(),
          detail: describeFailure(outcome.failure),
        });
      }
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
      // The adopted files go back with the generation before.
      if (adoption && outcome.restored) await settleAdoptions(paths, host, state, log);
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
      ...(adoptedInto ? { detail: `adopted the host's files, kept in ${adoptedInto}` } : {}),
    });
    await writeState(paths.stateFile, state);
    await checkpoint('state-written');
    if (adoption) await settleAdoptions(paths, host, state, log);
    await clearIntent(paths);
    const pruned = await pruneGenerations(paths, state.keepGenerations, state.live, state.history);
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
  } catch (error) {
    // Stopped by a signal: put back what this run changed before the lock goes.
    if (isInterruption(error))
      throw await recoverFromInterruption(paths, host, log, validate, error);
    throw error;
  } finally {
    await lock.release();
  }
}

/**
 * Completes what an interrupted run left (its intent record), under the
 * lock: what every update tick does first when intent.json exists, even
 * when the feed has nothing new. A run in progress holds the lock and its
 * own record: then there is nothing to complete. Returns whether it acted.
 */
export async function completeInterruptedRun(
  root: string | undefined,
  ctx: { host: Host; log: Log; validateUnits?: CheckUnits },
): Promise<boolean> {
  const { host, log } = ctx;
  const paths = hostPaths(root ?? '/');
  let lock: Awaited<ReturnType<typeof acquireLock>>;
  try {
    lock = await acquireLock(paths.lockFile, {
      purpose: 'complete an interrupted run',
      now: () => host.clock.now(),
    });
  } catch (error) {
    if (error instanceof RickError && error.code === 'LOCK_BUSY') {
      log(`${paths.intentFile} belongs to a run in progress: ${error.message}`);
      return false;
    }
    throw error;
  }
  try {
    const intent = await readStateFile(paths.intentFile);
    if (intent === undefined) return false;
    log(`${paths.intentFile} is left by an interrupted run: completing it`);
    const state = await readState(paths.stateFile);
    await reconcile(paths, host, state, log, { check: ctx.validateUnits ?? defaultValidateUnits });
    return true;
  } finally {
    await lock.release();
  }
}
