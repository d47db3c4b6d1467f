/**
 * The commander adapter of `rick-install install` (the default command), and
 * the options every rick-install command shares: parses arguments and calls
 * src/host/install.ts, where the work is done.
 */
import { basename, resolve } from 'node:path';
import { Command, Option } from 'commander';
import { RickError } from '../errors.js';
import {
  type InstallerDeps,
  type InstallResult,
  installBundle,
  type Log,
} from '../host/install.js';
import { expectationFor, type Identity, parseExpectArgument } from '../host/intake/identity.js';
import { DEFAULT_KEEP_GENERATIONS } from '../host/state.js';
import { formatJson, installJson } from './json-output.js';

// ---------------------------------------------------------------------------
// Command

/** Options every rick-install command takes. */
export function addCommonOptions(command: Command): Command {
  return command
    .option('--root <dir>', 'operate on the host tree under DIR (offline: no systemctl)')
    .option('--debug', 'print stack traces');
}

export function rootOf(value: string | undefined): string | undefined {
  return value === undefined ? undefined : resolve(value);
}

/** `--expect NAME@VERSION`: which bundle and version the file must hold (default: its name says). */
export function expectOption(): Option {
  return new Option(
    '--expect <name@version>',
    'the bundle and version the file must hold (default: what its name <name>-<version>.tgz says)',
  ).argParser(parseExpectArgument);
}

/** The expectation of a command line: --expect, else the file name. */
export function expectationOf(bundle: string, expect: unknown) {
  return expectationFor(basename(bundle), expect as Identity | undefined);
}

/** `rick-install install <bundle.tgz>` (also the program's default command). */
export function installCommand(deps: InstallerDeps): Command {
  const command = new Command('install')
    .description('verify and install a signed bundle')
    .argument('<bundle>', 'the bundle tarball (<name>-<version>.tgz)')
    .addOption(expectOption())
    .option('--signature <file>', 'detached signature (default: <bundle>.sig)')
    .option('--keyring <path>', 'trusted public key file or directory (default: /etc/rick/keys)')
    .option('--secrets <file>', 'secrets file (default: /etc/rick/secrets/<bundle>.env)')
    .option('--allow-downgrade', 'accept a version lower than the highest ever installed')
    .option(
      '--grant',
      "show what the bundle needs beyond this host's grant (/etc/rick/policy.d/<bundle>.conf) and record it when accepted",
    )
    .option('--yes', 'with --grant: accept without asking (never grants the privileged profile)')
    .addOption(
      new Option(
        '--keep <n>',
        `generations to keep, remembered in state.json (default: the number given last, else ${DEFAULT_KEEP_GENERATIONS})`,
      ).argParser((v) => {
        const n = Number(v);
        if (!Number.isInteger(n) || n < 1 || n > 100) {
          throw new RickError('USAGE', `--keep must be an integer from 1 to 100, not ${v}`);
        }
        return n;
      }),
    );
  command.option('--json', 'print the outcome as JSON (docs/json.md); progress goes to stderr');
  addCommonOptions(command);
  command.action(async (bundle: string, opts: Record<string, unknown>) => {
    const root = rootOf(opts.root as string | undefined);
    // With --json, stdout holds the JSON alone.
    const progress = opts.json ? deps.output.stderr : deps.output.stdout;
    const log: Log = (line) => progress(`${line}\n`);
    const printed = (result: InstallResult) => {
      if (opts.json) deps.output.stdout(formatJson(installJson(result)));
    };
    const options = {
      bundlePath: resolve(bundle),
      ...(opts.expect ? { expect: expectationOf(bundle, opts.expect) } : {}),
      signaturePath: opts.signature ? resolve(opts.signature as string) : undefined,
      keyringPath: opts.keyring ? resolve(opts.keyring as string) : undefined,
      secretsPath: opts.secrets ? resolve(opts.secrets as string) : undefined,
      allowDowngrade: Boolean(opts.allowDowngrade),
      keepGenerations: opts.keep as number | undefined,
      root,
    };
    if (opts.yes && !opts.grant) throw new RickError('USAGE', '--yes only goes with --grant');
    if (opts.grant) {
      const { grantAndInstall, terminalPrompt } = await import('../host/policy/grant-flow.js');
      const result = await grantAndInstall(
        options,
        { yes: Boolean(opts.yes) },
        {
          host: deps.host(root),
          log,
          validateUnits: deps.validateUnits,
          prompt: deps.prompt ?? terminalPrompt,
        },
      );
      printed(result);
      return;
    }
    printed(
      await installBundle(options, {
        host: deps.host(root),
        log,
        validateUnits: deps.validateUnits,
      }),
    );
  });
  return command;
}
