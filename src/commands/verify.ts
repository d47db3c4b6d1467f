/**
 * The commander adapter of `rick-bundle verify`: parses
 * arguments and calls src/build/verify.ts, where the work is done.
 */
import type { Command } from 'commander';
import { type VerifyDeps, verifyBundle } from '../build/verify.js';

export function registerVerify(program: Command, deps: VerifyDeps): void {
  program
    .command('verify')
    .description("check a bundle's signature against trusted keys, then its contents")
    .argument('<bundle.tgz>', 'the bundle to check')
    .requiredOption('--keyring <path>', 'a public key file, or a directory of *.asc/*.gpg files')
    .option('--signature <file>', 'the detached signature (default: <bundle.tgz>.sig)')
    .action(async (bundle: string, flags: { keyring: string; signature?: string }) => {
      const result = await verifyBundle(
        {
          bundle,
          keyring: flags.keyring,
          ...(flags.signature === undefined ? {} : { signature: flags.signature }),
        },
        deps,
      );
      const m = result.manifest;
      deps.output.stdout(
        [
          `good signature by ${result.fingerprint}`,
          `contents ok: ${m.name} ${m.version}, ${m.files.length} files, created ${m.createdAt}`,
          '',
        ].join('\n'),
      );
    });
}
