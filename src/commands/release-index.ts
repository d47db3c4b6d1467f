/**
 * The commander adapter of `rick-bundle index`: parses arguments and calls
 * src/build/release-index.ts, where the work is done.
 */
import type { Command } from 'commander';
import { type IndexDeps, writeReleaseIndex } from '../build/release-index.js';
import { DEFAULT_PASSPHRASE_ENV } from '../build/sign.js';

const collect = (value: string, previous: string[]) => [...previous, value];

interface Flags {
  key: string;
  passphraseEnv: string;
  out: string;
  previous?: string;
  new?: boolean;
  keyring?: string;
  add: string[];
  location?: string;
  channel?: string;
  waves?: string;
  rollout: string[];
  yank: string[];
  reason?: string;
  unyank: string[];
  validFor?: string;
  issued?: string;
}

export function registerIndex(program: Command, deps: IndexDeps): void {
  program
    .command('index')
    .description(
      'write the signed release index (index.json and index.json.sig) that fleets follow: add releases, set rollout waves, yank versions, or just re-sign',
    )
    .requiredOption('--key <file>', 'the armored private key')
    .option(
      '--passphrase-env <name>',
      'environment variable holding the key passphrase',
      DEFAULT_PASSPHRASE_ENV,
    )
    .option('--out <dir>', 'where to write index.json and index.json.sig', '.')
    .option('--previous <file>', 'the index published before (its .sig beside it is checked first)')
    .option('--new', 'start a new index, listing nothing before (the first index only)')
    .option('--keyring <file>', 'public key(s) that signed the previous index (default: --key)')
    .option(
      '--add <bundle.tgz>',
      'list a signed bundle (repeatable; its .sig beside it)',
      collect,
      [],
    )
    .option(
      '--location <dir>',
      'where the added bundles lie, relative to the index (e.g. ../../download/v1.2.0/)',
    )
    .option('--channel <channel>', 'stable or prerelease (default: from the version)')
    .option(
      '--waves <list>',
      'staged rollout of the added releases and of --rollout: DELAY:PERCENT,… after the issue time, e.g. 0h:5,24h:50,72h:100',
    )
    .option(
      '--rollout <release>',
      'set --waves for VERSION or NAME@VERSION (repeatable)',
      collect,
      [],
    )
    .option(
      '--yank <release>',
      'withdraw VERSION or NAME@VERSION (repeatable; needs --reason)',
      collect,
      [],
    )
    .option('--reason <text>', 'one line: why the versions are yanked')
    .option(
      '--unyank <release>',
      'lift a yank of VERSION or NAME@VERSION (repeatable)',
      collect,
      [],
    )
    .option(
      '--valid-for <duration>',
      'how long hosts accept the index, at least 1h: 90m, 12h, 7d',
      '7d',
    )
    .option('--issued <time>', 'the issue time, ISO 8601 (default: now)')
    .action(async (flags: Flags) => {
      const result = await writeReleaseIndex(
        {
          key: flags.key,
          passphraseEnv: flags.passphraseEnv,
          out: flags.out,
          add: flags.add,
          rollout: flags.rollout,
          yank: flags.yank,
          unyank: flags.unyank,
          ...(flags.previous === undefined ? {} : { previous: flags.previous }),
          ...(flags.new ? { newIndex: true } : {}),
          ...(flags.keyring === undefined ? {} : { keyring: flags.keyring }),
          ...(flags.location === undefined ? {} : { location: flags.location }),
          ...(flags.channel === undefined ? {} : { channel: flags.channel }),
          ...(flags.waves === undefined ? {} : { waves: flags.waves }),
          ...(flags.reason === undefined ? {} : { reason: flags.reason }),
          ...(flags.validFor === undefined ? {} : { validFor: flags.validFor }),
          ...(flags.issued === undefined ? {} : { issued: flags.issued }),
        },
        deps,
      );
      const i = result.index;
      deps.output.stdout(
        [
          `wrote ${result.indexPath}`,
          `  serial ${i.serial}, issued ${i.issued}, expires ${i.expires}`,
          `  ${i.releases.length} releases, ${i.yanked.length} yanked`,
          ...result.notes.map((n) => `  ${n}`),
          `signed ${result.signaturePath}`,
          `  key ${result.fingerprint}`,
          '',
        ].join('\n'),
      );
    });
}
