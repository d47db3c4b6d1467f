/**
 * The commander adapter of `rick-bundle verify`: parses
 * arguments and calls src/build/verify.ts, where the work is done.
 */
import type { Command } from 'commander';
import { type VerifyDeps, verifyBundle } from '../build/verify.js';
import { BUILD_RECORD_PATH } from '../bundle/build-record.js';

export function registerVerify(program: Command, deps: VerifyDeps): void {
  program
    .command('verify')
    .description(
      'check a bundle as hosts do: the keyring, the signature, the contents, and its file name against the signed manifest',
    )
    .argument('<bundle.tgz>', 'the bundle to check')
    .requiredOption('--keyring <path>', 'a public key file, or a directory of *.asc/*.gpg files')
    .option('--signature <file>', 'the detached signature (default: <bundle.tgz>.sig)')
    .option(
      '--key-list <keys.json>',
      'a key list signed by a --keyring key (the root): the bundle must be signed by a key it names for bundles',
    )
    .option(
      '--expect <name@version>',
      'the bundle and version it must hold (default: from its file name, <name>-<version>.tgz)',
    )
    .action(
      async (
        bundle: string,
        flags: { keyring: string; signature?: string; expect?: string; keyList?: string },
      ) => {
        const result = await verifyBundle(
          {
            bundle,
            keyring: flags.keyring,
            ...(flags.signature === undefined ? {} : { signature: flags.signature }),
            ...(flags.expect === undefined ? {} : { expect: flags.expect }),
            ...(flags.keyList === undefined ? {} : { keyList: flags.keyList }),
          },
          deps,
        );
        const m = result.manifest;
        const shown = result.buildRecord;
        const record = shown && 'record' in shown ? shown.record : undefined;
        deps.output.stdout(
          [
            `good signature by ${result.fingerprint}`,
            `contents ok: ${m.name} ${m.version}, ${m.files.length} files, created ${m.createdAt}`,
            ...(record
              ? [
                  `built with Node.js ${record.toolchain.node}, rick ${record.toolchain.rick}, esbuild ${record.toolchain.esbuild ?? '(none)'}`,
                  `images pinned: ${record.images?.map((i) => `${i.reference}@${i.digest}`).join(', ') ?? '(none)'}`,
                ]
              : []),
            '',
          ].join('\n'),
        );
        if (shown && 'problem' in shown) {
          deps.output.stderr(
            `warning: ${BUILD_RECORD_PATH} is not readable by this rick-bundle (${shown.problem}); hosts ignore it\n`,
          );
        }
      },
    );
}
