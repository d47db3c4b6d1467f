/**
 * The commander adapter of `rick-bundle sign`: parses
 * arguments and calls src/build/sign.ts, where the work is done.
 */
import type { Command } from 'commander';
import { DEFAULT_PASSPHRASE_ENV, type SignDeps, signBundle } from '../build/sign.js';

export function registerSign(program: Command, deps: SignDeps): void {
  program
    .command('sign')
    .description('write a binary detached OpenPGP signature <bundle.tgz>.sig')
    .argument('<bundle.tgz>', 'the bundle to sign')
    .requiredOption('--key <file>', 'the armored private key')
    .option(
      '--passphrase-env <name>',
      'environment variable holding the key passphrase',
      DEFAULT_PASSPHRASE_ENV,
    )
    .option('--signature <file>', 'where to write the signature (default: <bundle.tgz>.sig)')
    .action(
      async (bundle: string, flags: { key: string; passphraseEnv: string; signature?: string }) => {
        const result = await signBundle(
          {
            bundle,
            key: flags.key,
            passphraseEnv: flags.passphraseEnv,
            ...(flags.signature === undefined ? {} : { signature: flags.signature }),
          },
          deps,
        );
        deps.output.stdout(`signed ${result.signaturePath}\n  key ${result.fingerprint}\n`);
      },
    );
}
