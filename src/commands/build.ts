/**
 * The commander adapter of `rick-bundle build`: parses
 * arguments and calls src/build/build.ts, where the work is done.
 */
import { createHash } from 'node:crypto';
import { relative } from 'node:path';
import type { Command } from 'commander';
import { type BuildDeps, buildBundle } from '../build/build.js';
import { emptyNeeds, formatNeed, needsList } from '../bundle/needs.js';

interface BuildFlags {
  version: string;
  vars?: string[];
  out?: string;
  installer?: string;
  sourceCommit?: string;
  templates?: string;
  quadletCheck: boolean;
  systemdCheck: boolean;
  caddyCheck: boolean;
  policy?: string;
  requirePinned?: boolean;
}

export function registerBuild(program: Command, deps: BuildDeps): void {
  program
    .command('build')
    .description('render a bundle directory into <name>-<version>.tgz')
    .argument('<bundle-dir>', 'the bundle directory (holding bundle.yaml)')
    .requiredOption('--version <semver>', 'the bundle version, e.g. 1.4.0')
    .option(
      '--vars <file>',
      'a YAML file of variable values (repeatable; later files win)',
      (value: string, previous: string[] | undefined) => [...(previous ?? []), value],
    )
    .option('--out <dir>', 'where to write the bundle', '.')
    .option(
      '--installer <file>',
      'the rick-install.cjs to ship, with the rick-install.1 and rick-install.bash beside it when there (default: dist/installer/)',
    )
    .option('--source-commit <sha>', 'the source commit to record (default: $GITHUB_SHA, git HEAD)')
    .option(
      '--templates <dir>',
      'shared templates directory (default: <bundle-dir>/../../templates if it exists, else those installed with rick-bundle)',
    )
    .option('--no-quadlet-check', "skip the check of the units by podman's quadlet")
    .option('--no-systemd-check', 'skip the check of the plain systemd units by systemd-analyze')
    .option('--no-caddy-check', 'skip the check of the Caddy sites by caddy validate')
    .option(
      '--policy <file>',
      'judge the bundle as a host with this grant (/etc/rick/policy.d/<bundle>.conf) will; refuse what it would hold',
    )
    .option(
      '--require-pinned',
      'refuse to build unless images.lock gives every image of the units a digest',
    )
    .action(async (bundleDir: string, flags: BuildFlags) => {
      const result = await buildBundle(
        {
          bundleDir,
          version: flags.version,
          vars: flags.vars ?? [],
          quadletCheck: flags.quadletCheck,
          systemdCheck: flags.systemdCheck,
          caddyCheck: flags.caddyCheck,
          ...(flags.out === undefined ? {} : { outDir: flags.out }),
          ...(flags.installer === undefined ? {} : { installer: flags.installer }),
          ...(flags.sourceCommit === undefined ? {} : { sourceCommit: flags.sourceCommit }),
          ...(flags.templates === undefined ? {} : { templatesDir: flags.templates }),
          ...(flags.policy === undefined ? {} : { policy: flags.policy }),
          ...(flags.requirePinned ? { requirePinned: true } : {}),
        },
        deps,
      );
      const { manifest } = result.plan;
      const shown = relative(deps.cwd, result.path) || result.path;
      deps.output.stdout(
        [
          `built ${shown.startsWith('..') ? result.path : shown}`,
          `  sha256 ${createHash('sha256').update(result.tgz).digest('hex')}`,
          `  ${manifest.name} ${manifest.version}, ${manifest.files.length} files, created ${manifest.createdAt}, commit ${manifest.source.commit ?? '(none)'}`,
          `  host facts: ${manifest.facts.map((f) => `${f.kind}:${f.name}`).join(', ') || '(none)'}`,
          `  needs: ${
            needsList(manifest.needs ?? emptyNeeds())
              .map(formatNeed)
              .join(', ') || 'nothing beyond the restricted profile'
          }`,
          ...(result.plan.buildRecord?.images
            ? [
                `  images pinned: ${result.plan.buildRecord.images.map((i) => `${i.reference}@${i.digest}`).join(', ')}`,
              ]
            : []),
          ...(result.policy
            ? [
                `  policy: ${relative(deps.cwd, result.policy.grant.file) || result.policy.grant.file} grants all of it`,
              ]
            : []),
          '',
        ].join('\n'),
      );
    });
}
