/**
 * The commander adapter of `rick-install keys import FILE`: takes a key
 * list or a root hand-over by hand, judged as the update tick judges one
 * it fetched (src/trust/key-accept.ts).
 */
import { resolve } from 'node:path';
import { Command } from 'commander';
import type { InstallerDeps } from '../host/install.js';
import { hostPaths } from '../host/paths.js';
import { importKeyDocument } from '../trust/key-accept.js';
import { ownerOption } from '../trust/key-state.js';
import { addCommonOptions, rootOf } from './install.js';

export function keysCommand(deps: InstallerDeps): Command {
  const keys = new Command('keys').description(
    'the release keys this host trusts under its root key (/etc/rick/keys/root.asc)',
  );
  const importCommand = new Command('import')
    .description(
      'accept a key list (keys.json) or a root hand-over (root-handover.json), signed by the root key this host trusts',
    )
    .argument('<file>', 'keys.json or root-handover.json')
    .option('--signature <file>', 'its detached signature (default: <file>.sig)');
  addCommonOptions(importCommand);
  importCommand.action(async (file: string, opts: Record<string, unknown>) => {
    const root = rootOf(opts.root as string | undefined);
    const paths = hostPaths(root ?? '/');
    const path = resolve(file);
    const signature = opts.signature ? resolve(opts.signature as string) : `${path}.sig`;
    const line = await importKeyDocument(paths, path, signature, {
      now: deps.host(root).clock.now(),
      ...ownerOption(),
    });
    deps.output.stdout(`${line}\n`);
  });
  keys.addCommand(importCommand);
  return keys;
}
