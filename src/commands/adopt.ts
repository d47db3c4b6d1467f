/**
 * The commander adapter of `rick-install adopt`: parses arguments and calls
 * the install pipeline (src/host/install.ts) with the adoption of the
 * host's files (src/host/adopt.ts, src/host/adopt-record.ts).
 */
import { isAbsolute, resolve } from 'node:path';
import { Command, Option } from 'commander';
import { formatExitCodes, RickError } from '../errors.js';
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
    .description(
      'install a bundle on a host where other tooling (Ansible) deployed its services: take over ' +
        "the files with the names of the bundle's units in /etc/containers/systemd (top level) and " +
        "of its sites in Caddy's sites directory",
    )
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
Rolling back to a generation before the adoption puts the files back.
Any other unit of the host colliding with the bundle's is refused.

Exit codes:
${formatExitCodes()}
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
