/**
 * Caddy's own `caddy validate` as the judge of Caddy site snippets, for the
 * builder (a bundle's sites on their own) and the installer (the host's whole
 * Caddyfile with the candidate generation's sites in place of the live ones).
 *
 * How the host's Caddyfile reaches rick's sites: one line the operator adds
 * (bootstrap.sh offers to add it, and says so),
 *
 *     import {$RICK_CADDY_SITES:/etc/caddy/rick}/*.caddy
 *
 * where /etc/caddy/rick is a link to the live generation's caddy/ directory,
 * which holds one `<bundle>.caddy` per bundle (`import <bundle>/*.caddy`)
 * beside the bundle's own sites in `<bundle>/`. Caddy allows one wildcard in
 * an import, hence the two levels. The running Caddy has no RICK_CADDY_SITES
 * and reads the live sites; a validation sets it to the candidate's caddy/
 * directory, so that the operator's own Caddyfile, with everything else it
 * holds, is judged with the sites that are about to go live.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RickError } from '../errors.js';
import { type CommandRunner, realCommandRunner } from '../io/exec.js';

/** The environment variable the import line reads, default the live sites. */
export const CADDY_SITES_ENV = 'RICK_CADDY_SITES';
/** The link to the live generation's sites, as the host sees it. */
export const CADDY_SITES_DIR = '/etc/caddy/rick';
/** The line the host's Caddyfile carries to serve rick's sites. */
export const CADDY_IMPORT_LINE = `import {$${CADDY_SITES_ENV}:${CADDY_SITES_DIR}}/*.caddy`;
/** The host's Caddyfile, as Debian's and Arch's caddy.service read it. */
export const CADDYFILE = '/etc/caddy/Caddyfile';
/** The unit rick reloads after the sites changed. */
export const CADDY_SERVICE = 'caddy.service';

/** The per-bundle file of a generation's caddy/ directory that imports the bundle's sites. */
export function caddyBundleImport(bundle: string): string {
  return `# rick: the Caddy sites of bundle ${bundle}; written by rick-install, do not edit.\nimport ${bundle}/*.caddy\n`;
}

export interface CaddyRunOptions {
  runner?: CommandRunner;
  /** Where `caddy` is; default $RICK_CADDY, else `caddy` on the PATH. */
  caddyPath?: string;
  env?: NodeJS.ProcessEnv;
}

export interface CaddyResult {
  ok: boolean;
  /** Caddy's error (its `Error:` line without the prefix), when not ok. */
  error: string | undefined;
  /** Caddy's warnings, e.g. an import pattern matching no file. */
  warnings: string[];
  /** What the command printed on stdout (`caddy adapt`'s JSON). */
  stdout: string;
}

function caddyCommand(options: CaddyRunOptions): string {
  return options.caddyPath ?? (options.env ?? process.env).RICK_CADDY ?? 'caddy';
}

/** Caddy's log lines are JSON; keep the warnings, without its formatting nags. */
function parseWarnings(stderr: string): string[] {
  const warnings: string[] = [];
  for (const line of stderr.split('\n')) {
    if (!line.startsWith('{')) continue;
    let entry: Record<string, unknown>;
    try {
      entry = JSON.parse(line) as Record<string, unknown>;
    } catch {
      continue;
    }
    if (entry.level !== 'warn' || typeof entry.msg !== 'string') continue;
    if (entry.msg.includes('not formatted')) continue;
    const detail = ['pattern', 'file', 'error']
      .filter((k) => typeof entry[k] === 'string')
      .map((k) => `${k} ${entry[k] as string}`)
      .join(', ');
    warnings.push(detail ? `${entry.msg} (${detail})` : entry.msg);
  }
  return warnings;
}

/**
 * Runs one caddy subcommand over a Caddyfile. Caddy may create state under
 * $HOME while it provisions (a `.step` directory for its local CA), so it
 * gets a scratch HOME that is removed afterwards: a check leaves no trace.
 */
async function runCaddy(
  subcommand: 'validate' | 'adapt',
  config: string,
  sitesDir: string | undefined,
  options: CaddyRunOptions,
): Promise<CaddyResult> {
  const runner = options.runner ?? realCommandRunner;
  const command = caddyCommand(options);
  const home = await mkdtemp(join(tmpdir(), 'rick-caddy-'));
  try {
    const env: NodeJS.ProcessEnv = { ...(options.env ?? process.env), HOME: home };
    delete env.XDG_DATA_HOME;
    delete env.XDG_CONFIG_HOME;
    if (sitesDir !== undefined) env[CADDY_SITES_ENV] = sitesDir;
    else delete env[CADDY_SITES_ENV];
    const result = await runner.run(
      command,
      [subcommand, '--adapter', 'caddyfile', '--config', config],
      {
        env,
        timeoutMs: 60_000,
      },
    );
    if (result.startError !== undefined || (result.code === 127 && result.stdout === '')) {
      throw new RickError(
        'PREREQUISITE_MISSING',
        `cannot run Caddy (${command}): ${result.stderr.trim() || result.startError}`,
        { hint: 'install Caddy (Debian: apt-get install caddy) or set RICK_CADDY' },
      );
    }
    const errorLine = result.stderr
      .split('\n')
      .find((line) => line.startsWith('Error: '))
      ?.slice('Error: '.length);
    const ok = result.code === 0;
    return {
      ok,
      error: ok
        ? undefined
        : (errorLine ?? (result.stderr.trim().split('\n').at(-1) || `exit ${result.code}`)),
      warnings: parseWarnings(result.stderr),
      stdout: result.stdout,
    };
  } finally {
    await rm(home, { recursive: true, force: true });
  }
}

/** `caddy validate --adapter caddyfile --config FILE`, with RICK_CADDY_SITES set to `sitesDir`. */
export function validateCaddyfile(
  config: string,
  sitesDir: string | undefined,
  options: CaddyRunOptions = {},
): Promise<CaddyResult> {
  return runCaddy('validate', config, sitesDir, options);
}

/** `caddy adapt`: the JSON configuration a Caddyfile becomes. */
export function adaptCaddyfile(
  config: string,
  sitesDir: string | undefined,
  options: CaddyRunOptions = {},
): Promise<CaddyResult> {
  return runCaddy('adapt', config, sitesDir, options);
}

/** A host name nothing resolves (RFC 2606), to prove an import is wired. */
export const CADDY_PROBE_HOST = 'rick-import-probe.invalid';

/** The probe site: a bundle directory holding only a site for CADDY_PROBE_HOST. */
export const caddyProbeSite = `http://${CADDY_PROBE_HOST} {\n\trespond 204\n}\n`;
