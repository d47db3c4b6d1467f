/**
 * The commander adapter of `rick-bundle keys`: parses arguments and calls
 * src/build/keys.ts, where the work is done.
 */
import type { Command } from 'commander';
import { DEFAULT_KEYS_VALID_FOR, type KeysDeps, writeKeys } from '../build/keys.js';
import { DEFAULT_PASSPHRASE_ENV } from '../build/sign.js';

const collect = (value: string, previous: string[]) => [...previous, value];

interface Flags {
  rootKey: string;
  passphraseEnv: string;
  out: string;
  previous?: string;
  new?: boolean;
  keyring?: string;
  add: string[];
  roles?: string;
  remove: string[];
  validFor?: string;
  newRoot?: string;
}

export function registerKeys(program: Command, deps: KeysDeps): void {
  program
    .command('keys')
    .description(
      'sign the key list (keys.json and keys.json.sig: the release keys hosts trust under the root key) or a root hand-over (root-handover.json and .sig)',
    )
    .requiredOption('--root-key <file>', 'the armored private root key')
    .option(
      '--passphrase-env <name>',
      'environment variable holding the root key passphrase',
      DEFAULT_PASSPHRASE_ENV,
    )
    .option('--out <dir>', 'where to write the list or the hand-over', '.')
    .option(
      '--previous <file>',
      'the key list published before (its .sig beside it is checked first)',
    )
    .option('--new', 'write a first key list (serial 1)')
    .option(
      '--keyring <file>',
      'public root key that signed --previous (after a hand-over; default: --root-key)',
    )
    .option('--add <key.pub.asc>', 'list a release public key (repeatable)', collect, [])
    .option(
      '--roles <roles>',
      'what the added keys may sign: bundles, index or bundles,index (default both)',
    )
    .option('--remove <fingerprint>', 'drop a release key from the list (repeatable)', collect, [])
    .option(
      '--valid-for <duration>',
      `how long hosts accept the list, at least 1d (default ${DEFAULT_KEYS_VALID_FOR})`,
    )
    .option(
      '--new-root <key.pub.asc>',
      'write the statement handing the root over to this public key',
    )
    .action(async (flags: Flags) => {
      const result = await writeKeys(
        {
          rootKey: flags.rootKey,
          passphraseEnv: flags.passphraseEnv,
          out: flags.out,
          add: flags.add,
          remove: flags.remove,
          ...(flags.previous === undefined ? {} : { previous: flags.previous }),
          ...(flags.new ? { newList: true } : {}),
          ...(flags.keyring === undefined ? {} : { keyring: flags.keyring }),
          ...(flags.roles === undefined ? {} : { roles: flags.roles }),
          ...(flags.validFor === undefined ? {} : { validFor: flags.validFor }),
          ...(flags.newRoot === undefined ? {} : { newRoot: flags.newRoot }),
        },
        deps,
      );
      if (result.kind === 'handover') {
        const h = result.handover;
        deps.output.stdout(
          [
            `wrote ${result.path}`,
            `  root ${h.previous} hands over to ${h.root.fingerprint}`,
            `signed ${result.signaturePath}`,
            '',
          ].join('\n'),
        );
        return;
      }
      const l = result.list;
      deps.output.stdout(
        [
          `wrote ${result.path}`,
          `  serial ${l.serial}, issued ${l.issued}, expires ${l.expires}`,
          ...l.keys.map((k) => `  key ${k.fingerprint} signs ${k.roles.join(' and ')}`),
          ...result.notes.map((n) => `  ${n}`),
          `signed ${result.signaturePath}`,
          `  root key ${result.root}`,
          '',
        ].join('\n'),
      );
    });
}
