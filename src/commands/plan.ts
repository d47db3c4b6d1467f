/**
 * The commander adapter of `rick-install plan`: parses
 * arguments and calls src/host/plan.ts, where the work is done.
 */
import { basename, resolve } from 'node:path';
import { Command } from 'commander';
import { formatPlan } from '../host/activation/plan.js';
import type { InstallerDeps } from '../host/install.js';
import { planBundle } from '../host/plan.js';
import { formatPolicyReport, policyRefusal } from '../host/policy/check.js';
import { caddySitesOption } from './adopt.js';
import { addCommonOptions, expectationOf, expectOption, rootOf } from './install.js';
import { formatJson, planJson } from './json-output.js';

export function planCommand(deps: InstallerDeps): Command {
  const command = new Command('plan')
    .description('show what installing a bundle would change, without changing anything')
    .argument('<bundle>', 'the bundle tarball')
    .addOption(expectOption())
    .option('--signature <file>', 'detached signature (default: <bundle>.sig)')
    .option('--keyring <path>', 'trusted public key file or directory (default: /etc/rick/keys)')
    .option('--secrets <file>', 'secrets file (default: /etc/rick/secrets/<bundle>.env)')
    .option('--allow-downgrade', 'plan a version lower than the highest ever installed')
    .option('--adopt', 'plan `rick-install adopt`: show the diffs of the files it would take over')
    .addOption(caddySitesOption())
    .option('--json', 'print the plan as JSON (docs/json.md); progress goes to stderr');
  addCommonOptions(command);
  command.action(async (bundle: string, opts: Record<string, unknown>) => {
    // With --json, stdout holds the JSON alone.
    const out = opts.json ? deps.output.stderr : deps.output.stdout;
    const root = rootOf(opts.root as string | undefined);
    const result = await planBundle(
      {
        bundlePath: resolve(bundle),
        ...(opts.expect ? { expect: expectationOf(bundle, opts.expect) } : {}),
        signaturePath: opts.signature ? resolve(opts.signature as string) : undefined,
        keyringPath: opts.keyring ? resolve(opts.keyring as string) : undefined,
        secretsPath: opts.secrets ? resolve(opts.secrets as string) : undefined,
        allowDowngrade: Boolean(opts.allowDowngrade),
        root,
        ...(opts.adopt ? { adopt: { caddySites: opts.caddySites as string } } : {}),
      },
      { host: deps.host, validateUnits: deps.validateUnits, log: (line) => out(`${line}\n`) },
    );
    if (opts.json) {
      deps.output.stdout(formatJson(planJson(result)));
      // The plan is printed whole; an install of it would be refused until granted.
      if (result.outcome === 'install' && result.policy.missing.length > 0) {
        throw policyRefusal(result.policy);
      }
      return;
    }
    if (result.outcome === 'noop') {
      out(
        `${result.bundle} ${result.version}: ${result.reason}; installing ${basename(bundle)} would do nothing\n`,
      );
      return;
    }
    for (const note of result.notes) out(`note: ${note}\n`);
    out(
      `plan: ${result.bundle} ${result.version} over generation ${result.liveGeneration ?? '(none)'}\n`,
    );
    if (result.adoption) out(result.adoption);
    out(
      formatPlan(result.plan, {
        offline: result.offline,
        ...(result.adopted ? { adopted: result.adopted } : {}),
      }),
    );
    out(formatPolicyReport(result.policy));
    // Adopting, the diffs are the adopted files' against the bundle's, shown above.
    if (!result.adoption) {
      const legend = placeholderLegend(result.diff);
      out(
        result.diff
          ? `\n${legend ? `${legend}\n` : ''}${result.diff}`
          : '\nno unit, site or env file changes\n',
      );
    }
    // The plan is shown whole; an install of it would be refused until granted.
    if (result.policy.missing.length > 0) throw policyRefusal(result.policy);
  });
  return command;
}

/**
 * One line, before the diff, saying what its placeholders stand for (only
 * those it shows), so that each is explained once rather than at every use.
 */
export function placeholderLegend(diff: string): string | undefined {
  const parts: string[] = [];
  if (diff.includes('***secret:')) {
    parts.push('***secret:NAME*** stands for the value of the secret NAME, which plans never show');
  }
  if (diff.includes('@@rick:')) {
    parts.push('@@rick:KIND:NAME@@ for a host fact (uid, gid) not known before the install');
  }
  return parts.length ? `in the diff, ${parts.join('; ')}` : undefined;
}
