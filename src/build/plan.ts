/**
 * Plans a bundle from its rendered files: checks the placeholders they carry,
 * records the host facts they need, and computes the manifest and the tar
 * entries. Pure: the build command does the reading, rendering and writing.
 */
import { createHash } from 'node:crypto';
import semver from 'semver';
import {
  ACTIVATION_LIMIT_SEC,
  activationBudget,
  DEFAULT_SETTLE_SEC,
  UPDATE_SERVICE_TIMEOUT_SEC,
} from '../bundle/activation-budget.js';
import {
  BUILD_RECORD_PATH,
  type BuildRecord,
  type PinnedImageEntry,
  planBuildRecord,
  serializeBuildRecord,
  type Toolchain,
} from '../bundle/build-record.js';
import { analyzeBundleUnits } from '../bundle/bundle-units.js';
import {
  type FileEntry,
  type FileKind,
  fileKindDirs,
  MANIFEST_PATH,
  MANIFEST_SCHEMA_VERSION,
  type Manifest,
  type ManifestInput,
  parseManifest,
  pathTokenKinds,
  pathTokenRefusal,
  serializeManifest,
  serviceNameForUnit,
} from '../bundle/manifest.js';
import { recordedNeeds } from '../bundle/needs.js';
import {
  type FactKind,
  isFactKind,
  placeholderKey,
  scanPlaceholders,
  substitutePlaceholders,
} from '../bundle/placeholders.js';
import { RickError } from '../errors.js';
import { hostBundleFile } from '../host/paths.js';
import { checkSiteClaims } from '../host/policy/sites.js';
import type { TemplateKind } from './definition.js';
import { checkDeclaredNeeds, type NeedsCheck } from './needs-check.js';

/** Lowest podman whose quadlet reads a symlinked unit directory (5.0 would do for .pod alone). */
export const REQUIRED_PODMAN = '5.3.0';

export const INSTALLER_PATH = 'installer/rick-install.cjs';
/**
 * The installer's manual page and bash completion, shipped beside it (built
 * from its program by scripts/generate-manuals.mjs); bootstrap.sh installs
 * them on a host. Of kind `installer`: hosts take only INSTALLER_PATH of that
 * kind into a generation, so installers that predate them read such bundles.
 */
export const INSTALLER_MAN_PATH = 'installer/rick-install.1';
export const INSTALLER_COMPLETION_PATH = 'installer/rick-install.bash';

export interface RenderedFile {
  kind: TemplateKind;
  /** The template it came from, relative to the bundle dir, for messages. */
  template: string;
  /** Output file name inside the kind's directory. */
  name: string;
  content: string;
}

export interface ServiceDefinition {
  unit: string;
  activeTimeoutSec?: number;
  settleSec?: number;
  checks?: ManifestInput['services'][number]['checks'];
}

export interface PlanInput {
  name: string;
  version: string;
  /** Seconds since the epoch. */
  epoch: number;
  commit: string | null;
  files: readonly RenderedFile[];
  services: readonly ServiceDefinition[];
  installer: Buffer;
  /** The installer's manual page and bash completion, when shipped with it. */
  installerDocs?: { manPage: Buffer; completion: Buffer };
  /** The rendered `needs` of bundle.yaml (absent: none declared). */
  needs?: Record<string, unknown>;
  /**
   * What built the bundle and the images its units name by digest (from
   * images.lock): written to BUILD_RECORD_PATH, not to the manifest
   * (src/bundle/build-record.ts says why). Absent: no record.
   */
  buildRecord?: { toolchain: Toolchain; images: readonly PinnedImageEntry[] };
}

/**
 * A host stops an activation at ACTIVATION_LIMIT_SEC, so that it and the
 * restore after a failed gate fit in one run of rick-update.service: a
 * bundle whose gate could wait longer would be cut off by its own host.
 */
function refuseOverBudget(services: Manifest['services']): void {
  const budget = activationBudget(services);
  if (budget.totalSec <= ACTIVATION_LIMIT_SEC) return;
  throw new RickError(
    'DEFINITION_INVALID',
    `the services' gate timeouts add up to ${budget.totalSec}s, past the activation limit of ${ACTIVATION_LIMIT_SEC}s: ${budget.parts
      .map((p) => `${p.service} ${p.sec}s`)
      .join(' + ')}`,
    {
      hint: `each service counts activeTimeoutSec + its checks' timeoutSec + settleSec (default ${DEFAULT_SETTLE_SEC}); an activation and the restore after a failed gate must both fit in rick-update.service's TimeoutStartSec=${UPDATE_SERVICE_TIMEOUT_SEC / 3600}h: lower them in bundle.yaml`,
    },
  );
}

export interface PlannedEntry {
  path: string;
  data: Buffer;
  mode: number;
}

export interface BundlePlan {
  manifest: Manifest;
  /** Every tar entry, manifest.json included. */
  entries: PlannedEntry[];
  /** The rendered Quadlet units, by file name, placeholders still in. */
  units: { name: string; content: string }[];
  /** The rendered plain systemd units, likewise. */
  systemdUnits: { name: string; content: string }[];
  /** The rendered Caddy sites, likewise. */
  sites: { name: string; content: string }[];
  fileName: string;
  /** The build record the bundle carries at BUILD_RECORD_PATH, when written. */
  buildRecord?: BuildRecord;
  /** The declared needs and what the units use beyond the restricted profile. */
  needs: NeedsCheck;
}

const modes: Record<FileKind, number> = {
  quadlet: 0o644,
  systemd: 0o644,
  caddy: 0o644,
  env: 0o600,
  sysusers: 0o644,
  tmpfiles: 0o644,
  installer: 0o755,
};

/** The version must be a plain semantic version, exactly as written. */
export function checkVersion(version: string): void {
  if (semver.valid(version) !== version) {
    throw new RickError(
      'INVALID_VERSION',
      `${JSON.stringify(version)} is not a semantic version such as 1.2.3 or 2.0.0-rc.1`,
      { hint: 'pass --version without a leading "v"' },
    );
  }
}

export function bundleFileName(name: string, version: string): string {
  return `${name}-${version}.tgz`;
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * Env files are read by podman's --env-file: every line must be a comment,
 * blank, or NAME=value. A bare NAME would pass the builder's own environment
 * through on the host, so it is refused too.
 */
function checkEnvFile(file: RenderedFile): string[] {
  const problems: string[] = [];
  file.content.split('\n').forEach((line, i) => {
    if (line.trim() === '' || line.trimStart().startsWith('#')) return;
    if (!/^[A-Za-z_][A-Za-z0-9_.]*=/.test(line)) {
      problems.push(
        `${file.template}: rendered line ${i + 1} is not NAME=value: ${JSON.stringify(line.slice(0, 60))}`,
      );
    }
  });
  return problems;
}

export function planBundle(input: PlanInput): BundlePlan {
  checkVersion(input.version);
  const kinds = new Map<string, FileKind>([
    ...input.files.map((f) => [`${fileKindDirs[f.kind]}/${f.name}`, f.kind] as const),
    [INSTALLER_PATH, 'installer'],
    ...(input.buildRecord ? ([[BUILD_RECORD_PATH, 'installer']] as const) : []),
    ...(input.installerDocs
      ? ([
          [INSTALLER_MAN_PATH, 'installer'],
          [INSTALLER_COMPLETION_PATH, 'installer'],
        ] as const)
      : []),
  ]);
  const malformed: string[] = [];
  const misplaced: string[] = [];
  const facts = new Map<string, { kind: FactKind; name: string }>();
  for (const file of input.files) {
    if (file.kind === 'env') misplaced.push(...checkEnvFile(file));
    const { refs, malformed: bad } = scanPlaceholders(file.content);
    if (bad.length > 0) malformed.push(`${file.template}: ${bad.join(', ')}`);
    if ((file.kind === 'sysusers' || file.kind === 'tmpfiles') && refs.length > 0) {
      // systemd-sysusers and systemd-tmpfiles run before any fact can be resolved.
      misplaced.push(
        `${file.template}: ${file.kind} fragments cannot use host facts or paths (${refs
          .map((r) => `${r.kind}:${r.name}`)
          .join(', ')})`,
      );
      continue;
    }
    const secrets = refs.filter((r) => r.kind === 'secret').map((r) => r.name);
    if (file.kind !== 'env' && secrets.length > 0) {
      // Units and sites are world-readable on the host; env files are 0600.
      misplaced.push(
        `${file.template}: secrets belong in env files, not in a ${file.kind} file (${secrets.join(', ')})`,
      );
    }
    for (const ref of refs) {
      if (ref.kind === 'path') {
        const kind = kinds.get(ref.name);
        if (kind === undefined) {
          misplaced.push(
            `${file.template}: bundle_path("${ref.name}") is not a file of the bundle`,
          );
        } else if (!pathTokenKinds.has(kind)) {
          misplaced.push(
            `${file.template}: bundle_path("${ref.name}") names ${pathTokenRefusal(kind)}`,
          );
        }
      } else if (isFactKind(ref.kind)) {
        facts.set(placeholderKey(ref), { kind: ref.kind, name: ref.name });
      }
    }
  }
  if (malformed.length > 0) {
    throw new RickError('UNKNOWN_PLACEHOLDER', `unknown placeholder: ${malformed.join('; ')}`, {
      hint: 'write host facts with gid(), uid(), secret() and bundle_path()',
    });
  }
  if (misplaced.length > 0) {
    throw new RickError('DEFINITION_INVALID', misplaced.join('; '));
  }
  const sites = new Map(
    input.files.filter((f) => f.kind === 'caddy').map((f) => [`caddy/${f.name}`, f.content]),
  );
  checkSiteClaims(input.name, sites);
  const needs = checkDeclaredNeeds({
    bundle: input.name,
    declared: input.needs,
    units: new Map(input.files.filter((f) => f.kind === 'quadlet').map((f) => [f.name, f.content])),
    plainUnits: new Map(
      input.files.filter((f) => f.kind === 'systemd').map((f) => [f.name, f.content]),
    ),
    sysusers: input.files
      .filter((f) => f.kind === 'sysusers')
      .map((f) => ({ name: f.template, content: f.content })),
    sites,
  });

  const buildRecord = input.buildRecord
    ? planBuildRecord(input.buildRecord.toolchain, input.buildRecord.images)
    : undefined;
  const entries: PlannedEntry[] = [
    ...input.files.map((f) => ({
      path: `${fileKindDirs[f.kind]}/${f.name}`,
      data: Buffer.from(f.content, 'utf8'),
      mode: modes[f.kind],
    })),
    { path: INSTALLER_PATH, data: input.installer, mode: modes.installer },
    ...(buildRecord
      ? [
          {
            path: BUILD_RECORD_PATH,
            data: Buffer.from(serializeBuildRecord(buildRecord)),
            mode: 0o644,
          },
        ]
      : []),
    ...(input.installerDocs
      ? [
          { path: INSTALLER_MAN_PATH, data: input.installerDocs.manPage, mode: 0o644 },
          { path: INSTALLER_COMPLETION_PATH, data: input.installerDocs.completion, mode: 0o644 },
        ]
      : []),
  ].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const kindOf = (path: string): FileKind =>
    path.startsWith(`${fileKindDirs.installer}/`)
      ? 'installer'
      : (input.files.find((f) => `${fileKindDirs[f.kind]}/${f.name}` === path)?.kind ?? 'quadlet');
  const files: FileEntry[] = entries.map((e) => ({
    path: e.path,
    kind: kindOf(e.path),
    sha256: sha256(e.data),
    size: e.data.length,
    mode: e.mode,
  }));

  // The service quadlet makes from each unit, ServiceName= included; the
  // read-back through the host's intake reports any problem with the units.
  const { units } = analyzeBundleUnits({ files }, new Map(entries.map((e) => [e.path, e.data])));
  const serviceOf = new Map(units.map((u) => [u.file, u.service]));
  const candidate: ManifestInput = {
    schemaVersion: MANIFEST_SCHEMA_VERSION,
    name: input.name,
    version: input.version,
    createdAt: new Date(input.epoch * 1000).toISOString(),
    source: { commit: input.commit },
    requires: { podman: REQUIRED_PODMAN },
    files,
    facts: [...facts.values()].sort((a, b) =>
      placeholderKey(a) < placeholderKey(b) ? -1 : placeholderKey(a) > placeholderKey(b) ? 1 : 0,
    ),
    services: input.services.map((s) => ({
      unit: s.unit,
      service: serviceOf.get(s.unit) ?? serviceNameForUnit(s.unit),
      ...(s.activeTimeoutSec === undefined ? {} : { activeTimeoutSec: s.activeTimeoutSec }),
      ...(s.settleSec === undefined ? {} : { settleSec: s.settleSec }),
      checks: s.checks ?? [],
    })),
    needs: recordedNeeds(needs.needs),
    ...(needs.databases.length ? { databases: needs.databases } : {}),
  };
  const parsed = parseManifest(candidate);
  if (!parsed.ok) {
    throw new RickError(
      'DEFINITION_INVALID',
      `the bundle would have an invalid manifest: ${parsed.problems
        .map((p) => `${p.path}: ${p.message}`)
        .join('; ')}`,
    );
  }
  const manifest = parsed.manifest;
  refuseOverBudget(manifest.services);
  return {
    manifest,
    entries: [
      { path: MANIFEST_PATH, data: Buffer.from(serializeManifest(manifest)), mode: 0o644 },
      ...entries,
    ],
    units: filesOfKind(input.files, 'quadlet'),
    systemdUnits: filesOfKind(input.files, 'systemd'),
    sites: filesOfKind(input.files, 'caddy'),
    fileName: bundleFileName(input.name, input.version),
    ...(buildRecord ? { buildRecord } : {}),
    needs,
  };
}

function filesOfKind(
  files: readonly RenderedFile[],
  kind: TemplateKind,
): { name: string; content: string }[] {
  return files.filter((f) => f.kind === kind).map((f) => ({ name: f.name, content: f.content }));
}

/**
 * Fills placeholders with sample values of the right shape so that quadlet
 * can judge a rendered unit: numbers for IDs, a token for secrets, a path
 * like the host's for bundle files.
 */
export function fillSampleFacts(text: string, bundle: string): string {
  return substitutePlaceholders(text, (ref) => {
    switch (ref.kind) {
      case 'gid':
      case 'uid':
        return '4242';
      case 'secret':
        return 'sample-secret';
      case 'path':
        return hostBundleFile(1, bundle, ref.name);
    }
  }).text;
}
