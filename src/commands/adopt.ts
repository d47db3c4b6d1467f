/**
 * The commander adapter of `rick-install adopt`: parses arguments and calls
 * the install pipeline (src/host/install.ts) with the adoption of the
 * host's files (src/host/adopt.ts, src/host/adopt-record.ts).
 */
import { isAbsolute, resolve } from 'node:path';
import { Command, Option } from 'commander';
import { RickError } from '../errors.js';
import { DEFAULT_CADDY_SITES } from '../host/adopt.js';
import { ADOPTED_DIR } from '../host/adopt-record.js';
import { type InstallerDeps, installBundle, type Log } from '../host/install.js';
import { addCommonOptions, expectationOf, expectOption, rootOf } from './install.js';

/** `--caddy-sites DIR`: Caddy's sites directory as the host sees it. */
export function caddySitesOption(): Option {
  return new Option(
    '--caddy-sites <dir>',
    "Caddy's sites directory, whose files with the names of the bundle's sites are taken over",
  )
    .default(DEFAULT_CADDY_SITES)
    .argParser((value) => {
      if (!isAbsolute(value) || value.split('/').includes('..')) {
        throw new RickError('USAGE', `--caddy-sites must be an absolute path, not ${value}`);
      }
      return value.replace(/\/+$/, '') || '/';
    });
}

export function adoptCommand(deps: InstallerDeps): Command {
  const command = new Command('adopt')
    .description('install a bundle over the units and sites other tooling (Ansible) wrote for it')
    .argument('<bundle>', 'the bundle tarball (<name>-<version>.tgz)')
    .addOption(expectOption())
    .option('--signature <file>', 'detached signature (default: <bundle>.sig)')
    .option('--keyring <path>', 'trusted public key file or directory (default: /etc/rick/keys)')
    .option('--secrets <file>', 'secrets file (default: /etc/rick/secrets/<bundle>.env)')
    .addOption(caddySitesOption());
  addCommonOptions(command);
  command.addHelpText(
    'after',
    `
The bundle is verified, judged against the host's grant and its facts
resolved as for an install. Each file taken over is shown with its diff
against the bundle's rendering (\`rick-install plan --adopt\` shows the
same). The files are moved into ${ADOPTED_DIR}/<time>/ (kept, never
deleted) in the same run as the flip to the new generation. Only services
whose generated unit differs restart (env files compared by content); the
others are kept: \`keep x.service (adopted, unchanged)\`.
What is taken over: the files at the top level of /etc/containers/systemd
with the names of the bundle's units, those of --caddy-sites with the names
of its sites, and the existing users and groups of its sysusers.d lines
that the host's grant names (with the paths of its tmpfiles.d lines they
own). Any other unit of the host colliding with the bundle's is refused.
A failed health gate, or a rollback to a generation before the adoption,
puts the files back. See docs/adopt.md; the exit codes are those of an
install (rick-install --help).
`,
  );
  command.action(async (bundle: string, opts: Record<string, unknown>) => {
    const root = rootOf(opts.root as string | undefined);
    const log: Log = (line) => deps.output.stdout(`${line}\n`);
    await installBundle(
      {
        bundlePath: resolve(bundle),
        ...(opts.expect ? { expect: expectationOf(bundle, opts.expect) } : {}),
        signaturePath: opts.signature ? resolve(opts.signature as string) : undefined,
        keyringPath: opts.keyring ? resolve(opts.keyring as string) : undefined,
        secretsPath: opts.secrets ? resolve(opts.secrets as string) : undefined,
        root,
        adopt: { caddySites: opts.caddySites as string },
      },
      { host: deps.host(root), log, validateUnits: deps.validateUnits },
    );
  });
  return command;
}
