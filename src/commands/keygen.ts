/**
 * The commander adapter of `rick-bundle keygen`: parses
 * arguments and calls src/build/keygen.ts, where the work is done.
 */
import type { Command } from 'commander';
import { type KeygenDeps, keygen } from '../build/keygen.js';
import { DEFAULT_PASSPHRASE_ENV } from '../build/sign.js';

export function registerKeygen(program: Command, deps: KeygenDeps): void {
  program
    .command('keygen')
    .description('make an ed25519 signing key pair and print its fingerprint')
    .requiredOption('--name <name>', 'the key user ID name, e.g. "rick releases"')
    .option('--email <email>', 'the key user ID e-mail')
    .option('--out <dir>', 'where to write signing-key.asc and signing-key.pub.asc', '.')
    .option(
      '--passphrase-env <name>',
      'environment variable holding a passphrase for the private key',
      DEFAULT_PASSPHRASE_ENV,
    )
    .action(async (flags: { name: string; email?: string; out: string; passphraseEnv: string }) => {
      const result = await keygen(
        {
          name: flags.name,
          outDir: flags.out,
          passphraseEnv: flags.passphraseEnv,
          ...(flags.email ? { email: flags.email } : {}),
        },
        deps,
      );
      deps.output.stdout(
        [
          `private key ${result.privateKeyPath} (mode 0600${result.encrypted ? ', passphrase-protected' : ', NOT passphrase-protected'})`,
          `public key  ${result.publicKeyPath}`,
          `fingerprint ${result.fingerprint}`,
          '',
        ].join('\n'),
      );
    });
}
