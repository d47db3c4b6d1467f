/**
 * The host layout, in one place. Every path is computed under a root so that
 * `--root DIR` installs into an image or a test tree; `hostPath` gives the
 * path as the running host will see it (what units must reference).
 *
 * A generation holds every bundle installed on the host, so that one
 * `current` pointer switches the whole set atomically:
 *
 *   /var/lib/rick/generations/<n>/
 *     quadlet/<bundle>/<unit files>         what /etc/containers/systemd/rick shows
 *     systemd/<bundle>/<unit files>         plain units, made visible by the rick-units generator
 *     caddy/<bundle>.caddy                  `import <bundle>/*.caddy`, written by rick
 *     caddy/<bundle>/<sites>.caddy          what /etc/caddy/rick shows the host's Caddy
 *     bundles/<bundle>/manifest.json        the bundle's verified manifest
 *     bundles/<bundle>/facts.json           facts resolved at install (no secret values)
 *     bundles/<bundle>/env/…                env files, substituted (0600)
 *     bundles/<bundle>/sysusers.d/…, tmpfiles.d/…
 *     installer/rick-install.cjs            the installer of the last bundle installed
 *     sysusers.d/rick.conf, tmpfiles.d/rick.conf   every bundle's fragments, read at boot
 *                                           through /etc/sysusers.d/rick.conf and /etc/tmpfiles.d/rick.conf
 *     generation.json                       what this generation is (written last)
 */
import { join } from 'node:path';

export const RICK_STATE_DIR = '/var/lib/rick';

export interface HostPaths {
  root: string;
  config: string;
  keysDir: string;
  secretsDir: string;
  stateDir: string;
  generationsDir: string;
  current: string;
  stateFile: string;
  /** The intent record of a run that is switching `current` (present only meanwhile). */
  intentFile: string;
  lockFile: string;
  /** `/etc/containers/systemd/rick`, a symlink to `current/quadlet`, created once. */
  quadletLink: string;
  /** `/usr/local/bin/rick-install`, a symlink to `current/installer/rick-install.cjs`. */
  installerLink: string;
  /** `/etc/caddy/rick`, a symlink to `current/caddy`, created with the first site. */
  caddySitesLink: string;
  /** The host's Caddyfile, which imports rick's sites (never written by rick-install). */
  caddyfile: string;
  /** `/etc/systemd/system-generators/rick-units`, written with the first plain unit. */
  unitGenerator: string;
  /** Default node-exporter textfile. */
  metricsFile: string;
  /** What each bundle's fragments created on this host (intake/ownership.ts). */
  createdFile: string;
  /** `/etc/tmpfiles.d/rick.conf`, a symlink to `current/tmpfiles.d/rick.conf`, created once. */
  tmpfilesLink: string;
  /** `/etc/sysusers.d/rick.conf`, a symlink to `current/sysusers.d/rick.conf`, created once. */
  sysusersLink: string;
}

export function hostPaths(root = '/'): HostPaths {
  const under = (p: string) => join(root, p);
  return {
    root,
    config: under('/etc/rick/rick.conf'),
    keysDir: under('/etc/rick/keys'),
    secretsDir: under('/etc/rick/secrets'),
    stateDir: under(RICK_STATE_DIR),
    generationsDir: under(`${RICK_STATE_DIR}/generations`),
    current: under(`${RICK_STATE_DIR}/current`),
    stateFile: under(`${RICK_STATE_DIR}/state.json`),
    intentFile: under(`${RICK_STATE_DIR}/intent.json`),
    lockFile: under(`${RICK_STATE_DIR}/lock`),
    quadletLink: under('/etc/containers/systemd/rick'),
    installerLink: under('/usr/local/bin/rick-install'),
    caddySitesLink: under('/etc/caddy/rick'),
    caddyfile: under('/etc/caddy/Caddyfile'),
    unitGenerator: under('/etc/systemd/system-generators/rick-units'),
    metricsFile: under('/var/lib/prometheus/node-exporter/rick.prom'),
    createdFile: under(`${RICK_STATE_DIR}/created.json`),
    tmpfilesLink: under('/etc/tmpfiles.d/rick.conf'),
    sysusersLink: under('/etc/sysusers.d/rick.conf'),
  };
}

export function secretsFileFor(paths: HostPaths, bundle: string): string {
  return join(paths.secretsDir, `${bundle}.env`);
}

/** The path of generation n as the running host sees it (never under --root). */
export function hostGenerationDir(generation: number): string {
  return `${RICK_STATE_DIR}/generations/${generation}`;
}

/**
 * What a `@@rick:path:<p>@@` placeholder of a bundle resolves to: the file
 * inside that bundle's directory of the given generation.
 */
export function hostBundleFile(generation: number, bundle: string, bundlePath: string): string {
  return `${hostGenerationDir(generation)}/bundles/${bundle}/${bundlePath}`;
}
