/**
 * The commander adapter of `rick-bundle init`: parses arguments and calls
 * src/build/init.ts, where the work is done.
 */
import type { Command } from 'commander';
import { writeInit } from '../build/init.js';
import type { Output } from '../cli/run.js';

export function registerInit(program: Command, deps: { output: Output; cwd: string }): void {
  program
    .command('init')
    .description(
      'write a minimal bundle: one container as its own system user, nothing beyond the restricted profile',
    )
    .argument('<name>', 'the bundle name (lowercase letters, digits, dashes)')
    .option('--out <dir>', 'where to write it (default: bundles/<name>)')
    .action(async (name: string, flags: { out?: string }) => {
      const result = await writeInit(name, flags.out === undefined ? {} : { out: flags.out }, deps);
      deps.output.stdout(
        [
          `wrote ${result.dir}`,
          ...result.files.map((f) => `  ${f}`),
          `build it: rick-bundle build ${result.dir} --version 0.1.0`,
          '',
        ].join('\n'),
      );
    });
}
