/**
 * The checks that refuse a bundle for what it is on this host, before
 * anything changes (src/host/install.ts runs them): what it may name and own
 * here (account-policy.ts, ownership.ts), its unit names against the other
 * bundles' and the host's, and what the operator must provide (accounts,
 * secrets, the grant), with the policy judged once. Read-only; run before
 * the lock for a release the version policy would install, and under it by
 * prepareInstall.
 */
import { lstat } from 'node:fs/promises';
import { analyzeBundleUnits, checkBundleUnits } from '../bundle/bundle-units.js';
import type { Manifest } from '../bundle/manifest.js';
import { plainBundleUnits } from '../bundle/plain-units.js';
import { bundleSysusers } from '../bundle/sysusers.js';
import { bundleTmpfiles } from '../bundle/tmpfiles.js';
import { RickError } from '../errors.js';
import {
  type AdoptOptions,
  adoptionProblems,
  DEFAULT_CADDY_SITES,
  planTakeOver,
  readForeignFiles,
  withoutAdopted,
} from './adopt.js';
import { PREVIEW_ACCOUNT_ID } from './candidate-checks.js';
import { readGeneration, readLiveGenerationNumber, type StoredGeneration } from './generations.js';
import type { InstallOptions } from './install-options.js';
import { accountPolicyProblems, readInfrastructureGroups } from './intake/account-policy.js';
import {
  addCreated,
  adoptCreated,
  type CreatedRecord,
  type CreatedRecords,
  planOwnership,
  readCreatedRecords,
} from './intake/ownership.js';
import { type Readiness, readinessRefusal, readReadiness } from './intake/readiness.js';
import { readSecretsFileIfPresent } from './intake/secrets.js';
import { requiredOwner } from './intake/signature.js';
import type { VerifiedBundle } from './intake/trust.js';
import { checkUnitNamespace, RICK_QUADLET_LINK, readHostUnits } from './intake/unit-namespace.js';
import { type HostPaths, secretsFileFor } from './paths.js';
import { readGrant } from './policy/grant.js';
import { confirmJudgment, judgePolicy, type PolicyJudgment } from './policy/judged.js';
import { bundleState, readState } from './state.js';
import type { Host } from './system.js';
import { decideVersion } from './version-policy.js';

/**
 * The bundle's units against the other installed bundles' and the host's:
 * systemd unit names are global (see intake/unit-namespace.ts).
 */
export async function checkUnitNames(
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
export async function checkOwnership(
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

/**
 * The checks of prepareInstall that refuse a bundle for what it is, run
 * before the lock (reading only) for a release the version policy would
 * install: what it may name and own here and its unit names first, whose
 * BUNDLE_INVALID says the bundle itself is wrong, then the policy, whose
 * POLICY_REFUSED says the host has not granted it yet. prepareInstall runs
 * the others again under the lock, and confirms the policy judgment returned
 * here without judging again. Undefined, the judging is left to
 * prepareInstall: when the version policy does, when the live generation is
 * unreadable, and when an interrupted run left its record, whose recovery
 * under the lock may put another generation live than the one read here.
 */
export async function refuseUngranted(
  options: InstallOptions,
  paths: HostPaths,
  host: Host,
  verified: VerifiedBundle,
): Promise<PolicyJudgment | undefined> {
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
  // The judgment reads the live generation (what the bundle's live release
  // created), which the recovery of an interrupted run may change.
  if (await exists(paths.intentFile)) return;
  const { readiness, judgment } = await readHostReadiness(options, paths, host, verified, live);
  const refusal = readinessRefusal(readiness, { withPolicy: true });
  if (refusal) throw refusal;
  return judgment;
}

/**
 * What the operator must provide for the bundle (accounts, secrets, grant),
 * read in one pass (src/host/intake/readiness.ts); read-only. With `judged`
 * (the judgment made before the lock), the policy is confirmed, not judged
 * again (src/host/policy/judged.ts).
 */
export async function readHostReadiness(
  options: InstallOptions,
  paths: HostPaths,
  host: Host,
  verified: VerifiedBundle,
  live: StoredGeneration | undefined,
  judged?: PolicyJudgment,
): Promise<{
  readiness: Readiness;
  secrets: Map<string, string> | undefined;
  secretsPath: string;
  judgment: PolicyJudgment;
}> {
  const { manifest, files } = verified.contents;
  const owner = requiredOwner();
  const input = {
    manifest,
    files,
    root: paths.root,
    accounts: host.accounts,
    live,
    ...(owner === undefined ? {} : { requireOwner: owner }),
  };
  const judgment = judged ?? (await judgePolicy(input));
  const policy = judged ? await confirmJudgment(judged, input) : judgment.report;
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
  return { readiness, secrets, secretsPath, judgment };
}

async function exists(path: string): Promise<boolean> {
  return lstat(path).then(
    () => true,
    () => false,
  );
}
