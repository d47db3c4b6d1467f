/**
 * The commander adapter of `rick-bundle pin`: parses arguments and calls
 * src/build/pin.ts, where the work is done.
 */
import { relative } from 'node:path';
import type { Command } from 'commander';
import { type PinDeps, pinBundle } from '../build/pin.js';

interface PinFlags {
  vars?: string[];
  templates?: string;
}

export function registerPin(program: Command, deps: PinDeps): void {
  program
    .command('pin')
    .description(
      "write <bundle-dir>/images.lock: the digest each image's tag names now in its registry",
    )
    .argument('<bundle-dir>', 'the bundle directory (holding bundle.yaml)')
    .option(
      '--vars <file>',
      'a YAML file of variable values (repeatable; later files win), as given to build',
      (value: string, previous: string[] | undefined) => [...(previous ?? []), value],
    )
    .option(
      '--templates <dir>',
      'shared templates directory (default: <bundle-dir>/../../templates if it exists, else those installed with rick-bundle)',
    )
    .action(async (bundleDir: string, flags: PinFlags) => {
      const result = await pinBundle(
        {
          bundleDir,
          vars: flags.vars ?? [],
          ...(flags.templates === undefined ? {} : { templatesDir: flags.templates }),
        },
        deps,
      );
      const shown = relative(deps.cwd, result.path);
      const lines = [`wrote ${shown && !shown.startsWith('..') ? shown : result.path}`];
      for (const image of result.images) {
        const what =
          image.before === undefined
            ? `${image.after} (new)`
            : image.before === image.after
              ? `${image.after} (unchanged)`
              : `${image.before} → ${image.after}`;
        lines.push(`  ${image.reference} ${what}`);
      }
      for (const reference of result.dropped)
        lines.push(`  ${reference} dropped (no unit uses it)`);
      if (result.images.length === 0) lines.push('  no registry images in the units');
      deps.output.stdout(`${lines.join('\n')}\n`);
    });
}
