import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { writeOutputFile } from '../build/output-file.js';
import { pinRenderedImages } from '../build/pin-images.js';
import {
  type BundlePlan,
  checkVersion,
  fillSampleFacts,
  INSTALLER_COMPLETION_PATH,
  INSTALLER_MAN_PATH,
  planBundle,
} from '../build/plan.js';
import { renderBundleFiles } from '../build/render-bundle.js';
import { readBundleSource, readSourceInfo, readToolchain } from '../build/source.js';
import { packTarGz } from '../build/tar-pack.js';
import { CADDY_SITES_ENV, caddyBundleImport, validateCaddyfile } from '../bundle/caddy.js';
import { runQuadletDryRun } from '../bundle/quadlet.js';
import { verifySystemdUnits } from '../bundle/systemd-verify.js';
import { parseSysusers } from '../bundle/sysusers.js';
import type { Output } from '../cli/run.js';
import { describe, RickError } from '../errors.js';
import { parseGrant } from '../host/policy/grant.js';
import type { PolicyReport } from '../host/policy/judge.js';
import type { CommandRunner } from '../io/exec.js';
import { rickVersion } from '../version.js';
import { buildPolicyRefusal, judgeAsHost, undeclaredRefusal } from './needs-check.js';

export interface BuildDeps {
  output: Output;
  env: NodeJS.ProcessEnv;
  cwd: string;
  runner: CommandRunner;
  /** The rick checkout: default installer, shared templates, cached quadlet. */
  repoRoot: string;
}

export interface BuildOptions {
  bundleDir: string;
  version: string;
  vars?: string[];
  outDir?: string;
  installer?: string;
  sourceCommit?: string;
  /** Shared templates directory; defaults to templates/ two levels above the bundle. */
  templatesDir?: string;
  quadletCheck?: boolean;
  /** `systemd-analyze verify` of the plain systemd units (default on). */
  systemdCheck?: boolean;
  /** `caddy validate` of the Caddy sites (default on). */
  caddyCheck?: boolean;
  /** A host's grant file (policy.d/<bundle>.conf): judge the bundle as that host will. */
  policy?: string;
  /** Refuse the build when an image of the units has no digest in images.lock. */
  requirePinned?: boolean;
}

export interface BuildResult {
  path: string;
  plan: BundlePlan;
  tgz: Buffer;
  /** The judgement against --policy, when given. */
  policy?: PolicyReport;
}

async function readInstaller(path: string, isDefault: boolean): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (error) {
    throw new RickError(
      'INPUT_NOT_FOUND',
      `cannot read the installer ${path}: ${describe(error)}`,
      {
        hint: isDefault
          ? 'run `npm run build:installer` first, or pass --installer FILE'
          : 'pass the built rick-install.cjs with --installer FILE',
      },
    );
  }
}

/**
 * The installer's manual page and completion, beside it: required beside the
 * default installer (`npm run build` writes them), shipped when present
 * beside one given with --installer.
 */
async function readInstallerDocs(
  installerPath: string,
  isDefault: boolean,
): Promise<{ manPage: Buffer; completion: Buffer } | undefined> {
  const dir = dirname(installerPath);
  const names = [basename(INSTALLER_MAN_PATH), basename(INSTALLER_COMPLETION_PATH)] as const;
  const read = await Promise.all(
    names.map((name) =>
      readFile(join(dir, name)).catch((error: NodeJS.ErrnoException) => {
        if (error.code === 'ENOENT') return undefined;
        throw new RickError(
          'INPUT_NOT_FOUND',
          `cannot read ${join(dir, name)}: ${describe(error)}`,
        );
      }),
    ),
  );
  const [manPage, completion] = read;
  if (manPage && completion) return { manPage, completion };
  if (!manPage && !completion && !isDefault) return undefined;
  const missing = names.filter((_, i) => read[i] === undefined).map((n) => join(dir, n));
  throw new RickError(
    'INPUT_NOT_FOUND',
    `the installer's manual page and completion must lie beside it: ${missing.join(', ')} missing`,
    {
      hint: isDefault
        ? 'run `npm run build` first (scripts/generate-manuals.mjs writes them)'
        : `copy rick-install.1 and rick-install.bash of the same build beside ${installerPath}, or neither`,
    },
  );
}

async function checkUnits(
  plan: BundlePlan,
  deps: BuildDeps,
): Promise<{ quadletPath: string; warnings: string[] }> {
  const dir = await mkdtemp(join(tmpdir(), 'rick-quadlet-'));
  try {
    for (const unit of plan.units) {
      await writeFile(join(dir, unit.name), fillSampleFacts(unit.content, plan.manifest.name));
    }
    let result: Awaited<ReturnType<typeof runQuadletDryRun>>;
    try {
      result = await runQuadletDryRun(dir, {
        env: deps.env,
        runner: deps.runner,
        repoRoot: deps.repoRoot,
      });
    } catch (error) {
      if (error instanceof RickError && error.code === 'PREREQUISITE_MISSING') {
        throw new RickError('PREREQUISITE_MISSING', error.message, {
          hint: 'run scripts/fetch-quadlet.sh or set RICK_QUADLET; --no-quadlet-check skips the check',
        });
      }
      throw error;
    }
    const messages = result.output.map((line) => line.split(dir).join('<bundle>/quadlet'));
    if (!result.ok) {
      throw new RickError(
        'QUADLET_REJECTED',
        `podman's quadlet rejects the rendered units: ${messages.filter((l) => !l.startsWith('Warning')).join('; ') || 'no message'}`,
        { hint: 'fix the unit templates; quadlet(5) lists the keys of each section' },
      );
    }
    return { quadletPath: result.quadletPath, warnings: messages };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function withTempDir<T>(prefix: string, use: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  try {
    return await use(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * The plain systemd units through `systemd-analyze verify`. A program a unit
 * runs that this machine lacks is the host's business: a warning here, an
 * error on the host.
 */
async function checkSystemdUnits(plan: BundlePlan, deps: BuildDeps): Promise<string[]> {
  if (plan.systemdUnits.length === 0) return [];
  return withTempDir('rick-units-', async (dir) => {
    const paths: string[] = [];
    for (const unit of plan.systemdUnits) {
      paths.push(join(dir, unit.name));
      await writeFile(join(dir, unit.name), fillSampleFacts(unit.content, plan.manifest.name));
    }
    const result = await verifySystemdUnits(paths, { runner: deps.runner, env: deps.env }).catch(
      (error: unknown) => {
        if (error instanceof RickError && error.code === 'PREREQUISITE_MISSING') {
          throw new RickError('PREREQUISITE_MISSING', error.message, {
            hint: 'install systemd (systemd-analyze); --no-systemd-check skips the check',
          });
        }
        throw error;
      },
    );
    const shown = (line: string) => line.split(`${dir}/`).join('<bundle>/systemd/');
    if (result.errors.length > 0) {
      throw new RickError(
        'UNITS_REJECTED',
        `systemd-analyze rejects the rendered systemd units: ${result.errors.map(shown).join('; ')}`,
        { hint: 'fix the unit templates; systemd.unit(5) and systemd.service(5) list the keys' },
      );
    }
    return [
      ...result.warnings.map(shown),
      ...result.missingCommands.map((l) => `${shown(l)} (on this machine; the host checks again)`),
    ];
  });
}

/** The Caddy sites, on their own, through `caddy validate`. */
async function checkSites(plan: BundlePlan, deps: BuildDeps): Promise<string[]> {
  if (plan.sites.length === 0) return [];
  const name = plan.manifest.name;
  return withTempDir('rick-sites-', async (dir) => {
    // The layout of a generation's caddy/ directory, and a Caddyfile that imports it as a host's does.
    await mkdir(join(dir, 'sites', name), { recursive: true });
    await writeFile(join(dir, 'sites', `${name}.caddy`), caddyBundleImport(name));
    for (const site of plan.sites) {
      await writeFile(join(dir, 'sites', name, site.name), fillSampleFacts(site.content, name));
    }
    const caddyfile = join(dir, 'Caddyfile');
    await writeFile(
      caddyfile,
      `{
	admin off
}
import {$${CADDY_SITES_ENV}}/*.caddy
`,
    );
    const result = await validateCaddyfile(caddyfile, join(dir, 'sites'), {
      runner: deps.runner,
      env: deps.env,
    }).catch((error: unknown) => {
      if (error instanceof RickError && error.code === 'PREREQUISITE_MISSING') {
        throw new RickError('PREREQUISITE_MISSING', error.message, {
          hint: 'install Caddy (Debian: apt-get install caddy) or set RICK_CADDY; --no-caddy-check skips the check',
        });
      }
      throw error;
    });
    const shown = (line: string) =>
      line.split(`${join(dir, 'sites', name)}/`).join('<bundle>/caddy/');
    if (!result.ok) {
      throw new RickError(
        'SITE_REJECTED',
        `Caddy rejects the rendered sites: ${shown(result.error ?? 'no message')}`,
        {
          hint: 'fix the site templates; sites are checked on their own, so they cannot use snippets of a host Caddyfile',
        },
      );
    }
    return result.warnings.map(shown);
  });
}

/** Builds a bundle; writes nothing unless every check passed. */
export async function buildBundle(options: BuildOptions, deps: BuildDeps): Promise<BuildResult> {
  checkVersion(options.version);
  const bundleDir = resolve(deps.cwd, options.bundleDir);
  const source = await readBundleSource(
    bundleDir,
    (options.vars ?? []).map((v) => resolve(deps.cwd, v)),
  );
  const installerPath = options.installer
    ? resolve(deps.cwd, options.installer)
    : join(deps.repoRoot, 'dist/installer/rick-install.cjs');
  const installer = await readInstaller(installerPath, options.installer === undefined);
  const installerDocs = await readInstallerDocs(installerPath, options.installer === undefined);
  const info = await readSourceInfo({
    bundleDir,
    env: deps.env,
    runner: deps.runner,
    ...(options.sourceCommit === undefined ? {} : { sourceCommit: options.sourceCommit }),
  });

  const rendered = renderBundleFiles(source, {
    templatesDir: options.templatesDir
      ? resolve(deps.cwd, options.templatesDir)
      : defaultTemplatesDir(bundleDir, deps.repoRoot),
    version: options.version,
  });
  const { renderer, context } = rendered;
  const images = await pinRenderedImages(bundleDir, rendered.files, options.requirePinned === true);
  const files = images.files;
  for (const line of images.warnings) deps.output.stderr(`warning: ${line}\n`);
  const plan = planBundle({
    name: source.definition.name,
    version: options.version,
    epoch: info.epoch,
    commit: info.commit,
    files,
    // A check's URL and Host may use variables: the port, the domain of a site.
    services: source.definition.services.map((service, i) => ({
      ...service,
      checks: service.checks.map((check, j) => ({
        ...check,
        url: renderer.renderString(check.url, context, `services.${i}.checks.${j}.url`),
        ...(check.host === undefined
          ? {}
          : {
              host: renderer.renderString(check.host, context, `services.${i}.checks.${j}.host`),
            }),
      })),
    })),
    installer,
    ...(installerDocs === undefined ? {} : { installerDocs }),
    // Every build records its toolchain, and the images it pinned, beside the manifest.
    buildRecord: {
      toolchain: await readToolchain(deps.repoRoot, rickVersion()),
      images: images.pinned,
    },
    ...(source.definition.needs === undefined
      ? {}
      : { needs: renderNeeds(source.definition.needs, context, renderer.renderString) }),
  });

  if (options.quadletCheck === false) {
    deps.output.stderr("warning: podman's quadlet check skipped (--no-quadlet-check)\n");
  } else if (plan.units.length > 0) {
    const checked = await checkUnits(plan, deps);
    for (const line of checked.warnings) deps.output.stderr(`quadlet: ${line}\n`);
  }
  if (plan.systemdUnits.length > 0 && options.systemdCheck === false) {
    deps.output.stderr('warning: systemd-analyze check skipped (--no-systemd-check)\n');
  } else {
    for (const line of await checkSystemdUnits(plan, deps)) {
      deps.output.stderr(`systemd-analyze: ${line}\n`);
    }
  }
  if (plan.sites.length > 0 && options.caddyCheck === false) {
    deps.output.stderr('warning: Caddy check skipped (--no-caddy-check)\n');
  } else {
    for (const line of await checkSites(plan, deps)) deps.output.stderr(`caddy: ${line}\n`);
  }
  if (info.epochFrom === 'none') {
    deps.output.stderr(
      'warning: no SOURCE_DATE_EPOCH and no git commit: createdAt is 1970-01-01T00:00:00Z\n',
    );
  }

  const tgz = packTarGz(plan.entries, { mtime: info.epoch });
  // Read the tarball back as every host will, so that a bundle hosts would refuse is never published.
  const { parseBundleArchive } = await import('../bundle/archive.js');
  parseBundleArchive(tgz);
  // After podman's, systemd's and Caddy's own checks, whose messages say more about a file they
  // cannot read, and after the archive reader's, as a host judges a malformed bundle first.
  if (plan.needs.undeclared.length > 0) throw undeclaredRefusal(plan.needs);
  for (const need of plan.needs.unused) {
    deps.output.stderr(`warning: bundle.yaml declares ${need}, which no unit uses\n`);
  }
  const policy =
    options.policy === undefined ? undefined : await judgePolicy(plan, options.policy, deps);
  const outDir = resolve(deps.cwd, options.outDir ?? '.');
  await mkdir(outDir, { recursive: true });
  const path = join(outDir, plan.fileName);
  await writeOutputFile(path, tgz, { mode: 0o644 });
  return { path, plan, tgz, ...(policy ? { policy } : {}) };
}

/** Renders each string of bundle.yaml's needs with the bundle's variables. */
function renderNeeds(
  needs: Record<string, unknown>,
  context: Record<string, unknown>,
  render: (source: string, context: Record<string, unknown>, where: string) => string,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [kind, value] of Object.entries(needs)) {
    out[kind] = Array.isArray(value)
      ? value.map((v, i) => {
          if (typeof v === 'string') return render(v, context, `needs.${kind}.${i}`);
          // A database's fields (name, owner, password secret) are templates too.
          if (v !== null && typeof v === 'object') {
            return Object.fromEntries(
              Object.entries(v).map(([field, text]) => [
                field,
                typeof text === 'string'
                  ? render(text, context, `needs.${kind}.${i}.${field}`)
                  : text,
              ]),
            );
          }
          return v;
        })
      : value;
  }
  return out;
}

/** `--policy FILE`: the bundle judged as a host with that grant will judge it. */
async function judgePolicy(plan: BundlePlan, file: string, deps: BuildDeps): Promise<PolicyReport> {
  const path = resolve(deps.cwd, file);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new RickError('INPUT_NOT_FOUND', `cannot read the policy ${path}: ${describe(error)}`, {
      hint: 'pass a grant file as hosts keep them in /etc/rick/policy.d/<bundle>.conf',
    });
  }
  const grant = parseGrant(text, path);
  const files = new Map(plan.entries.map((e) => [e.path, e.data]));
  const sysusers = plan.manifest.files
    .filter((f) => f.kind === 'sysusers')
    .flatMap((f) => parseSysusers(files.get(f.path)?.toString('utf8') ?? '', f.path));
  const report = judgeAsHost(plan.manifest, files, grant, sysusers);
  if (report.missing.length) throw buildPolicyRefusal(report, path);
  return report;
}

/**
 * The shared templates: templates/ beside the bundles (bundles/<name>/../../
 * templates, a checkout's layout), else those of the installed package, so
 * that a bundle of one's own builds anywhere.
 */
export function defaultTemplatesDir(bundleDir: string, repoRoot: string): string {
  const beside = resolve(bundleDir, '../../templates');
  return existsSync(beside) ? beside : join(repoRoot, 'templates');
}
