/**
 * Preparing an install, shared with `plan` (src/host/install.ts runs the
 * rest): the verified bundle, the version policy, the unit link and what is
 * carried, the checks of install-checks.ts, then podman, sysusers (not for
 * `plan`), the facts, the substitution and the next generation in memory,
 * with its activation plan. Nothing is written but the accounts sysusers
 * creates and their record.
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { Manifest } from '../bundle/manifest.js';
import { bundleSysusers } from '../bundle/sysusers.js';
import { RickError, wrapError } from '../errors.js';
import { type ActivationPlan, planActivation } from './activation/plan.js';
import { describeTakeOver } from './adopt.js';
import { type CandidateCheck, checkCandidate, previewGeneration } from './candidate-checks.js';
import { findDrift, refuseCarriedDrift } from './drift.js';
import { checkpoint } from './fault.js';
import { type RecordedFacts, renderMasked } from './generation-files.js';
import {
  carryBundle,
  checkQuadletLink,
  generationDir,
  INSTALLER_FILE,
  listGenerations,
  readGeneration,
  readLiveGenerationNumber,
  type StoredBundle,
  type StoredGeneration,
} from './generations.js';
import { checkOwnership, checkUnitNames, readHostReadiness } from './install-checks.js';
import type { InstallOptions } from './install-options.js';
import { chooseInstaller, installerVersion, readInstallerVersion } from './installer-version.js';
import { type FactValues, resolveFacts } from './intake/facts.js';
import { checkIdentity, expectationFor } from './intake/identity.js';
import { addCreated, writeCreatedRecords } from './intake/ownership.js';
import { readinessRefusal, readyValues } from './intake/readiness.js';
import { requiredOwner } from './intake/signature.js';
import { readVerifiedBundle, type VerifiedBundle } from './intake/trust.js';
import type { HostPaths } from './paths.js';
import type { PolicyReport } from './policy/judge.js';
import type { PolicyJudgment } from './policy/judged.js';
import { checkPodmanVersion } from './prerequisites.js';
import type { Log } from './recovery.js';
import { bundleState, type HostState } from './state.js';
import { substituteBundle, substituteBundleNormalized } from './substitute.js';
import type { Host } from './system.js';
import { decideVersion } from './version-policy.js';

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
  /**
   * The policy judgment made before the lock: confirmed (its grant file and
   * accounts unchanged), not made again. Absent, prepareInstall judges.
   */
  judged?: PolicyJudgment;
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

export async function applyFragments(
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
    ctx.judged,
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
